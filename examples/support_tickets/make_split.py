"""Deterministic stratified train/test split of all_tickets.jsonl (25% test per label)."""

import json
import random
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST_FRACTION = 0.25


def main():
    rows = [
        json.loads(line)
        for line in (HERE / "all_tickets.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    by_label = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)

    rng = random.Random(13)
    test_ids = set()
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda r: r["id"])
        rng.shuffle(group)
        n_test = round(len(group) * TEST_FRACTION)
        test_ids.update(r["id"] for r in group[:n_test])

    rows.sort(key=lambda r: r["id"])
    for name, keep in (("train.jsonl", False), ("test.jsonl", True)):
        with open(HERE / name, "w", encoding="utf-8") as f:
            for r in rows:
                if (r["id"] in test_ids) == keep:
                    out = {"id": r["id"], "text": r["text"], "label": r["label"], "ambiguous": r["ambiguous"]}
                    f.write(json.dumps(out, ensure_ascii=False) + "\n")
    print(f"train: {len(rows) - len(test_ids)}  test: {len(test_ids)}")


if __name__ == "__main__":
    main()
