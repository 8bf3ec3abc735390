"""Alert rules: volume spikes (EARS C1/C2/C3), rumour watch-list, negative-share shifts.

**EARS** (CDC's Early Aberration Reporting System; Hutwagner et al., 2003) on a daily count series
``x``, with a baseline of ``baseline_days`` (7) days:

* C1 on day t: baseline t−7..t−1; ``C1 = (x_t − mean) / sd``; alert when ``C1 > c1_threshold`` (3).
* C2 on day t: the same with a 2-day lag, baseline t−9..t−3; alert when ``C2 > c2_threshold`` (3).
* C3 on day t: ``sum over i in {t−2, t−1, t} of max(0, C2_i − 1)``; alert when ``> c3_threshold``
  (2). Needs C2 on all three days.

``sd`` is the sample standard deviation (n − 1) floored at ``min_sd``: a flat baseline has sd 0 and
would make any single extra post an infinite spike. Days with ``x_t < min_count`` never alert (a
jump from 0 to 2 posts is not news). Days without a full baseline get no statistic.

**Negative share**: a one-sided two-proportion z-test of today's negative share against the
pooled baseline window's share; alert when ``z ≥ z_threshold`` and both sides have enough posts.

Every alert carries the ids of the posts behind it.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from fugong.opinion.text.normalise import compact_key, to_simplified

__all__ = [
    "Alert",
    "EarsConfig",
    "EarsPoint",
    "Post",
    "RumourMatch",
    "RumourWatchlist",
    "daily_counts",
    "ears",
    "negative_share_alerts",
    "negative_share_z",
    "volume_alerts",
]

EarsMethod = Literal["C1", "C2", "C3"]


@dataclass(frozen=True)
class Post:
    """The minimum an alert rule needs of a post. ``id`` is the caller's key (database id)."""

    id: Hashable
    time: datetime | date
    text: str


@dataclass(frozen=True)
class Alert:
    """A raised alert. ``post_ids`` are the posts behind it, in input order.

    ``kind`` is ``volume`` (with ``detail["method"]`` C1/C2/C3), ``rumour`` or ``negative_share``;
    ``subject`` is the keyword, phrase or segment it concerns.
    """

    kind: Literal["volume", "rumour", "negative_share"]
    subject: str
    day: date | None
    statistic: float
    threshold: float
    post_ids: tuple[Hashable, ...]
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EarsConfig:
    """EARS parameters; the defaults are CDC's published ones plus the two floors above."""

    baseline_days: int = 7
    lag_c2: int = 2
    c1_threshold: float = 3.0
    c2_threshold: float = 3.0
    c3_threshold: float = 2.0
    c3_offset: float = 1.0
    min_sd: float = 1.0
    min_count: int = 3

    def threshold(self, method: EarsMethod) -> float:
        return {"C1": self.c1_threshold, "C2": self.c2_threshold, "C3": self.c3_threshold}[method]


@dataclass(frozen=True)
class EarsPoint:
    """EARS on one day. ``statistic`` is None without a full baseline (then ``alert`` is False)."""

    index: int
    count: float
    statistic: float | None
    threshold: float
    alert: bool
    baseline_mean: float | None = None
    baseline_sd: float | None = None


