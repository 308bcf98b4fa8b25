"""Class balance: examples per class, the imbalance ratio, classes too small to tune on, labels train never shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from harness.audit.findings import AuditSettings, Finding, listed
from harness.audit.keyed import KeyedSplit
from harness.wording import agree


def class_findings(splits: Sequence[KeyedSplit], labels: Sequence[str], settings: AuditSettings) -> list[Finding]:
    """The balance summary (info) and the balance problems (warnings) of a classification task."""
    named = {split.name: split for split in splits}
    train, test = named.get("train"), named.get("test")
    counts = {split.name: _per_label(split, labels) for split in splits if split.rows}
    basis = "train" if train is not None and train.rows else "test"
    present = [n for n in counts.get(basis, {}).values() if n > 0]
    ratio = max(present) / min(present) if present else 1.0
    findings = [
        Finding(
            code="class_balance",
            severity="info",
            count=len(labels),
            message=f"{len(labels)} classes; {basis} examples per class {min(present, default=0)}–"
            f"{max(present, default=0)} (largest / smallest {ratio:.1f}×)",
            detail={"basis": basis, "counts": counts, "imbalance_ratio": round(ratio, 3)},
        )
    ]
    if basis != "train" or train is None:
        return findings  # no train split: nothing is tuned, so nothing below applies
    per_class = counts["train"]
    largest = max(per_class.values(), default=0)
    if ratio >= settings.max_imbalance:
        small = {label: n for label, n in per_class.items() if 0 < n * settings.max_imbalance <= largest}
        findings.append(
            Finding(
                code="class_imbalance",
                severity="warning",
                count=len(small),
                message=f"train: the largest class has {ratio:.1f}× the examples of the smallest; "
                f"{agree(len(small), 'classes have')} under 1/{settings.max_imbalance:g} of the largest",
                detail={"imbalance_ratio": round(ratio, 3), "small_classes": small},
            )
        )
    few = {label: n for label, n in per_class.items() if n < settings.min_per_class}
    if few:
        shown = ", ".join(f"{label} ({n})" for label, n in list(few.items())[: settings.max_listed])
        findings.append(
            Finding(
                code="few_examples_per_class",
                severity="warning",
                count=len(few),
                message=f"train: {agree(len(few), 'classes have')} fewer than {settings.min_per_class} examples, "
                f"too few to tune on: {shown}",
                row_ids=listed([r.ref for r in train.rows if r.example.target in few], settings),
                detail={"classes": few, "min_per_class": settings.min_per_class},
            )
        )
    if test is not None:
        unseen = [r for r in test.rows if r.example.target not in per_class or per_class[r.example.target] == 0]
        if unseen:
            missing = sorted({r.example.target for r in unseen})
            findings.append(
                Finding(
                    code="label_missing_from_train",
                    severity="warning",
                    count=len(unseen),
                    message=f"test: {agree(len(unseen), 'rows have')} labels no train row shows "
                    f"({', '.join(missing[:5])}"
                    f"{', …' if len(missing) > 5 else ''}); tuned rungs cannot learn them",
                    row_ids=listed([r.ref for r in unseen], settings),
                    detail={"labels": missing},
                )
            )
    return findings


def _per_label(split: KeyedSplit, labels: Sequence[str]) -> dict[str, int]:
    """Rows per label, every label listed (zero included), in the labels' order."""
    counted = Counter(row.example.target for row in split.rows)
    return {label: counted.get(label, 0) for label in labels}
