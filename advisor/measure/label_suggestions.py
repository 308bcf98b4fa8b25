"""`advisor assess --suggest-labels N`: which unlabelled inputs to label next to settle a close call.

The close rivals are the chosen rung, every rung ahead of it by more than the tolerance but not
clearly (`recommendation.undecided`), and every close call. Each answers the task's `data.unlabelled`
inputs (through the store, so a re-run answers nothing twice); the inputs on which they disagree are
the ones whose labels move the paired comparison (McNemar's test counts only those), so the N with the
most distinct answers among the rivals are written as JSONL, ready to annotate and append to the test
file. Inputs already in train, validation or test are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from advisor.decision.assessment import Assessment
from advisor.measure.prepare import PreparedRun
from advisor.measure.rung_builder import bound_rungs
from harness.data.atomic import write_text_atomically
from harness.data.file_names import file_slug
from harness.data.loading import FieldMap, load_inputs
from harness.errors import InputError
from harness.metrics.scoring import scorer_for
from harness.runner import run_predictor
from harness.types import Example


@dataclass(frozen=True)
class LabelSuggestions:
    """What was written, from how many unlabelled inputs, and which rivals disagreed on them."""

    path: Path | None
    rivals: list[str]
    written: int
    disagreements: int
    candidates: int

    def describe(self, asked: int) -> str:
        """One line for the terminal: what was written, or why nothing was."""
        if len(self.rivals) < 2:
            return "No close call to settle: no rung is close to the chosen one, so no labels were suggested."
        if self.path is None or not self.written:
            return (
                f"The close rivals ({', '.join(self.rivals)}) agree on all {self.candidates} new unlabelled inputs: "
                "labelling them would not separate them."
            )
        short = f" (only {self.written} of the {self.candidates} disagree)" if self.written < asked else ""
        return (
            f"{self.written} inputs on which {', '.join(self.rivals)} disagree written to {self.path}{short}: "
            "fill in the target field and append them to the test file; a re-run computes only the new examples."
        )


def close_rivals(assessment: Assessment) -> list[str]:
    """The chosen rung and the rungs a close call or a thin comparison names, in ladder order."""
    advice = assessment.recommendation
    if advice is None or advice.rung is None:
        return []
    named = {advice.rung, *advice.undecided, *(call.rung for call in advice.close_calls)}
    return [r.name for r in assessment.rungs if r.name in named]


def suggest_labels(run: PreparedRun, assessment: Assessment, count: int) -> LabelSuggestions:
    """Write the `count` unlabelled inputs the close rivals disagree on most; the path is beside the store."""
    spec = run.task.spec
    if spec.data.unlabelled is None:
        raise InputError(f"{run.task.path}: data.unlabelled: --suggest-labels needs a file of unlabelled inputs")
    fields = run.task.data_spec().fields
    source = run.context.resolve(spec.data.unlabelled)
    known = {e.input for e in (*run.splits.train, *run.splits.validation, *run.splits.test) if isinstance(e.input, str)}
    inputs = [e for e in load_inputs(source, FieldMap(input=fields.input, id=fields.id)) if e.input not in known]
    rivals = close_rivals(assessment)
    if len(rivals) < 2 or not inputs:
        return LabelSuggestions(None, rivals, 0, 0, len(inputs))
    answers = _answers(run, rivals, inputs)
    spread = [(len({answers[name][i] for name in rivals}), i) for i in range(len(inputs))]
    chosen = sorted((-distinct, i) for distinct, i in spread if distinct > 1)[:count]
    target_field = fields.target or "label"
    input_field = fields.input or "text"
    lines = [
        json.dumps(
            {
                fields.id or "id": inputs[i].id,
                input_field: inputs[i].input,
                target_field: None,
                "answers": {name: answers[name][i] for name in rivals},
            },
            ensure_ascii=False,
        )
        for _, i in chosen
    ]
    path = run.store_path.parent / f"{file_slug(spec.name)}.label-suggestions.jsonl"
    write_text_atomically(path, "".join(line + "\n" for line in lines))
    return LabelSuggestions(path, rivals, len(lines), sum(d > 1 for d, _ in spread), len(inputs))


def _answers(run: PreparedRun, rivals: list[str], inputs: list[Example]) -> dict[str, list[str]]:
    """Each rival's answer (its predicted label, or its output text) to every unlabelled input, from the rung
    built as the assessment built it (its choice on validation, its endpoint or other model)."""
    planned = {p.name: p for p in run.planned}
    scorer = scorer_for(run.context.task_type, run.context.labels)
    answers: dict[str, list[str]] = {}
    with bound_rungs(run) as rungs:
        for name in rivals:
            predictor = rungs.build(planned[name]).predictor
            seed = run.task.spec.seed
            records = run_predictor(predictor, inputs, rungs.store, scorer, latency_sample=0, seed=seed).records
            answers[name] = [str(r.score.detail.get("prediction") or r.output.text) for r in records]
    return answers
