"""examples/preferences_and_distill in a tiny form (the tiny llama, a few rows, a few steps), so it cannot rot:
its own task file and data, every rung of it assessed, the pairs read from its file, the student's summary."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from advisor.cli.main import main

pytestmark = pytest.mark.slow  # loads the real embedder (the teacher retrieves similar tickets)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "preferences_and_distill"
TINY = {"r": 2, "epochs": 1, "batch_tokens": 256, "max_batch_size": 4}


def few_rows(path: Path, count: int, per_label: int | None = None) -> list[str]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if per_label is None:
        return lines[:count]
    taken: Counter[str] = Counter()
    kept = []
    for line in lines:
        label = json.loads(line)["label"]
        if taken[label] < per_label:
            taken[label] += 1
            kept.append(line)
    return kept


def test_the_example_runs_in_a_tiny_form(tmp_path: Path, tiny_model_dir: Path) -> None:
    task = yaml.safe_load((EXAMPLE / "task.yaml").read_text(encoding="utf-8"))
    sizes = {"train": (0, 3), "test": (6, None), "unlabelled": (4, None), "preferences": (12, None)}
    for key, (count, per_label) in sizes.items():
        lines = few_rows((EXAMPLE / task["data"][key]).resolve(), count, per_label)
        (tmp_path / f"{key}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        task["data"][key] = f"{key}.jsonl"
    task["model"] = str(tiny_model_dir)
    task["rungs"] = [
        {**entry, **TINY} if isinstance(entry, dict) and "r" in entry else entry for entry in task["rungs"]
    ]
    task["forgetting"] = {"max_items": 10}
    task["evaluation"] = {"latency_sample": 1, "bootstrap_resamples": 100}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task), encoding="utf-8")
    out = tmp_path / "run.json"
    result = CliRunner().invoke(main, ["assess", str(tmp_path / "task.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assessment = json.loads(out.read_text())
    names = [r["name"] for r in assessment["rungs"]]
    assert names == ["zero_shot", "few_shot_similar", "lora", "dpo", "distill"]
    lora, dpo_rung = assessment["rungs"][2], assessment["rungs"][3]
    dpo = dpo_rung["training"]["preference"]
    assert dpo_rung["step"] == 5 and dpo_rung["forgetting"]["weights_changed"]
    assert dpo["pairs"]["from"] == {"file": 12} and dpo["pairs"]["validation"] == 1
    assert len(dpo["train_reward_accuracy"]) == 1
    # the SFT stage is the lora rung's own artifact, trained once and shared; its time counts for dpo too
    assert Path(lora["training"]["artifact"]).name == dpo["sft_artifact"]
    assert dpo_rung["training"]["seconds"] > lora["training"]["chosen_seconds"]
    artifact = Path(dpo_rung["training"]["artifact"])
    assert (
        "## Preference tuning" in (artifact / "card.md").read_text() and "12 file" in (artifact / "card.md").read_text()
    )
    card = json.loads((artifact / "card.json").read_text())
    assert (card["method"], card["objective"]) == ("lora", "dpo")  # a LoRA adapter: it loads and serves as one
    (summary,) = assessment["distillation"]
    assert summary["teacher"] == "few_shot_similar" and summary["lora"] == "lora"
    assert "student of few_shot_similar" in result.output
