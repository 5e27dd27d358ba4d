"""Server-side SVG plots: forest, funnel and distribution (box) plots, hand-written.

Pure functions from numbers to an SVG string: no JavaScript, no plotting library, presentation
attributes only (a strict CSP forbids ``style=""``), so the same markup shows in a page and in
a WeasyPrint PDF. Every plot is ``role="img"`` with a ``<title>`` and a ``<desc>`` that
``aria-labelledby`` names; the page puts a table (the full text alternative) next to it.
Each candidate is one ``<g class="mark">`` carrying its own ``<title>`` (shown on hover).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

INK = "#1d1d1f"
GRID = "#c9c9cf"
MUTED = "#5a5a66"
ACCENT = "#1f4fa3"  # a laureate or the highlighted authority
TOP1 = "#8a3b00"  # in the top-1 set
TOP3 = "#2f6b3a"  # in the top-3 set
LIMIT_95 = "#7a7a86"
LIMIT_998 = "#3d3d47"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


@dataclass(frozen=True)
class ForestRow:
    """One line of a forest plot: a point estimate and its interval."""

    key: str
    label: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    # "laureate", "highlight", "top1", "top3" or "" — decides the mark's colour and shape.
    emphasis: str = ""
    # The computed bound lay beyond the 0–100 scale and was cut at its edge: the line ends in
    # an arrowhead there instead of looking like the computed width (METHODOLOGY.md).
    cut_low: bool = False
    cut_high: bool = False


@dataclass(frozen=True)
class FunnelPoint:
    key: str
    label: str
    estimate: float
    se: float
    emphasis: str = ""


@dataclass(frozen=True)
class FunnelCurve:
    """Control limits of one level along the precision axis (``se`` ascending)."""

    level: float
    se: Sequence[float]
    lower: Sequence[float]
    upper: Sequence[float]


@dataclass(frozen=True)
class BoxRow:
    """Five-number summary of a group (a category) for a distribution plot."""

    key: str
    label: str
    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float
    count: int
    marker: float | None = None  # e.g. the authority's own score on its scorecard


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _attr(value: str) -> str:
    return quoteattr(value)


def _colour(emphasis: str) -> str:
    return {"laureate": ACCENT, "highlight": ACCENT, "top1": TOP1, "top3": TOP3}.get(emphasis, INK)


def _open_svg(plot_id: str, width: int, height: int, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" role="img" class="plot" '
        f"id={_attr(plot_id)} aria-labelledby={_attr(f'{plot_id}-title {plot_id}-desc')} "
        f'font-family={_attr(FONT)} font-size="13">',
        f"<title id={_attr(plot_id + '-title')}>{escape(title)}</title>",
        f"<desc id={_attr(plot_id + '-desc')}>{escape(desc)}</desc>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]


def _nice_range(low: float, high: float) -> tuple[float, float]:
    """Widen [low, high] to multiples of 10 within 0–100 (scores are on a 0–100 scale)."""
    low, high = min(low, high), max(low, high)
    lo = max(0.0, math.floor(low / 10) * 10)
    hi = min(100.0, math.ceil(high / 10) * 10)
    if hi - lo < 10:
        lo, hi = max(0.0, lo - 10), min(100.0, hi + 10)
    if hi <= lo:
        lo, hi = 0.0, 100.0
    return lo, hi


def _x_axis(
    parts: list[str], *, left: int, right: int, top: int, bottom: int, lo: float, hi: float
) -> None:
    step = 10.0 if hi - lo > 30 else 5.0
    value = lo
    while value <= hi + 1e-9:
        x = left + (value - lo) / (hi - lo) * (right - left)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{GRID}" '
            'stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" fill="{MUTED}">'
            f"{value:g}</text>"
        )
        value += step


def _cut_arrow(x: float, y: float, outward: int, colour: str) -> str:
    """An open arrowhead at a cut bound, pointing off the scale (``outward`` = -1 or 1)."""
    tip = x + 6 * outward
    return (
        f'<path class="cut" d="M{x:.1f} {y - 5:.1f} L{tip:.1f} {y:.1f} L{x:.1f} {y + 5:.1f}" '
        f'fill="none" stroke="{colour}" stroke-width="2"/>'
    )


def forest_plot(
    rows: Sequence[ForestRow],
    *,
    plot_id: str,
    title: str,
    desc: str,
    reference: float | None = None,
    reference_label: str = "",
    axis_label: str = "",
    cut_note: str = "",
) -> str:
    """Estimates with their intervals, one line per row in the given order (sort before).

    ``reference`` draws a dashed vertical line (the category median, or the overall score).
    A bound cut at the scale's edge ends in an open arrowhead, and its mark's ``<title>`` adds
    ``cut_note`` (e.g. "interval cut at the scale's edge").
    """
    label_width = 190
    width, row_height, top = 720, 22, 34
    left, right = label_width + 10, width - 20
    height = top + row_height * max(len(rows), 1) + 48
    bottom = top + row_height * max(len(rows), 1)
    values = [r.estimate for r in rows] + [
        v for r in rows for v in (r.ci_low, r.ci_high) if v is not None
    ]
    if reference is not None:
        values.append(reference)
    lo, hi = _nice_range(min(values, default=0.0), max(values, default=100.0))

    def x_of(value: float) -> float:
        clamped = min(max(value, lo), hi)
        return left + (clamped - lo) / (hi - lo) * (right - left)

    parts = _open_svg(plot_id, width, height, title, desc)
    _x_axis(parts, left=left, right=right, top=top - 6, bottom=bottom, lo=lo, hi=hi)
    if axis_label:
        parts.append(
            f'<text x="{(left + right) / 2:.1f}" y="{height - 6}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(axis_label)}</text>'
        )
    if reference is not None:
        x = x_of(reference)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 14}" x2="{x:.1f}" y2="{bottom}" stroke="{ACCENT}" '
            'stroke-width="1.5" stroke-dasharray="5 4" class="reference"/>'
        )
        if reference_label:
            parts.append(
                f'<text x="{x:.1f}" y="{top - 18}" text-anchor="middle" fill="{ACCENT}">'
                f"{escape(reference_label)} {_fmt(reference)}</text>"
            )
    for index, row in enumerate(rows):
        y = top + row_height * index + row_height / 2
        colour = _colour(row.emphasis)
        label = row.label if len(row.label) <= 26 else row.label[:25] + "…"
        interval = (
            f" [{_fmt(row.ci_low)} ; {_fmt(row.ci_high)}]"
            if row.ci_low is not None and row.ci_high is not None
            else ""
        )
        cut = row.cut_low or row.cut_high
        note = f" ({cut_note})" if cut and cut_note else ""
        parts.append(f'<g class="mark" data-key={_attr(row.key)}>')
        parts.append(
            f"<title>{escape(row.label)}: {_fmt(row.estimate)}{escape(interval)}{escape(note)}"
            "</title>"
        )
        weight = ' font-weight="bold"' if row.emphasis in ("laureate", "highlight") else ""
        parts.append(
            f'<text x="{label_width}" y="{y + 4:.1f}" text-anchor="end" fill="{colour}"{weight}>'
            f"{escape(label)}</text>"
        )
        if row.ci_low is not None and row.ci_high is not None:
            parts.append(
                f'<line x1="{x_of(row.ci_low):.1f}" y1="{y:.1f}" x2="{x_of(row.ci_high):.1f}" '
                f'y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>'
            )
            for is_cut, bound, outward in (
                (row.cut_low, row.ci_low, -1),
                (row.cut_high, row.ci_high, 1),
            ):
                if is_cut:
                    parts.append(_cut_arrow(x_of(bound), y, outward, colour))
        x = x_of(row.estimate)
        if row.emphasis in ("laureate", "highlight"):
            parts.append(
                f'<path d="M{x:.1f} {y - 7:.1f} L{x + 7:.1f} {y:.1f} L{x:.1f} {y + 7:.1f} '
                f'L{x - 7:.1f} {y:.1f} Z" fill="{colour}"/>'
            )
        else:
            filled = colour if row.emphasis else "#ffffff"
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{filled}" stroke="{colour}" '
                'stroke-width="2"/>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def funnel_plot(
    points: Sequence[FunnelPoint],
    curves: Sequence[FunnelCurve],
    *,
    target: float,
    plot_id: str,
    title: str,
    desc: str,
    x_label: str = "",
    y_label: str = "",
) -> str:
    """Estimate (y) against precision 1/SE (x), with the control limits of each level."""
    width, height = 720, 420
    left, right, top, bottom = 56, width - 20, 20, height - 52
    usable = [p for p in points if p.se > 0]
    precisions = [1.0 / p.se for p in usable]
    curve_precisions = [1.0 / s for c in curves for s in c.se if s > 0]
    x_max = max(precisions + curve_precisions, default=1.0) * 1.05 or 1.0
    x_min = 0.0
    y_values = [p.estimate for p in usable] + [target]
    # The limits matter where the points are: do not let the wide mouth of the funnel at very
    # low precision flatten the plot.
    least_precise = min(precisions, default=0.0)
    for curve in curves:
        for side in (curve.lower, curve.upper):
            y_values += [
                v for v, s in zip(side, curve.se, strict=True) if s > 0 and 1 / s >= least_precise
            ]
    lo, hi = _nice_range(min(y_values), max(y_values))

    def x_of(precision: float) -> float:
        return left + (precision - x_min) / (x_max - x_min) * (right - left)

    def y_of(value: float) -> float:
        clamped = min(max(value, lo), hi)
        return bottom - (clamped - lo) / (hi - lo) * (bottom - top)

    parts = _open_svg(plot_id, width, height, title, desc)
    step = 10.0 if hi - lo > 30 else 5.0
    value = lo
    while value <= hi + 1e-9:
        y = y_of(value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}" '
            'stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{value:g}</text>"
        )
        value += step
    parts.append(
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{MUTED}" '
        'stroke-width="1"/>'
    )
    if x_label:
        parts.append(
            f'<text x="{(left + right) / 2:.1f}" y="{height - 10}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(x_label)}</text>'
        )
    if y_label:
        parts.append(
            f'<text x="14" y="{(top + bottom) / 2:.1f}" text-anchor="middle" fill="{MUTED}" '
            f'transform="rotate(-90 14 {(top + bottom) / 2:.1f})">{escape(y_label)}</text>'
        )
    y_target = y_of(target)
    parts.append(
        f'<line x1="{left}" y1="{y_target:.1f}" x2="{right}" y2="{y_target:.1f}" '
        f'stroke="{ACCENT}" stroke-width="1.5" class="target"/>'
    )
    for curve in curves:
        colour = LIMIT_998 if curve.level > 0.99 else LIMIT_95
        dash = "6 4" if curve.level > 0.99 else "2 3"
        for side in (curve.lower, curve.upper):
            coords = [
                f"{x_of(1.0 / s):.1f},{y_of(v):.1f}"
                for s, v in zip(curve.se, side, strict=True)
                if s > 0 and 1.0 / s <= x_max
            ]
            if len(coords) > 1:
                parts.append(
                    f'<polyline points="{" ".join(coords)}" fill="none" stroke="{colour}" '
                    f'stroke-width="1.5" stroke-dasharray="{dash}" class="limit" '
                    f'data-level="{curve.level:g}"/>'
                )
    for point in points:
        if point.se <= 0:
            continue
        colour = _colour(point.emphasis)
        x, y = x_of(1.0 / point.se), y_of(point.estimate)
        parts.append(f'<g class="mark" data-key={_attr(point.key)}>')
        parts.append(
            f"<title>{escape(point.label)}: {_fmt(point.estimate)} (SE {point.se:.2f})</title>"
        )
        filled = colour if point.emphasis else "#ffffff"
        radius = 6 if point.emphasis in ("laureate", "highlight") else 4.5
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{filled}" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def distribution_plot(
    rows: Sequence[BoxRow],
    *,
    plot_id: str,
    title: str,
    desc: str,
    axis_label: str = "",
) -> str:
    """One box (quartiles, median, whiskers to min and max) per group, on a 0–100 axis."""
    label_width = 280
    width, row_height, top = 760, 40, 16
    left, right = label_width + 10, width - 20
    bottom = top + row_height * max(len(rows), 1)
    height = bottom + 44
    values = [v for r in rows for v in (r.minimum, r.maximum)]
    lo, hi = _nice_range(min(values, default=0.0), max(values, default=100.0))

    def x_of(value: float) -> float:
        clamped = min(max(value, lo), hi)
        return left + (clamped - lo) / (hi - lo) * (right - left)

    parts = _open_svg(plot_id, width, height, title, desc)
    _x_axis(parts, left=left, right=right, top=top, bottom=bottom, lo=lo, hi=hi)
    if axis_label:
        parts.append(
            f'<text x="{(left + right) / 2:.1f}" y="{height - 6}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(axis_label)}</text>'
        )
    for index, row in enumerate(rows):
        y = top + row_height * index + row_height / 2
        label = row.label if len(row.label) <= 36 else row.label[:35] + "…"
        parts.append(f'<g class="mark" data-key={_attr(row.key)}>')
        parts.append(
            f"<title>{escape(row.label)}: median {_fmt(row.median)}, quartiles "
            f"{_fmt(row.q1)}–{_fmt(row.q3)}, range {_fmt(row.minimum)}–{_fmt(row.maximum)}, "
            f"n={row.count}</title>"
        )
        parts.append(
            f'<text x="{label_width}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"{escape(label)}</text>"
        )
        parts.append(
            f'<line x1="{x_of(row.minimum):.1f}" y1="{y:.1f}" x2="{x_of(row.maximum):.1f}" '
            f'y2="{y:.1f}" stroke="{MUTED}" stroke-width="1.5"/>'
        )
        box_left, box_right = x_of(row.q1), x_of(row.q3)
        parts.append(
            f'<rect x="{box_left:.1f}" y="{y - 10:.1f}" width="{max(box_right - box_left, 1):.1f}" '
            f'height="20" fill="#dfe7f5" stroke="{ACCENT}" stroke-width="1.5"/>'
        )
        x_median = x_of(row.median)
        parts.append(
            f'<line x1="{x_median:.1f}" y1="{y - 10:.1f}" x2="{x_median:.1f}" y2="{y + 10:.1f}" '
            f'stroke="{INK}" stroke-width="2.5"/>'
        )
        if row.marker is not None:
            x = x_of(row.marker)
            parts.append(
                f'<path d="M{x:.1f} {y - 8:.1f} L{x + 8:.1f} {y:.1f} L{x:.1f} {y + 8:.1f} '
                f'L{x - 8:.1f} {y:.1f} Z" fill="{TOP1}" class="marker"/>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
