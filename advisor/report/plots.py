"""Plots as inline SVG text: no plotting library, no external assets, every label escaped.

Quality against cost with the Pareto front, single-request latency per rung, and a confusion matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from advisor.assessment import RungResult

WIDTH, HEIGHT, MARGIN = 640, 360, 56
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


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
    log = max(costs) / max(min(costs), 1e-12) > 20  # spread over decades: a log axis
    x_of = _axis([math.log10(max(c, 1e-12)) if log else c for c in costs], MARGIN, WIDTH - MARGIN)
    y_low = min(v.ci_low for v in values)
    y_high = max(v.ci_high for v in values)
    y_of = _axis([y_low, y_high], HEIGHT - MARGIN, MARGIN)
    xs = [x_of(math.log10(max(c, 1e-12)) if log else c) for c in costs]
    parts = [_frame(f"$ per 1k requests{' (log scale)' if log else ''}", f"{metric} (95% CI)")]
    parts.append(_ticks_y(y_low, y_high, y_of))
    front = pareto_front([(c, v.value) for c, v in zip(costs, values, strict=True)])
    line = " ".join(f"{xs[i]:.1f},{y_of(values[i].value):.1f}" for i in front)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#555" stroke-dasharray="4 3"/>')
    for index, (rung, x, v) in enumerate(zip(placed, xs, values, strict=True)):
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y_of(v.ci_low):.1f}" y2="{y_of(v.ci_high):.1f}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        marker = "8" if index in front else "5"
        parts.append(f'<circle cx="{x:.1f}" cy="{y_of(v.value):.1f}" r="{marker}" fill="{color}"/>')
        cost = rung.cost.per_1k if rung.cost and rung.cost.per_1k is not None else 0.0
        near_right = x > WIDTH * 0.65  # labels of the costliest rungs go to the left of their dot
        anchor, label_x = ("end", x - 10) if near_right else ("start", x + 10)
        parts.append(
            f'<text x="{label_x:.1f}" y="{y_of(v.value) - 8:.1f}" font-size="12" text-anchor="{anchor}">'
            f"{escape(rung.name)} (${cost:.4f})</text>"
        )
    parts.append(
        f'<text x="{WIDTH - MARGIN}" y="{MARGIN - 20}" font-size="11" text-anchor="end">'
        "large dots and dashed line: the Pareto front (nothing cheaper is better)</text>"
    )
    return _svg(parts, "Quality against cost")


def latency_svg(rungs: Sequence[RungResult]) -> str:
    """Each rung's single-request latencies as dots, with p50 and p95 marked."""
    timed = [r for r in rungs if r.latency.samples_s]
    if not timed:
        return _empty("No single-request latencies were sampled.")
    top = max(max(r.latency.samples_s) for r in timed) * 1.1
    x_of = _axis([0.0, top], MARGIN + 90, WIDTH - MARGIN)
    row = (HEIGHT - 2 * MARGIN) / len(timed)
    parts = [_frame("single-request latency (s)", "")]
    for index, rung in enumerate(timed):
        y = MARGIN + row * (index + 0.5)
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<text x="{MARGIN + 84}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{escape(rung.name)}</text>'
        )
        for sample in rung.latency.samples_s:
            parts.append(f'<circle cx="{x_of(sample):.1f}" cy="{y:.1f}" r="3" fill="{color}" fill-opacity="0.6"/>')
        for mark, value in (("p50", rung.latency.p50_s), ("p95", rung.latency.p95_s)):
            if value is not None:
                x = x_of(value)
                parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y - 9:.1f}" y2="{y + 9:.1f}" stroke="#000"/>')
                parts.append(f'<text x="{x:.1f}" y="{y - 11:.1f}" font-size="9" text-anchor="middle">{mark}</text>')
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        value = top * fraction
        parts.append(
            f'<text x="{x_of(value):.1f}" y="{HEIGHT - MARGIN + 16}" font-size="10" text-anchor="middle">'
            f"{value:.2f}</text>"
        )
    return _svg(parts, "Single-request latency")


def confusion_svg(rung: RungResult, labels: Sequence[str]) -> str:
    """Counts of (true label, predicted label) for a classification rung; 'none' collects unread answers."""
    columns = [*labels, "none"]
    index = {label: i for i, label in enumerate(columns)}
    counts = [[0] * len(columns) for _ in labels]
    for record in rung.records:
        if record.target in index and record.target != "none":
            counts[index[record.target]][index.get(record.prediction or "none", len(columns) - 1)] += 1
    cell = max(18, min(44, 420 // max(len(columns), 1)))
    left, top = 150, 110
    width, height = left + cell * len(columns) + 20, top + cell * len(labels) + 40
    peak = max((max(row) for row in counts), default=0) or 1
    parts = []
    for j, label in enumerate(columns):
        x = left + cell * j + cell / 2
        parts.append(
            f'<text transform="translate({x:.1f},{top - 6}) rotate(-45)" font-size="11">{escape(label)}</text>'
        )
    for i, label in enumerate(labels):
        y = top + cell * i
        parts.append(
            f'<text x="{left - 6}" y="{y + cell / 2 + 4:.1f}" font-size="11" text-anchor="end">{escape(label)}</text>'
        )
        for j, count in enumerate(counts[i]):
            shade = 1 - 0.85 * count / peak
            level = int(255 * shade)
            fill = f"rgb({level},235,{level})" if i == j else f"rgb({level},{level},255)"  # diagonal green
            parts.append(
                f'<rect x="{left + cell * j}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#fff"/>'
            )
            if count:
                parts.append(
                    f'<text x="{left + cell * j + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" font-size="11" '
                    f'text-anchor="middle">{count}</text>'
                )
    parts.append(f'<text x="{left}" y="{height - 12}" font-size="11">rows: true label; columns: predicted</text>')
    body = "".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="Confusion matrix of {escape(rung.name)}">{body}</svg>'
    )


def _axis(values: Sequence[float], start: float, end: float) -> Callable[[float], float]:
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    return lambda v: start + (v - low) / (high - low) * (end - start)


def _frame(x_title: str, y_title: str) -> str:
    return (
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#333"/>'
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#333"/>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 14}" font-size="12" text-anchor="middle">{escape(x_title)}</text>'
        f'<text transform="translate(16,{HEIGHT / 2}) rotate(-90)" font-size="12" text-anchor="middle">'
        f"{escape(y_title)}</text>"
    )


def _ticks_y(low: float, high: float, y_of: Callable[[float], float]) -> str:
    parts = []
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        value = low + (high - low) * fraction
        parts.append(
            f'<text x="{MARGIN - 6}" y="{y_of(value) + 4:.1f}" font-size="10" text-anchor="end">{value:.2f}</text>'
        )
    return "".join(parts)


def _svg(parts: Sequence[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )


def _empty(text: str) -> str:
    return f"<p><em>{escape(text)}</em></p>"
