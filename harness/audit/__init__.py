"""Data audit: what is wrong with a task's data before anyone trains on it.

Pure over Example objects: duplicates and near-duplicates, train/test leakage, label conflicts,
class balance, over-long rows and empty fields. Chat-record format checks need the raw file and
live in `harness.audit.chat`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from harness.audit.classes import class_findings
from harness.audit.conflicts import conflicting_labels
from harness.audit.duplicates import exact_duplicates, near_duplicates
from harness.audit.findings import SEVERITY_ORDER, AuditSettings, Finding, Severity, TextEmbedder
from harness.audit.keyed import embed_keys, keyed
from harness.audit.leakage import exact_leakage, near_leakage
from harness.audit.lengths import TokenCounter, empty_fields, length_findings
from harness.types import Example

__all__ = ["AuditSettings", "Finding", "Severity", "TextEmbedder", "TokenCounter", "audit_examples", "sort_findings"]


def audit_examples(
    train: Sequence[Example],
    validation: Sequence[Example],
    test: Sequence[Example],
    *,
    labels: Sequence[str] = (),
    tokenizer_lengths: TokenCounter | None = None,
    embedder: Callable[[], TextEmbedder] | None = None,
    settings: AuditSettings | None = None,
    timings: dict[str, float] | None = None,
) -> list[Finding]:
    """Every finding about the three splits, errors first.

    `labels` (a classification task's classes) turns on the label checks; `tokenizer_lengths`
    (token counts of texts) the length checks; `embedder` (called once, when needed) the
    near-duplicate checks. `timings`, when given, receives the seconds spent loading the embedder, embedding,
    searching and in all.
    """
    settings = settings or AuditSettings()
    started = time.perf_counter()
    splits = [keyed("train", train), keyed("validation", validation), keyed("test", test)]
    named = {split.name: split for split in splits}
    findings = empty_fields(splits, settings)
    for split in splits:
        findings += exact_duplicates(split, settings)
    for source in ("train", "validation"):
        findings += exact_leakage(named[source], named["test"], settings)
    if labels:
        findings += conflicting_labels(splits, settings)
        findings += class_findings(splits, labels, settings)
    if tokenizer_lengths is not None:
        findings += length_findings(splits, tokenizer_lengths, settings)
    load_s = embed_s = search_s = 0.0
    if embedder is not None and any(split.groups for split in splits):
        load_started = time.perf_counter()
        model = embedder()
        embed_started = time.perf_counter()
        vectors = embed_keys(splits, model)
        search_started = time.perf_counter()
        load_s, embed_s = embed_started - load_started, search_started - embed_started
        for split in splits:
            findings += near_duplicates(split, vectors, settings)
        for source in ("train", "validation"):
            findings += near_leakage(named[source], named["test"], vectors, settings)
        search_s = time.perf_counter() - search_started
    if timings is not None:
        total_s = time.perf_counter() - started
        timings.update(embedder_load_s=load_s, embed_s=embed_s, search_s=search_s, total_s=total_s)
    return sort_findings(findings)


def sort_findings(findings: Sequence[Finding]) -> list[Finding]:
    """Errors, then warnings, then info; the checks' own order within each."""
    return sorted(findings, key=lambda finding: SEVERITY_ORDER[finding.severity])
