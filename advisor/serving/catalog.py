"""What `advisor serve` serves and under which names: the base, trained tuned rungs, `--adapter` entries, rung prompts.

A request's `model` is one of:
- `base`: the task's model, the messages as sent;
- a tuned rung (`lora`): its adapter, with the last user message put in the rung's own prompt, so the
  answer is the one `advisor assess` gives; `lora:raw`: the same adapter, the messages as sent;
- a prompting rung (`few_shot_similar`): the base, with the rung's prompt built from the task's data;
- an `--adapter NAME=PATH` entry: that adapter, the messages as sent.

Adapters whose method can share a base in one forward pass (LoRA on linear layers without DoRA:
harness/inference/batched_lora.py) go to the shared group, stacked on the base they were trained on: the
task's model in full precision, or for QLoRA the run's one nf4 base. The others (IA3, prompt and prefix
tuning, full fine-tunes, DoRA) each run on a model of their own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from advisor.task.rung_plan import PlannedRung
from harness.errors import InputError, did_you_mean
from harness.inference.batched_lora import unbatchable
from harness.rungs import PromptAnswering
from harness.schema import short_repr
from tuning.registry import get_method

BASE = "base"
_UNCHOSEN = "has no choice on validation in the result store yet"
RAW = ":raw"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

Group = Literal["shared", "own"]
BaseKind = Literal["copy", "quantized"]  # a tuning method's `base`: the full-precision model, or its nf4 load
FULL, QUANTIZED = "copy", "quantized"


@dataclass(frozen=True)
class ServedAdapter:
    """Trained weights served under a name: an adapter folder, and how it meets the base."""

    name: str
    path: Path
    method: str
    group: Group  # shared: a LoRA adapter stacked on a shared base; own: a model of its own
    rung: PlannedRung | None = None  # the task's tuned rung it came from; None for --adapter
    # how that rung's model answers in the tuned prompt (TunedModel.answering); None: through its own predict
    answering: PromptAnswering | None = None
    base: BaseKind = "copy"  # the shared base it is stacked on (QLoRA: the nf4 one)


@dataclass(frozen=True)
class Route:
    """Where a request goes: which weights (None: the base's), and whose prompt wraps its last user message."""

    model: str
    adapter: ServedAdapter | None
    rung: PlannedRung | None  # None: the messages or prompt go to the model as sent

    @property
    def raw(self) -> bool:
        """Whether the request's text reaches the model untouched (logprobs and echo need that)."""
        return self.rung is None


@dataclass(frozen=True)
class Catalog:
    """Everything a server of this task answers for, and what it leaves out (untrained rungs, and rungs whose
    choice on validation is not in the result store: a server answers as the assessment did, or not at all)."""

    base_model: str
    adapters: tuple[ServedAdapter, ...]
    prompting: tuple[PlannedRung, ...]
    untrained: tuple[str, ...]
    task_file: str = "task.yaml"
    unchosen: tuple[str, ...] = ()

    def model_ids(self) -> list[str]:
        """Every name a request may use, in the order `GET /v1/models` lists them."""
        ids = [BASE]
        for adapter in self.adapters:
            ids += [adapter.name, adapter.name + RAW] if adapter.rung is not None else [adapter.name]
        ids += [rung.name for rung in self.prompting]
        return ids

    def route(self, model: str) -> Route:
        """The route of a request's `model`; an unknown name is an InputError listing close matches."""
        if model == BASE:
            return Route(model, None, None)
        adapters = {a.name: a for a in self.adapters}
        if model.endswith(RAW) and model[: -len(RAW)] in adapters:
            return Route(model, adapters[model[: -len(RAW)]], None)
        if model in adapters:
            adapter = adapters[model]
            return Route(model, adapter, adapter.rung)
        for rung in self.prompting:
            if rung.name == model:
                return Route(model, None, rung)
        hint = did_you_mean(model[:200], self.model_ids())  # a name longer than any served one is never close
        if model in self.untrained:
            hint = f": rung '{model}' is not trained yet (advisor train {self.task_file} --rung {model})"
        if model in self.unchosen:
            hint = f": rung '{model}' {_UNCHOSEN} (advisor assess {self.task_file} --rungs {model})"
        raise InputError(f"model {short_repr(model)} is not served here{hint}")

    def describe(self) -> list[str]:
        """One line per served name, for `advisor serve --list`."""
        width = max(len(i) for i in self.model_ids()) + 2
        lines = [f"{BASE:<{width}}{self.base_model}: the messages as sent"]
        for adapter in self.adapters:
            where = "on a model of its own"
            if adapter.group == "shared":
                where = "on the shared nf4 base" if adapter.base == QUANTIZED else "on the shared base"
            if adapter.rung is not None:
                lines.append(
                    f"{adapter.name:<{width}}{adapter.method} {where}, in the rung's own prompt ({adapter.path})"
                )
                lines.append(f"{adapter.name + RAW:<{width}}{adapter.method} {where}, the messages as sent")
            else:
                lines.append(f"{adapter.name:<{width}}{adapter.method} {where}, the messages as sent ({adapter.path})")
        for rung in self.prompting:
            lines.append(f"{rung.name:<{width}}{rung.type.kind}: the base, in the rung's prompt built from the task")
        for name in self.untrained:
            lines.append(f"not served: {name} (not trained yet: advisor train {self.task_file} --rung {name})")
        for name in self.unchosen:
            lines.append(f"not served: {name} ({_UNCHOSEN}: advisor assess {self.task_file} --rungs {name})")
        return lines


def parse_adapter_option(text: str) -> tuple[str, Path]:
    """`NAME=PATH` from `--adapter`; a bad one is an InputError naming the option."""
    name, sep, path = text.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise InputError(f"--adapter {text}: expected NAME=PATH")
    if not _NAME.match(name) or name == BASE:
        raise InputError(f"--adapter {text}: NAME must be letters, digits, '_', '.', '-' and not '{BASE}'")
    return name, Path(path).expanduser()


def extra_adapter(name: str, folder: Path) -> ServedAdapter:
    """An `--adapter` folder: a peft LoRA adapter (adapter_config.json with safetensors weights)."""
    where = f"--adapter {name}={folder}"
    config = _adapter_config(folder)
    if config is None or not any(folder.glob("*.safetensors")):
        raise InputError(f"{where}: expected a peft adapter folder (adapter_config.json and safetensors weights)")
    reason = unbatchable(config)
    if reason is not None:
        raise InputError(f"{where}: only plain LoRA adapters can be added this way ({reason}); serve it from its task")
    return ServedAdapter(name, folder, "lora", "shared")


def build_catalog(
    base_model: str,
    tuned: Sequence[tuple[PlannedRung, str | None, Path | None]],
    prompting: Sequence[PlannedRung],
    extra: Sequence[tuple[str, Path]],
    task_file: str,
    unchosen: Sequence[str] = (),
    *,
    answering: Mapping[str, PromptAnswering] | None = None,
) -> Catalog:
    """The catalog from the task's rungs and the --adapter entries.

    `tuned` holds each tuned rung with the method and folder of its trained artifact (None, None: not trained);
    `answering`, by rung name, how a tuned rung's model answers in the tuned prompt, as it declares it;
    `unchosen` names the rungs whose choice on validation (or whose teacher's) the result store lacks.
    """
    adapters: list[ServedAdapter] = []
    untrained: list[str] = []
    for planned, method, folder in tuned:
        if method is None or folder is None:
            untrained.append(planned.name)
            continue
        spec = get_method(method)
        config = _adapter_config(folder)
        shares = spec.artifact == "adapter" and config is not None and _mixes(config)
        declared = (answering or {}).get(planned.name)
        group: Group = "shared" if shares else "own"
        adapters.append(ServedAdapter(planned.name, folder, method, group, planned, declared, spec.base))
    adapters += [extra_adapter(name, folder) for name, folder in extra]
    names = [BASE, *(a.name for a in adapters), *(r.name for r in prompting)]
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"--adapter {name}: the name is taken (served names: {', '.join(dict.fromkeys(names))})")
    return Catalog(base_model, tuple(adapters), tuple(prompting), tuple(untrained), task_file, tuple(unchosen))


def _adapter_config(folder: Path) -> dict[str, object] | None:
    path = folder / "adapter_config.json"
    if not path.is_file():
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not readable as JSON ({error})") from None
    return loaded if isinstance(loaded, dict) else None


def _mixes(config: dict[str, Any]) -> bool:
    """LoRA adapters that the shared base's stacks can hold (not DoRA, no trained biases or extra modules)."""
    return unbatchable(config) is None
