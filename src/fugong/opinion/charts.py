"""Server-side SVG charts of the opinion pages and the weekly report: no script, no external
asset, so they render offline, in WeasyPrint's PDF and on a phone alike. Every text drawn is
escaped; class names are styled by the page (``opinion.css``) and the report's own CSS."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

SENTIMENT_COLOURS = {"negative": "#c2504b", "neutral": "#b5b5b5", "positive": "#3aa76d"}
SENTIMENT_NAMES = {"negative": "负面", "neutral": "中性", "positive": "正面"}


def _empty() -> Markup:
    return Markup('<p class="muted">暂无数据</p>')


def volume_line(
    points: list[tuple[str, int]],
    *,
    width: int = 640,
    height: int = 200,
    marks: set[str] | None = None,
) -> Markup:
    """Daily volume as a line with dots; ``marks`` (day labels) are drawn as alert dots."""
    if not points:
        return _empty()
    marks = marks or set()
    left, right, top, bottom = 40, 10, 12, 28
    top_v = max(v for _, v in points) or 1
    n = len(points)
    step = (width - left - right) / max(n - 1, 1)

    def xy(i: int, v: int) -> tuple[float, float]:
        return left + i * step, top + (height - top - bottom) * (1 - v / top_v)

    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
    parts = [
        f'<svg class="chart volume" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="每日声量">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
        f'y2="{height - bottom}" stroke="#ccd3db"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="lbl">{top_v}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" class="lbl">0</text>',
        f'<path d="{path}" fill="none" stroke="#1a5fb4" stroke-width="2"/>',
    ]
    every = max(1, n // 8)
    for i, ((label, v), (x, y)) in enumerate(zip(points, coords, strict=True)):
        alert = label in marks
        fill = "#c2504b" if alert else "#1a5fb4"
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{5 if alert else 3}" fill="{fill}">'
            f"<title>{escape(label)}：{v}</title></circle>"
        )
        if i % every == 0 or i == n - 1:
            parts.append(
                f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" class="lbl">'
                f"{escape(label[5:] if len(label) == 10 else label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def sentiment_bars(
    rows: list[tuple[str, dict[str, int]]], *, width: int = 640, bar_h: int = 16
) -> Markup:
    """One 100 % stacked bar per day: negative, neutral, positive shares, counts in titles."""
    if not rows:
        return _empty()
    label_w, gap = 60, 5
    plot_w = width - label_w - 10
    height = len(rows) * (bar_h + gap) + 24
    parts = [
        f'<svg class="chart sentiment" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="每日情感构成">'
    ]
    for i, (name, counts) in enumerate(rows):
        y = i * (bar_h + gap)
        total = sum(counts.values())
        short = name[5:] if len(name) == 10 else name
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 3}" text-anchor="end" class="lbl">'
            f"{escape(short)}</text>"
        )
        x = float(label_w)
        for code, colour in SENTIMENT_COLOURS.items():
            n = counts.get(code, 0)
            w = plot_w * n / total if total else 0
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                    f'fill="{colour}"><title>{escape(name)} {SENTIMENT_NAMES[code]}：{n}'
                    f"</title></rect>"
                )
            x += w
    ly = len(rows) * (bar_h + gap) + 14
    lx = float(label_w)
    for code, colour in SENTIMENT_COLOURS.items():
        parts.append(f'<rect x="{lx:.0f}" y="{ly - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16:.0f}" y="{ly}" class="lbl">{SENTIMENT_NAMES[code]}</text>')
        lx += 70
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
