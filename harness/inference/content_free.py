"""Contextual calibration ("Calibrate Before Use", Zhao et al. 2021): a prompt's label prior, divided out.

A prompt leans toward some labels whatever its input: the label the model likes best, the labels and
order of the demonstrations. Scoring the labels after content-free inputs in the same prompt
measures that lean, p_cf (each input's label probabilities normalised over the labels, averaged over
the inputs). An input's label probabilities are then divided by it (W = diag(1/p_cf)) and
renormalised, and the answer is their argmax.

The content-free scores are computed once per calibration context (the demonstrations and passages
the content-free inputs are shown with) and kept, in the same batch as the answers that first need
them, so a shared prefix is run once for both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from harness.data.hashing import content_hash
from harness.errors import InputError
from harness.inference.answerer import Answerer, PromptParts
from harness.inference.answering import Mode
from harness.inference.scoring_modes import EXACT_SCORING, SCORING_MODES
from harness.inference.wrapped import WrappedAnswerer
from harness.types import Example, Output

CONTENT_FREE = ("N/A", "[MASK]")
"""The content-free inputs. Adding the paper's third, "", moved accuracy by at most one ticket in 64 per rung,
either way (benchmarks/calibration.py), and would cost half as much again where each prompt is its own context."""

ContextOf = Callable[[PromptParts], PromptParts]
"""The prompt a content-free input is shown in, for a given prompt (its example is replaced)."""


def label_probabilities(logprobs: Sequence[float]) -> list[float]:
    """The labels' probabilities normalised over the labels (a softmax of their log-likelihoods)."""
    top = max(logprobs)
    weights = [math.exp(value - top) for value in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def content_free_prior(rows: Sequence[Sequence[float]]) -> list[float]:
    """p_cf: the mean over the content-free inputs of their label probabilities."""
    probabilities = [label_probabilities(row) for row in rows]
    return [sum(column) / len(probabilities) for column in zip(*probabilities, strict=True)]


def calibrated_logprobs(logprobs: Sequence[float], prior: Sequence[float]) -> list[float]:
    """log of diag(1/p_cf) p, renormalised over the labels."""
    shifted = [value - math.log(max(p, 1e-300)) for value, p in zip(logprobs, prior, strict=True)]
    top = max(shifted)
    norm = top + math.log(sum(math.exp(value - top) for value in shifted))
    return [value - norm for value in shifted]


@dataclass(frozen=True)
class Prior:
    """One calibration context's p_cf and the prompt tokens its content-free inputs took."""

    probabilities: tuple[float, ...]
    prompt_tokens: int


def context_key(parts: PromptParts) -> str:
    """What the content-free prompts of a calibration context are made of."""
    demos = [(d.id, d.input, d.target) for d in parts.demos]
    return content_hash(demos, list(parts.passages), parts.demos_shared)


class CalibratedAnswerer(WrappedAnswerer):
    """Answers through another answerer, each label score divided by its calibration context's p_cf.

    `context_of` says which prompt the content-free inputs go into for a given prompt. A context that
    every prompt of the rung shares costs its content-free scoring once; one that is a prompt's own
    (per-example demonstrations) adds its content-free prompt tokens to that prompt's output, since a
    deployed rung pays them on every request.
    """

    def __init__(
        self,
        inner: Answerer,
        context_of: ContextOf,
        label_tokens: Callable[[str], int],
        where: str,
        inputs: Sequence[str] = CONTENT_FREE,
    ):
        super().__init__(inner)
        self.context_of = context_of
        self.label_tokens = label_tokens
        self.where = where
        self.inputs = tuple(inputs)
        self._priors: dict[str, Prior] = {}
        self.content_free_prompts = 0  # content-free prompts this answerer asked for (what calibrating cost)
        self.content_free_tokens = 0  # and their prompt tokens

    def answer(
        self, parts: Sequence[PromptParts], labels: Sequence[str], mode: Mode, max_new_tokens: int
    ) -> list[Output]:
        """The answers, calibrated; content-free prompts of new contexts are scored in the same batch."""
        if mode != "score":
            raise InputError(f"{self.where}: 'on' needs answers scored over the labels; this rung generates")
        scoring = self.inner.scoring(mode)
        if scoring not in EXACT_SCORING:
            raise InputError(
                f"{self.where}: 'on' needs every label's exact likelihood; this rung's answers are read "
                f"from {SCORING_MODES.get(scoring, scoring)}"
            )
        contexts = [self.context_of(p) for p in parts]
        keys = [context_key(c) for c in contexts]
        todo = {key: c for key, c in zip(keys, contexts, strict=True) if key not in self._priors}
        free = [self._content_free(context, n) for context in todo.values() for n in range(len(self.inputs))]
        outputs = self.inner.answer([*parts, *free], labels, mode, max_new_tokens)
        answers, scored = outputs[: len(parts)], outputs[len(parts) :]
        width = len(self.inputs)
        for i, key in enumerate(todo):
            group = scored[i * width : (i + 1) * width]
            prior = content_free_prior([_scores(o, labels) for o in group])
            self._priors[key] = Prior(tuple(prior), sum(o.prompt_tokens for o in group))
        self.content_free_prompts += len(free)
        self.content_free_tokens += sum(o.prompt_tokens for o in scored)
        charged: set[str] = set()
        results = []
        for output, context, key in zip(answers, contexts, keys, strict=True):
            own = key in todo and key not in charged and _per_prompt(context)
            if own:
                charged.add(key)
            results.append(self._calibrated(output, labels, self._priors[key], own))
        return results

    def _content_free(self, context: PromptParts, n: int) -> PromptParts:
        return replace(context, example=Example(f"content-free-{n}", self.inputs[n], ""), detail={})

    def _calibrated(self, output: Output, labels: Sequence[str], prior: Prior, own: bool) -> Output:
        raw = _scores(output, labels)
        calibrated = calibrated_logprobs(raw, prior.probabilities)
        best = max(range(len(labels)), key=calibrated.__getitem__)
        extra = prior.prompt_tokens if own else 0
        detail = {
            **output.detail,
            "logprobs": {label: round(v, 4) for label, v in zip(labels, calibrated, strict=True)},
            "uncalibrated_logprobs": output.detail["logprobs"],
            "content_free": {label: round(p, 6) for label, p in zip(labels, prior.probabilities, strict=True)},
            "content_free_tokens": extra,
        }
        return replace(
            output,
            text=labels[best],
            prompt_tokens=output.prompt_tokens + extra,
            completion_tokens=self.label_tokens(labels[best]),
            detail=detail,
        )


def _per_prompt(context: PromptParts) -> bool:
    """Whether a calibration context is one prompt's own (its demonstrations differ per example)."""
    return bool(context.demos or context.passages) and not context.demos_shared


def _scores(output: Output, labels: Sequence[str]) -> list[float]:
    logprobs = output.detail.get("logprobs")
    if not isinstance(logprobs, dict) or any(logprobs.get(label) is None for label in labels):
        raise ValueError("a calibrated answer needs every label's log-likelihood")
    return [float(logprobs[label]) for label in labels]
