"""Charts as inline SVG, drawn on the server: no chart library, no script, no external asset,
so they render on an intranet and print as they look."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

PALETTE = ("#b5b5b5", "#f2b84b", "#5aa1e3", "#3aa76d", "#c2504b", "#8a6bbf")


def stacked_bars(
    rows: list[tuple[str, dict[str, int]]],
    series: dict[str, str],
    *,
    width: int = 640,
    bar_h: int = 18,
    label_w: int = 150,
) -> Markup:
    """Horizontal stacked bars: one row per label, one segment per series code."""
    if not rows:
        return Markup('<p class="muted">暂无数据</p>')
    total_max = max(sum(v.values()) for _, v in rows) or 1
    plot_w = width - label_w - 50
    gap = 6
    height = len(rows) * (bar_h + gap) + 30
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
    ]
    for i, (name, values) in enumerate(rows):
        y = i * (bar_h + gap)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 4}" text-anchor="end" '
            f'class="lbl">{escape(name)}</text>'
        )
        x = float(label_w)
        total = 0
        for j, (code, series_label) in enumerate(series.items()):
            n = values.get(code, 0)
            total += n
            w = plot_w * n / total_max
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                    f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(name)} · '
                    f"{escape(series_label)}：{n}</title></rect>"
                )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar_h - 4}" class="num">{total}</text>')
    ly = len(rows) * (bar_h + gap) + 14
    lx = float(label_w)
    for j, series_label in enumerate(series.values()):
        parts.append(
            f'<rect x="{lx:.0f}" y="{ly - 10}" width="12" height="12" '
            f'fill="{PALETTE[j % len(PALETTE)]}"/>'
        )
        parts.append(f'<text x="{lx + 16:.0f}" y="{ly}" class="lbl">{escape(series_label)}</text>')
        lx += 18 + 14 * len(series_label) + 12
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
