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


def track_plot(
    points: list[tuple[float, float, str]], *, width: int = 640, height: int = 420
) -> Markup:
    """A trajectory as grid centres joined in time order (lon, lat, label), drawn on a plain
    equirectangular frame: no map tiles, which an intranet could not fetch anyway."""
    if not points:
        return Markup('<p class="muted">无轨迹</p>')
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    pad = 0.01
    x0, x1 = min(lons) - pad, max(lons) + pad
    y0, y1 = min(lats) - pad, max(lats) + pad
    span = max(x1 - x0, y1 - y0)

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return (
            20 + (lon - x0) / span * (width - 40),
            height - 20 - (lat - y0) / span * (height - 40),
        )

    coords = [xy(lon, lat) for lon, lat, _ in points]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
    parts = [
        f'<svg class="chart track" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="轨迹网格图">',
        f'<rect x="0" y="0" width="{width}" height="{height}" class="frame"/>',
        f'<path d="{path}" class="route"/>',
    ]
    seen: set[tuple[float, float]] = set()
    for i, ((x, y), (_, _, name)) in enumerate(zip(coords, points, strict=True)):
        cls = "start" if i == 0 else ("end" if i == len(points) - 1 else "stop")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" class="{cls}">'
            f"<title>{i + 1}. {escape(name)}</title></circle>"
        )
        if (round(x), round(y)) not in seen:
            seen.add((round(x), round(y)))
            parts.append(f'<text x="{x + 7:.1f}" y="{y - 6:.1f}" class="lbl">{i + 1}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - labels are escaped above
