"""Hostile task files: whatever `assess` would refuse, `advisor check` refuses first, in one line, exit 2.

No model is loaded here: a model folder is a config and an empty weights file, which the pre-flight
accepts and a real load would not (so a test also shows that nothing tried to load it).
"""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from advisor.cli.check import check_task
from advisor.cli.main import main
from harness.data.hashing import content_hash
from harness.errors import InputError
from harness.inference.models import resolve_model
from harness.safe_yaml import MAX_EXPANDED_VALUES, BoundedLoader, load_yaml
from harness.schema import short_repr
from tests.conftest import TICKETS, write_jsonl

BRANCH_NAMES = ("list[", "dict[", "str]", ".str", "TokenPriceSpec", "SearchOptions", "literal[", "function-")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network fails loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was reached")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A task folder: ticket data and a model folder that only the pre-flight would accept."""
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    write_jsonl(tmp_path / "train.jsonl", rows[0::2])
    write_jsonl(tmp_path / "test.jsonl", rows[1::2])
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"")
    return tmp_path


def task(folder: Path, extra: str = "") -> Path:
    path = folder / "task.yaml"
    path.write_text("name: t\nmodel: ./model\ndata: {train: train.jsonl, test: test.jsonl}\n" + extra)
    return path


def check(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", str(path), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 0 or len(lines) == 1, result.stderr
    return result.exit_code, result.stderr


def refused(path: Path, *expected: str) -> str:
    code, message = check(path)
    assert code == 2, message
    assert str(path) in message and all(part in message for part in expected), message
    return message


def test_a_valid_task_passes(folder: Path) -> None:
    code, message = check(task(folder))
    assert code == 0, message


# ---- seeds and other numbers -------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", str(2**31), str(10**30)])
def test_a_seed_out_of_range_is_refused(folder: Path, seed: str) -> None:
    refused(task(folder, f"seed: {seed}\n"), "seed: expected a seed from 0 to 2147483647")


def test_the_largest_seed_passes(folder: Path) -> None:
    assert check(task(folder, f"seed: {2**31 - 1}\n"))[0] == 0


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("rungs: [{rung: zero_shot, max_new_tokens: true}]\n", "rungs[0].max_new_tokens"),
        ("evaluation: {latency_sample: true}\n", "evaluation.latency_sample"),
        ("constraints: {max_cost_per_1k: true}\n", "constraints.max_cost_per_1k"),
        ("rungs: [{rung: lora, search: {trials: true}}]\n", "rungs[0].search.trials"),
    ],
)
def test_true_is_not_a_number(folder: Path, extra: str, field: str) -> None:
    refused(task(folder, extra), f"{field}: expected a number, not true or false")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("costs: {requests_per_month: .inf}\n", "costs.requests_per_month"),
        ("constraints: {min_quality: .nan}\n", "constraints.min_quality"),
        (
            "rungs: [{rung: lora, search: {space: {learning_rate: {low: 0.001, high: .inf, log: false}}}}]\n",
            "rungs[0].search.space.learning_rate.high",
        ),
    ],
)
def test_an_endless_number_is_refused(folder: Path, extra: str, field: str) -> None:
    message = refused(task(folder, extra), f"{field}: Input should be a finite number")
    assert not any(name in message for name in BRANCH_NAMES), message


def test_booleans_stay_booleans_and_seeds_off_stays_off(folder: Path) -> None:
    extra = "facts: {data_must_stay_in_house: true}\ndecision: {seeds: off}\nprompt: {list_labels: false}\n"
    assert check(task(folder, extra))[0] == 0


# ---- labels and messages of union fields ---------------------------------------------------------


def test_integer_label_keys_name_the_data_values(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "d.jsonl", [{"text": "good", "label": 1}, {"text": "bad", "label": 0}, {"text": "ok", "label": 1.0}]
    )
    path = tmp_path / "task.yaml"
    path.write_text("name: t\ndata: {test: d.jsonl}\nlabels: {0: negative, 1: positive}\n")
    assert check_task(path).labels == ("negative", "positive")
    path.write_text("name: t\ndata: {test: d.jsonl}\nlabels: [0, 1]\n")
    assert check_task(path).labels == ("0", "1")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("labels: 5\n", "labels: expected a list of label names, or a mapping of data value to label name (got 5)"),
        ("labels: {a: [1]}\n", "labels.a: Input should be a valid string"),
        ("rungs: [5]\n", "rungs.0: expected a rung name, or a mapping with 'rung: <name>'"),
        ("decision: {seeds: many}\n", "decision.seeds: expected 2 to 10 training seeds, or off"),
        (
            "endpoints: {api: {base_url: 'http://127.0.0.1:1/v1', model: m, price: 5}}\n",
            "endpoints.api.price: expected",
        ),
        (
            "endpoints: {api: {base_url: 'http://127.0.0.1:1/v1', model: m, price: {input_per_million: 1}}}\n",
            "endpoints.api.price.output_per_million: required field is missing",
        ),
        ("rungs: [{rung: lora, search: 5}]\n", "rungs[0].search: expected a mapping or false (got 5)"),
        ("labels: [yes, no]\n", "labels.0: expected text; YAML reads a bare yes, no, on, off, true or false"),
    ],
)
def test_a_union_field_says_what_it_accepts_and_names_no_branch(folder: Path, extra: str, expected: str) -> None:
    message = refused(task(folder, extra), expected)
    assert not any(name in message for name in BRANCH_NAMES), message


