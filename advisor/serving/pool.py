"""The models behind the served names: one shared base with its LoRA adapters, and models of their own.

The shared model is the base, never wrapped: its LoRA adapters are read into per-layer stacks
(harness/inference/batched_lora.py) and rows for different adapters (and "__base__") run in one
forward pass, each row's adapter gathered by its slot and applied with two batched matmuls. At most
`max_adapters` adapters stay resident; the least recently used one is dropped to make room and loaded
again when asked for, without a restart.

Rungs whose weights cannot share the base (QLoRA's own nf4 base, IA3, prompt and prefix tuning, full
fine-tunes, DoRA) are loaded by their own rung, built by the task's bound rungs exactly as the assessment
builds it. They are kept under the same limit, counted separately. A rung on a 4-bit base gets the run's
one nf4 base (tuning/methods.py `quantized_base`): every QLoRA rung served shares its weights.

Only the serving worker thread calls into a started pool, so nothing here needs a lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from advisor.serving.catalog import Catalog, ServedAdapter
from advisor.task.rung_plan import PlannedRung
from harness.errors import RunError
from harness.inference.adapter_routing import BASE_ADAPTER
from harness.inference.batched_lora import BatchedLora
from harness.inference.engine import Engine
from harness.rungs import Predictor

_NOTHING_SWITCHED = object()  # before the first switch: no cached prefix can be stale yet


class ModelPool:
    """Loads each model once and keeps at most `max_adapters` adapters (and own models) resident."""

    def __init__(self, base: Engine, build_own: Callable[[PlannedRung], Predictor], max_adapters: int):
        """`base`: an engine over the base model (deferred is fine); `build_own`: an own-model rung's predictor,
        built as the assessment builds it (advisor.measure.rung_builder), on a base of its own."""
        if max_adapters < 1:
            raise ValueError("max_adapters must be at least 1")
        self._base = base
        self._build_own = build_own
        self.max_adapters = max_adapters
        self._lora: BatchedLora | None = None
        self._shared: Engine | None = None
        self._resident: OrderedDict[str, None] = OrderedDict()  # shared adapters, least recently used first
        self._switched: object = _NOTHING_SWITCHED  # whose weights the shared engine's cached prefix was made with
        self._own: OrderedDict[str, Predictor] = OrderedDict()
        self.loads = 0  # adapters and own models loaded so far (evictions make this grow)
        # bytes of weights in memory, recounted on the worker thread after each load or eviction and
        # replaced whole, so GET /health reads a finished dict without touching a model being changed
        self.weight_bytes: dict[str, Any] = {}

    def start(self, catalog: Catalog) -> None:
        """Load the base and the first shared adapters (up to the limit), so a broken one fails at start."""
        shared = [a for a in catalog.adapters if a.group == "shared"]
        self._lora = BatchedLora(self._base.model)
        for adapter in shared[: self.max_adapters]:
            self._load_shared(adapter)
        self._count_bytes()
        self._shared = Engine(
            self._base.model,
            self._base.tokenizer,
            max_batch_tokens=self._base.max_batch_tokens,
            max_batch_size=self._base.max_batch_size,
            routing=self._lora,
        )

    @property
    def shared(self) -> Engine:
        """The engine over the shared model (the base, with its LoRA adapters once any is loaded)."""
        if self._shared is None:
            raise RuntimeError("the model pool has not been started")
        return self._shared

    @property
    def resident(self) -> list[str]:
        """Names of the adapters and own models in memory, least recently used first."""
        return [*self._resident, *self._own]

    def row_names(self, adapters: Sequence[ServedAdapter | None]) -> list[str] | None:
        """Each row's adapter name on the shared model ("__base__" for the base), loading what is missing.

        None when no adapter is resident and every row is a base row (the plain base answers). The rows may
        name at most `max_adapters` distinct adapters (the executor splits larger batches).
        """
        wanted = list(dict.fromkeys(a.name for a in adapters if a is not None))
        if len(wanted) > self.max_adapters:
            raise ValueError(f"{len(wanted)} adapters in one batch, more than max_adapters={self.max_adapters}")
        for adapter in adapters:
            if adapter is not None and adapter.name not in self._resident:
                self._load_shared(adapter, keep=wanted)
        for name in wanted:
            self._resident.move_to_end(name)
        if not wanted:
            return None
        return [a.name if a is not None else BASE_ADAPTER for a in adapters]

    def own(self, adapter: ServedAdapter) -> Predictor:
        """The rung of an own-model adapter, its model loaded (the least recently used other one dropped)."""
        if adapter.name in self._own:
            self._own.move_to_end(adapter.name)
            return self._own[adapter.name]
        if adapter.rung is None:
            raise RuntimeError(f"adapter {adapter.name} has no rung to load it")
        predictor = self._build_own(adapter.rung)
        if predictor.tuned() is None:
            raise RuntimeError(f"rung {adapter.name} is not a tuned rung")
        predictor.prepare()  # loads the stored artifact; the catalog only lists trained rungs
        self.loads += 1
        self._own[adapter.name] = predictor
        while len(self._own) > self.max_adapters:
            self._own.popitem(last=False)
        self._count_bytes()
        return predictor

    @contextmanager
    def base_weights(self) -> Iterator[None]:
        """The shared model as the plain base, while a prompting rung runs it its own way."""
        self._switch(None)
        yield

    @contextmanager
    def switched_to(self, adapter: ServedAdapter | None) -> Iterator[None]:
        """The shared model answering every row with this adapter (None: the base), a batch of one adapter.

        The shared engine's cached prefix is dropped when the adapter differs from the last one switched
        to: a prefix's keys and values depend on the weights that computed them.
        """
        if adapter is None:
            with self.base_weights():
                yield
            return
        self.row_names([adapter])
        self._switch(adapter.name)
        assert self._lora is not None  # started
        with self._lora.routing([adapter.name]):
            yield

    def _switch(self, name: str | None) -> None:
        if self._switched is not _NOTHING_SWITCHED and self._switched != name and self._shared is not None:
            self._shared.forget_prefix()
        self._switched = name

    def _load_shared(self, adapter: ServedAdapter, keep: Sequence[str] = ()) -> None:
        lora = self._lora
        assert lora is not None  # started
        while len(self._resident) >= self.max_adapters:  # evicted first: the stacks hold max_adapters slots
            victim = next(name for name in self._resident if name not in keep and name != adapter.name)
            self._resident.pop(victim)
            lora.drop(victim)
            if self._switched == victim:
                self._switch(None)
        try:
            lora.load(adapter.name, adapter.path)
        except (OSError, ValueError, KeyError) as error:
            raise RunError(
                f"adapter {adapter.name} ({adapter.path}) could not be loaded: {_first_line(error)}"
            ) from error
        self.loads += 1
        self._resident[adapter.name] = None
        self._count_bytes()

    def _count_bytes(self) -> None:
        """Bytes of the shared base, of each resident adapter at its rank, of the adapter stacks (every slot at the
        largest rank), and of each own model whole (nf4 counted packed; a base own models share counted once)."""
        lora = self._lora
        adapters = {name: lora.adapter_bytes(name) for name in self._resident} if lora is not None else {}
        base = _bytes(self._base.model.parameters())
        tensors: dict[str, dict[int, Any]] = {}  # own model -> its tensors by storage address
        for name, predictor in self._own.items():
            tuned = predictor.tuned()
            if tuned is not None:
                model = tuned.engine().model
                tensors[name] = {t.data_ptr(): t for t in (*model.parameters(), *model.buffers())}
        holders: dict[int, int] = {}
        for held in tensors.values():
            for address in held:
                holders[address] = holders.get(address, 0) + 1
        own = {name: _bytes(t for a, t in held.items() if holders[a] == 1) for name, held in tensors.items()}
        common = {a: t for held in tensors.values() for a, t in held.items() if holders[a] > 1}
        stacks = lora.bytes() if lora is not None else 0
        self.weight_bytes = {
            "shared_base": base,
            "adapters": adapters,
            "adapter_stacks": stacks,
            "own_models": own,  # each one's weights that no other own model shares
            "shared_by_own_models": _bytes(common.values()),  # such as the one nf4 base of every QLoRA rung
        }


def _bytes(tensors: Iterable[Any]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:300]
