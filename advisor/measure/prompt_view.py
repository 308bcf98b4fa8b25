"""`advisor prompt`: what one rung of a task sends to the model for one test example, and what comes back.

A prompting rung is built exactly as `advisor assess` builds it (its choice on validation included, read
from the store when a run already made it) with an observer on its answerer, so what is shown is what the
rung sent: the conversation and the prompt text come from the same prompt builder the answerer encodes with.
A tuned rung is not trained here: its prompt is shown, and no answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from advisor.measure.prepare import AssessOptions, PreparedRun, ProgressHooks, prepare_run
from advisor.measure.rung_builder import BoundRungs, bound_rungs
from advisor.task.rung_plan import PlannedRung
from harness.errors import InputError
from harness.inference.answerer import PromptParts
from harness.inference.content_free import CONTENT_FREE
from harness.inference.observed import Sent
from harness.inference.prompts import PromptBuilder
from harness.rungs import RungContext
from harness.types import Example, Message

SHOWN_IDS = 5  # ids listed when an --example is unknown


@dataclass(frozen=True)
class ShownPrompt:
    """One prompt: its conversation, its text after the chat template (or as plain text) and its token count."""

    messages: list[Message]
    text: str
    tokens: int
    chat: bool  # the text is the chat template's rendering; False: the plain-text format (no template)


@dataclass(frozen=True)
class PromptView:
    """What a rung sends for one example, and what it answers (None for a tuned rung, which is not trained here)."""

    task: str
    rung: str
    kind: str
    example_id: str
    target: str
    answered_by: str
    options: dict[str, Any]
    prompts: list[ShownPrompt]
    chosen_on_validation: dict[str, Any] | None = None
    mode: str | None = None  # "score" (the likeliest label) or "generate"
    answer: str | None = None
    prompt_tokens: int | None = None  # as the model counted them (an endpoint's own count)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The view as JSON-ready data."""
        return asdict(self)


def view_prompt(task_path: Path, rung_name: str, example_id: str | None, hooks: ProgressHooks) -> PromptView:
    """Build the named rung as `assess` does and show what it sends for one test example (default: the first)."""
    run = prepare_run(task_path, AssessOptions(rungs=(rung_name,), rungs_option="--rung"), hooks)
    example = pick_example(run.test, example_id)
    planned = run.planned[0]
    with bound_rungs(run, hooks=hooks) as rungs:
        if not planned.type.remote:  # it answers with weights of its own, not through the prompting path
            return _tuned_view(run, planned, rungs.context_for(planned), example)
        return _prompting_view(run, rungs, planned, example, hooks)


def pick_example(test: Sequence[Example], example_id: str | None) -> Example:
    """The test example of this id (the first when none is given); an unknown id names a few known ones."""
    if example_id is None:
        return test[0]
    for example in test:
        if example.id == example_id:
            return example
    known = ", ".join(e.id for e in test[:SHOWN_IDS]) + (", ..." if len(test) > SHOWN_IDS else "")
    raise InputError(f"--example: no test example has the id '{example_id}' (test ids: {known})")


class _Recorder:
    """Keeps the prompts sent for one example, once the rung is built (its choice on validation is not shown)."""

    def __init__(self, example: Example):
        self.example = example
        self.listening = False
        self.sent: list[Sent] = []

    def __call__(self, sent: Sent) -> None:
        if self.listening and sent.parts.example == self.example:  # content-free calibration prompts are not it
            self.sent.append(sent)


def _prompting_view(
    run: PreparedRun, rungs: BoundRungs, planned: PlannedRung, example: Example, hooks: ProgressHooks
) -> PromptView:
    recorder = _Recorder(example)
    built = rungs.build(planned, observer=recorder)
    context, config, selection, predictor = built.context, built.config, built.selection, built.predictor
    recorder.listening = True
    predictor.prepare()
    hooks.stage(f"{planned.name}: answering test example {example.id}")
    output = predictor.predict([example])[0]
    notes = []
    if config.calibrates():
        notes.append(
            f"calibrated: the rung also sends content-free prompts ({', '.join(CONTENT_FREE)} in place of the input) "
            "and divides their label prior out of this prompt's label scores; the answer is after calibration"
        )
    if planned.endpoint is not None:
        notes.append(
            "the endpoint receives the conversation (or, for echo scoring, the text); the text and token count "
            "shown are the task tokenizer's, the answer's prompt tokens the endpoint's own count"
        )
    last = recorder.sent[-1] if recorder.sent else None
    return PromptView(
        task=run.task.spec.name,
        rung=planned.name,
        kind=planned.type.kind,
        example_id=example.id,
        target=example.target,
        answered_by=_answered_by(run, planned),
        options=config.model_dump(mode="json", exclude={"search"}),
        prompts=[_shown(context.prompts, s.parts) for s in recorder.sent],
        chosen_on_validation=selection.choices[selection.chosen].params if selection is not None else None,
        mode=last.mode if last is not None else None,
        answer=output.text,
        prompt_tokens=last.output.prompt_tokens if last is not None else None,
        notes=notes,
    )


def _tuned_view(run: PreparedRun, planned: PlannedRung, context: RungContext, example: Example) -> PromptView:
    from tuning.rows import tuned_prompts  # torch and the tuning stack only for a tuned rung

    return PromptView(
        task=run.task.spec.name,
        rung=planned.name,
        kind=planned.type.kind,
        example_id=example.id,
        target=example.target,
        answered_by=_answered_by(run, planned),
        options=planned.config.model_dump(mode="json", exclude={"search"}),
        prompts=[_shown(tuned_prompts(context.prompts), PromptParts(example))],
        notes=[
            f"'{planned.name}' is a tuned rung and is not trained here: its tuned model receives the task's "
            "zero-shot prompt without the label list (it learned the labels), shown below; learned virtual "
            "tokens, if the method adds any, are not"
        ],
    )


def _shown(prompts: PromptBuilder, parts: PromptParts) -> ShownPrompt:
    """The prompt as the local answerer encodes it (prefix and query tokenized apart, as they are computed)."""
    head, query = prompts.split(parts.example, parts.demos, demos_shared=parts.demos_shared, passages=parts.passages)
    return ShownPrompt(
        messages=prompts.messages(parts.example, parts.demos, parts.passages),
        text=prompts.text(parts.example, parts.demos, parts.passages),
        tokens=len(head) + len(query),
        chat=prompts.format.chat,
    )


def _answered_by(run: PreparedRun, planned: PlannedRung) -> str:
    if planned.endpoint is not None:
        return f"endpoint {planned.endpoint}"
    return f"model {planned.model}" if planned.model is not None else f"model {run.source.name}"
