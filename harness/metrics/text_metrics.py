"""Per-example text metrics: JSON fields, ROUGE-L, chrF, SQuAD exact match and token F1.

Pure functions of one prediction and its reference(s). Our scorers call them directly and the
`evaluate` scripts in harness/metrics/modules wrap them, so both routes give the same numbers.
Every score here is on a 0-1 scale (chrF too, although sacrebleu reports it on 0-100).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from harness.errors import InputError
from harness.inference.answer_text import normalize_answer
from harness.inference.answer_text import token_f1 as answer_token_f1

_DECODER = json.JSONDecoder()


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a model's output, around prose or ```json fences; None if none parses.

    Each "{" is tried in order, so an object nested in a broken one is still found.
    """
    start = text.find("{")
    while start != -1:
        try:
            value, _ = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(value, dict):
                return value
        start = text.find("{", start + 1)
    return None


def normalize_value(value: Any) -> str:
    """A leaf value as comparable text: stripped, case-folded, single spaces; 1.0 reads as 1."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return " ".join(text.split()).casefold()


def flatten_fields(obj: Any) -> dict[str, str]:
    """Nested dicts and lists as {dotted path: normalised value}; list items are indexed ("tags.0").

    An empty dict or list is kept as a field of its own ("{}" / "[]"), so it is not silently equal to
    a missing key. A bare scalar is the single field "".
    """
    fields: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            items: Sequence[tuple[str, Any]] = [(str(k), v) for k, v in node.items()]
        elif isinstance(node, list):
            items = [(str(i), v) for i, v in enumerate(node)]
        else:
            fields[path] = normalize_value(node)
            return
        if not items:
            fields[path] = "{}" if isinstance(node, dict) else "[]"
        for key, child in items:
            walk(child, f"{path}.{key}" if path else key)

    walk(obj, "")
    return fields


@dataclass(frozen=True)
class FieldCounts:
    """Field-level comparison of one predicted JSON object with the gold one.

    A field is a (path, value) pair; a wrong value counts once as a false positive and once as a
    false negative.
    """

    valid: bool
    true_positive: int
    false_positive: int
    false_negative: int
    exact: bool


def field_counts(prediction: str, reference: str | dict[str, Any]) -> FieldCounts:
    """Compare the JSON object in `prediction` with the gold object; no parsable object misses every gold field."""
    gold_object = reference if isinstance(reference, dict) else _gold_object(reference)
    gold = set(flatten_fields(gold_object).items())
    parsed = parse_json_object(prediction)
    if parsed is None:
        return FieldCounts(valid=False, true_positive=0, false_positive=0, false_negative=len(gold), exact=False)
    predicted = set(flatten_fields(parsed).items())
    hits = len(predicted & gold)
    return FieldCounts(
        valid=True,
        true_positive=hits,
        false_positive=len(predicted) - hits,
        false_negative=len(gold) - hits,
        exact=predicted == gold,
    )


def _gold_object(reference: str) -> dict[str, Any]:
    """The gold JSON object; gold that is not one is the user's data error, not the model's."""
    try:
        value = json.loads(reference)
    except json.JSONDecodeError as error:
        raise InputError(f"reference is not valid JSON ({error.msg}): {reference[:60]!r}") from None
    if not isinstance(value, dict):
        raise InputError(f"reference is JSON but not an object: {reference[:60]!r}")
    return value


@cache
def _rouge_scorer() -> Any:
    """One ROUGE-L scorer per process: building it loads the Porter stemmer."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (0-1) by `rouge-score`, Porter-stemmed.

    Its tokenizer keeps only ASCII letters and digits, so text in other scripts scores 0.
    """
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


@cache
def _chrf_metric() -> Any:
    """One sacrebleu chrF (character 6-grams, beta 2, no word n-grams) per process."""
    from sacrebleu.metrics import CHRF

    return CHRF()


def chrf(prediction: str, reference: str) -> float:
    """Sentence chrF by sacrebleu, divided by 100 so it shares the 0-1 scale of the other metrics."""
    return float(_chrf_metric().sentence_score(prediction, [reference]).score) / 100.0


def _answer_list(answers: str | Sequence[str]) -> Sequence[str]:
    return [answers] if isinstance(answers, str) else answers


def exact_match(prediction: str, answers: str | Sequence[str]) -> bool:
    """SQuAD exact match: the normalised prediction equals some normalised accepted answer."""
    normal = normalize_answer(prediction)
    return any(normal == normalize_answer(answer) for answer in _answer_list(answers))


def token_f1(prediction: str, answers: str | Sequence[str]) -> float:
    """SQuAD token F1 (0-1) against the best of the accepted answers; 0 when there are none."""
    return max((answer_token_f1(prediction, answer) for answer in _answer_list(answers)), default=0.0)