def _mean_sd(values: Sequence[float], min_sd: float) -> tuple[float, float]:
    m = sum(values) / len(values)
    var = sum((v - m) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return m, max(math.sqrt(var), min_sd)


def _c_stat(
    counts: Sequence[float], t: int, lag: int, cfg: EarsConfig
) -> tuple[float, float, float] | None:
    # Baseline is the baseline_days days ending `lag` days before t: t-7..t-1 for C1 (lag 0),
    # t-9..t-3 for C2 (lag 2), so a slowly building outbreak does not hide in its own baseline.
    end = t - lag
    start = end - cfg.baseline_days
    if start < 0:
        return None
    m, sd = _mean_sd(counts[start:end], cfg.min_sd)
    return (counts[t] - m) / sd, m, sd


def ears(
    counts: Sequence[float], method: EarsMethod = "C2", config: EarsConfig | None = None
) -> list[EarsPoint]:
    """EARS ``method`` on a series of consecutive daily counts; one point per day, same order.

    Missing days must be given as 0 (see :func:`daily_counts`); the rule assumes consecutive days.
    """
    cfg = config or EarsConfig()
    threshold = cfg.threshold(method)
    points = []
    c2: list[float | None] = []
    for t in range(len(counts)):
        if method == "C1":
            res = _c_stat(counts, t, 0, cfg)
        else:
            res = _c_stat(counts, t, cfg.lag_c2, cfg)
            c2.append(None if res is None else res[0])
        if res is None:
            points.append(EarsPoint(t, counts[t], None, threshold, False))
            continue
        stat, m, sd = res
        if method == "C3":
            last3 = c2[-3:]
            if len(last3) < 3 or any(v is None for v in last3):
                points.append(EarsPoint(t, counts[t], None, threshold, False, m, sd))
                continue
            stat = sum(max(0.0, v - cfg.c3_offset) for v in last3 if v is not None)
        alert = stat > threshold and counts[t] >= cfg.min_count
        points.append(EarsPoint(t, counts[t], stat, threshold, alert, m, sd))
    return points


def _day(when: datetime | date) -> date:
    return when.date() if isinstance(when, datetime) else when


def daily_counts(
    posts: Sequence[Post], start: date | None = None, end: date | None = None
) -> tuple[list[date], list[list[int]]]:
    """Consecutive days from ``start`` (default: first post) to ``end`` (default: last post),
    and for each day the input indices of its posts (empty lists for days without posts)."""
    if not posts:
        return [], []
    days = [_day(p.time) for p in posts]
    first = start or min(days)
    last = end or max(days)
    n_days = (last - first).days + 1
    buckets: list[list[int]] = [[] for _ in range(max(n_days, 0))]
    for i, d in enumerate(days):
        off = (d - first).days
        if 0 <= off < n_days:
            buckets[off].append(i)
    return [first + timedelta(days=k) for k in range(n_days)], buckets


def volume_alerts(
    posts: Sequence[Post],
    *,
    subjects: dict[str, Iterable[str]] | None = None,
    methods: Sequence[EarsMethod] = ("C1", "C2", "C3"),
    config: EarsConfig | None = None,
    only_last_day: bool = False,
) -> list[Alert]:
    """EARS volume alerts per subject over the days spanned by ``posts``.

    ``subjects`` maps a name (keyword or topic) to the terms that put a post in it; a post matches
    when its compact text contains any term's compact form (so Traditional or spaced input
    matches too). ``None`` means one subject, ``"全部"``, holding every post. An alert's
    ``post_ids`` are the subject's posts on the alert day. With ``only_last_day`` only the last
    day is reported (the daily job's view).
    """
    days, buckets = daily_counts(posts)
    keys = [compact_key(p.text) for p in posts]
    if subjects is None:
        members = {"全部": [True] * len(posts)}
    else:
        members = {}
        for name, terms in subjects.items():
            forms = [f for f in (compact_key(t) for t in terms) if f]
            members[name] = [any(f in k for f in forms) for k in keys]
    alerts = []
    for name, flags in members.items():
        per_day = [[i for i in b if flags[i]] for b in buckets]
        counts = [float(len(ids)) for ids in per_day]
        for method in methods:
            for pt in ears(counts, method, config):
                if not pt.alert or (only_last_day and pt.index != len(days) - 1):
                    continue
                assert pt.statistic is not None
                alerts.append(
                    Alert(
                        kind="volume",
                        subject=name,
                        day=days[pt.index],
                        statistic=pt.statistic,
                        threshold=pt.threshold,
                        post_ids=tuple(posts[i].id for i in per_day[pt.index]),
                        detail={
                            "method": method,
                            "count": pt.count,
                            "baseline_mean": pt.baseline_mean,
                            "baseline_sd": pt.baseline_sd,
                        },
                    )
                )
    return alerts


@dataclass(frozen=True)
class RumourMatch:
    index: int
    phrase: str


class RumourWatchlist:
    """Watch-list of rumour phrases, matched on compact normalised text.

    Both phrase and post go through :func:`~.normalise.compact_key` (Simplified script,
    half-width, lower case, no spaces/punctuation/emoji), so ``喝 板藍根`` in a post matches the
    phrase ``喝板蓝根``. A phrase may contain ``*`` to allow up to ``gap`` characters between its
    parts (``自来水*病毒`` matches ``自来水里有病毒``).
    """

    def __init__(self, phrases: Iterable[str], *, gap: int = 6) -> None:
        self.phrases: list[str] = []
        self._patterns: list[re.Pattern[str]] = []
        for phrase in phrases:
            parts = [compact_key(p) for p in to_simplified(phrase).split("*")]
            parts = [p for p in parts if p]
            if not parts:
                raise ValueError(f"rumour phrase {phrase!r} is empty after normalisation")
            self.phrases.append(phrase)
            self._patterns.append(re.compile(f".{{0,{gap}}}".join(map(re.escape, parts))))

    def match(self, text: str) -> list[str]:
        """The watch-list phrases (as given) that occur in ``text``."""
        key = compact_key(text)
        return [ph for ph, pat in zip(self.phrases, self._patterns, strict=True) if pat.search(key)]

    def scan(self, posts: Sequence[Post]) -> list[Alert]:
        """One ``rumour`` alert per phrase that occurs, with all posts containing it."""
        hits: dict[str, list[Hashable]] = defaultdict(list)
        days: dict[str, list[date]] = defaultdict(list)
        for p in posts:
            for phrase in self.match(p.text):
                hits[phrase].append(p.id)
                days[phrase].append(_day(p.time))
        return [
            Alert(
                kind="rumour",
                subject=phrase,
                day=max(days[phrase]),
                statistic=float(len(hits[phrase])),
                threshold=1.0,
                post_ids=tuple(hits[phrase]),
                detail={"first_seen": min(days[phrase]).isoformat()},
            )
            for phrase in self.phrases
            if phrase in hits
        ]


def negative_share_z(today_neg: int, today_total: int, base_neg: int, base_total: int) -> float:
    """Pooled two-proportion z statistic of today's share minus the baseline share.

    Positive when today is more negative. 0.0 when the pooled share is 0 or 1 (no variance).
    """
    if today_total <= 0 or base_total <= 0:
        raise ValueError("both samples need at least one post")
    p1 = today_neg / today_total
    p0 = base_neg / base_total
    pooled = (today_neg + base_neg) / (today_total + base_total)
    var = pooled * (1 - pooled) * (1 / today_total + 1 / base_total)
    return 0.0 if var <= 0 else (p1 - p0) / math.sqrt(var)


def negative_share_alerts(
    posts: Sequence[Post],
    labels: Sequence[str],
    *,
    baseline_days: int = 7,
    z_threshold: float = 2.58,
    min_posts_today: int = 20,
    min_posts_baseline: int = 50,
    subject: str = "全部",
    only_last_day: bool = False,
) -> list[Alert]:
    """Days whose negative share rose significantly against the previous ``baseline_days`` days.

    ``labels[i]`` is the sentiment label of ``posts[i]``. The one-sided default 2.58 is
    p ≈ 0.005. An alert's ``post_ids`` are that day's negative posts.
    """
    if len(posts) != len(labels):
        raise ValueError("posts and labels differ in length")
    days, buckets = daily_counts(posts)
    neg = [[i for i in b if labels[i] == "negative"] for b in buckets]
    alerts = []
    for t in range(baseline_days, len(days)):
        if only_last_day and t != len(days) - 1:
            continue
        n1, k1 = len(buckets[t]), len(neg[t])
        n0 = sum(len(b) for b in buckets[t - baseline_days : t])
        k0 = sum(len(b) for b in neg[t - baseline_days : t])
        if n1 < min_posts_today or n0 < min_posts_baseline:
            continue
        z = negative_share_z(k1, n1, k0, n0)
        if z >= z_threshold:
            alerts.append(
                Alert(
                    kind="negative_share",
                    subject=subject,
                    day=days[t],
                    statistic=z,
                    threshold=z_threshold,
                    post_ids=tuple(posts[i].id for i in neg[t]),
                    detail={
                        "share_today": k1 / n1,
                        "share_baseline": k0 / n0,
                        "posts_today": n1,
                        "posts_baseline": n0,
                    },
                )
            )
    return alerts
