"""A rung from outside: tests/plugins/ladder_dora, installed into its own virtualenv, gets what lora gets.

The plug-in package registers a tuned rung with its tuning method (one `tuned_rung` call) through the
`ladder.rungs` entry point and nothing else. Installed with `pip install --no-deps -e` into a fresh
virtualenv (which sees this environment's packages through a site directory), that venv's Python runs
the real CLI as a subprocess: the plug-in's rung is trained, forgetting-probed and held to max_forgetting, priced by
`--plan`, gated, and exported by `advisor train`. docs/plugins.md shows the same package.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import TICKETS, write_jsonl

pytestmark = pytest.mark.slow
PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "ladder_dora"


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the plug-in installed (editable, no dependencies) over this environment's packages."""
    venv = tmp_path_factory.mktemp("plugin-venv")
    # no pip or setuptools of its own: those of this environment (through the site directory below) build the
    # plug-in, so an old bundled setuptools never shadows them
    create = [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)]
    subprocess.run(create, check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # this environment (torch, transformers, ladder itself) as a site directory of the new one
    here = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "ladder_parent.pth").write_text(f"import site; site.addsitedir({here!r})\n", encoding="utf-8")
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(PLUGIN)]
    subprocess.run(install, check=True, timeout=600, capture_output=True)
    return python


def advisor(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(python), "-c", "from advisor.cli.main import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=1200)


def test_a_plugged_in_tuned_rung_is_trained_probed_planned_gated_and_exported(
    plugin_python: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS * 2)]
    write_jsonl(tmp_path / "train.jsonl", rows[:16])
    write_jsonl(tmp_path / "test.jsonl", rows[16:])
    task = tmp_path / "task.yaml"
    task.write_text(
        "name: tickets\n"
        f"model: {tiny_model_dir}\n"
        "instruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl, validation_size: 0.25}\n"
        "rungs: [zero_shot, {rung: dora, r: 4, epochs: 1, search: false}]\n"
        "forgetting: {max_items: 10}\n"
        "constraints: {max_forgetting: 0.9}\n"
        "evaluation: {latency_sample: 2, bootstrap_resamples: 200}\n",
        encoding="utf-8",
    )
    out = tmp_path / "run.json"
    assessed = advisor(plugin_python, "assess", str(task), "--out", str(out))
    assert assessed.returncode == 0, assessed.stdout + assessed.stderr
    dora = next(r for r in json.loads(out.read_text())["rungs"] if r["name"] == "dora")
    assert dora["tuned"] and dora["step"] == 3 and dora["training"]["trainable_parameters"] > 0
    assert dora["forgetting"]["weights_changed"] and dora["forgetting"]["n_items"] == 10
    assert dora["cost"]["training"] is not None

    planned = advisor(plugin_python, "assess", str(task), "--plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    plan = json.loads((tmp_path / ".advisor" / "plans" / "tickets.plan.json").read_text())
    dora_plan = next(r for r in plan["rungs"] if r["name"] == "dora")
    assert dora_plan["training_s"] > 0 and "dora" in plan["rates"]["training_tokens_per_s"]

    gated = advisor(plugin_python, "gate", str(out), "--baseline", str(out))
    assert gated.returncode == 0 and "dora" in gated.stdout, gated.stdout + gated.stderr

    exported = advisor(plugin_python, "train", str(task), "--rung", "dora", "--merge", "-o", str(tmp_path / "merged"))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert (tmp_path / "merged" / "model.safetensors").is_file()
