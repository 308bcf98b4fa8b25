"""The report as one self-contained HTML page: no scripts, no external assets, every data text escaped.

The per-example table filters with CSS alone (advisor/report/examples_table.py), so the page needs no script.

A Content-Security-Policy that allows no script and no network backs the escaping up: even a
payload that slipped through could neither run nor load anything.
"""

from __future__ import annotations

from html import escape

from advisor.decision.assessment import Assessment, RungResult
from advisor.decision.calibration_notes import calibration_line
from advisor.decision.close_calls import close_call_lines
from advisor.decision.distillation import distillation_line
from advisor.decision.training_notes import rung_search, search_line, training_warnings, trial_cells
from advisor.report.examples_table import STYLE as EXAMPLES_STYLE
from advisor.report.examples_table import examples_section
from advisor.report.formatting import audit_lines, cost_note, measured_on, ranking_line, table_cells
from advisor.report.placement import COST_HEADERS, cost_cells, runs_anywhere_else, scoring_line
from advisor.report.plots import confusion_svg, latency_svg, quality_cost_svg
from harness.task_types import get_task_type

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #1b1b1b; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
.muted { color: #666; } table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ddd; padding: .3rem .55rem; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; } th { background: #f4f6f8; }
.advice { border-left: 6px solid #2e7d32; background: #f1f8f1; padding: .8rem 1.2rem; }
.advice.none { border-color: #c62828; background: #fdf0f0; }
.close { border-left: 6px solid #1565c0; background: #eef4fb; padding: .5rem 1.2rem; }
.warn { border-left: 6px solid #ef8f00; background: #fff7e6; padding: .5rem 1.2rem; }
.chosen td { background: #eef7ee; font-weight: 600; }
.cases td { text-align: left; max-width: 28rem; white-space: pre-wrap; word-break: break-word; }
.ok { color: #2e7d32; } .bad { color: #c62828; } figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
"""


def render_html(assessment: Assessment) -> str:
    """The whole page."""
    task = assessment.task
    advice = assessment.recommendation
    sections = [
        f"<h1>Ladder: {escape(task.name)}</h1>",
        f'<p class="muted">{task.n_test} test examples, task type {escape(task.type)}, model {escape(task.model)}; '
        f"measured on {escape(measured_on(assessment))}; {escape(assessment.created_at)}</p>",
        _advice(assessment),
        "<h2>Side by side</h2>",
        _table(assessment),
    ]
    note = cost_note(assessment)
    if runs_anywhere_else(assessment):
        head = "".join(f"<th>{escape(h)}</th>" for h in COST_HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in cost_cells(assessment)
        )
        sections += [
            "<h2>Where each rung runs, and what it costs there</h2>",
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
        ]
    elif note:
        sections.append(f'<p class="muted">{escape(note)}</p>')
    scoring = scoring_line(assessment)
    if scoring:
        sections.append(f'<p class="muted">{escape(scoring)}</p>')
    if advice is not None and advice.rejected:
        items = "".join(f"<li><b>{escape(n)}</b>: {escape(w)}</li>" for n, w in advice.rejected.items())
        sections += ["<h2>Why not the others</h2>", f"<ul>{items}</ul>"]
    if assessment.distillation:
        items = "".join(f"<li>{escape(distillation_line(d))}</li>" for d in assessment.distillation)
        sections += ["<h2>What distillation bought</h2>", f"<ul>{items}</ul>"]
    searched = _searches(assessment)
    if searched:
        sections += ["<h2>How the tuned rungs were chosen</h2>", searched]
    calibrated = [line for line in map(calibration_line, assessment.rungs) if line]
    if calibrated:
        items = "".join(f"<li>{escape(line)}</li>" for line in calibrated)
        sections += ["<h2>Contextual calibration</h2>", f"<ul>{items}</ul>"]
    audit = audit_lines(assessment)
    if audit:
        sections += ["<h2>Data audit</h2>", "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in audit) + "</ul>"]
    sections += [
        "<h2>Quality against cost</h2>",
        f"<figure>{quality_cost_svg(assessment.rungs)}</figure>",
        "<h2>Latency</h2>",
        f"<figure>{latency_svg(assessment.rungs)}</figure>",
    ]
    if get_task_type(task.type).labelled and task.labels:
        shown = _confusion_rungs(assessment)
        sections.append("<h2>Confusion matrices</h2>")
        sections += [
            f"<figure><figcaption>{escape(r.name)}</figcaption>{confusion_svg(r, task.labels)}</figure>" for r in shown
        ]
    sections += ["<h2>Every test example, rung by rung</h2>", examples_section(assessment)]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Ladder: {escape(task.name)}</title><style>{STYLE}{EXAMPLES_STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _advice(assessment: Assessment) -> str:
    advice = assessment.recommendation
    if advice is None:
        return '<p class="muted">No recommendation was made for this run.</p>'
    reasons = "".join(f"<li>{escape(r)}</li>" for r in advice.reasons)
    box = (
        f'<div class="advice{"" if advice.rung else " none"}"><p><b>{escape(advice.summary)}</b></p>'
        f"<ul>{reasons}</ul></div>"
    )
    ranking = ranking_line(assessment)
    if ranking:
        box += f'<p class="muted">{escape(ranking)}</p>'
    calls = close_call_lines(advice.close_calls, advice.prefer)
    if calls:
        box += '<div class="close"><p><b>Close call</b></p><ul>' + "".join(f"<li>{escape(c)}</li>" for c in calls)
        box += "</ul></div>"
    if advice.warnings:
        box += '<div class="warn"><ul>' + "".join(f"<li>{escape(w)}</li>" for w in advice.warnings) + "</ul></div>"
    return box


def _table(assessment: Assessment) -> str:
    headers, rows = table_cells(assessment)
    chosen = assessment.recommendation.rung if assessment.recommendation else None
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        f"<tr{' class=chosen' if row[0] == chosen else ''}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _searches(assessment: Assessment) -> str:
    """Per searched rung: one sentence, its warnings, and the table of its trials."""
    parts = []
    for rung in assessment.rungs:
        line, search = search_line(rung), rung_search(rung)
        if line is None or search is None:
            continue
        parts.append(f"<p>{escape(line)}</p>")
        notes = training_warnings(rung)
        if notes:
            parts.append('<div class="warn"><ul>' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul></div>")
        headers, rows = trial_cells(search)
        head = "".join(f"<th>{escape(h)}</th>" for h in headers)
        body = "".join(
            f"<tr{' class=chosen' if row[0].endswith('(chosen)') else ''}>"
            + "".join(f"<td>{escape(c)}</td>" for c in row)
            + "</tr>"
            for row in rows
        )
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "\n".join(parts)


def _confusion_rungs(assessment: Assessment) -> list[RungResult]:
    """The recommended rung and the best one (when different): the matrices worth a look."""
    advice = assessment.recommendation
    wanted = [n for n in ((advice.rung, advice.best) if advice else ()) if n]
    picked = [r for r in assessment.rungs if r.name in wanted] or assessment.rungs[:1]
    return picked
