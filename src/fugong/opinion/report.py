"""The weekly public-opinion analysis report (每周舆情分析报告): gather a week's figures from the
database, render them as one self-contained HTML page (inline SVG charts, no external asset) and
as a PDF with WeasyPrint. The CJK font is Noto Sans CJK from Debian's ``fonts-noto-cjk``,
referenced by family name; no font file ships with the project.

Sections: 本周概要 (generated summary), 声量与情感趋势, 热点话题, 关键词变化, 预警及处置.
"""

# ruff: noqa: E501 - the report's HTML/CSS template below is kept as written, one rule a line

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from jinja2 import Environment, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fugong.opinion.charts import sentiment_bars, volume_line
from fugong.opinion.models import ALERT_KINDS, ALERT_STATUSES, OpinionAlert, OpinionPost
from fugong.opinion.services import counted_posts, day_start

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
HEADINGS = (
    "每周舆情分析报告",
    "本周概要",
    "声量与情感趋势",
    "热点话题",
    "关键词变化",
    "预警及处置",
)


def week_bounds(week: str) -> tuple[date, date]:
    """Monday and Sunday of ISO week ``YYYY-Www``; a malformed or impossible week is a
    ValueError naming the expected form."""
    m = _WEEK.match(week.strip())
    if not m:
        raise ValueError(f"周次 {week!r} 格式应为 YYYY-Www，如 2020-W10")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise ValueError(f"{week} 不是存在的 ISO 周") from None
    return monday, monday + timedelta(days=6)


def week_of(day: date) -> str:
    y, w, _ = day.isocalendar()
    return f"{y}-W{w:02d}"


@dataclass
class TopicView:
    label: str
    size: int
    share: float
    examples: list[str]


@dataclass
class KeywordChange:
    word: str
    rank: int
    previous_rank: int | None


@dataclass
class WeekData:
    week: str
    start: date
    end: date
    received: int = 0
    counted: int = 0
    previous_counted: int = 0
    negative_share: float = 0.0
    previous_negative_share: float = 0.0
    daily: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    topics: list[TopicView] = field(default_factory=list)
    keywords: list[KeywordChange] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""


def _share(labels: list[str]) -> float:
    return sum(1 for lab in labels if lab == "negative") / len(labels) if labels else 0.0


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def gather(session: Session, week: str, *, n_topics: int = 5, n_keywords: int = 15) -> WeekData:
    """The figures of one week and the week before it (counted posts: one per duplicate
    group)."""
    from fugong.opinion.text import cluster_topics, tfidf_keywords

    start, end = week_bounds(week)
    data = WeekData(week=week.strip(), start=start, end=end)
    posts = counted_posts(session, start, end)
    prev = counted_posts(session, start - timedelta(days=7), start - timedelta(days=1))
    data.received = (
        session.scalar(
            select(func.count(OpinionPost.id)).where(
                OpinionPost.posted_at >= day_start(start),
                OpinionPost.posted_at < day_start(end + timedelta(days=1)),
            )
        )
        or 0
    )
    data.counted, data.previous_counted = len(posts), len(prev)
    data.negative_share = _share([p.label for p in posts])
    data.previous_negative_share = _share([p.label for p in prev])
    for i in range(7):
        d = start + timedelta(days=i)
        c = Counter(p.label for p in posts if p.time.date() == d)
        data.daily.append((d.isoformat(), dict(c)))

    texts = [p.text for p in posts]
    if texts:
        sample = texts[-3000:]
        for t in cluster_topics(sample, k=None, seed=0)[:n_topics]:
            members = sorted(t.members, key=lambda m: -len(sample[m]))
            data.topics.append(
                TopicView(
                    label=t.label or "（无关键词）",
                    size=len(t.members),
                    share=len(t.members) / len(sample),
                    examples=[sample[m][:140] for m in members[:2]],
                )
            )
        background = texts + [p.text for p in prev]
        now_kw = [k.word for k in tfidf_keywords(texts, background=background, top_k=n_keywords)]
        prev_kw = (
            [
                k.word
                for k in tfidf_keywords(
                    [p.text for p in prev], background=background, top_k=n_keywords
                )
            ]
            if prev
            else []
        )
        data.keywords = [
            KeywordChange(w, i + 1, prev_kw.index(w) + 1 if w in prev_kw else None)
            for i, w in enumerate(now_kw)
        ]
        data.dropped = [w for w in prev_kw if w not in now_kw]

    alerts = session.scalars(
        select(OpinionAlert)
        .where(OpinionAlert.day >= start, OpinionAlert.day <= end)
        .order_by(OpinionAlert.day, OpinionAlert.kind, OpinionAlert.subject)
    ).all()
    data.alerts = [
        {
            "day": a.day.isoformat(),
            "kind": ALERT_KINDS[a.kind],
            "subject": a.subject,
            "method": a.method,
            "statistic": a.statistic,
            "status": ALERT_STATUSES[a.status],
            "handled": a.status == "acknowledged",
            "by": a.acknowledged_by.display_name if a.acknowledged_by else "",
            "annotation": a.annotation or "",
        }
        for a in alerts
    ]
    data.summary = summarise(data)
    return data


