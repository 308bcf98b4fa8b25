"""`advisor export` and the onnx rung, as a user meets them: an export answers as its rung did, stands beside it
in the assessment, is found again by the command, and every request that cannot be exported is one line, exit 2.

One tiny task (a one-epoch lora and its float32 and int8 exports) is assessed once for the module. Skipped, with
the reason, when the `onnx` extra is not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install 'ladder-advisor[onnx]'")

from click.testing import CliRunner

from advisor.cli.main import main
from tests.conftest import TICKETS, write_jsonl

ROOT = Path(__file__).resolve().parents[3]
LORA = "{rung: lora, r: 2, epochs: 1, batch_tokens: 256, max_batch_size: 8, search: false}"
RUNGS = (
    f"  - {LORA}\n"
    "  - {rung: onnx, name: lora_onnx, of: lora}\n"
    "  - {rung: onnx, name: lora_onnx_int8, of: lora, quantize: int8}\n"
)


def write_task(folder: Path, model_dir: Path, rungs: str = RUNGS) -> Path:
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    write_jsonl(folder / "train.jsonl", rows[0::2])
    write_jsonl(folder / "test.jsonl", rows[1::2])
    (folder / "task.yaml").write_text(
        f"name: tickets\nmodel: {model_dir}\ninstruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl}\n"
        f"rungs:\n{rungs}"
        "evaluation: {latency_sample: 2, bootstrap_resamples: 200}\n"
        "forgetting: {enabled: false}\ndecision: {seeds: off}\n",
        encoding="utf-8",
    )
    return folder / "task.yaml"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# the three tests on `assessed` share one assessment that trains a lora and exports it twice (about 20 s on two cores)
@pytest.fixture(scope="module")
def assessed(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The task after one `advisor assess` (read only): lora trained, both exports made and answered."""
    folder = tmp_path_factory.mktemp("exported")
    task = write_task(folder, tiny_model_dir)
    result = invoke("assess", str(task), "--out", str(folder / "run.json"))
    assert result.exit_code == 0, result.output
    return task


def test_the_onnx_rungs_stand_beside_the_pytorch_rung_in_the_assessment(assessed: Path) -> None:
    rungs = {r["name"]: r for r in json.loads((assessed.parent / "run.json").read_text())["rungs"]}
    lora, fp32, int8 = rungs["lora"], rungs["lora_onnx"], rungs["lora_onnx_int8"]
    for exported in (fp32, int8):
        assert exported["kind"] == "onnx" and exported["step"] == lora["step"] == 3 and exported["tuned"]
        accuracy = exported["metrics"]["accuracy"]
        assert accuracy["ci_low"] <= accuracy["value"] <= accuracy["ci_high"]
        assert exported["latency"]["sample_size"] == 2 and exported["latency"]["p50_s"] > 0
        assert exported["tokens"]["prompt_mean"] == lora["tokens"]["prompt_mean"]  # the same tuned prompt
        assert exported["cost"]["per_1k"] > 0
        # its one-off cost is the training of the weights it runs
        assert exported["training"]["seconds"] == lora["training"]["seconds"] > 0
        card = json.loads((Path(exported["training"]["artifact"]) / "card.json").read_text())
        assert card["rung"] == "lora" and "accuracy" in card["metrics"]
    assert json.loads((Path(int8["training"]["artifact"]) / "card.json").read_text())["quantize"] == "int8"


def test_an_exported_model_answers_as_the_rung_did(assessed: Path) -> None:
    from advisor.measure.prepare import AssessOptions, QuietHooks, prepare_run
    from advisor.measure.rung_builder import bound_rungs

    run = prepare_run(assessed, AssessOptions(), QuietHooks())
    with bound_rungs(run, stored_only=True) as rungs:  # everything is stored: nothing trains or exports again
        answers = {
            name: rungs.build(name).predictor.predict(run.test) for name in ("lora", "lora_onnx", "lora_onnx_int8")
        }
    labels = set(run.context.labels)
    for torch_out, onnx_out, int8_out in zip(
        answers["lora"], answers["lora_onnx"], answers["lora_onnx_int8"], strict=True
    ):
        assert onnx_out.text == torch_out.text and onnx_out.prompt_tokens == torch_out.prompt_tokens
        for label in labels:
            assert onnx_out.detail["logprobs"][label] == pytest.approx(torch_out.detail["logprobs"][label], abs=1e-3)
            assert int8_out.detail["logprobs"][label] == pytest.approx(torch_out.detail["logprobs"][label], abs=0.5)
        assert int8_out.text in labels


