"""Charts as inline SVG, drawn on the server: no chart library, no script, nothing fetched.

:func:`line_chart` draws one or more series over a shared x axis (rounds, or seconds ago) with
their own y range; :func:`bar_chart` draws one bar per x (participants per round). Shapes carry
CSS classes (``series-0`` ...) that ``dashboard.css`` colours and presentation attributes only, so
the Content-Security-Policy needs no ``'unsafe-inline'``. Every point also carries its value in a
``<title>`` (a tooltip, and what a screen reader or a test reads).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 560, 170, 52, 12, 12, 28


@dataclass(frozen=True)
class Series:
    """A named line: ``points`` are ``(x, y)``, x ascending."""

    name: str
    points: Sequence[tuple[float, float]]


def line_chart(series: Sequence[Series], label: str, x_label: Callable[[float], str] = lambda x: f"{x:g}",
               y_label: Callable[[float], str] = lambda y: f"{y:.3g}") -> Markup:
    """An SVG line chart of ``series`` (empty series are skipped); ``label`` names it for screen readers."""
    drawn = [s for s in series if s.points]
    if not drawn:
        return Markup('<p class="empty">no data yet</p>')
    xs = [x for s in drawn for x, _ in s.points]
    ys = [y for s in drawn for _, y in s.points]
    sx, sy = _scale(min(xs), max(xs), PAD_LEFT, WIDTH - PAD_RIGHT), _scale(min(ys), max(ys), HEIGHT - PAD_BOTTOM,
                                                                           PAD_TOP, pad=0.08)
    parts = [_frame(label), _axes(min(xs), max(xs), min(ys), max(ys), sx, sy, x_label, y_label)]
    for i, s in enumerate(drawn):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points)
        parts.append(f'<polyline class="line series-{i}" fill="none" points="{path}"/>')
        for x, y in s.points[-60:]:
            parts.append(f'<circle class="dot series-{i}" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5">'
                         f'<title>{escape(s.name)} {escape(x_label(x))}: {escape(y_label(y))}</title></circle>')
    parts.append(_legend([s.name for s in drawn]))
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(points: Sequence[tuple[float, float]], label: str, name: str,
              x_label: Callable[[float], str] = lambda x: f"{x:g}") -> Markup:
    """An SVG bar chart, one bar per ``(x, y)``, from zero."""
    if not points:
        return Markup('<p class="empty">no data yet</p>')
    xs, top = [x for x, _ in points], max(max(y for _, y in points), 1.0)
    sx, sy = _scale(min(xs) - 0.5, max(xs) + 0.5, PAD_LEFT, WIDTH - PAD_RIGHT), _scale(0, top, HEIGHT - PAD_BOTTOM,
                                                                                        PAD_TOP)
    width = max(1.0, (WIDTH - PAD_LEFT - PAD_RIGHT) / (len(points) + 1) * 0.7)
    parts = [_frame(label), _axes(min(xs), max(xs), 0, top, sx, sy, x_label, lambda y: f"{y:g}")]
    for x, y in points:
        parts.append(f'<rect class="bar series-0" x="{sx(x) - width / 2:.1f}" y="{sy(y):.1f}" width="{width:.1f}" '
                     f'height="{max(sy(0) - sy(y), 0):.1f}"><title>{escape(name)} {escape(x_label(x))}: '
                     f'{y:g}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _frame(label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
            f'xmlns="http://www.w3.org/2000/svg">')


def _axes(x0: float, x1: float, y0: float, y1: float, sx: Callable[[float], float], sy: Callable[[float], float],
          x_label: Callable[[float], str], y_label: Callable[[float], str]) -> str:
    base, left = HEIGHT - PAD_BOTTOM, PAD_LEFT
    out = [f'<line class="axis" x1="{left}" y1="{base}" x2="{WIDTH - PAD_RIGHT}" y2="{base}"/>',
           f'<line class="axis" x1="{left}" y1="{PAD_TOP}" x2="{left}" y2="{base}"/>']
    for value in _ticks(y0, y1):
        out.append(f'<text class="tick" x="{left - 6}" y="{sy(value) + 4:.1f}" text-anchor="end">'
                   f'{escape(y_label(value))}</text>')
    for value in _ticks(x0, x1):
        out.append(f'<text class="tick" x="{sx(value):.1f}" y="{base + 16}" text-anchor="middle">'
                   f'{escape(x_label(value))}</text>')
    return "".join(out)


def _legend(names: Sequence[str]) -> str:
    if len(names) < 2:
        return ""
    return "".join(f'<text class="legend series-{i}" x="{PAD_LEFT + 8}" y="{PAD_TOP + 10 + 13 * i}">'
                   f'{escape(name)}</text>' for i, name in enumerate(names))


def _ticks(low: float, high: float) -> list[float]:
    if high <= low:
        return [low]
    return [low, (low + high) / 2, high]


def _scale(low: float, high: float, out_low: float, out_high: float, pad: float = 0.0) -> Callable[[float], float]:
    if high <= low:
        mid = (out_low + out_high) / 2
        return lambda _v: mid
    span = high - low
    low, high = low - span * pad, high + span * pad
    return lambda v: out_low + (v - low) / (high - low) * (out_high - out_low)
