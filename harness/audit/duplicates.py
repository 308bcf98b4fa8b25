"""Duplicates inside one split: the same input and target twice, and inputs that embed almost alike."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.audit.findings import AuditSettings, Finding, Row, listed, shorten
from harness.audit.keyed import KeyedSplit, KeyVectors
from harness.audit.near import components, similar_pairs
from harness.audit.text import full_text, normalise
from harness.wording import agree


def exact_duplicates(split: KeyedSplit, settings: AuditSettings) -> list[Finding]:
    """Rows that repeat an earlier row's input and target (a differing target is a label conflict instead)."""
    repeats: list[Row] = []
    examples: list[dict[str, Any]] = []
    for rows in split.groups.values():
        by_target: dict[str, list[Row]] = {}
        for row in rows:
            by_target.setdefault(normalise(row.example.target), []).append(row)
        for same in by_target.values():
            if len(same) > 1:
                repeats.extend(same[1:])
                if len(examples) < settings.max_listed:
                    examples.append({"ids": [r.ref for r in same], "text": shorten(full_text(same[0].example))})
    if not repeats:
        return []
    why = "they weigh twice in the metric" if split.name == "test" else "they add cost, not information"
    return [
        Finding(
            code="exact_duplicates",
            severity="warning",
            count=len(repeats),
            message=f"{split.name}: {agree(len(repeats), 'rows repeat')} an earlier row exactly "
            f"(same input and target); {why}",
            row_ids=listed([r.ref for r in repeats], settings),
            detail={"split": split.name, "groups": examples},
        )
    ]


def near_duplicates(split: KeyedSplit, vectors: KeyVectors, settings: AuditSettings) -> list[Finding]:
    """Distinct inputs whose embeddings have cosine >= the threshold: reworded copies of one another."""
    keys = split.keys
    firsts, seconds, scores = similar_pairs(vectors.of(keys), settings.near_threshold, settings.search_batch)
    if not len(firsts):
        return []
    groups = components(len(keys), zip(firsts.tolist(), seconds.tolist(), strict=True))
    redundant = [split.groups[keys[member]][0] for member in sorted(m for group in groups for m in group[1:])]
    examples = []
    for p in np.argsort(-scores, kind="stable")[: settings.max_listed]:
        a, b = split.groups[keys[int(firsts[p])]][0], split.groups[keys[int(seconds[p])]][0]
        examples.append(
            {
                "ids": [a.ref, b.ref],
                "cosine": round(float(scores[p]), 4),
                "texts": [shorten(full_text(a.example)), shorten(full_text(b.example))],
                "targets": [a.example.target, b.example.target],
            }
        )
    targets = np.array([split.groups[key][0].example.target for key in keys], dtype=object)
    differing = int((targets[firsts] != targets[seconds]).sum())
    return [
        Finding(
            code="near_duplicates",
            severity="info",
            count=len(redundant),
            message=f"{split.name}: {agree(len(redundant), 'rows are')} near-duplicates of an earlier row "
            f"(cosine ≥ {settings.near_threshold:g}; {agree(len(groups), 'groups')})",
            row_ids=listed([r.ref for r in redundant], settings),
            detail={
                "split": split.name,
                "threshold": settings.near_threshold,
                "pairs": len(scores),
                "groups": len(groups),
                "pairs_with_different_targets": differing,
                "examples": examples,
            },
        )
    ]
