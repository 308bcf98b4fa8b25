"""The report files beside an Assessment's JSON."""

from __future__ import annotations

from pathlib import Path

from advisor.decision.assessment import Assessment
from advisor.report.html import render_html
from advisor.report.markdown import render_markdown
from advisor.report.samples import render_samples
from harness.data.atomic import write_text_atomically


def write_reports(assessment: Assessment, json_path: Path) -> list[Path]:
    """The HTML and Markdown reports and the per-example samples beside the JSON (x.assessment.json ->
    x.assessment.html, .md, .samples.jsonl)."""
    written = []
    for suffix, render in ((".html", render_html), (".md", render_markdown), (".samples.jsonl", render_samples)):
        path = json_path.with_suffix(suffix)
        write_text_atomically(path, render(assessment))
        written.append(path)
    return written
