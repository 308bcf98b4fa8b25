"""The real embedded model (SmolLM2-135M-Instruct) on a handful of examples, end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from harness.inference.models import EMBEDDED_MODEL, resolve_model

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_tickets"


@pytest.fixture(scope="module")
def embedded() -> Path:
    return Path(resolve_model(EMBEDDED_MODEL).path)


def test_conversion_cache_is_plain_safetensors_with_a_chat_template(embedded: Path) -> None:
    assert (embedded / "model.safetensors").is_file()
    config = json.loads((embedded / "config.json").read_text())
    assert "quantization_config" not in config and config["num_hidden_layers"] == 30
    assert (
        "<|im_start|>"
        in (embedded / "tokenizer_config.json").read_text() + (embedded / "chat_template.jinja").read_text()
    )


def test_sentiment_by_scoring_is_right_on_clear_cases(embedded: Path, tmp_path: Path) -> None:
    rows = [
        ("An absolute delight, I loved every minute.", "positive"),
        ("Dreadful, boring and far too long.", "negative"),
        ("One of the best films of the year.", "positive"),
        ("A waste of time and money.", "negative"),
        ("I hated it.", "negative"),
        ("Wonderful acting and a beautiful story.", "positive"),
        ("Terrible. Avoid.", "negative"),
        ("Great fun for the whole family.", "positive"),
    ]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    (tmp_path / "task.yaml").write_text(
        "name: sentiment\ndata: {test: d.jsonl}\nlabels: [negative, positive]\n"
        'prompt: {template: "Review: {input}\\nSentiment:", chat: "off", list_labels: false}\n'
        "evaluation: {latency_sample: 2, bootstrap_resamples: 200}\n"
    )
    result = CliRunner().invoke(main, ["assess", str(tmp_path / "task.yaml"), "-o", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    rung = json.loads((tmp_path / "r.json").read_text())["rungs"][0]
    assert rung["metrics"]["accuracy"]["value"] == 1.0
    assert all(r["prompt_tokens"] >= 6 and r["completion_tokens"] == 1 for r in rung["records"])


def test_the_shipped_example_runs_and_a_second_run_computes_nothing(embedded: Path, tmp_path: Path) -> None:
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".advisor"))
    # the tuned rungs search and train for real, on a handful of tickets: two trials of one epoch
    train = folder / "train.jsonl"
    train.write_text("".join(train.read_text(encoding="utf-8").splitlines(keepends=True)[:30]), encoding="utf-8")
    task = folder / "task.yaml"
    body = task.read_text(encoding="utf-8").replace("r: 16}", "r: 4, epochs: 1, search: {trials: 2}}")
    # at --limit 4 every tuned rung is a close call; retraining it from more seeds is tested in test_seeds.py
    task.write_text(body + "forgetting: {max_items: 40}\ndecision: {seeds: off}\n", encoding="utf-8")
    args = ["assess", str(folder / "task.yaml"), "--limit", "4", "-o", str(tmp_path / "r.json")]
    # a real process, as a user runs it: a library's warning is printed wherever it comes from
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    first = subprocess.run(
        [str(Path(sys.executable).parent / "advisor"), *args], capture_output=True, text=True, env=env, timeout=1500
    )
    assert first.returncode == 0, first.stdout + first.stderr
    noise = [line for line in (first.stdout + first.stderr).splitlines() if "Warning" in line]
    assert not noise, "\n".join(noise)
    second = CliRunner().invoke(main, args)
    data = json.loads((tmp_path / "r.json").read_text())
    names = ["zero_shot", "zero_shot_generate", "few_shot", "few_shot_similar", "rag", "lora", "qlora"]
    assert [r["name"] for r in data["rungs"]] == names
    assert all(r["computed"] == 0 and r["reused"] == 4 for r in data["rungs"]), second.output
    assert all(r["training"] is not None for r in data["rungs"][-2:])
    for tuned in data["rungs"][-2:]:  # real probes through the real model, tuned against base
        forgetting = tuned["forgetting"]
        assert forgetting["n_items"] == 40 and 0 < forgetting["base_accuracy"] < 1
        assert tuned["cost"]["training"] > 0 and tuned["cost"]["per_1k"] > 0
    assert len(data["comparisons"]) == 21
    generated = data["rungs"][1]["records"]
    assert all(
        r["completion_tokens"] >= 1 and (r["prediction"] is None) == (not r["correct"] and r["prediction"] is None)
        for r in generated
    )


def test_a_conversion_killed_midway_leaves_nothing_and_the_next_one_completes(tmp_path: Path) -> None:
    """SIGKILL the GGUF → safetensors conversion with its files written but not yet renamed into place (the
    latest point a kill can leave anything behind; before it nothing is on disk); the next run converts from
    scratch. Both convert a one-layer, 1,024-token copy of the embedded GGUF (tests/tiny_gguf.py): the same code
    path in a quarter of the time; the real model's conversion is tested above."""
    from harness.data.atomic import is_temporary
    from harness.inference.models import find_embedded_gguf
    from tests.pausing import kill_at
    from tests.tiny_gguf import small_package

    root = Path(__file__).resolve().parents[2]
    small = small_package(find_embedded_gguf(), tmp_path / "packages")
    env = {**os.environ, "LADDER_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": f"{small}{os.pathsep}{root}"}
    convert = [
        sys.executable,
        "-c",
        "from harness.inference.models import resolve_model; print(resolve_model('smollm2-135m-instruct').path)",
    ]
    models = tmp_path / "cache" / "models"
    kill_at(convert, env, "writing */smollm2-135m-instruct")
    assert not (models / "smollm2-135m-instruct").exists()  # never a half-written model in place
    done = subprocess.run(convert, env=env, capture_output=True, text=True, timeout=600, check=True)
    converted = Path(done.stdout.strip().splitlines()[-1])
    assert (converted / "model.safetensors").is_file() and (converted / "config.json").is_file()
    assert json.loads((converted / "config.json").read_text())["num_hidden_layers"] == 1  # the small copy
    assert not [p for p in (tmp_path / "cache").rglob("*") if is_temporary(p.name)]
