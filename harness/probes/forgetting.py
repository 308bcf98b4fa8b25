"""General-skills probes scored by log-likelihood: which option does a model find likeliest?

Each item is put as plain text, "Question: ...\\nAnswer:", and each option is scored as its
continuation (" option"), the way lm-eval scores multiple choice. A tuned model and its base
answer the same items, so their per-item correctness pairs up for a paired interval. Answers are
stored by model fingerprint and item, so an unchanged re-run scores nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.data.hashing import content_hash, file_sha256
from harness.data.store import Store
from harness.inference.engine import ChoiceRequest, Engine
from harness.probes.items import SHIPPED_PROBES, ProbeItem, load_probes
from harness.types import Output

PROBE_MODE = "probe"


def probe_set(name: str, task_dir: Path, max_items: int | None, seed: int) -> tuple[str, list[ProbeItem]]:
    """(a fingerprint of the probe set, its items): the shipped suite or a user's file, optionally a seeded sample."""
    path = SHIPPED_PROBES if name == "shipped" else _resolve(name, task_dir)
    items = load_probes(path)
    if max_items is not None and max_items < len(items):
        items = sorted(random.Random(seed).sample(items, max_items), key=lambda item: item.id)
    return content_hash(file_sha256(path), [item.id for item in items]), items


def probe_correct(
    engine: Callable[[], Engine], model_fingerprint: str, items: Sequence[ProbeItem], store: Store
) -> list[bool]:
    """Whether the model's likeliest option is the right one, per item (stored answers reused).

    The engine is asked for only when an answer is missing, so a re-run never loads a tuned model.
    """
    keys = [content_hash(model_fingerprint, PROBE_MODE, item.id, item.question, item.choices) for item in items]
    stored = store.get_outputs(keys)
    todo = [i for i, key in enumerate(keys) if key not in stored]
    if todo:
        store.must_compute(f"{len(todo)} probe answers of {model_fingerprint}")
        model = engine()
        scores = model.score([_request(model, items[i]) for i in todo])
        produced = []
        for i, row in zip(todo, scores, strict=True):
            chosen = max(range(len(row)), key=row.__getitem__)
            output = Output(text=str(chosen), prompt_tokens=0, completion_tokens=0, latency_s=0.0)
            produced.append((keys[i], items[i].id, output))
            stored[keys[i]] = output
        store.put_outputs(model_fingerprint, PROBE_MODE, produced)
    return [int(stored[key].text) == item.answer for key, item in zip(keys, items, strict=True)]


def probe_tokens(tokenizer: Any, items: Sequence[ProbeItem]) -> int:
    """Tokens a model runs to answer these items (each question once, each option's tokens after it)."""
    total = 0
    for item in items:
        request = _request_tokens(tokenizer, item)
        total += len(request.context) + sum(len(choice) - 1 for choice in request.choices)
    return total


def _request(engine: Engine, item: ProbeItem) -> ChoiceRequest:
    return _request_tokens(engine.tokenizer, item)


def _request_tokens(tokenizer: Any, item: ProbeItem) -> ChoiceRequest:
    context = tokenizer(f"Question: {item.question}\nAnswer:", add_special_tokens=False)["input_ids"]
    choices = tuple(tuple(tokenizer(f" {choice}", add_special_tokens=False)["input_ids"]) for choice in item.choices)
    return ChoiceRequest(tuple(context), choices)


def _resolve(name: str, task_dir: Path) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else task_dir / path