def summarise(d: WeekData) -> str:
    """A short plain-language summary of the week, generated from the figures (no model)."""
    parts = [
        f"{d.week}（{d.start:%m月%d日}—{d.end:%m月%d日}）共采集帖文 {d.received} 条，"
        f"去重后 {d.counted} 条"
    ]
    if d.previous_counted:
        change = (d.counted - d.previous_counted) / d.previous_counted
        parts[-1] += f"，较上周{'增加' if change >= 0 else '减少'} {abs(change) * 100:.0f}%"
    parts[-1] += "。"
    trend = d.negative_share - d.previous_negative_share
    neg = f"负面占比 {_pct(d.negative_share)}"
    if d.previous_counted:
        word = "上升" if trend > 0.005 else "下降" if trend < -0.005 else "基本持平"
        neg += f"（上周 {_pct(d.previous_negative_share)}，{word}）"
    parts.append(neg + "。")
    if d.topics:
        parts.append("热点话题：" + "；".join(t.label for t in d.topics[:3]) + "。")
    new_words = [k.word for k in d.keywords if k.previous_rank is None][:5]
    if new_words:
        parts.append("新出现的关键词：" + "、".join(new_words) + "。")
    if d.alerts:
        handled = sum(1 for a in d.alerts if a["handled"])
        parts.append(f"本周触发预警 {len(d.alerts)} 条，已处置 {handled} 条。")
    else:
        parts.append("本周未触发预警。")
    return "".join(parts)


_TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>每周舆情分析报告 {{ d.week }}</title>
<style>
@page { size: A4; margin: 16mm 14mm; @bottom-center { content: counter(page) " / " counter(pages); font-size: 9pt; color: #667; } }
body { font-family: "Noto Sans CJK SC", "Noto Sans CJK", "Noto Sans SC", sans-serif; font-size: 10.5pt; color: #1f2933; line-height: 1.5; }
h1 { font-size: 19pt; margin: 0 0 2mm; } h2 { font-size: 13pt; border-bottom: 1px solid #ccd3db; padding-bottom: 1mm; margin: 6mm 0 3mm; }
.meta { color: #667; font-size: 9pt; } .summary { background: #f3f6f9; padding: 3mm 4mm; border-radius: 2mm; }
table { border-collapse: collapse; width: 100%; font-size: 9.5pt; } th, td { border-bottom: 1px solid #e2e7ec; padding: 1.2mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #eef2f6; } .up { color: #c2504b; } .down { color: #3aa76d; } .muted { color: #667; }
svg { width: 100%; height: auto; font-family: "Noto Sans CJK SC", sans-serif; font-size: 11px; } svg .lbl { fill: #33404d; }
.ex { color: #445; font-size: 9pt; margin: 0.5mm 0 0 3mm; }
</style></head><body>
<h1>每周舆情分析报告</h1>
<p class="meta">{{ d.week }} · {{ d.start.isoformat() }} 至 {{ d.end.isoformat() }}（北京时间） · 疾控中心舆情监测</p>
<h2>本周概要</h2>
<p class="summary">{{ d.summary }}</p>
<table><tr><th>采集帖文</th><th>去重后</th><th>上周（去重后）</th><th>负面占比</th><th>上周负面占比</th></tr>
<tr><td>{{ d.received }}</td><td>{{ d.counted }}</td><td>{{ d.previous_counted }}</td><td>{{ pct(d.negative_share) }}</td><td>{{ pct(d.previous_negative_share) }}</td></tr></table>
<h2>声量与情感趋势</h2>
{{ volume }}
{{ sentiment }}
<h2>热点话题</h2>
{% if d.topics %}<table><tr><th>话题</th><th>帖文</th><th>占比</th></tr>
{% for t in d.topics %}<tr><td><b>{{ t.label }}</b>{% for e in t.examples %}<div class="ex">“{{ e }}”</div>{% endfor %}</td><td>{{ t.size }}</td><td>{{ pct(t.share) }}</td></tr>{% endfor %}
</table>{% else %}<p class="muted">本周无帖文。</p>{% endif %}
<h2>关键词变化</h2>
{% if d.keywords %}<table><tr><th>排名</th><th>关键词</th><th>上周排名</th><th>变化</th></tr>
{% for k in d.keywords %}<tr><td>{{ k.rank }}</td><td>{{ k.word }}</td><td>{{ k.previous_rank or '—' }}</td><td>{% if k.previous_rank is none %}<span class="up">新上榜</span>{% elif k.previous_rank > k.rank %}<span class="up">↑{{ k.previous_rank - k.rank }}</span>{% elif k.previous_rank < k.rank %}<span class="down">↓{{ k.rank - k.previous_rank }}</span>{% else %}持平{% endif %}</td></tr>{% endfor %}
</table>{% if d.dropped %}<p class="muted">跌出前列：{{ d.dropped | join('、') }}</p>{% endif %}
{% else %}<p class="muted">本周无关键词。</p>{% endif %}
<h2>预警及处置</h2>
{% if d.alerts %}<table><tr><th>日期</th><th>类型</th><th>对象</th><th>统计量</th><th>状态</th><th>处置说明</th></tr>
{% for a in d.alerts %}<tr><td>{{ a.day }}</td><td>{{ a.kind }}{% if a.method %} {{ a.method }}{% endif %}</td><td>{{ a.subject }}</td><td>{{ '%.2f' | format(a.statistic) }}</td><td>{{ a.status }}{% if a.by %}（{{ a.by }}）{% endif %}</td><td>{{ a.annotation }}</td></tr>{% endfor %}
</table>{% else %}<p class="muted">本周无预警。</p>{% endif %}
</body></html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_html(data: WeekData) -> str:
    """The report as one self-contained HTML document."""
    alert_days = {a["day"] for a in data.alerts}
    volume = volume_line([(day, sum(c.values())) for day, c in data.daily], marks=alert_days)
    return _env.from_string(_TEMPLATE).render(
        d=data, pct=_pct, volume=volume, sentiment=sentiment_bars(data.daily)
    )


def render_pdf(html: str) -> bytes:
    """HTML → PDF with WeasyPrint (imported here: it is heavy and only reports need it)."""
    import logging

    from weasyprint import HTML

    # WeasyPrint logs every unsupported CSS property at WARNING; none matter for the report.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf
