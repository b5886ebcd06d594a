"""A small bar chart as server-rendered SVG (no JavaScript chart build)."""

from __future__ import annotations

import datetime as dt
from html import escape


def bar_chart(
    points: list[tuple[dt.date, int]], label: str, width: int = 640, height: int = 160
) -> str:
    """Bars for (day, value) points, with an accessible title and one <title> per bar."""
    if not points:
        return f'<p class="muted">No {escape(label)} in this period.</p>'
    top = max(value for _, value in points) or 1
    gap, left, bottom = 2, 40, 20
    bar = max(2, (width - left) // len(points) - gap)
    bars = []
    for index, (day, value) in enumerate(points):
        bar_height = round((height - bottom - 10) * value / top)
        x = left + index * (bar + gap)
        y = height - bottom - bar_height
        bars.append(
            f'<rect x="{x}" y="{y}" width="{bar}" height="{bar_height}" class="bar">'
            f"<title>{day.isoformat()}: {value:,} {escape(label)}</title></rect>"
        )
    first, last = points[0][0].isoformat(), points[-1][0].isoformat()
    return (
        f'<svg viewBox="0 0 {width} {height}" role="img" class="chart" '
        f'aria-label="{escape(label)} per day, {first} to {last}, peak {top:,}">'
        f'<text x="0" y="12" class="axis">{top:,}</text>'
        f'<text x="0" y="{height - bottom}" class="axis">0</text>'
        f'<text x="{left}" y="{height - 4}" class="axis">{first}</text>'
        f'<text x="{width}" y="{height - 4}" class="axis" text-anchor="end">{last}</text>'
        + "".join(bars)
        + "</svg>"
    )
