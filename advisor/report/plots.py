"""Plots as inline SVG text: no plotting library, no external assets, every label escaped.

Quality against cost with the Pareto front, single-request latency per rung, and a confusion matrix.
Ticks sit on round values (advisor/report/ticks.py); names too long for their room are shortened,
with the full name as a hover title (advisor/report/svg_text.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from advisor.decision.assessment import RungResult
from advisor.report.svg_text import Box, fit_text, place_label, text_width, titled
from advisor.report.ticks import decade_ticks, log_tick_labels, nice_ticks, tick_labels

WIDTH, HEIGHT, MARGIN = 640, 360, 56
TICK_FONT, LABEL_FONT, TITLE_FONT = 10, 12, 12
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
PARETO_CAPTION = "large dots and dashed line: the Pareto front (nothing cheaper is better)"
NAME_ROOM = 200  # the widest a rung's name may be beside a latency row
CLASS_ROOM = 150  # the widest a label may be beside (or above) a confusion matrix
LATENCY_ROW, LATENCY_WIDTH = 44, 466  # a rung's row height, and the width of the latency axis


@dataclass(frozen=True)
class Plot:
    """The plotting area inside an SVG of width x height."""

    width: float
    height: float
    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class Scale:
    """One axis: where a value lands, its ticks and their labels."""

    to_px: Callable[[float], float]
    ticks: list[float]
    labels: list[str]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower cost x, higher quality y), by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def quality_cost_svg(rungs: Sequence[RungResult]) -> str:
    """Quality (primary metric, with its CI) against $ per 1k requests; the Pareto front joined by a line."""
    placed = [r for r in rungs if r.cost and r.cost.per_1k is not None and r.primary_metric in r.metrics]
    if not placed:
        return _empty("No costs to plot.")
    costs = [r.cost.per_1k for r in placed if r.cost and r.cost.per_1k is not None]
    metric = placed[0].primary_metric
    values = [r.metrics[metric] for r in placed]
    plot = Plot(WIDTH, HEIGHT, MARGIN + 8, MARGIN, WIDTH - MARGIN / 2, HEIGHT - MARGIN)
    log = min(costs) > 0 and max(costs) / min(costs) > 20  # spread over decades: a log axis
    x = _cost_scale(costs, log, plot)
    y = _quality_scale([v.ci_low for v in values], [v.ci_high for v in values], plot)
    xs = [x.to_px(c) for c in costs]
    x_title = fit_text(f"$ per 1k requests{' (log scale)' if log else ''}", TITLE_FONT, plot.right - plot.left)
    y_title = fit_text(f"{metric} (95% CI)", TITLE_FONT, plot.bottom - plot.top)
    parts = [_grid(plot, x, y), _frame(plot, x_title, y_title), _ticks_x(plot, x), _ticks_y(plot, y)]
    front = pareto_front([(c, v.value) for c, v in zip(costs, values, strict=True)])
    line = " ".join(f"{xs[i]:.1f},{y.to_px(values[i].value):.1f}" for i in front)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#555" stroke-dasharray="4 3"/>')
    taken = [Box(px - 8, y.to_px(v.value) - 8, px + 8, y.to_px(v.value) + 8) for px, v in zip(xs, values, strict=True)]
    taken += [Box(px - 2, y.to_px(v.ci_high), px + 2, y.to_px(v.ci_low)) for px, v in zip(xs, values, strict=True)]
    bounds = Box(plot.left + 2, plot.top - 12, plot.width - 4, plot.bottom - 2)
    for index, (rung, px, v, cost) in enumerate(zip(placed, xs, values, costs, strict=True)):
        color = PALETTE[index % len(PALETTE)]
        py = y.to_px(v.value)
        parts.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y.to_px(v.ci_low):.1f}" y2="{y.to_px(v.ci_high):.1f}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        marker = "8" if index in front else "5"
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{marker}" fill="{color}"/>')
        price = f" (${cost:.4f})"
        name = fit_text(rung.name, LABEL_FONT, (plot.right - plot.left) * 0.55 - text_width(price, LABEL_FONT))
        shown = name + price
        spot = place_label(px, py, text_width(shown, LABEL_FONT), LABEL_FONT, taken, bounds)
        taken.append(spot.box)
        text = (
            f'<text x="{spot.x:.1f}" y="{spot.y:.1f}" font-size="{LABEL_FONT}" text-anchor="{spot.anchor}">'
            f"{escape(shown)}</text>"
        )
        parts.append(titled(name, rung.name, text))
    caption = fit_text(PARETO_CAPTION, 11, plot.right - plot.left)
    parts.append(
        f'<text x="{plot.right}" y="{plot.top - 20}" font-size="11" text-anchor="end">{escape(caption)}</text>'
    )
    return _svg(parts, plot, "Quality against cost")


def latency_svg(rungs: Sequence[RungResult]) -> str:
    """Each rung's single-request latencies as dots, with p50 (above) and p95 (below) marked."""
    timed = [r for r in rungs if r.latency.samples_s]
    if not timed:
        return _empty("No single-request latencies were sampled.")
    names = [fit_text(r.name, LABEL_FONT, NAME_ROOM) for r in timed]
    left = max(60.0, max(text_width(n, LABEL_FONT) for n in names) + 16)
    row, bottom = LATENCY_ROW, 24 + LATENCY_ROW * len(timed)
    plot = Plot(left + LATENCY_WIDTH + 24, bottom + 48, left, 24, left + LATENCY_WIDTH, bottom)
    top = max(v for r in timed for v in (*r.latency.samples_s, r.latency.p50_s, r.latency.p95_s) if v is not None)
    factor, unit = (1000.0, "ms") if top < 1 else (1.0, "s")  # ms below a second: no 0.00 on the axis
    ticks = nice_ticks(0.0, max(top * factor, 1.0))
    x_of = _linear(ticks[0], ticks[-1], plot.left, plot.right)
    x = Scale(lambda v: x_of(v * factor), [t / factor for t in ticks], tick_labels(ticks))
    parts = [_grid(plot, x, None), _frame(plot, f"single-request latency ({unit})", "")]
    parts.append(_ticks_x(plot, x))
    for index, (rung, name) in enumerate(zip(timed, names, strict=True)):
        y = plot.top + row * (index + 0.5)
        color = PALETTE[index % len(PALETTE)]
        label = (
            f'<text x="{plot.left - 8}" y="{y + 4:.1f}" font-size="{LABEL_FONT}" text-anchor="end">'
            f"{escape(name)}</text>"
        )
        parts.append(titled(name, rung.name, label))
        for sample in rung.latency.samples_s:
            parts.append(f'<circle cx="{x.to_px(sample):.1f}" cy="{y:.1f}" r="3" fill="{color}" fill-opacity="0.6"/>')
        for mark, value, text_y in (("p50", rung.latency.p50_s, y - 11), ("p95", rung.latency.p95_s, y + 19)):
            if value is not None:
                px = x.to_px(value)
                parts.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y - 9:.1f}" y2="{y + 9:.1f}" stroke="#000"/>')
                parts.append(f'<text x="{px:.1f}" y="{text_y:.1f}" font-size="9" text-anchor="middle">{mark}</text>')
    return _svg(parts, plot, "Single-request latency")


