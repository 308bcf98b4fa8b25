"""Many LoRA adapters over one base in one forward pass: stacked per layer, applied per row with two matmuls.

peft's mixed-adapter path (`adapter_names`) splits every layer's batch into one sub-batch per adapter
(its docs: "the batch size is effectively reduced to the number of samples per adapter"). Here each
target layer holds the resident adapters' A and B matrices stacked, ranks zero-padded to the largest
(exact: the padded rows and columns add zeros), B stored transposed with its scale folded in. The base
layer runs once over every row, as it does for one adapter, and the batch's LoRA term is one of:

- gathered (prefill): each row's A and B gathered by its slot, then two `bmm`s. A gather copies a whole
  adapter per row, which long rows amortize;
- masked (decode): every row through all slots up to the highest one used, at once, as two plain matmuls,
  each row's hidden values outside its own slot's ranks multiplied by zero. Nothing is copied and each
  resident adapter is read once a layer; the extra flops are small while rows are short. A decode step is
  bound by reading weights, so this is the floor: each distinct adapter adds its bytes to the base's.

A batch of one adapter takes two plain matmuls through its slot; a row of the base ("__base__") is
weighted zero.

The adapters are read from their peft folders (adapter_config.json and safetensors) into the stacks
directly: the base is never wrapped by peft, and an adapter's weights are held once. Loading into a
free slot and dropping a slot need no restart; a rank larger than the stack's grows it once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.inference.adapter_routing import BASE_ADAPTER

_PEFT_PREFIX = "base_model.model."
# Masks over every slot beat per-row gathers while a row's tokens times the slots spanned stay at most this:
# a decode step (one token a row) of SmolLM2-135M, 16 rows, r=16 on every linear layer, on the 2-core CPU took
# 168 ms masked against 192 ms gathered over 4 slots, and 175 against 188 ms over 16 (the base: 126 ms).
_MASKED_SLOT_TOKENS = 32


def unbatchable(config: dict[str, Any]) -> str | None:
    """Why a peft adapter config cannot join the stacks (None: it can): LoRA on linear layers only, no DoRA,
    no trained biases or extra modules."""
    if config.get("peft_type") != "LORA":
        return f"it is {config.get('peft_type', 'not a peft adapter')}, not LoRA"
    if config.get("use_dora"):
        return "DoRA scales each weight column by its norm"
    if config.get("bias", "none") != "none":
        return "it trains biases"
    if config.get("modules_to_save"):
        return "it saves whole modules beside the adapter"
    if config.get("fan_in_fan_out"):
        return "its layers store weights transposed (fan_in_fan_out)"
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        return "its rank or alpha differs per layer"
    return None


@dataclass(frozen=True)
class LoraWeights:
    """One adapter as the stacks take it: per target module, A (r, in) and B (out, r), and its scale."""

    rank: int
    scale: float
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]]


def read_lora(folder: Path) -> LoraWeights:
    """A peft LoRA adapter folder's weights by the base model's module names; ValueError when it cannot be stacked."""
    from safetensors.torch import load_file

    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    reason = unbatchable(config)
    if reason is not None:
        raise ValueError(f"{folder}: cannot be batched with other adapters: {reason}")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(file)))
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for key, a in tensors.items():
        if not key.endswith(".lora_A.weight"):
            if not key.endswith(".lora_B.weight"):
                raise ValueError(f"{folder}: cannot be batched with other adapters: it holds {key}")
            continue
        module = key.removeprefix(_PEFT_PREFIX).removesuffix(".lora_A.weight")
        layers[module] = (a, tensors[key.replace(".lora_A.", ".lora_B.")])
    if not layers:
        raise ValueError(f"{folder}: holds no LoRA weights")
    return LoraWeights(rank, scale, layers)


class _Stack:
    """One target layer's stacked adapters: A (slots, r, in) and B transposed and scaled, (slots, r, out)."""

    def __init__(self, features_in: int, features_out: int, dtype: torch.dtype, device: torch.device):
        self.features_in, self.features_out = features_in, features_out
        self.dtype, self.device = dtype, device
        self.a = torch.zeros((0, 0, features_in), dtype=self.dtype, device=self.device)
        self.b = torch.zeros((0, 0, features_out), dtype=self.dtype, device=self.device)

    @property
    def rank(self) -> int:
        return self.a.shape[1]

    def fit(self, slots: int, rank: int) -> None:
        """Grow to at least `slots` slots of at least rank `rank` (new room zero)."""
        have_slots, have_rank = self.a.shape[0], self.a.shape[1]
        slots, rank = max(slots, have_slots), max(rank, have_rank)
        if (slots, rank) == (have_slots, have_rank):
            return
        a = torch.zeros((slots, rank, self.features_in), dtype=self.dtype, device=self.device)
        b = torch.zeros((slots, rank, self.features_out), dtype=self.dtype, device=self.device)
        a[:have_slots, :have_rank] = self.a
        b[:have_slots, :have_rank] = self.b
        self.a, self.b = a, b

    def put(self, slot: int, a: torch.Tensor, b: torch.Tensor, scale: float) -> None:
        rank = a.shape[0]
        self.clear(slot)
        self.a[slot, :rank] = a.to(self.dtype)
        self.b[slot, :rank] = (b.T.to(torch.float32) * scale).to(self.dtype)  # scaled once here, not per pass

    def clear(self, slot: int) -> None:
        self.a[slot].zero_()
        self.b[slot].zero_()

    # Each way adds the LoRA term into `out` (rows, tokens, out features) in place: a prefill's term is as large
    # as the layer's output, and a fresh tensor for it, then another for the sum, cost more than the matmuls.

    def add_single(self, x: torch.Tensor, slot: int, out: torch.Tensor) -> None:
        """One adapter for every row: two plain matmuls, nothing gathered."""
        hidden = x.reshape(-1, self.features_in) @ self.a[slot].T
        out.view(-1, self.features_out).addmm_(hidden, self.b[slot])

    def add_gathered(self, x: torch.Tensor, slots: torch.Tensor, weights: torch.Tensor, out: torch.Tensor) -> None:
        """Each row through its own slot's A and B, gathered per row (one copy of an adapter per sequence)."""
        hidden = torch.bmm(x, self.a[slots].transpose(1, 2)) * weights[:, None, None]
        out.baddbmm_(hidden, self.b[slots])

    def add_masked(self, x: torch.Tensor, mask: torch.Tensor, out: torch.Tensor) -> None:
        """Each row through every slot below the mask's width at once, the other slots' ranks masked to zero:
        mask (rows, 1, span * r)."""
        span = mask.shape[-1] // self.rank
        a, b = self.a[:span].reshape(-1, self.features_in), self.b[:span].reshape(-1, self.features_out)  # views
        hidden = (x @ a.T) * mask
        out.view(-1, self.features_out).addmm_(hidden.view(-1, mask.shape[-1]), b)

    def bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.a, self.b))


