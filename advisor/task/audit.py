"""`advisor audit`: what is wrong with a task's data (duplicates, leakage, label conflicts, ...) before training."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from advisor.task.audit_json import AuditFinding, AuditJson
from advisor.task.data import load_task_data
from advisor.task.rung_plan import plan_rungs
from advisor.task.spec import LoadedTask, load_task
from harness.audit import AuditSettings, Finding, TextEmbedder, TokenCounter, audit_examples, sort_findings
from harness.audit.chat import audit_chat_records
from harness.data.reading import bounded_lines
from harness.errors import InputError
from harness.inference.models import resolve_model
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.types import Example
from harness.wording import agree


@dataclass(frozen=True)
class AuditOptions:
    """What the command line can change about an audit."""

    near_threshold: float = 0.95
    max_listed: int = 10
    min_per_class: int = 8
    check_near: bool = True  # embeds every input (all-MiniLM-L6-v2) for near-duplicates and near leakage
    check_lengths: bool = True  # loads the task model's tokenizer to count tokens


@dataclass(frozen=True)
class AuditReport:
    """The findings about one task's data, with what was checked and how long it took."""

    task: str
    file: str
    rows: dict[str, int]
    findings: tuple[Finding, ...]
    settings: AuditSettings
    seconds: dict[str, float]
    notes: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Findings per severity."""
        return {level: sum(f.severity == level for f in self.findings) for level in ("error", "warning", "info")}

    @property
    def clean(self) -> bool:
        """No errors and no warnings (info findings, such as the class balance summary, are facts)."""
        return not any(f.severity in ("error", "warning") for f in self.findings)


def audit_failures(report: AuditReport, fail_on: str | None) -> str:
    """What makes `advisor audit --fail-on` fail ("2 errors, 1 warning"), or "" when nothing does."""
    if fail_on is None:
        return ""
    levels = ("error",) if fail_on == "error" else ("error", "warning")
    counts = report.counts()
    return ", ".join(agree(counts[level], f"{level}s") for level in levels if counts[level])


def run_audit(
    task_path: Path, options: AuditOptions | None = None, embedder: Callable[[], TextEmbedder] | None = None
) -> AuditReport:
    """Load the task's data with the usual loaders and audit it; `embedder` replaces the default model."""
    options = options or AuditOptions()
    started = time.perf_counter()
    task = load_task(task_path)
    base = AuditSettings(
        near_threshold=options.near_threshold, max_listed=options.max_listed, min_per_class=options.min_per_class
    )
    files = task.data_spec().files
    chat = [found for path in files.values() if _is_chat_file(task, path) for found in audit_chat_records(path, base)]
    try:
        splits, labels = load_task_data(task, labels_from_every_split=True)
    except InputError as error:
        if not any(f.severity == "error" for f in chat):
            raise
        # the loader stops at the first bad chat record; the chat findings already list them all
        blocked = Finding("data_not_loaded", "error", 1, f"the other checks need loadable data: {error}")
        return AuditReport(task.spec.name, str(task.path), {}, tuple(sort_findings([*chat, blocked])), base, {})
    notes: list[str] = []
    settings, count_tokens = _length_settings(task, labels, base, options, notes)
    if not options.check_near:
        notes.append("near-duplicate and near-leakage checks off")
    timings: dict[str, float] = {}
    findings = audit_examples(
        splits.train,
        splits.validation,
        splits.test,
        labels=labels,
        tokenizer_lengths=count_tokens,
        embedder=(embedder or _default_embedder) if options.check_near else None,
        settings=settings,
        timings=timings,
    )
    seconds = {
        "embedder_load": timings["embedder_load_s"],
        "embed": timings["embed_s"],
        "search": timings["search_s"],
        "checks": timings["total_s"],
    }
    seconds["total"] = time.perf_counter() - started
    rows = {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)}
    return AuditReport(
        task.spec.name, str(task.path), rows, tuple(sort_findings([*chat, *findings])), settings, seconds, tuple(notes)
    )


def to_json(report: AuditReport) -> AuditJson:
    """The report as its JSON model, for `--json` and (its summary) for the Assessment."""
    return AuditJson(
        task=report.task,
        file=report.file,
        rows=report.rows,
        clean=report.clean,
        counts=report.counts(),
        findings=[AuditFinding(**f.to_json()) for f in report.findings],
        settings=asdict(report.settings),
        seconds={name: round(value, 3) for name, value in report.seconds.items()},
        notes=list(report.notes),
    )


def _default_embedder() -> TextEmbedder:
    from harness.retrieval.embedding import Embedder

    return Embedder()


def _is_chat_file(task: LoadedTask, path: Path) -> bool:
    """A JSONL file whose first record has `messages`, in a task that does not name its input field."""
    if task.spec.data.fields.input is not None or path.suffix.lower() != ".jsonl" or not path.is_file():
        return False
    for _, raw in bounded_lines(path):  # a first line over the row limit is refused here, not read whole
        line = raw.decode("utf-8", errors="replace")
        if line.strip():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                return False
            return isinstance(record, dict) and "messages" in record
    return False


def _length_settings(
    task: LoadedTask, labels: Sequence[str], base: AuditSettings, options: AuditOptions, notes: list[str]
) -> tuple[AuditSettings, TokenCounter | None]:
    """The token limits of the task's model and tuned rungs, and a token counter with its tokenizer."""
    if not options.check_lengths:
        notes.append("length checks off")
        return base, None
    planned = plan_rungs(task.spec.rungs, str(task.path), endpoints=task.spec.endpoints)
    tuned = [length for p in planned if (length := p.config.training_max_length()) is not None]
    source = resolve_model(task.model_name())
    try:
        from transformers import AutoConfig, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source.path)
        config = AutoConfig.from_pretrained(source.path)
    except (OSError, ValueError) as error:
        notes.append(f"length checks skipped: the tokenizer of '{source.name}' could not be loaded ({error})")
        return base, None
    context = config.to_dict().get("max_position_embeddings") or _tokenizer_limit(tokenizer)
    prompt = task.spec.prompt
    fmt = PromptFormat(
        instruction=task.spec.instruction,
        template=prompt.template,
        chat=prompt.chat == "on" or (prompt.chat == "auto" and bool(tokenizer.chat_template)),
        labels=tuple(labels),
        list_labels=prompt.list_labels,
    )
    overhead = len(PromptBuilder(tokenizer, fmt).encode(Example("audit", "", "")))
    settings = replace(
        base,
        context_length=int(context) if context else None,
        train_max_length=min(tuned) if tuned else None,
        prompt_overhead_tokens=overhead,
    )

    def count_tokens(texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    return settings, count_tokens


def _tokenizer_limit(tokenizer: Any) -> int | None:
    limit = tokenizer.model_max_length
    # transformers puts a huge sentinel here when the tokenizer does not know its model's limit
    return int(limit) if isinstance(limit, int) and limit < 10_000_000 else None