def confusion_svg(rung: RungResult, labels: Sequence[str]) -> str:
    """Counts of (true label, predicted label) for a classification rung; 'none' collects unread answers."""
    columns = [*labels, "none"]
    index = {label: i for i, label in enumerate(columns)}
    counts = [[0] * len(columns) for _ in labels]
    for record in rung.records:
        if record.target in index and record.target != "none":
            counts[index[record.target]][index.get(record.prediction or "none", len(columns) - 1)] += 1
    font = 11
    shown = [fit_text(label, font, CLASS_ROOM) for label in columns]
    longest = max(text_width(s, font) for s in shown)
    cell = max(18, min(44, 420 // max(len(columns), 1)))
    left = max(40.0, max((text_width(s, font) for s in shown[:-1]), default=0.0) + 14)
    rise = longest * math.sqrt(0.5)  # a label turned 45 degrees climbs and reaches right this far
    top = rise + 16
    width = max(left + cell * len(columns) + 20, left + cell * (len(columns) - 0.5) + rise + 10)
    height = top + cell * len(labels) + 40
    peak = max((max(row) for row in counts), default=0) or 1
    parts = []
    for j, (label, text) in enumerate(zip(columns, shown, strict=True)):
        x = left + cell * j + cell / 2
        element = (
            f'<text transform="translate({x:.1f},{top - 6:.1f}) rotate(-45)" font-size="{font}">{escape(text)}</text>'
        )
        parts.append(titled(text, label, element))
    for i, (label, text) in enumerate(zip(labels, shown[:-1], strict=True)):
        y = top + cell * i
        element = (
            f'<text x="{left - 6:.1f}" y="{y + cell / 2 + 4:.1f}" font-size="{font}" text-anchor="end">'
            f"{escape(text)}</text>"
        )
        parts.append(titled(text, label, element))
        for j, count in enumerate(counts[i]):
            shade = 1 - 0.85 * count / peak
            level = int(255 * shade)
            fill = f"rgb({level},235,{level})" if i == j else f"rgb({level},{level},255)"  # diagonal green
            parts.append(
                f'<rect x="{left + cell * j:.1f}" y="{y:.1f}" width="{cell}" height="{cell}" fill="{fill}" '
                'stroke="#fff"/>'
            )
            if count:
                parts.append(
                    f'<text x="{left + cell * j + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" font-size="{font}" '
                    f'text-anchor="middle">{count}</text>'
                )
    parts.append(f'<text x="8" y="{height - 12:.1f}" font-size="{font}">rows: true label; columns: predicted</text>')
    width = max(width, 8 + text_width("rows: true label; columns: predicted", font) + 8)
    return _svg(parts, Plot(width, height, 0, 0, width, height), f"Confusion matrix of {rung.name}")


def _cost_scale(costs: Sequence[float], log: bool, plot: Plot) -> Scale:
    """$ per 1k requests: decades on a log axis, round steps from zero up otherwise."""
    if log:
        ticks = decade_ticks(min(costs), max(costs))
        to_log = _linear(math.log10(ticks[0]), math.log10(ticks[-1]), plot.left, plot.right)
        return Scale(lambda v: to_log(math.log10(max(v, 1e-12))), ticks, log_tick_labels(ticks, "$"))
    low, high = min(costs), max(costs)
    pad = (high - low) * 0.08
    ticks = [t for t in nice_ticks(max(0.0, low - pad), high + pad) if t >= 0] or [0.0]
    if len(ticks) < 2:
        ticks.append(ticks[0] + 1)
    return Scale(_linear(ticks[0], ticks[-1], plot.left, plot.right), ticks, tick_labels(ticks, "$"))


def _quality_scale(lows: Sequence[float], highs: Sequence[float], plot: Plot) -> Scale:
    """A metric with its intervals: round steps, kept within [0, 1] when the values are."""
    low, high = min(lows), max(highs)
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    if min(lows) >= 0:
        low = max(0.0, low)
    if max(highs) <= 1:
        high = min(1.0, high)
    ticks = nice_ticks(low, high)
    return Scale(_linear(ticks[0], ticks[-1], plot.bottom, plot.top), ticks, tick_labels(ticks))


def _linear(low: float, high: float, start: float, end: float) -> Callable[[float], float]:
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    return lambda v: start + (v - low) / (high - low) * (end - start)


def _frame(plot: Plot, x_title: str, y_title: str) -> str:
    middle_x, middle_y = (plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2
    frame = (
        f'<line x1="{plot.left}" y1="{plot.bottom}" x2="{plot.right}" y2="{plot.bottom}" stroke="#333"/>'
        f'<line x1="{plot.left}" y1="{plot.top}" x2="{plot.left}" y2="{plot.bottom}" stroke="#333"/>'
        f'<text x="{middle_x:.1f}" y="{plot.bottom + 38}" font-size="{TITLE_FONT}" text-anchor="middle">'
        f"{escape(x_title)}</text>"
    )
    if y_title:
        frame += (
            f'<text transform="translate(16,{middle_y:.1f}) rotate(-90)" font-size="{TITLE_FONT}" '
            f'text-anchor="middle">{escape(y_title)}</text>'
        )
    return frame


def _grid(plot: Plot, x: Scale, y: Scale | None) -> str:
    lines = [
        f'<line x1="{x.to_px(t):.1f}" x2="{x.to_px(t):.1f}" y1="{plot.top}" y2="{plot.bottom}" stroke="#eee"/>'
        for t in x.ticks
    ]
    if y is not None:
        lines += [
            f'<line x1="{plot.left}" x2="{plot.right}" y1="{y.to_px(t):.1f}" y2="{y.to_px(t):.1f}" stroke="#eee"/>'
            for t in y.ticks
        ]
    return "".join(lines)


def _ticks_x(plot: Plot, x: Scale) -> str:
    """Tick labels under the axis; one that would touch its left neighbour is left out."""
    parts, right_edge = [], -math.inf
    for tick, label in zip(x.ticks, x.labels, strict=True):
        px, half = x.to_px(tick), text_width(label, TICK_FONT) / 2
        if px - half < right_edge + 4:
            continue
        right_edge = px + half
        parts.append(
            f'<text x="{px:.1f}" y="{plot.bottom + 16}" font-size="{TICK_FONT}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    return "".join(parts)


def _ticks_y(plot: Plot, y: Scale) -> str:
    return "".join(
        f'<text x="{plot.left - 6}" y="{y.to_px(t) + 4:.1f}" font-size="{TICK_FONT}" text-anchor="end">'
        f"{escape(label)}</text>"
        for t, label in zip(y.ticks, y.labels, strict=True)
    )


def _svg(parts: Sequence[str], plot: Plot, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {plot.width:.0f} {plot.height:.0f}" '
        f'width="{plot.width:.0f}" height="{plot.height:.0f}" role="img" aria-label="{escape(label)}">'
        f"{''.join(parts)}</svg>"
    )


def _empty(text: str) -> str:
    return f"<p><em>{escape(text)}</em></p>"
