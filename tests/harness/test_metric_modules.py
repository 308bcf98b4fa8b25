"""The shipped `evaluate` metric scripts load offline by path and compute hand-computed values."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sacrebleu
from sklearn.metrics import f1_score

from harness.errors import InputError
from harness.metrics.loading import SHIPPED_METRICS, load_metric


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network fails loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")


def test_every_shipped_metric_has_its_script() -> None:
    assert set(SHIPPED_METRICS) == {"accuracy", "macro_f1", "exact_match", "token_f1", "json_fields", "rouge_l", "chrf"}
    assert all(path.is_file() for path in SHIPPED_METRICS.values())


@pytest.mark.parametrize("name", sorted(SHIPPED_METRICS))
def test_shipped_metric_loads_without_network(name: str, no_network: None) -> None:
    module = load_metric(name)
    assert module.name == name  # evaluate names a module after its class, snake-cased
    assert module.description.strip()
    assert module.features is not None


def test_accuracy_counts_a_missing_label_as_wrong(no_network: None) -> None:
    result = load_metric("accuracy").compute(predictions=["a", "b", "", "c"], references=["a", "a", "b", "c"])
    assert result == {"accuracy": 0.5}


def test_macro_f1_by_hand_and_against_sklearn(no_network: None) -> None:
    references = ["a", "a", "b", "b", "c"]
    predictions = ["a", "b", "b", "", "a"]
    # a: tp 1, predicted 2, support 2 -> 0.5 ; b: tp 1, predicted 2, support 2 -> 0.5 ; c: 0
    result = load_metric("macro_f1").compute(predictions=predictions, references=references)
    assert result["macro_f1"] == pytest.approx(1 / 3)
    expected = f1_score(references, predictions, labels=["a", "b", "c"], average="macro")
    assert result["macro_f1"] == pytest.approx(expected)


def test_macro_f1_accepts_integer_labels(no_network: None) -> None:
    result = load_metric("macro_f1").compute(predictions=[0, 1, 1], references=[0, 1, 0])
    # 0: tp 1, predicted 1, support 2 -> 2/3 ; 1: tp 1, predicted 2, support 1 -> 2/3
    assert result["macro_f1"] == pytest.approx(2 / 3)


def test_exact_match_and_token_f1_take_one_answer_or_several(no_network: None) -> None:
    exact = load_metric("exact_match")
    assert exact.compute(predictions=["The Eiffel Tower!", "Paris"], references=[["eiffel tower"], ["Rome"]]) == {
        "exact_match": 0.5
    }
    assert exact.compute(predictions=["an Apple"], references=["apple."]) == {"exact_match": 1.0}
    f1 = load_metric("token_f1").compute(predictions=["blue whale", "orca"], references=[["the blue whale shark"], "x"])
    assert f1["token_f1"] == pytest.approx((0.8 + 0.0) / 2)


def test_json_fields_sums_counts_over_examples(no_network: None) -> None:
    predictions = ['{"a": 1, "b": "y", "c": 2}', "no json at all", 'Here:\n```json\n{"a": 2}\n```']
    references = ['{"a": 1, "b": "x"}', '{"a": 1}', json.dumps({"a": 2})]
    # tp 1 + 0 + 1 = 2, fp 2 + 0 + 0 = 2, fn 1 + 1 + 0 = 2
    result = load_metric("json_fields").compute(predictions=predictions, references=references)
    assert result == pytest.approx(
        {"valid_rate": 2 / 3, "precision": 0.5, "recall": 0.5, "f1": 0.5, "exact_match": 1 / 3}
    )


def test_rouge_l_is_the_mean_of_hand_computed_lcs_scores(no_network: None) -> None:
    result = load_metric("rouge_l").compute(
        predictions=["the cat sat on the mat", "a b c d"], references=["the cat lay on the mat", "a c e"]
    )
    assert result["rouge_l"] == pytest.approx((5 / 6 + 4 / 7) / 2)


def test_chrf_is_sacrebleu_chrf_over_100(no_network: None) -> None:
    prediction, reference = "The quick brown fox jumped over the dog.", "A quick brown fox jumps over the lazy dog."
    result = load_metric("chrf").compute(predictions=[prediction], references=[reference])
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf([prediction], [[reference]]).score / 100)


USER_METRIC = '''
"""A user's own metric: the share of predictions longer than their reference."""

import datasets
import evaluate


class Longer(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="share of longer predictions",
            citation="",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        return {"longer": sum(len(p) > len(r) for p, r in zip(predictions, references)) / len(references)}
'''


def test_user_metric_loads_from_a_path_relative_to_the_task(tmp_path: Path, no_network: None) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "longer.py").write_text(USER_METRIC)
    module = load_metric("metrics/longer.py", task_dir=tmp_path)
    assert module.compute(predictions=["abc", "a"], references=["ab", "abc"]) == {"longer": 0.5}


def test_missing_user_metric_file_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_metric("nowhere/mine.py", task_dir=tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "nowhere" / "mine.py") in message


def test_unknown_name_is_one_line_listing_shipped_metrics_and_never_asks_the_hub(no_network: None) -> None:
    with pytest.raises(InputError) as caught:
        load_metric("acuracy")
    message = str(caught.value)
    assert "\n" not in message
    assert "not a shipped metric" in message and "hub metrics are not loaded" in message
    assert "did you mean 'accuracy'?" in message
    assert all(name in message for name in SHIPPED_METRICS)


def test_hub_name_never_runs_a_same_named_local_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bleu").mkdir()
    (tmp_path / "bleu" / "bleu.py").write_text("raise SystemExit('must not run')\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="name the file"):
        load_metric("bleu")


OFFLINE_SCRIPT = """
import socket

def refuse(*args, **kwargs):
    raise ConnectionError("network disabled")

socket.socket.connect = refuse
socket.getaddrinfo = refuse

from harness.errors import InputError
from harness.metrics.loading import SHIPPED_METRICS, load_metric

for name in SHIPPED_METRICS:
    load_metric(name)
print(load_metric("accuracy").compute(predictions=["a", "b"], references=["a", "a"])["accuracy"])
try:
    load_metric("bleu")
except InputError as error:
    print("InputError", "\\n" in str(error))
"""


@pytest.mark.slow
def test_offline_env_in_a_fresh_process_and_a_fresh_cache(tmp_path: Path) -> None:
    # a fresh process: evaluate reads HF_EVALUATE_OFFLINE when imported; a fresh HF_HOME: no cached module helps
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(OFFLINE_SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.5", "InputError", "False"]
