"""The store and the runner: nothing recomputed when nothing changed; an interrupted run resumes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from baselines.zero_shot import ZeroShotConfig, build_zero_shot
from harness.data.store import Store
from harness.inference.engine import Engine
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.metrics.scoring import classification_scorer
from harness.rungs import RungContext
from harness.runner import run_predictor
from harness.types import Example, Output

LABELS = ("billing", "technical", "access")
EXAMPLES = [
    Example(f"e{i}", text, label)
    for i, (text, label) in enumerate(
        [
            ("charged twice", "billing"),
            ("app crashes", "technical"),
            ("cannot log in", "access"),
            ("refund please", "billing"),
            ("error 500", "technical"),
            ("reset password", "access"),
            ("wrong invoice", "billing"),
        ]
    )
]


class Counting:
    """Wraps a real predictor and counts what it is asked to compute; can fail after N calls."""

    def __init__(self, inner: Any, fail_after: int | None = None):
        self.inner = inner
        self.calls: list[int] = []
        self.fail_after = fail_after

    def fingerprint(self) -> str:
        return str(self.inner.fingerprint())

    def prepare(self) -> None:
        self.inner.prepare()

    def tuned(self) -> None:
        return None

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        self.calls.append(len(examples))
        return list(self.inner.predict(examples))


@pytest.fixture
def predictor(tiny_model: Any, tiny_tokenizer: Any) -> Any:
    fmt = PromptFormat(instruction="Route the ticket.", labels=LABELS)
    context = RungContext(
        Engine(tiny_model, tiny_tokenizer),
        PromptBuilder(tiny_tokenizer, fmt),
        "classification",
        LABELS,
        (),
        (),
        "tiny",
        0,
    )
    return build_zero_shot(ZeroShotConfig(), context)


def run(predictor: Any, store: Store, **kwargs: Any) -> Any:
    return run_predictor(
        predictor, EXAMPLES, store, classification_scorer(LABELS), chunk_size=3, latency_sample=2, **kwargs
    )


def test_a_rerun_with_nothing_changed_computes_nothing(tmp_path: Path, predictor: Any) -> None:
    store = Store(tmp_path / "s.sqlite")
    first = run(Counting(predictor), store)
    again_predictor = Counting(predictor)
    again = run(again_predictor, store)
    assert again_predictor.calls == []
    assert (again.computed, again.reused) == (0, len(EXAMPLES))
    assert [r.output for r in again.records] == [r.output for r in first.records]
    assert again.single_latencies_s == first.single_latencies_s
    assert store.integrity_ok()


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path, predictor: Any) -> None:
    store = Store(tmp_path / "s.sqlite")
    with pytest.raises(KeyboardInterrupt):
        run(Counting(predictor, fail_after=1), store)
    resumed = Counting(predictor)
    result = run(resumed, store)
    assert result.computed == len(EXAMPLES) - 3 and result.reused == 3
    uninterrupted = run(Counting(predictor), Store(tmp_path / "fresh.sqlite"))
    assert [r.output.text for r in result.records] == [r.output.text for r in uninterrupted.records]


def test_records_carry_tokens_latency_and_the_scored_prediction(tmp_path: Path, predictor: Any) -> None:
    result = run(predictor, Store(tmp_path / "s.sqlite"))
    for record in result.records:
        assert record.output.text in LABELS
        assert record.output.prompt_tokens > 5 and record.output.completion_tokens >= 1
        assert record.output.latency_s > 0
        assert record.score.correct == (record.output.text == record.example.target)
    assert len(result.single_latencies_s) == 2 and all(t > 0 for t in result.single_latencies_s)


def test_the_store_is_shared_safely_between_connections(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    one, two = Store(path), Store(path)
    one.put_outputs("p", "batched", [("k1", "e1", Output("a", 1, 1, 0.1))])
    two.put_outputs("p", "batched", [("k2", "e2", Output("b", 2, 2, 0.2))])
    assert set(one.get_outputs(["k1", "k2"])) == {"k1", "k2"}
    assert two.integrity_ok()
