"""Per-example text metrics against hand-computed values and sacrebleu's own chrF."""

from __future__ import annotations

import pytest
import sacrebleu

from harness.errors import InputError
from harness.metrics.text_metrics import (
    FieldCounts,
    chrf,
    exact_match,
    field_counts,
    flatten_fields,
    parse_json_object,
    rouge_l,
    token_f1,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('Sure! Here it is:\n```json\n{"a": 1, "b": [1, 2]}\n```\nAnything else?', {"a": 1, "b": [1, 2]}),
        ('{"a": "}"} trailing {"b": 2}', {"a": "}"}),
        ('first {not json} then {"k": "v"}', {"k": "v"}),
        ('{"outer": {"inner": 1}}', {"outer": {"inner": 1}}),
    ],
)
def test_parse_json_object_finds_the_first_object(text: str, expected: dict[str, object]) -> None:
    assert parse_json_object(text) == expected


@pytest.mark.parametrize("text", ["no json here", "[1, 2, 3]", '{"a": 1', ""])
def test_parse_json_object_none_when_no_object_parses(text: str) -> None:
    assert parse_json_object(text) is None


def test_flatten_fields_dotted_paths_and_normalised_values() -> None:
    obj = {"Name": "  Ada   LOVELACE ", "tags": ["X", {"y": 2.0}], "empty": {}, "none": [], "n": None, "ok": True}
    assert flatten_fields(obj) == {
        "Name": "ada lovelace",
        "tags.0": "x",
        "tags.1.y": "2",
        "empty": "{}",
        "none": "[]",
        "n": "null",
        "ok": "true",
    }


def test_field_counts_by_hand() -> None:
    # fields: pred {a=1, b=y, c=2}, gold {a=1, b=x}: a matches; b=y and c=2 are false positives; b=x is missed
    counts = field_counts('{"a": 1, "b": "y", "c": 2}', '{"a": 1, "b": "x"}')
    assert counts == FieldCounts(valid=True, true_positive=1, false_positive=2, false_negative=1, exact=False)


def test_field_counts_invalid_prediction_misses_every_gold_field() -> None:
    counts = field_counts("I could not find the fields.", {"a": 1, "b": {"c": "x"}})
    assert counts == FieldCounts(valid=False, true_positive=0, false_positive=0, false_negative=2, exact=False)


def test_field_counts_exact_after_normalisation() -> None:
    counts = field_counts('```json\n{"city": " new  YORK", "zip": 10001.0}\n```', {"city": "New York", "zip": 10001})
    assert counts == FieldCounts(valid=True, true_positive=2, false_positive=0, false_negative=0, exact=True)


@pytest.mark.parametrize("reference", ["not json", "[1, 2]"])
def test_field_counts_bad_gold_is_an_input_error(reference: str) -> None:
    with pytest.raises(InputError, match="reference"):
        field_counts('{"a": 1}', reference)


def test_rouge_l_by_hand_lcs() -> None:
    # LCS "the cat on the mat" = 5 of 6 tokens each side: P = R = F = 5/6
    assert rouge_l("the cat sat on the mat", "the cat lay on the mat") == pytest.approx(5 / 6)
    # LCS "a c" = 2: P = 2/4, R = 2/3, F = 2PR / (P + R) = 4/7
    assert rouge_l("a b c d", "a c e") == pytest.approx(4 / 7)


def test_rouge_l_stems_and_is_zero_for_disjoint_text() -> None:
    assert rouge_l("cats running", "cat runs") == pytest.approx(1.0)
    assert rouge_l("alpha beta", "gamma delta") == 0.0


def test_chrf_matches_sacrebleu_corpus_chrf_on_one_pair() -> None:
    prediction, reference = "The quick brown fox jumped over the dog.", "A quick brown fox jumps over the lazy dog."
    expected = sacrebleu.corpus_chrf([prediction], [[reference]]).score / 100
    assert chrf(prediction, reference) == pytest.approx(expected)
    assert 0.0 < chrf(prediction, reference) < 1.0
    assert chrf(reference, reference) == pytest.approx(1.0)


def test_exact_match_squad_normalisation() -> None:
    assert exact_match("The Eiffel Tower!", ["eiffel tower", "tour eiffel"])
    assert exact_match("an apple", "Apple.")
    assert not exact_match("the tower", ["eiffel tower"])


def test_token_f1_best_answer_by_hand() -> None:
    # [blue, whale] vs [blue, whale, shark]: P = 1, R = 2/3, F = 0.8; "orca" scores 0
    assert token_f1("blue whale", ["the blue whale shark", "orca"]) == pytest.approx(0.8)
    assert token_f1("orca", "Orca.") == 1.0
    assert token_f1("anything", []) == 0.0
