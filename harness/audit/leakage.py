"""Leakage: test inputs that also appear, exactly or almost, in the data a rung learns or selects from."""

from __future__ import annotations

from harness.audit.findings import AuditSettings, Finding, Row, Severity, listed, percent, shorten
from harness.audit.keyed import KeyedSplit, KeyVectors
from harness.audit.near import is_near, nearest
from harness.audit.text import full_text
from harness.wording import agree, agreeing


def _severity(source: str, exact: bool) -> Severity:
    # a train copy of a test row is memorised by tuning and retrieved by few-shot and rag: the score is inflated
    return "error" if exact and source == "train" else "warning"


def exact_leakage(source: KeyedSplit, test: KeyedSplit, settings: AuditSettings) -> list[Finding]:
    """Test rows whose normalised input is also in `source`."""
    leaked = [key for key in test.keys if key in source.groups]
    if not leaked:
        return []
    rows = [row for key in leaked for row in test.groups[key]]
    share = len(rows) / max(1, len(test.rows))
    examples = [
        {"test": test.groups[k][0].ref, source.name: source.groups[k][0].ref, "text": shorten(k)}
        for k in leaked[: settings.max_listed]
    ]
    return [
        Finding(
            code="leakage",
            severity=_severity(source.name, exact=True),
            count=len(rows),
            message=f"test: {agree(len(rows), 'rows')} ({percent(share)}) also "
            f"{agreeing(len(rows), 'appear')} in {source.name}; "
            "results on them are inflated",
            row_ids=listed([r.ref for r in rows], settings),
            detail={"source": source.name, "share": round(share, 6), "examples": examples},
        )
    ]


def near_leakage(source: KeyedSplit, test: KeyedSplit, vectors: KeyVectors, settings: AuditSettings) -> list[Finding]:
    """Test rows (not leaked exactly) whose input embeds within the threshold of a `source` input."""
    candidates = [key for key in test.keys if key not in source.groups]
    base_keys = source.keys
    best, scores = nearest(vectors.of(candidates), vectors.of(base_keys), settings.search_batch)
    hits = [(key, int(b), float(s)) for key, b, s in zip(candidates, best, scores, strict=True)]
    hits = [hit for hit in hits if hit[1] >= 0 and is_near(hit[2], settings.near_threshold)]
    if not hits:
        return []
    rows: list[Row] = [row for key, _, _ in hits for row in test.groups[key]]
    share = len(rows) / max(1, len(test.rows))
    examples = []
    for key, b, score in sorted(hits, key=lambda hit: -hit[2])[: settings.max_listed]:
        test_row, source_row = test.groups[key][0], source.groups[base_keys[b]][0]
        examples.append(
            {
                "test": test_row.ref,
                source.name: source_row.ref,
                "cosine": round(min(score, 1.0), 4),
                "texts": [shorten(full_text(test_row.example)), shorten(full_text(source_row.example))],
            }
        )
    return [
        Finding(
            code="near_leakage",
            severity=_severity(source.name, exact=False),
            count=len(rows),
            message=f"test: {agree(len(rows), 'rows')} ({percent(share)}) "
            f"{agreeing(len(rows), 'are')} near-duplicates of {source.name} rows "
            f"(cosine ≥ {settings.near_threshold:g}); results on them may be inflated",
            row_ids=listed([r.ref for r in rows], settings),
            detail={
                "source": source.name,
                "share": round(share, 6),
                "threshold": settings.near_threshold,
                "examples": examples,
            },
        )
    ]
