"""Format checks of chat records in the OpenAI fine-tuning JSONL (`{"messages": [{"role", "content"}, ...]}`).

The loader stops at the first bad record; this reads the whole file, line by line, and reports every
problem with its line number, so one pass fixes them all.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from harness.audit.findings import AuditSettings, Finding
from harness.data.loading import CHAT_ROLES
from harness.data.reading import bounded_lines

MESSAGES = {
    "chat_malformed": "are not a JSON object with a 'messages' list of {role, content} strings",
    "chat_unknown_role": "have roles other than " + "/".join(CHAT_ROLES),
    "chat_order": "break the turn order (system only first, then user and assistant in turn, user first)",
    "chat_no_final_assistant": "do not end with an assistant turn (the answer to learn)",
    "chat_empty_content": "have a turn with empty or whitespace-only content",
}


def audit_chat_records(path: Path, settings: AuditSettings | None = None) -> list[Finding]:
    """Every chat-format problem in the file, one finding per kind, row ids `file:line`."""
    settings = settings or AuditSettings()
    hits: dict[str, list[str]] = {code: [] for code in MESSAGES}
    roles: Counter[str] = Counter()
    for number, raw in bounded_lines(path):  # a line over the row limit is refused, as the loader refuses it
        line = raw.decode("utf-8", errors="replace")
        if not line.strip():
            continue
        for code in record_problems(line, roles):
            hits[code].append(f"{path.name}:{number}")
    findings = []
    for code, refs in hits.items():
        if refs:
            detail: dict[str, Any] = {"file": str(path)}
            if code == "chat_unknown_role":
                detail["roles"] = dict(roles)
            findings.append(
                Finding(
                    code=code,
                    severity="error",
                    count=len(refs),
                    message=f"{path.name}: {len(refs)} records {MESSAGES[code]}",
                    row_ids=tuple(refs[: settings.max_listed]),
                    detail=detail,
                )
            )
    return findings


def record_problems(line: str, unknown_roles: Counter[str]) -> list[str]:
    """The problem codes of one JSONL line; unknown role names are counted into `unknown_roles`."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError):  # nested deeper than the parser goes is malformed too
        return ["chat_malformed"]
    turns = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(turns, list) or not turns or not all(_is_turn(turn) for turn in turns):
        return ["chat_malformed"]
    problems = []
    names = [turn["role"] for turn in turns]
    unknown = [name for name in names if name not in CHAT_ROLES]
    if unknown:
        unknown_roles.update(unknown)
        problems.append("chat_unknown_role")
    elif not _in_order(names):
        problems.append("chat_order")
    if names[-1] != "assistant":
        problems.append("chat_no_final_assistant")
    if any(not turn["content"].strip() for turn in turns):
        problems.append("chat_empty_content")
    return problems


def _is_turn(turn: Any) -> bool:
    return isinstance(turn, dict) and isinstance(turn.get("role"), str) and isinstance(turn.get("content"), str)


def _in_order(names: list[str]) -> bool:
    """An optional system turn first, then user, assistant, user, ... (the last turn is checked apart)."""
    rest = names[1:] if names[0] == "system" else names
    return all(name == ("user" if i % 2 == 0 else "assistant") for i, name in enumerate(rest))
