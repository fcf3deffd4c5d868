"""Small inline-SVG charts for the HTML report: box plots, a scatter plot, horizontal bars.

Written by hand because the report must be one self-contained file (no CDN, no network) and
matplotlib is not a dependency; each chart is a few dozen SVG elements. Hover text uses SVG
`<title>`, so no script is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d")
BASELINE_COLOR = "#7f7f7f"
FAIL_COLOR = "#d62728"
WIDTH = 900
_RIGHT = 30


def color(index: int) -> str:
    """The color of the `index`-th artifact (0 = the baseline, grey)."""
    return BASELINE_COLOR if index == 0 else PALETTE[(index - 1) % len(PALETTE)]


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """About `count` round tick values (1, 2 or 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 12))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks per decade covering [lo, hi] (both > 0), for a logarithmic axis."""
    ticks = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            ticks.append(m * 10.0**exponent)
    inside = [t for t in ticks if lo <= t <= hi]
    below = [t for t in ticks if t < lo]
    above = [t for t in ticks if t > hi]
    return ([below[-1]] if below else []) + inside + ([above[0]] if above else [])


@dataclass
class _Axis:
    lo: float
    hi: float
    start: float
    stop: float
    log: bool = False

    def __call__(self, value: float) -> float:
        if self.log:
            lo, hi = math.log10(self.lo), math.log10(self.hi)
            value = math.log10(max(value, self.lo))
        else:
            lo, hi = self.lo, self.hi
        return self.start + (value - lo) / ((hi - lo) or 1.0) * (self.stop - self.start)


def _label_room(labels: Sequence[str]) -> int:
    # about 7 px per character at 12 px, within sensible bounds
    return int(min(max(max((len(t) for t in labels), default=0) * 7 + 20, 120), 330))


def _svg(height: int, body: list[str], label: str) -> str:
    return (
        f'<svg class="plot" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMinYMin meet">'
        + "".join(body)
        + "</svg>"
    )


def _y_axis(
    axis: _Axis,
    ticks: list[float],
    left: float,
    right: float,
    top: float,
    bottom: float,
    title: str,
) -> list[str]:
    """The y axis line, its grid lines and tick labels, and its rotated title (the scatter
    and series plots share it)."""
    out = [f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>']
    for t in ticks:
        y = axis(t)
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>'
        )
    mid = (top + bottom) / 2
    out.append(
        f'<text class="axis-title" x="18" y="{mid:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 18 {mid:.1f})">{escape(title)}</text>'
    )
    return out


def _x_axis(axis: _Axis, ticks: list[float], y_top: float, y_bottom: float, title: str) -> list:
    out = [
        f'<line class="axis" x1="{axis.start}" y1="{y_bottom}" x2="{axis.stop}" y2="{y_bottom}"/>'
    ]
    for t in ticks:
        x = axis(t)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{y_top}" x2="{x:.1f}" y2="{y_bottom}"/>')
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{y_bottom + 16}" text-anchor="middle">'
            f"{_fmt(t)}</text>"
        )
    mid = (axis.start + axis.stop) / 2
    out.append(
        f'<text class="axis-title" x="{mid:.1f}" y="{y_bottom + 36}" text-anchor="middle">'
        f"{escape(title)}</text>"
    )
    return out


@dataclass
class BoxSeries:
    """One row of a box plot: raw samples, or (without samples) p50/p90/p99 and min/max."""

    label: str
    color: str
    samples: Sequence[float]
    summary: dict[str, float] | None = None


def box_plot(series: Sequence[BoxSeries], *, title: str, unit: str) -> str:
    """Horizontal box plots (box: quartiles, line: median, whiskers: 1st..99th percentile,
    dots: every sample, deterministically jittered)."""
    row_h, top = 46, 14
    height = top + row_h * len(series) + 50
    values = [v for s in series for v in s.samples] + [
        v for s in series if s.summary for v in s.summary.values()
    ]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    left = _label_room([s.label for s in series])
    log = lo > 0 and hi / lo > 20  # heavy tails: a linear axis would squash the bulk
    if log:
        ticks = log_ticks(lo, hi)
        scale = "log scale"
    else:
        pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
        ticks = nice_ticks(max(0.0, lo - pad), hi + pad)
        scale = ""
    axis = _Axis(ticks[0], ticks[-1], left, WIDTH - _RIGHT, log)
    bottom = top + row_h * len(series)
    body = _x_axis(axis, ticks, top, bottom, f"{title} ({unit}{', ' + scale if scale else ''})")
    for i, s in enumerate(series):
        cy = top + row_h * i + row_h / 2
        body.append(
            f'<text class="label" x="{left - 10}" y="{cy + 4:.1f}" text-anchor="end">'
            f"{escape(s.label)}</text>"
        )
        body += _box(s, axis, cy, unit)
    return _svg(height, body, title)


def _box(s: BoxSeries, axis: _Axis, cy: float, unit: str) -> list[str]:
    out: list[str] = []
    if len(s.samples):
        data = np.asarray(s.samples, dtype=float)
        p1, q1, med, q3, p99 = np.percentile(data, [1, 25, 50, 75, 99])
        tip = f"{s.label}: median {med:.4g} {unit}, IQR {q1:.4g}-{q3:.4g}, n={data.size}"
        # golden-ratio jitter: deterministic, evenly spread, no random state
        for k, v in enumerate(data):
            dy = ((k * 0.618034) % 1.0 - 0.5) * 26
            out.append(
                f'<circle class="dot" cx="{axis(v):.1f}" cy="{cy + dy:.1f}" r="1.8" '
                f'fill="{s.color}"/>'
            )
    elif s.summary:
        p1, q1, med, q3, p99 = (
            s.summary.get("min", s.summary["p50"]),
            s.summary["p50"],
            s.summary["p50"],
            s.summary.get("p90", s.summary["p50"]),
            s.summary.get("p99", s.summary["p50"]),
        )
        tip = f"{s.label}: p50 {med:.4g} {unit}, p90 {q3:.4g}, p99 {p99:.4g} (no raw samples)"
    else:
        return out
    out.append(f"<g><title>{escape(tip)}</title>")
    out.append(
        f'<line class="whisker" x1="{axis(p1):.1f}" y1="{cy}" x2="{axis(p99):.1f}" y2="{cy}" '
        f'stroke="{s.color}"/>'
    )
    width = max(axis(q3) - axis(q1), 1.5)
    out.append(
        f'<rect class="box" x="{axis(q1):.1f}" y="{cy - 10}" width="{width:.1f}" height="20" '
        f'fill="{s.color}" stroke="{s.color}"/>'
    )
    out.append(
        f'<line class="median" x1="{axis(med):.1f}" y1="{cy - 12}" x2="{axis(med):.1f}" '
        f'y2="{cy + 12}"/>'
    )
    out.append("</g>")
    return out


@dataclass
class Point:
    label: str
    x: float
    y: float
    color: str
    failed: bool = False


def scatter(points: Sequence[Point], *, title: str, x_title: str, y_title: str) -> str:
    """A scatter plot with a legend on the right (point labels would collide when artifacts
    are close); failed points get a red ring."""
    legend_w = min(max(len(p.label) for p in points) * 7 + 40, 330)
    height = max(340, 40 + 22 * len(points))
    top, bottom_pad, left = 20, 56, 80
    xs, ys = [p.x for p in points], [p.y for p in points]
    # a float PyTorch baseline is often 10-100x slower than the compiled artifacts: on a linear
    # axis they would all sit on top of each other at the left edge, so go logarithmic
    log = min(xs) > 0 and max(xs) / min(xs) > 10
    if log:
        x_ticks = log_ticks(min(xs) / 1.25, max(xs) * 1.25)
        axis_title = f"{x_title} (log scale)"
    else:
        x_pad = (max(xs) - min(xs)) * 0.1 or abs(xs[0]) * 0.1 or 1.0
        x_ticks = nice_ticks(max(0.0, min(xs) - x_pad), max(xs) + x_pad)
        axis_title = x_title
    y_pad = (max(ys) - min(ys)) * 0.15 or abs(ys[0]) * 0.01 or 1.0
    y_ticks = nice_ticks(min(ys) - y_pad, max(ys) + y_pad, 5)
    bottom = height - bottom_pad
    x_axis = _Axis(x_ticks[0], x_ticks[-1], left, WIDTH - _RIGHT - legend_w, log)
    y_axis = _Axis(y_ticks[0], y_ticks[-1], bottom, top)
    body = _x_axis(x_axis, x_ticks, top, bottom, axis_title)
    body += _y_axis(y_axis, y_ticks, left, x_axis.stop, top, bottom, y_title)
    legend_x = WIDTH - _RIGHT - legend_w + 24
    for i, p in enumerate(points):
        cx, cy = x_axis(p.x), y_axis(p.y)
        tip = f"{p.label}: {x_title} {p.x:.4g}, {y_title} {p.y:.4g}"
        ring = (
            f'<circle cx="{{x:.1f}}" cy="{{y:.1f}}" r="{{r}}" fill="none" stroke="{FAIL_COLOR}" '
            'stroke-width="2"/>'
            if p.failed
            else ""
        )
        ly = top + 10 + 22 * i
        body.append(
            f"<g><title>{escape(tip)}</title>{ring.format(x=cx, y=cy, r=10)}"
            f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{p.color}"/>'
            f"{ring.format(x=legend_x, y=ly, r=9)}"
            f'<circle cx="{legend_x}" cy="{ly}" r="6" fill="{p.color}"/>'
            f'<text class="label" x="{legend_x + 14}" y="{ly + 4}">{escape(p.label)}</text></g>'
        )
    return _svg(height, body, title)


@dataclass
class Bar:
    label: str
    value: float | None
    """None draws no bar and says "inf" (no noise at all)."""
    marker: float | None = None
    highlight: bool = False
    tip: str = ""


def bar_chart(bars: Sequence[Bar], *, title: str, x_title: str, marker_title: str) -> str:
    """Horizontal bars from 0, one per row, highlighted rows in red; an optional tick mark per
    row (e.g. the cumulative value beside the layer's own)."""
    row_h, top = 24, 10
    height = top + row_h * len(bars) + 74
    values = [v for b in bars for v in (b.value, b.marker) if v is not None and math.isfinite(v)]
    ticks = nice_ticks(min(0.0, *values) if values else 0.0, max(values) if values else 1.0)
    left = _label_room([b.label for b in bars])
    axis = _Axis(ticks[0], ticks[-1], left, WIDTH - _RIGHT - 40)
    bottom = top + row_h * len(bars)
    body = _x_axis(axis, ticks, top, bottom, x_title)
    zero = axis(max(0.0, ticks[0]))
    for i, b in enumerate(bars):
        y = top + row_h * i
        label = b.label if len(b.label) <= 44 else "…" + b.label[-43:]
        body.append(f"<g><title>{escape(b.tip or b.label)}</title>")
        body.append(
            f'<text class="label" x="{left - 10}" y="{y + 16}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        fill = FAIL_COLOR if b.highlight else PALETTE[0]
        if b.value is not None:
            x = axis(b.value)
            body.append(
                f'<rect class="bar" x="{min(zero, x):.1f}" y="{y + 4}" '
                f'width="{max(abs(x - zero), 1.0):.1f}" height="{row_h - 8}" fill="{fill}"/>'
            )
            text = f"{b.value:.1f}"
        else:
            x, text = zero, "inf"
        body.append(f'<text class="value" x="{max(x, zero) + 4:.1f}" y="{y + 16}">{text}</text>')
        if b.marker is not None:
            m = axis(b.marker)
            body.append(
                f'<line class="marker" x1="{m:.1f}" y1="{y + 2}" x2="{m:.1f}" y2="{y + row_h - 2}"/>'
            )
        body.append("</g>")
    mid = (axis.start + axis.stop) / 2
    if marker_title:  # no title: no marker legend
        body.append(
            f'<line class="marker" x1="{mid - 150:.1f}" y1="{bottom + 48}" x2="{mid - 150:.1f}" '
            f'y2="{bottom + 60}"/><text class="legend" x="{mid - 142:.1f}" y="{bottom + 58}">'
            f"{escape(marker_title)}</text>"
        )
    return _svg(height, body, title)


@dataclass
class SeriesPoint:
    x: float
    y: float
    radius: float = 5.0
    """Marker radius in px (e.g. scaled by an artifact's size)."""
    tip: str = ""
    hollow: bool = False
    """An outline only (e.g. an infeasible trial)."""


@dataclass
class Series:
    """A named set of points in one color, optionally joined by a line (`"step"`: a staircase
    holding each value until the next point, the shape of a running best or a 2-D front)."""

    label: str
    color: str
    points: Sequence[SeriesPoint]
    line: str | None = None
    faint: bool = False


def series_plot(
    series: Sequence[Series], *, title: str, x_title: str, y_title: str, x_from_zero: bool = True
) -> str:
    """Points of several series on shared linear axes with a legend per series on the right;
    hover text per point (SVG `<title>`)."""
    shown = [s for s in series if s.points]
    legend_w = min(max((len(s.label) for s in shown), default=4) * 7 + 40, 330)
    height = max(340, 40 + 22 * len(shown))
    top, bottom_pad, left = 20, 56, 80
    xs = [p.x for s in shown for p in s.points] or [0.0, 1.0]
    ys = [p.y for s in shown for p in s.points] or [0.0, 1.0]
    x_pad = (max(xs) - min(xs)) * 0.08 or abs(xs[0]) * 0.1 or 1.0
    y_pad = (max(ys) - min(ys)) * 0.12 or abs(ys[0]) * 0.05 or 1.0
    x_lo = max(0.0, min(xs) - x_pad) if x_from_zero else min(xs) - x_pad
    x_ticks = nice_ticks(x_lo, max(xs) + x_pad)
    y_ticks = nice_ticks(min(ys) - y_pad, max(ys) + y_pad, 5)
    bottom = height - bottom_pad
    x_axis = _Axis(x_ticks[0], x_ticks[-1], left, WIDTH - _RIGHT - legend_w)
    y_axis = _Axis(y_ticks[0], y_ticks[-1], bottom, top)
    body = _x_axis(x_axis, x_ticks, top, bottom, x_title)
    body += _y_axis(y_axis, y_ticks, left, x_axis.stop, top, bottom, y_title)
    legend_x = WIDTH - _RIGHT - legend_w + 24
    for i, s in enumerate(shown):
        opacity = ' fill-opacity=".35" stroke-opacity=".5"' if s.faint else ""
        body.append(f'<g class="series"{opacity}>')
        if s.line and len(s.points) > 1:
            body.append(_polyline(s, x_axis, y_axis))
        for p in s.points:
            cx, cy = x_axis(p.x), y_axis(p.y)
            fill = 'fill="none" stroke-width="2"' if p.hollow else f'fill="{s.color}"'
            body.append(
                f"<g><title>{escape(p.tip or s.label)}</title>"
                f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="{p.radius:.1f}" '
                f'{fill} stroke="{s.color}"/></g>'
            )
        ly = top + 10 + 22 * i
        body.append(
            f'<circle cx="{legend_x}" cy="{ly}" r="6" fill="{s.color}"/>'
            f'<text class="label" x="{legend_x + 14}" y="{ly + 4}">{escape(s.label)}</text></g>'
        )
    return _svg(height, body, title)


def _polyline(s: Series, x_axis: _Axis, y_axis: _Axis) -> str:
    pts = sorted(s.points, key=lambda p: p.x)
    coords = [(x_axis(pts[0].x), y_axis(pts[0].y))]
    for prev, p in zip(pts, pts[1:]):
        if s.line == "step":
            coords.append((x_axis(p.x), y_axis(prev.y)))
        coords.append((x_axis(p.x), y_axis(p.y)))
    text = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    return (
        f'<polyline class="line" points="{text}" fill="none" stroke="{s.color}" '
        'stroke-width="1.8"/>'
    )
