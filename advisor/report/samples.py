"""Every test example with each rung's answer, one JSON line each (lm-eval's `--log_samples`): for jq and grep."""

from __future__ import annotations

import json

from advisor.decision.assessment import Assessment
from advisor.report.examples import example_rows


def render_samples(assessment: Assessment) -> str:
    """One line per test example: id, input, target, and per rung its raw output, the answer read from it
    and whether that was right."""
    lines = []
    for row in example_rows(assessment):
        answers = {
            name: {"output": answer.output, "answer": answer.text, "correct": answer.correct}
            for name, answer in row.answers.items()
        }
        sample = {"id": row.id, "input": row.input, "target": row.target, "disagree": row.disagree, "rungs": answers}
        lines.append(json.dumps(sample, ensure_ascii=False) + "\n")
    return "".join(lines)
