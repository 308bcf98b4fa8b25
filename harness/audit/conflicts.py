"""Label conflicts: one input, several labels, within a split or across splits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from harness.audit.findings import AuditSettings, Finding, Row, listed, shorten
from harness.audit.keyed import KeyedSplit
from harness.wording import agree


def conflicting_labels(splits: Sequence[KeyedSplit], settings: AuditSettings) -> list[Finding]:
    """Inputs that carry different labels; they cap the accuracy any rung can reach."""
    by_key: dict[str, list[Row]] = {}
    for split in splits:
        for key, rows in split.groups.items():
            by_key.setdefault(key, []).extend(rows)
    conflicts = {key: rows for key, rows in by_key.items() if len({r.example.target for r in rows}) > 1}
    if not conflicts:
        return []
    rows = [row for group in conflicts.values() for row in group]
    within = sum(
        any(len({r.example.target for r in group if r.split == name}) > 1 for name in {r.split for r in group})
        for group in conflicts.values()
    )
    named = {split.name: split for split in splits}
    ceiling = 1 - _minority_share(named.get("test"))
    noise = _minority_share(named.get("train"))
    examples = [
        {"text": shorten(key), "labels": {r.ref: r.example.target for r in group[: settings.max_listed]}}
        for key, group in list(conflicts.items())[: settings.max_listed]
    ]
    cap = f"; at most {ceiling:.1%} test accuracy is reachable" if ceiling < 1 else ""
    return [
        Finding(
            code="conflicting_labels",
            severity="warning",
            count=len(rows),
            message=f"{agree(len(rows), 'rows')} in {agree(len(conflicts), 'groups')} share an input but not a label "
            f"({within} groups within a split, {len(conflicts) - within} across splits){cap}",
            row_ids=listed([r.ref for r in rows], settings),
            detail={
                "groups": len(conflicts),
                "within_split_groups": within,
                "across_split_groups": len(conflicts) - within,
                "test_accuracy_ceiling": round(ceiling, 4),
                "train_minority_share": round(noise, 4),
                "examples": examples,
            },
        )
    ]


def _minority_share(split: KeyedSplit | None) -> float:
    """The share of a split's rows whose label is not their input's majority label.

    In test, one minus this is the best accuracy of any rung that gives one answer per input;
    in train, it is the label noise a tuned rung learns from.
    """
    if split is None or not split.rows:
        return 0.0
    lost = sum(len(g) - Counter(r.example.target for r in g).most_common(1)[0][1] for g in split.groups.values())
    return lost / len(split.rows)
