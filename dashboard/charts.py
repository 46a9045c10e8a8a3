"""Server-rendered SVG charts: no JavaScript library to vendor and keep up to date, nothing loaded
from a CDN, and the same picture in a screenshot, a test and the page. The page swaps the SVG in
whenever the snapshot is re-read."""

import math
import zoneinfo
from datetime import datetime

from django.utils.html import escape

WIDTH = 760
HEIGHT = 230
PAD_LEFT = 44
PAD_RIGHT = 12
PAD_TOP = 14
PAD_BOTTOM = 30
X_LABELS = 7
Y_TICKS = 4

EMPTY_TEXT = "No interactions yet: the chart starts with the live window."


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is >= value (axis maxima people read)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover (the loop always returns)


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def interactions_chart_svg(*, points: list[dict], tz: str, bucket_minutes: int | None) -> str:
    """An area chart of interactions per minute (all) with the qualifying ones as a line."""
    total = sum(p["count"] for p in points)
    head = (
        f'<svg class="mm-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" preserveAspectRatio="none" '
        f'data-total="{total}" data-points="{len(points)}" '
        f'aria-label="Interactions per minute over the event, {total} in all">'
    )
    if not points or not total:
        return (
            f'{head}<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="mm-chart-empty">'
            f"{escape(EMPTY_TEXT)}</text></svg>"
        )
    zone = zoneinfo.ZoneInfo(tz)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    rates = [p["per_minute"] for p in points]
    q_rates = [p["qualifying_per_minute"] for p in points]
    y_max = nice_ceiling(max(rates))
    n = len(points)

    def x(i: int) -> float:
        return PAD_LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - v / y_max)

    parts = [head]
    for k in range(Y_TICKS + 1):
        value = y_max * k / Y_TICKS
        yy = y(value)
        parts.append(f'<line class="mm-grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        parts.append(
            f'<text class="mm-axis" x="{PAD_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{_fmt(value)}</text>'
        )
    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(rates))
    q_line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(q_rates))
    base = y(0)
    parts.append(f'<polygon class="mm-area" points="{x(0):.1f},{base:.1f} {line} {x(n - 1):.1f},{base:.1f}"/>')
    parts.append(f'<polyline class="mm-line" points="{line}"/>')
    parts.append(f'<polyline class="mm-line-q" points="{q_line}"/>')
    for k in range(X_LABELS):
        i = round((n - 1) * k / (X_LABELS - 1)) if n > 1 else 0
        at = datetime.fromisoformat(points[i]["at"]).astimezone(zone)
        anchor = "start" if k == 0 else "end" if k == X_LABELS - 1 else "middle"
        parts.append(f'<text class="mm-axis" x="{x(i):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">{at:%H:%M}</text>')
        if n == 1:
            break
    last = points[-1]
    parts.append(
        f'<circle class="mm-dot" cx="{x(n - 1):.1f}" cy="{y(last["per_minute"]):.1f}" r="3.5">'
        f"<title>{_fmt(last['per_minute'])} per minute</title></circle>"
    )
    parts.append("</svg>")
    return "".join(parts)