class BatchedLora:
    """The resident LoRA adapters of one base model, applied per row by forward hooks on its target layers."""

    def __init__(self, model: Any):
        self.model = model
        self._stacks: dict[str, _Stack] = {}
        self._hooks: list[Any] = []
        self._slot: dict[str, int] = {}  # adapter name -> slot
        self._rank: dict[str, int] = {}
        self._route: _Route | None = None

    @property
    def names(self) -> list[str]:
        """The resident adapters."""
        return list(self._slot)

    def load(self, name: str, folder: Path) -> None:
        """Read an adapter folder into a free slot (a slot that was dropped, else a new one)."""
        weights = read_lora(folder)
        missing = [module for module in weights.layers if not self._is_linear(module)]
        if missing:
            raise ValueError(f"{folder}: its targets are not linear layers of the base: {', '.join(missing[:3])}")
        taken = set(self._slot.values())
        slot = next(index for index in range(len(taken) + 1) if index not in taken)
        for module, (a, b) in weights.layers.items():
            stack = self._stacks.get(module)
            if stack is None:
                layer = self.model.get_submodule(module)
                # the model's dtype is the one it computes in (a 4-bit base stores its weights as uint8)
                stack = self._stacks[module] = _Stack(a.shape[1], b.shape[0], self.model.dtype, layer.weight.device)
                self._hooks.append(layer.register_forward_hook(self._hook(stack)))
            stack.fit(slot + 1, weights.rank)
            stack.put(slot, a, b, weights.scale)
        for module, stack in self._stacks.items():
            if module not in weights.layers:
                stack.fit(slot + 1, 0)
                stack.clear(slot)
        self._slot[name] = slot
        self._rank[name] = weights.rank

    def drop(self, name: str) -> None:
        """Free an adapter's slot (its weights zeroed; the next load reuses it)."""
        slot = self._slot.pop(name)
        self._rank.pop(name)
        for stack in self._stacks.values():
            stack.clear(slot)

    def bytes(self) -> int:
        """Bytes of the stacks: every slot at the largest rank."""
        return sum(stack.bytes() for stack in self._stacks.values())

    def adapter_bytes(self, name: str) -> int:
        """Bytes an adapter's own weights take at its rank (what it would take alone)."""
        rank = self._rank[name]
        element = next(iter(self._stacks.values())).a.element_size()
        return sum(rank * (s.features_in + s.features_out) * element for s in self._stacks.values())

    @contextmanager
    def routing(self, names: Sequence[str]) -> Iterator[None]:
        """While entered, row i of a forward pass goes through adapter names[i] ("__base__": none); one name
        routes every row."""
        unknown = [name for name in names if name != BASE_ADAPTER and name not in self._slot]
        if unknown:
            raise KeyError(f"adapter {unknown[0]} is not resident")
        before = self._route
        self._route = _Route.of(list(names), self._slot)
        try:
            yield
        finally:
            self._route = before

    def forward(self, model: Any, adapter_names: Sequence[str], **inputs: Any) -> Any:
        """The model's forward with each row routed to its adapter (the engine's AdapterRouting)."""
        with self.routing(adapter_names):
            return model(**inputs)

    def close(self) -> None:
        """Take the hooks off the base."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()

    def _is_linear(self, module: str) -> bool:
        try:
            layer = self.model.get_submodule(module)
        except AttributeError:
            return False
        return isinstance(layer, torch.nn.Linear)  # bitsandbytes' Linear4bit is one too

    def _hook(self, stack: _Stack) -> Any:
        def add_lora(module: Any, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
            route = self._route
            if route is None or route.base_only:
                return None
            x = args[0] if args[0].dim() == 3 else args[0][:, None]  # (rows, tokens, in)
            if x.shape[0] != len(route.slots) and route.single is None:
                raise ValueError(f"{len(route.slots)} adapter names for {x.shape[0]} rows")
            # the stacks hold the model's compute dtype; a 4-bit base's layers may give back another one
            same = output.dtype == stack.dtype and output.is_contiguous()
            out = (output if same else torch.zeros(output.shape, dtype=stack.dtype, device=output.device)).view(
                *x.shape[:2], -1
            )
            x = x.to(stack.dtype)
            if route.single is not None:
                stack.add_single(x, route.single, out)
            elif route.masks_beat_gathers(x.shape[1]):
                stack.add_masked(x, route.mask(stack.rank, output.device, stack.dtype), out)
            else:
                stack.add_gathered(x, *route.on(output.device, stack.dtype), out)
            return output if same else output + out.view(output.shape).to(output.dtype)

        return add_lora


@dataclass
class _Route:
    """One forward pass's routing, worked out once for all its layers: one slot for every row, or each row's."""

    single: int | None  # every row through this slot
    slots: torch.Tensor  # per row (the base's rows: any slot, weight 0)
    weights: torch.Tensor
    span: int  # slots up to the highest one a row uses (0: every row is the base's): what a masked pass reads
    _placed: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    _masks: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = field(default_factory=dict)

    @classmethod
    def of(cls, names: list[str], slot_of: dict[str, int]) -> _Route:
        span = max((slot_of[name] for name in names if name != BASE_ADAPTER), default=-1) + 1
        single = slot_of[names[0]] if len(set(names)) == 1 and span else None
        slots = torch.tensor([slot_of.get(name, 0) for name in names])
        weights = torch.tensor([float(name != BASE_ADAPTER) for name in names])
        return cls(single, slots, weights, span)

    @property
    def base_only(self) -> bool:
        return self.span == 0

    def masks_beat_gathers(self, tokens: int) -> bool:
        """Whether every slot at once, masked, costs less than gathering each row's: a gather copies a row's A and
        B whatever its length, masks multiply each token by every slot, so masks win for short rows (decode)."""
        return tokens * self.span <= _MASKED_SLOT_TOKENS

    def on(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-row slots and weights on this device (moved once per pass, not once per layer)."""
        if (device, dtype) not in self._placed:
            self._placed[device, dtype] = (self.slots.to(device), self.weights.to(device, dtype))
        return self._placed[device, dtype]

    def mask(self, rank: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(rows, 1, span * rank): each row's weight over its own slot's ranks, zero over every other slot's."""
        if (rank, device, dtype) not in self._masks:
            mask = torch.zeros((len(self.slots), self.span, rank), dtype=dtype)
            mask[torch.arange(len(self.slots)), self.slots] = self.weights.to(dtype)[:, None]
            self._masks[rank, device, dtype] = mask.view(len(self.slots), 1, -1).to(device)
        return self._masks[rank, device, dtype]