# ---- YAML aliases --------------------------------------------------------------------------------

BOMB = "".join(
    [
        "name: t\ndata: {test: test.jsonl}\n",
        'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n',
        *(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)),
    ]
)


def test_an_alias_bomb_is_refused_before_any_value_is_built(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    assert len(BOMB) < 1024

    def never(*args: object) -> None:
        raise AssertionError("a value was built from the bomb")

    monkeypatch.setattr(BoundedLoader, "construct_document", never)
    with pytest.raises(InputError, match=r"task.yaml: too many YAML aliases \(they expand to more than"):
        load_yaml(BOMB, "task.yaml")
    monkeypatch.undo()
    path = folder / "task.yaml"
    path.write_text(BOMB)
    refused(path, "too many YAML aliases")


def test_a_recursive_alias_and_an_endless_integer_are_one_line(folder: Path) -> None:
    refused(task(folder, "rungs: &r [zero_shot, *r]\n"), "a YAML alias refers to the value that contains it")
    refused(task(folder, "seed: " + "9" * 5000 + "\n"), "line 4: not valid YAML (an integer too long to read)")


def test_aliases_and_merge_keys_within_the_bound_still_work(folder: Path) -> None:
    extra = (
        "endpoints:\n  a: &e {base_url: 'http://127.0.0.1:1/v1', model: m}\n  b: {<<: *e, model: n}\n"
        "rungs: [zero_shot, {rung: zero_shot, name: remote, endpoint: b}]\n"
    )
    assert check(task(folder, extra))[0] == 0
    uses = MAX_EXPANDED_VALUES // 1001 - 2  # just under the bound: 1001 values each, and x itself
    wide = "x: &x [" + ", ".join(["1"] * 1000) + "]\ny: [" + ", ".join(["*x"] * uses) + "]\n"
    assert len(load_yaml(wide, "t")["y"]) == uses


def test_a_message_shows_a_bounded_part_of_any_value() -> None:
    shared: Any = ["lol"] * 10
    for _ in range(40):  # 10**41 leaves, as an alias bomb loads
        shared = [shared] * 10
    assert len(short_repr(shared)) <= 60
    assert short_repr(10**5000) == "<an integer of 5001 digits>" and short_repr(True) == "true"


# ---- models ----------------------------------------------------------------------------------------


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty local Hugging Face cache."""
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_a_model_missing_offline_is_refused_at_once(folder: Path, hub_cache: Path, no_network: None) -> None:
    path = task(folder)
    path.write_text(path.read_text().replace("./model", "ladder-test/missing"))
    refused(path, "model 'ladder-test/missing': not in the local Hugging Face cache", str(hub_cache), "never downloads")
    result = CliRunner().invoke(main, ["assess", str(path)])
    assert result.exit_code == 2 and "not in the local Hugging Face cache" in result.stderr


def test_a_rung_model_or_teacher_missing_offline_is_refused(folder: Path, hub_cache: Path, no_network: None) -> None:
    rung = "rungs: [{rung: zero_shot, name: other, model: ladder-test/missing}]\n"
    refused(task(folder, rung), "rungs.other.model: model 'ladder-test/missing': not in the local Hugging Face cache")
    student = "rungs: [zero_shot, {rung: distill, teacher: ladder-test/missing}]\n"
    refused(task(folder, student), "rungs.distill.teacher: no rung named 'ladder-test/missing'")


def test_a_cached_hub_model_loads_from_its_snapshot_folder(hub_cache: Path, no_network: None) -> None:
    repo = hub_cache / "models--ladder-test--cached"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"")
    source = resolve_model("ladder-test/cached")
    assert source.path == str(snapshot) and source.name == "ladder-test/cached"
    assert source.fingerprint == content_hash("hub", "ladder-test/cached")  # results stored before still count


# ---- everything assess refuses, check refuses ----------------------------------------------------


def test_an_unset_key_and_an_outside_host_are_refused_at_check(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LADDER_TEST_KEY", raising=False)
    endpoint = "endpoints: {api: {base_url: 'https://api.ladder.invalid/v1', model: m, api_key_env: LADDER_TEST_KEY}}\n"
    rungs = "rungs: [{rung: zero_shot, endpoint: api}]\n"
    refused(task(folder, endpoint + rungs), "environment variable LADDER_TEST_KEY is not set")
    monkeypatch.setenv("LADDER_TEST_KEY", "sk-test")
    assert check(task(folder, endpoint + rungs))[0] == 0
    refused(task(folder, endpoint + rungs + "facts: {data_must_stay_in_house: true}\n"), "host 'api.ladder.invalid'")


def test_a_teachers_endpoint_is_checked_with_its_student(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LADDER_TEST_KEY", raising=False)
    endpoint = "endpoints: {api: {base_url: 'https://api.ladder.invalid/v1', model: m, api_key_env: LADDER_TEST_KEY}}\n"
    rungs = "rungs: [{rung: zero_shot, name: big, endpoint: api}, {rung: distill, teacher: big}]\n"
    from advisor.measure.preflight import preflight

    with pytest.raises(InputError, match="LADDER_TEST_KEY is not set"):
        preflight(task(folder, endpoint + rungs), ["distill"])


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("acuracy", "metric 'acuracy' is not a shipped metric; did you mean 'accuracy'?"),
        ("some-user/some-metric", "hub metrics are not loaded"),
        ("bleu", "hub metrics are not loaded"),
    ],
)
def test_a_metric_that_is_not_shipped_nor_a_file_is_refused_without_network(
    folder: Path, no_network: None, metric: str, expected: str
) -> None:
    refused(task(folder, f"evaluation: {{metrics: [{metric}]}}\n"), "evaluation.metrics:", expected)


def test_a_missing_metric_file_and_an_unknown_tracking_backend_are_refused(folder: Path) -> None:
    refused(task(folder, "evaluation: {metrics: [mine.py]}\n"), "evaluation.metrics: metric: no metric module file")
    refused(task(folder, "tracking: {to: [nowhere]}\n"), "tracking.to: unknown tracking backend 'nowhere'")


def test_a_broken_probe_file_is_refused_when_a_rung_is_tuned(folder: Path) -> None:
    (folder / "probes.jsonl").write_text('{"nothing": 1}\n')
    assert check(task(folder, "forgetting: {probes: probes.jsonl}\n"))[0] == 0  # no tuned rung reads it
    refused(task(folder, "forgetting: {probes: probes.jsonl}\nrungs: [lora]\n"), "probes.jsonl")


def test_files_a_rung_reads_later_are_checked_first(folder: Path) -> None:
    refused(task(folder, "rungs: [{rung: rag, corpus: docs/}]\n"), "rungs.rag.corpus:", "corpus not found")
    (folder / "pairs.jsonl").write_text('{"prompt": "a"}\n')
    path = task(folder, "rungs: [dpo]\n")
    path.write_text(path.read_text().replace("test.jsonl}", "test.jsonl, preferences: pairs.jsonl}"))
    code, message = check(path)  # a data file's problem names that file and its row
    assert code == 2 and "pairs.jsonl row 1: no field 'chosen'" in message, message


def test_chat_on_for_a_model_without_a_chat_template_is_refused_at_check(folder: Path) -> None:
    (folder / "model" / "tokenizer_config.json").write_text('{"model_max_length": 512}')
    refused(task(folder, "prompt: {chat: 'on'}\n"), "prompt.chat is 'on' but model './model' has no chat template")


BROKEN_METRIC = """
import datasets
import evaluate


class Broken(evaluate.Metric):
    def _info(self):
        features = datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")})
        return evaluate.MetricInfo(description="", citation="", features=features)

    def _compute(self, predictions, references):
        raise KeyError("no such column")
"""


@pytest.mark.slow  # imports `evaluate` (datasets, pandas): seconds
def test_a_broken_metric_module_fails_assess_before_the_model_is_asked(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "broken.py").write_text(textwrap.dedent(BROKEN_METRIC))
    (folder / "unloadable.py").write_text("raise SystemError('not today')\n")
    refused(task(folder, "evaluation: {metrics: [unloadable.py]}\n"), "does not load (SystemError: not today)")
    path = task(folder, "evaluation: {metrics: [broken.py]}\n")
    refused(path, "evaluation.metrics: 'broken' failed on this task's outputs")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("advisor.measure.model_context.load_model", never)
    monkeypatch.setattr("advisor.measure.model_context.load_tokenizer", never)
    result = CliRunner().invoke(main, ["assess", str(path), "--store", str(folder / "s.sqlite")])
    assert result.exit_code == 2 and "'broken' failed on this task's outputs" in result.stderr, result.output
