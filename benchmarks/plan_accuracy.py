"""How long a LoRA takes on a 77-intent task, and how close `advisor assess --plan` gets, on CLINC150.

A slice of the same shape as the many-label task in the fair-tuning issue: 77 intents, 1,500 train rows
(20 per intent, less a seeded few), 231 test rows, no validation file (10% of train is carved off).
It plans the task (zero_shot, and lora with a fixed learning rate for `--epochs` epochs, no search),
then trains the lora for real and compares the plan's training seconds with the measured ones. The
zero_shot prompt lists all 77 labels; the tuned rung's prompt does not, and the prefix every row shares
runs once per batch.

    python benchmarks/plan_accuracy.py [--epochs 1] [--intents 77] [--train-rows 1500]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import require_dataset, write_result
from benchmarks.search import Quiet

TASK = """\
name: clinc{intents}
type: classification
instruction: Name the intent of the user's request.
prompt: {{template: "Request: {{input}}"}}
data: {{train: train.jsonl, test: test.jsonl}}
rungs:
  - zero_shot
  - {{rung: lora, r: 16, learning_rate: 0.001, epochs: {epochs}, search: false}}
forgetting: {{enabled: false}}
seed: 0
"""


def write_slice(folder: Path, intents: int, train_rows: int, test_per_intent: int, epochs: int) -> Path:
    data = json.loads(require_dataset("clinc150/data_full.json").read_text(encoding="utf-8"))
    domains = json.loads(require_dataset("clinc150/domains.json").read_text(encoding="utf-8"))
    wanted = [intent for domain in sorted(domains) for intent in domains[domain]][:intents]
    per_intent = -(-train_rows // intents)
    splits = {}
    for split, count in (("train", per_intent), ("test", test_per_intent)):
        rows = []
        for intent in wanted:
            texts = [text for text, label in data[split] if label == intent]
            rows += [(text, intent) for text in random.Random(f"0-{split}-{intent}").sample(texts, count)]
        splits[split] = rows
    splits["train"] = random.Random(0).sample(splits["train"], train_rows)
    for split, rows in splits.items():
        lines = [json.dumps({"id": f"{split}{i}", "text": t, "label": y}) for i, (t, y) in enumerate(rows)]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "task.yaml").write_text(TASK.format(intents=intents, epochs=epochs), encoding="utf-8")
    return folder / "task.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--intents", type=int, default=77)
    parser.add_argument("--train-rows", type=int, default=1500)
    parser.add_argument("--test-per-intent", type=int, default=3)
    args = parser.parse_args()

    from advisor.measure.plan import make_plan
    from advisor.measure.prepare import AssessOptions, prepare_run
    from advisor.measure.rung_builder import bound_rungs
    from tuning.tuned import TunedPredictor

    with tempfile.TemporaryDirectory() as folder:
        task = write_slice(Path(folder), args.intents, args.train_rows, args.test_per_intent, args.epochs)
        options = AssessOptions(store_path=Path(folder) / ".advisor" / "store.sqlite")
        run = prepare_run(task, options, Quiet())
        plan = make_plan(run)
        planned = {r.name: r for r in plan.rungs}
        with bound_rungs(run) as rungs:
            predictor = rungs.build("lora").predictor
            if not isinstance(predictor, TunedPredictor):
                raise SystemExit(f"plan_accuracy: lora built a {type(predictor).__name__}, not a TunedPredictor")
            prefix, rows, _ = predictor.trainer.encoded_rows()
            started = time.perf_counter()
            predictor.prepare()
            wall = time.perf_counter() - started
            card = predictor.card()
    if card is None:
        raise SystemExit("plan_accuracy: the lora rung has no card after training")
    measured = card.training.seconds
    estimate = planned["lora"].training_s or 0.0
    zero = planned["zero_shot"]
    result = {
        "benchmark": "plan_accuracy",
        "intents": args.intents,
        "train": len(run.context.train),
        "validation": len(run.context.validation),
        "epochs": args.epochs,
        "zero_shot_prompt_tokens": zero.prompt_tokens,
        "zero_shot_planned_p50_s": zero.p50_s,
        "lora_row_tokens": {
            "shared_prefix": len(prefix),
            "mean_after_prefix": sum(len(r.tokens) for r in rows) / len(rows),
        },
        "lora_planned_training_s": estimate,
        "lora_measured_training_s": measured,
        "lora_wall_s": wall,
        "plan_error": estimate / measured - 1,
        "calibration_s": plan.calibration_s,
    }
    print(
        f"{args.intents} intents, {result['train']} train rows, {args.epochs} epoch(s): lora planned {estimate:.0f} s, "
        f"measured {measured:.0f} s (plan {result['plan_error']:+.0%}); zero_shot prompt "
        f"{zero.prompt_tokens:.0f} tokens, planned p50 {zero.p50_s or 0.0:.2f} s; lora rows {len(prefix)} shared + "
        f"{result['lora_row_tokens']['mean_after_prefix']:.1f} tokens"
    )
    print(f"wrote {write_result('plan_accuracy', result)}")


if __name__ == "__main__":
    main()
