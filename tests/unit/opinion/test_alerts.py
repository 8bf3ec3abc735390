"""EARS C1/C2/C3 on hand-computed series, volume alerts with posts, rumours, negative share."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest

from fugong.opinion.text import (
    EarsConfig,
    Post,
    RumourWatchlist,
    ears,
    negative_share_alerts,
    negative_share_z,
    volume_alerts,
)

# Baseline 3,5,3,5,3,5,4: mean 4, sample variance 6/6 = 1, so sd = 1 exactly.
BASE = [3, 5, 3, 5, 3, 5, 4]


def _alerts(counts: list[float], method: str, **cfg: float) -> list[int]:
    return [p.index for p in ears(counts, method, EarsConfig(**cfg)) if p.alert]  # type: ignore[arg-type]


def test_flat_series_raises_nothing() -> None:
    flat = [5.0] * 30
    for method in ("C1", "C2", "C3"):
        assert _alerts(flat, method) == []


def test_c1_spike_alerts_on_the_right_day() -> None:
    points = ears([*BASE, 8, 4], "C1")
    assert [p.statistic for p in points[:7]] == [None] * 7
    assert points[7].statistic == pytest.approx(4.0)  # (8 - 4) / 1
    assert points[7].baseline_mean == pytest.approx(4.0)
    assert [p.index for p in points if p.alert] == [7]
    # Exactly at the threshold is not above it.
    assert _alerts([*BASE, 7], "C1") == []


def test_c2_uses_a_two_day_lag() -> None:
    counts = [*BASE, 9, 9, 9]
    c1 = ears(counts, "C1")
    c2 = ears(counts, "C2")
    assert [p.statistic for p in c2[:9]] == [None] * 9  # needs 7 days plus the 2-day gap
    # C2 on day 9 still compares with days 0..6 (mean 4, sd 1): (9 - 4) / 1 = 5.
    assert c2[9].statistic == pytest.approx(5.0) and c2[9].alert
    # C1 has swallowed days 7 and 8 into its baseline (3,5,4... plus 9,9) and stays quiet.
    mean = (3 + 5 + 3 + 5 + 4 + 9 + 9) / 7
    sd = math.sqrt(sum((v - mean) ** 2 for v in [3, 5, 3, 5, 4, 9, 9]) / 6)
    assert c1[9].statistic == pytest.approx((9 - mean) / sd)
    assert not c1[9].alert


def test_c3_sums_the_last_three_c2_excesses() -> None:
    # With sd floored at 2 on a flat baseline of 4: C2 = 1.5, 2.0, 2.5 on days 9, 10, 11, none
    # above 3; C3 on day 11 = 0.5 + 1.0 + 1.5 = 3.0 > 2.
    counts = [4.0] * 9 + [7.0, 8.0, 9.0]
    c2 = ears(counts, "C2", EarsConfig(min_sd=2.0))
    assert [p.statistic for p in c2[9:]] == pytest.approx([1.5, 2.0, 2.5])
    assert not any(p.alert for p in c2)
    c3 = ears(counts, "C3", EarsConfig(min_sd=2.0))
    assert c3[10].statistic is None  # C2 missing on day 8
    assert c3[11].statistic == pytest.approx(3.0)
    assert [p.index for p in c3 if p.alert] == [11]
    assert _alerts(counts, "C3", min_sd=2.0, c3_threshold=3.0) == []  # configurable


def test_min_count_suppresses_tiny_spikes() -> None:
    assert _alerts([0.0] * 7 + [2.0], "C1") == []
    assert _alerts([0.0] * 7 + [4.0], "C1") == [7]
    assert _alerts([0.0] * 7 + [4.0], "C1", min_count=5) == []


def _posts(per_day: list[int], text: str, start: date = date(2020, 3, 1)) -> list[Post]:
    posts = []
    for d, n in enumerate(per_day):
        for k in range(n):
            posts.append(Post(f"{text[:2]}-{d}-{k}", datetime(2020, 3, 1 + d, 9, k), text))
    assert posts[0].time == datetime.combine(start, datetime.min.time()).replace(hour=9)
    return posts


def test_volume_alerts_name_the_posts_behind_the_spike() -> None:
    masks = _posts([*BASE, 12], "药店口罩又断货了")
    other = _posts([4] * 8, "今天天气不错")
    alerts = volume_alerts(
        masks + other, subjects={"口罩": ["口罩"], "核酸": ["核酸"]}, methods=("C1",)
    )
    assert [(a.subject, a.day, a.detail["method"]) for a in alerts] == [
        ("口罩", date(2020, 3, 8), "C1")
    ]
    assert alerts[0].post_ids == tuple(f"药店-7-{k}" for k in range(12))
    assert volume_alerts(other, methods=("C1", "C2", "C3")) == []


def test_volume_subject_terms_match_traditional_input() -> None:
    posts = _posts([*BASE, 12], "藥店口罩又斷貨了")
    alerts = volume_alerts(posts, subjects={"断货": ["断货"]}, methods=("C1",), only_last_day=True)
    assert len(alerts) == 1 and alerts[0].day == date(2020, 3, 8)


def test_rumour_watchlist_matches_normalised_and_traditional_text() -> None:
    watch = RumourWatchlist(["喝板蓝根能预防", "自来水*病毒"])
    posts = [
        Post(1, date(2020, 3, 1), "聽說喝 板藍根 能預防新冠！！"),
        Post(2, date(2020, 3, 2), "板蓝根涨价了"),
        Post(3, date(2020, 3, 3), "网传自来水里有病毒，是谣言"),
        Post(4, date(2020, 3, 3), "ＲＴ：喝板蓝根，能预防？"),
    ]
    assert watch.match(posts[0].text) == ["喝板蓝根能预防"]
    alerts = watch.scan(posts)
    assert [(a.subject, a.post_ids) for a in alerts] == [
        ("喝板蓝根能预防", (1, 4)),
        ("自来水*病毒", (3,)),
    ]
    assert alerts[0].detail["first_seen"] == "2020-03-01"
    with pytest.raises(ValueError, match="empty"):
        RumourWatchlist(["！！"])


def test_negative_share_z_by_hand() -> None:
    # today 30/50, baseline 70/350: pooled 0.25, var 0.25*0.75*(1/50 + 1/350).
    expected = (0.6 - 0.2) / math.sqrt(0.25 * 0.75 * (1 / 50 + 1 / 350))
    assert negative_share_z(30, 50, 70, 350) == pytest.approx(expected)
    assert negative_share_z(10, 50, 70, 350) == pytest.approx(0.0)
    assert negative_share_z(0, 10, 0, 10) == 0.0


def test_negative_share_shift_alerts_on_the_day_with_its_negative_posts() -> None:
    posts: list[Post] = []
    labels: list[str] = []
    start = datetime(2020, 3, 1, 8)
    for d in range(9):
        negative = 30 if d == 8 else 10  # share 0.2 each day, 0.6 on day 8
        for k in range(50):
            posts.append(Post((d, k), start + timedelta(days=d, minutes=k), "x"))
            labels.append("negative" if k < negative else "neutral")
    alerts = negative_share_alerts(posts, labels)
    assert [a.day for a in alerts] == [date(2020, 3, 9)]
    assert alerts[0].post_ids == tuple((8, k) for k in range(30))
    assert alerts[0].detail["share_today"] == pytest.approx(0.6)
    assert negative_share_alerts(posts[:400], labels[:400]) == []