def test_advisor_export_finds_the_stored_export_and_writes_it_out_with_its_card(assessed: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora-onnx"
    result = invoke("export", str(assessed), "--rung", "lora", "--format", "onnx", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "already exported (stored)" in result.stdout and "max |Δlogit|" in result.stdout
    assert {"model.onnx", "model.onnx.data", "tokenizer.json", "card.json", "card.md"} <= {
        p.name for p in out.iterdir()
    }
    card = json.loads((out / "card.json").read_text())
    assert (card["rung"], card["method"], card["exported_as"], card["quantize"]) == ("lora", "lora", "merged", None)
    assert card["verification"]["max_abs_logit_delta"] <= card["verification"]["tolerance"] == 1e-3
    assert card["files"]["model.onnx.data"] > 0 and {"torch", "onnxruntime", "onnx"} <= set(card["versions"])
    assert "max |Δlogit|" in (out / "card.md").read_text()
    int8 = invoke("export", str(assessed), "--rung", "lora", "--quantize", "int8")
    assert int8.exit_code == 0 and "ONNX int8" in int8.stdout, int8.output


def one_line_exit_2(result: Any, *expected: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def test_bad_export_requests_are_one_line_and_exit_2(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rungs = "  - zero_shot\n" + RUNGS + "  - {rung: qlora, r: 2, search: false}\n"
    task = str(write_task(tmp_path, tiny_model_dir, rungs))
    untrained = invoke("export", task, "--rung", "lora")
    one_line_exit_2(untrained, "'lora' is not trained yet", f"advisor train {task} --rung lora")
    one_line_exit_2(invoke("export", task, "--rung", "qlora"), "'qlora' (qlora) does not merge into one model")
    one_line_exit_2(invoke("export", task, "--rung", "zero_shot"), "prompting rung")
    one_line_exit_2(invoke("export", task, "--rung", "lroa"), "did you mean lora")
    one_line_exit_2(
        invoke("export", task, "--rung", "lora_onnx_int8"),
        "is itself an export of 'lora'",
        "--rung lora --format onnx [--quantize int8]",
    )
    monkeypatch.setattr("harness.inference.onnx_graph.ONNX_PACKAGES", ("ladder_no_such_onnxruntime",))
    one_line_exit_2(invoke("export", task, "--rung", "lora"), "pip install 'ladder-advisor[onnx]'")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{rung: onnx, of: lroa}", "rungs.onnx.of: no rung named 'lroa' in the task; did you mean lora"),
        ("{rung: onnx, of: zero_shot}", "'zero_shot' is a prompting rung"),
        ("{rung: onnx, of: qlora}", "'qlora' (qlora) does not merge into one model"),
    ],
)
def test_an_onnx_rung_of_a_rung_that_cannot_be_exported_is_refused_before_any_model_loads(
    tmp_path: Path, tiny_model_dir: Path, entry: str, expected: str
) -> None:
    rungs = f"  - zero_shot\n  - {LORA}\n  - {{rung: qlora, r: 2, search: false}}\n  - {entry}\n"
    one_line_exit_2(invoke("check", str(write_task(tmp_path, tiny_model_dir, rungs))), expected)


def test_no_other_command_loads_the_onnx_libraries() -> None:
    probe = (
        "import sys, advisor.cli.main\nfrom harness.rungs import RUNGS\nRUNGS.load()\n"
        "print(sorted(n for n in ('onnx', 'onnxruntime', 'onnxscript') if n in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
