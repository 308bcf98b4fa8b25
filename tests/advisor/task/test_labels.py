"""Reading a label out of generated text, and checking targets against the label set."""

from __future__ import annotations

import pytest

from harness.data.labels import check_targets, infer_labels, match_label, rename_targets
from harness.errors import InputError
from harness.types import Example

LABELS = ["billing", "technical_issue", "account_access", "bill"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("billing", "billing"),
        ("  Billing. ", "billing"),
        ("technical issue", "technical_issue"),
        ("Technical_Issue", "technical_issue"),
        ("billing - the customer was charged twice", "billing"),
        ("bill", "bill"),
        ("The answer is account access.", "account_access"),
        ("either billing or account access", None),
        ("no idea", None),
        ("", None),
    ],
)
def test_match_label(text: str, expected: str | None) -> None:
    assert match_label(text, LABELS) == expected


def test_targets_outside_the_label_set_name_the_row() -> None:
    examples = [Example("a", "x", "billing"), Example("b", "y", "refnd")]
    with pytest.raises(InputError, match=r"test.jsonl row 2 \(id b\): label 'refnd' is not one of the labels"):
        check_targets(examples, ["billing", "refund"], "test.jsonl")


def test_inferred_labels_are_sorted_and_distinct() -> None:
    assert infer_labels([Example("a", "x", "b"), Example("b", "y", "a"), Example("c", "z", "b")]) == ("a", "b")


def test_raw_targets_are_renamed() -> None:
    renamed = rename_targets([Example("a", "x", "0"), Example("b", "y", "1")], {"0": "negative", "1": "positive"})
    assert [e.target for e in renamed] == ["negative", "positive"]
