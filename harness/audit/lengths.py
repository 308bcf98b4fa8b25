"""Empty fields, and rows longer than the model's context or the training length (counted in tokens)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from harness.audit.findings import AuditSettings, Finding, Row, Severity, listed
from harness.audit.keyed import KeyedSplit
from harness.audit.text import full_text, is_blank_input
from harness.wording import agree, agreeing

TokenCounter = Callable[[Sequence[str]], list[int]]


def empty_fields(splits: Sequence[KeyedSplit], settings: AuditSettings) -> list[Finding]:
    """Inputs and targets that are empty or only whitespace."""
    rows = [row for split in splits for row in split.rows]
    findings = []
    for code, what, blank in (
        ("empty_input", "inputs", [r for r in rows if is_blank_input(r.example)]),
        ("empty_target", "targets", [r for r in rows if not r.example.target.strip()]),
    ):
        if blank:
            findings.append(
                Finding(
                    code=code,
                    severity="error",
                    count=len(blank),
                    message=f"{agree(len(blank), 'rows have')} empty or whitespace-only {what} ({_by_split(blank)})",
                    row_ids=listed([r.ref for r in blank], settings),
                    detail={"by_split": dict(Counter(r.split for r in blank))},
                )
            )
    return findings


def length_findings(splits: Sequence[KeyedSplit], count_tokens: TokenCounter, settings: AuditSettings) -> list[Finding]:
    """Rows whose prompt and answer exceed the context window, and train rows that training would drop."""
    rows = [row for split in splits for row in split.rows]
    if not rows or (settings.context_length is None and settings.train_max_length is None):
        return []
    inputs = count_tokens([full_text(r.example) for r in rows])
    targets = count_tokens([r.example.target for r in rows])
    sized = [(r, settings.prompt_overhead_tokens + i + t) for r, i, t in zip(rows, inputs, targets, strict=True)]
    checks: list[tuple[str, Severity, int | None, str, str, list[tuple[Row, int]]]] = [
        ("too_long_for_context", "error", settings.context_length, "the model's context", "they get cut", sized),
        (
            "too_long_for_training",
            "warning",
            settings.train_max_length,
            "the training max_length",
            "training leaves them out",
            [(r, n) for r, n in sized if r.split in ("train", "validation")],
        ),
    ]
    findings = []
    for code, severity, limit, what, effect, candidates in checks:
        over = [(r, n) for r, n in candidates if limit is not None and n > limit]
        if not over:
            continue
        longest = max(n for _, n in over)
        findings.append(
            Finding(
                code=code,
                severity=severity,
                count=len(over),
                message=f"{agree(len(over), 'rows')} ({_by_split([r for r, _ in over])}) "
                f"{agreeing(len(over), 'are')} longer than {what} of {limit} "
                f"tokens (longest {longest}); {effect}",
                row_ids=listed([r.ref for r, _ in over], settings),
                detail={"limit": limit, "longest": longest, "by_split": dict(Counter(r.split for r, _ in over))},
            )
        )
    return findings


def _by_split(rows: Sequence[Row]) -> str:
    return ", ".join(f"{name} {n}" for name, n in Counter(r.split for r in rows).items())
