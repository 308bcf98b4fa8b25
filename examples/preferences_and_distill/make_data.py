"""The example's data, made from ../support_tickets deterministically: run it again after editing that set.

- train.jsonl: 16 tickets per label from support_tickets' train split (96 rows);
- unlabelled.jsonl: 24 more of its tickets, text only (the distillation teacher labels them);
- preferences.jsonl: one pair per train ticket, the gold team chosen over the team it is most often
  confused with (billing/cancellation, account_access/data_privacy, technical_issue/feature_request).
The test split is support_tickets' own (124 tickets), read from there.
"""

import json
import random
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "support_tickets" / "train.jsonl"
PER_LABEL = 16
UNLABELLED = 24
CONFUSED_WITH = {
    "billing": "cancellation",
    "cancellation": "billing",
    "account_access": "data_privacy",
    "data_privacy": "account_access",
    "technical_issue": "feature_request",
    "feature_request": "technical_issue",
}


def write(name: str, rows: list[dict]) -> None:
    (HERE / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    rows = [json.loads(line) for line in SOURCE.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_label = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["id"]):
        by_label[row["label"]].append(row)
    rng = random.Random(7)
    train, rest = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        train += group[:PER_LABEL]
        rest += group[PER_LABEL:]
    rng.shuffle(rest)
    train.sort(key=lambda r: r["id"])
    write("train.jsonl", [{"id": r["id"], "text": r["text"], "label": r["label"]} for r in train])
    write(
        "unlabelled.jsonl",
        [{"id": r["id"], "text": r["text"]} for r in sorted(rest[:UNLABELLED], key=lambda r: r["id"])],
    )
    pairs = [
        {"id": r["id"], "prompt": r["text"], "chosen": r["label"], "rejected": CONFUSED_WITH[r["label"]]} for r in train
    ]
    write("preferences.jsonl", pairs)
    print(f"train: {len(train)}  unlabelled: {UNLABELLED}  preference pairs: {len(pairs)}")


if __name__ == "__main__":
    main()
