"""Nothing a user downloads (task file, data, model, adapter, metric) runs code unless they name it."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from advisor.cli.main import main

ROOT = Path(__file__).resolve().parents[3]


class Payload:
    """Unpickling this runs os.system: the classic pickle attack."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, (f"touch {self.marker}",))


def assess(task: Path, *extra: str):
    return CliRunner().invoke(main, ["assess", str(task), *extra])


def test_a_yaml_python_tag_is_refused_not_run(ticket_task: Path, tmp_path: Path) -> None:
    marker = tmp_path / "yaml-ran"
    ticket_task.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\ndata: {{test: test.jsonl}}\n')
    result = assess(ticket_task)
    assert result.exit_code == 2 and "not valid YAML" in result.stderr and not marker.exists()


def test_no_source_file_ever_trusts_remote_code() -> None:
    for package in ("advisor", "harness", "baselines", "tuning"):
        for source in (ROOT / package).rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            assert "trust_remote_code=True" not in text, source


def test_a_model_whose_architecture_is_its_own_code_is_refused(
    ticket_task: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "model-code-ran"
    folder = tmp_path / "evil-model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "config.json").write_text(
        '{"model_type": "evil_arch", "architectures": ["EvilModel"], '
        '"auto_map": {"AutoConfig": "modeling_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.EvilModel"}}'
    )
    (folder / "modeling_evil.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    ticket_task.write_text(ticket_task.read_text().replace(str(tiny_model_dir), str(folder)))
    result = assess(ticket_task)
    assert result.exit_code == 2, result.output
    assert "own code" in result.stderr or "trust_remote_code" in result.stderr
    assert not marker.exists()


def test_pickle_weights_are_refused_unless_the_user_allows_them(
    ticket_task: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pickle-ran"
    folder = tmp_path / "pickled-model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").unlink()
    with (folder / "pytorch_model.bin").open("wb") as handle:
        pickle.dump(Payload(marker), handle)
    ticket_task.write_text(ticket_task.read_text().replace(str(tiny_model_dir), str(folder)))
    refused = assess(ticket_task)
    assert refused.exit_code == 2 and "--allow-pickle" in refused.stderr and not marker.exists()
    # with the flag, transformers loads with torch.load(weights_only=True): the payload still cannot run
    allowed = assess(ticket_task, "--allow-pickle")
    assert allowed.exit_code != 0 and not marker.exists()


def test_a_stored_adapter_loads_from_safetensors_only(tmp_path: Path) -> None:
    from tuning.artifacts import is_complete

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "card.json").write_text("{}")
    with (folder / "adapter_model.bin").open("wb") as handle:
        pickle.dump(Payload(tmp_path / "adapter-ran"), handle)
    assert not is_complete(folder)  # a pickle adapter is never taken as a finished artifact: it is retrained
    save_file({"w": torch.zeros(1)}, folder / "adapter_model.safetensors")
    assert is_complete(folder)


@pytest.mark.slow
def test_a_metric_module_runs_only_from_the_path_the_user_names(ticket_task: Path, tmp_path: Path) -> None:
    folder = ticket_task.parent
    marker = folder / "metric-ran"
    (folder / "accuracy").mkdir()
    (folder / "accuracy" / "accuracy.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    ticket_task.write_text(ticket_task.read_text() + "evaluation: {metrics: [accuracy], bootstrap_resamples: 200}\n")
    # a name resolves to the shipped module, never to a same-named folder beside the task
    shipped = assess(ticket_task, "--rungs", "zero_shot")
    assert shipped.exit_code == 0, shipped.output
    assert not marker.exists()
    unknown = ticket_task.read_text().replace("metrics: [accuracy]", "metrics: [no_such_metric_xyz]")
    ticket_task.write_text(unknown)
    refused = assess(ticket_task, "--rungs", "zero_shot")
    assert refused.exit_code == 2 and not marker.exists()
    named = folder / "mine.py"
    named.write_text((ROOT / "harness" / "metrics" / "modules" / "accuracy.py").read_text())
    ticket_task.write_text(unknown.replace("no_such_metric_xyz", "mine.py"))
    ran = assess(ticket_task, "--rungs", "zero_shot", "-o", str(tmp_path / "r.json"))
    assert ran.exit_code == 0, ran.output
    assert "mine" in (tmp_path / "r.json").read_text()
