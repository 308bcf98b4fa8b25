"""The HTML report's per-example table: every test example, each rung's answer, filters without a script.

The filters are radio buttons and CSS `:checked` rules (the page's policy allows no script): with
the style sheet the rows narrow to where the rungs disagree, or where the recommended rung is
wrong; without it every row shows. Rows and texts are capped so a large test set cannot make a
page too big to open; the Assessment JSON keeps every example whole.
"""

from __future__ import annotations

from html import escape

from advisor.decision.assessment import Assessment
from advisor.report.examples import Answer, ExampleRow, by_interest, example_rows

ROW_CAP = 2000  # rows drawn at most
BYTE_CAP = 4_000_000  # characters of rows drawn at most, for inputs or outputs far longer than usual
PREVIEW = 120  # characters of a text shown before it folds
FULL = 2000  # characters of a folded text kept in the page
TITLE = 500  # characters of a raw output kept in its cell's hover title
STYLE = """
.examples label { margin-right: 1.2rem; cursor: pointer; } .examples input { margin-right: .3rem; }
.scroll { overflow: auto; max-height: 85vh; border: 1px solid #ddd; } .scroll table { margin: 0; }
.scroll thead th { position: sticky; top: 0; z-index: 1; text-align: left; min-width: 4.5rem; max-width: 12rem;
                   overflow-wrap: break-word; }
#examples td { max-width: 16rem; } #examples td:first-child { white-space: nowrap; }
#examples td:nth-child(2) { min-width: 16rem; max-width: 30rem; }
tr.disagree td:first-child { border-left: 4px solid #ef8f00; }
details summary { cursor: pointer; } details[open] summary { color: #666; }
#examples-disagree:checked ~ .scroll tbody tr:not(.disagree) { display: none; }
#examples-missed:checked ~ .scroll tbody tr:not(.missed) { display: none; }
"""


def examples_section(assessment: Assessment) -> str:
    """The filters, the table, and a line on what was left out."""
    rows = example_rows(assessment)
    if not rows:
        return '<p class="muted">No per-example answers were recorded.</p>'
    chosen = assessment.recommendation.rung if assessment.recommendation else None
    names = [r.name for r in assessment.rungs]
    order = {row.id: i for i, row in enumerate(rows)}
    kept: list[tuple[int, ExampleRow, str]] = []
    size = 0
    for row in by_interest(rows, chosen):
        html = _row(row, names, chosen)
        if len(kept) >= ROW_CAP or (kept and size + len(html) > BYTE_CAP):
            break
        kept.append((order[row.id], row, html))
        size += len(html)
    kept.sort(key=lambda item: item[0])
    shown = [row for _, row, _ in kept]
    head = "<th>id</th><th>input</th><th>expected</th>" + "".join(
        f"<th>{escape(n)}{' (recommended)' if n == chosen else ''}</th>" for n in names
    )
    table = (
        f'<div class="scroll"><table class="cases" id="examples"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(html for _, _, html in kept)}</tbody></table></div>"
    )
    return f'<p>{escape(_intro(rows, shown, chosen))}</p><div class="examples">{_filters(shown, chosen)}{table}</div>'


def _intro(rows: list[ExampleRow], shown: list[ExampleRow], chosen: str | None) -> str:
    line = (
        "One row per test example: its input, the expected answer, and each rung's answer (✓ right, ✗ wrong); "
        "a long text opens on a click, and hovering an answer shows the rung's raw output when it was read as a "
        "label. A marked row is one where the rungs disagree."
    )
    if len(shown) == len(rows):
        return line
    every = sum(r.disagree for r in shown) == sum(r.disagree for r in rows)
    which = (
        "every example where the rungs disagree, then the first of the rest"
        if every
        else "the first examples where the rungs disagree, those the recommended rung got wrong first"
    )
    return (
        f"{line} Showing {len(shown):,} of {len(rows):,} test examples ({which}); every example, with each "
        "rung's whole output, is in the Assessment JSON this report was made from (rungs[].records)."
    )


def _filters(shown: list[ExampleRow], chosen: str | None) -> str:
    disagree = sum(r.disagree for r in shown)
    missed = sum(r.missed_by(chosen) for r in shown)
    options = [("all", f"all examples ({len(shown):,})")]
    if disagree:
        options.append(("disagree", f"where the rungs disagree ({disagree:,})"))
    if chosen and missed:
        options.append(("missed", f"where the recommended rung, {chosen}, is wrong ({missed:,})"))
    default = "disagree" if disagree else "all"
    return "".join(
        f'<input type="radio" name="examples-filter" id="examples-{key}"{" checked" if key == default else ""}>'
        f'<label for="examples-{key}">{escape(text)}</label>'
        for key, text in options
    )


def _row(row: ExampleRow, names: list[str], chosen: str | None) -> str:
    marks = [name for name, on in (("disagree", row.disagree), ("missed", row.missed_by(chosen))) if on]
    cells = "".join(_answer(row.answers[n]) if n in row.answers else '<td class="muted">-</td>' for n in names)
    mark = f' class="{" ".join(marks)}"' if marks else ""
    return f"<tr{mark}><td>{escape(row.id)}</td><td>{_folded(row.input)}</td><td>{_folded(row.target)}</td>{cells}</tr>"


def _answer(answer: Answer) -> str:
    mark, style = ("✓", "ok") if answer.correct else ("✗", "bad")
    raw = answer.output if answer.output.strip() != answer.text.strip() else ""
    title = f' title="{escape(_cut(raw, TITLE))}"' if raw else ""
    return f'<td class="{style}"{title}>{mark} {_folded(answer.text)}</td>'


def _folded(text: str) -> str:
    """Short text as it is; long text as a one-line preview that opens to the whole (up to FULL characters)."""
    if not text.strip():
        return '<span class="muted">(empty)</span>'
    if len(text) <= PREVIEW:
        return escape(text)
    preview = " ".join(text.split())[:PREVIEW].rstrip() + "…"
    return f"<details><summary>{escape(preview)}</summary>{escape(_cut(text, FULL))}</details>"


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters in the Assessment JSON)"
