"""The data audit as JSON: what `advisor audit --json` prints, and the part of it an Assessment keeps.

Kept apart from advisor/task/audit.py (which loads tokenizers to count tokens) so that the deciding layer,
which needs no model library, can hold an audit's findings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1  # of the audit's own JSON (`advisor audit --json`)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuditFinding(_Model):
    """One data-audit finding (see `advisor audit`)."""

    code: str
    severity: str
    count: int
    message: str
    row_ids: list[str]
    detail: dict[str, Any] = {}


class AuditSummary(_Model):
    """The data audit of this run's task: what is wrong with the data before anyone trusts the numbers."""

    clean: bool
    counts: dict[str, int]
    findings: list[AuditFinding]
    notes: list[str] = []


class AuditJson(_Model):
    """The whole audit of a task's data: what was read, the findings, what was checked and how long it took."""

    schema_version: int = SCHEMA_VERSION
    task: str
    file: str
    rows: dict[str, int]
    clean: bool
    counts: dict[str, int]
    findings: list[AuditFinding]
    settings: dict[str, Any]
    seconds: dict[str, float]
    notes: list[str]

    def summary(self) -> AuditSummary:
        """What an Assessment keeps of the audit: whether the data is clean, and why not."""
        return AuditSummary(clean=self.clean, counts=self.counts, findings=self.findings, notes=self.notes)
