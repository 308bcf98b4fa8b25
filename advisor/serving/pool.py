"""The models behind the served names: shared bases with their LoRA adapters stacked, and models of their own.

A shared base is never wrapped: its LoRA adapters are read into per-layer stacks
(harness/inference/batched_lora.py) and rows for different adapters (and "__base__") run in one
forward pass. There is one shared base per kind of base the served adapters were trained on: the task's
model in full precision (`copy`) and, when QLoRA rungs are served, the run's one nf4 base (`quantized`,
tuning/methods.py `quantized_base`), under which every QLoRA adapter is stacked the same way. Each shared
base keeps at most `max_adapters` adapters resident; the least recently used one is dropped to make room and
loaded again when asked for, without a restart.

Rungs whose weights cannot share a base (IA3, prompt and prefix tuning, full fine-tunes, DoRA) are loaded by
their own rung, built by the task's bound rungs exactly as the assessment builds it. They are kept under the
same limit, counted separately.

Only the serving worker thread calls into a started pool, so nothing here needs a lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from advisor.serving.catalog import FULL, QUANTIZED, Catalog, ServedAdapter
from advisor.task.rung_plan import PlannedRung
from harness.errors import RunError
from harness.inference.adapter_routing import BASE_ADAPTER
from harness.inference.batched_lora import BatchedLora
from harness.inference.engine import Engine
from harness.rungs import Predictor

_NOTHING_SWITCHED = object()  # before the first switch: no cached prefix can be stale yet


class _SharedBase:
    """One base model, its engine, and the LoRA adapters stacked over it (least recently used first)."""

    def __init__(self, engine: Engine):
        self.lora = BatchedLora(engine.model)
        self.engine = Engine(
            engine.model,
            engine.tokenizer,
            max_batch_tokens=engine.max_batch_tokens,
            max_batch_size=engine.max_batch_size,
            routing=self.lora,
        )
        self.resident: OrderedDict[str, None] = OrderedDict()
        self.switched: object = _NOTHING_SWITCHED  # whose weights the engine's cached prefix was made with

    def switch(self, name: str | None) -> None:
        """Every row through this adapter (None: the base) from now on: a prefix cached with another one is stale."""
        if self.switched is not _NOTHING_SWITCHED and self.switched != name:
            self.engine.forget_prefix()
        self.switched = name


class ModelPool:
    """Loads each model once and keeps at most `max_adapters` adapters per shared base (and own models) resident."""

    def __init__(
        self,
        base: Engine,
        build_own: Callable[[PlannedRung], Predictor],
        max_adapters: int,
        quantized: Callable[[], Engine] | None = None,
    ):
        """`base`: an engine over the base model (deferred is fine); `build_own`: an own-model rung's predictor,
        built as the assessment builds it (advisor.measure.rung_builder), on a base of its own; `quantized`: an
        engine over the run's nf4 base, for the QLoRA adapters (loaded only when one is served)."""
        if max_adapters < 1:
            raise ValueError("max_adapters must be at least 1")
        self._base = base
        self._quantized = quantized
        self._build_own = build_own
        self.max_adapters = max_adapters
        self._shared: dict[str, _SharedBase] = {}
        self._own: OrderedDict[str, Predictor] = OrderedDict()
        self.loads = 0  # adapters and own models loaded so far (evictions make this grow)
        # bytes of weights in memory, recounted on the worker thread after each load or eviction and
        # replaced whole, so GET /health reads a finished dict without touching a model being changed
        self.weight_bytes: dict[str, Any] = {}

    def start(self, catalog: Catalog) -> None:
        """Load the bases and the first shared adapters of each (up to the limit), so a broken one fails at start."""
        self._shared[FULL] = _SharedBase(self._base)
        for kind in (FULL, QUANTIZED):
            stacked = [a for a in catalog.adapters if a.group == "shared" and a.base == kind]
            for adapter in stacked[: self.max_adapters]:
                self._load_shared(adapter)
        self._count_bytes()

    @property
    def shared(self) -> Engine:
        """The engine over the full-precision shared base (with its LoRA adapters once any is loaded)."""
        return self.shared_on(FULL)

    def shared_on(self, base: str) -> Engine:
        """The engine over the shared base of this kind (FULL or QUANTIZED)."""
        return self._on(base).engine

    @property
    def resident(self) -> list[str]:
        """Names of the adapters and own models in memory, least recently used first (each shared base's in turn)."""
        return [*(name for shared in self._shared.values() for name in shared.resident), *self._own]

    def row_names(self, adapters: Sequence[ServedAdapter | None]) -> list[str] | None:
        """Each row's adapter name on their shared base ("__base__" for the base), loading what is missing.

        None when no adapter is resident and every row is a base row (the plain base answers). The rows'
        adapters share one base, and name at most `max_adapters` distinct adapters (the executor splits larger
        batches).
        """
        named = [a for a in adapters if a is not None]
        shared = self._on(_one_base(named))
        wanted = list(dict.fromkeys(a.name for a in named))
        if len(wanted) > self.max_adapters:
            raise ValueError(f"{len(wanted)} adapters in one batch, more than max_adapters={self.max_adapters}")
        for adapter in named:
            if adapter.name not in shared.resident:
                self._load_shared(adapter, keep=wanted)
        for name in wanted:
            shared.resident.move_to_end(name)
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
        """The full-precision shared model as the plain base, while a prompting rung runs it its own way."""
        self._on(FULL).switch(None)
        yield

    @contextmanager
    def switched_to(self, adapter: ServedAdapter | None) -> Iterator[None]:
        """The adapter's shared model answering every row with it (None: the base), a batch of one adapter.

        The engine's cached prefix is dropped when the adapter differs from the last one switched to: a prefix's
        keys and values depend on the weights that computed them.
        """
        if adapter is None:
            with self.base_weights():
                yield
            return
        self.row_names([adapter])
        shared = self._on(adapter.base)
        shared.switch(adapter.name)
        with shared.lora.routing([adapter.name]):
            yield

    def _on(self, base: str) -> _SharedBase:
        if not self._shared:
            raise RuntimeError("the model pool has not been started")
        if base not in self._shared:
            if base != QUANTIZED or self._quantized is None:
                raise RuntimeError(f"no shared base of kind {base!r} in this pool")
            self._shared[base] = _SharedBase(self._quantized())
        return self._shared[base]

    def _load_shared(self, adapter: ServedAdapter, keep: Sequence[str] = ()) -> None:
        shared = self._on(adapter.base)
        while len(shared.resident) >= self.max_adapters:  # evicted first: the stacks hold max_adapters slots
            victim = next(name for name in shared.resident if name not in keep and name != adapter.name)
            shared.resident.pop(victim)
            shared.lora.drop(victim)
            if shared.switched == victim:
                shared.switch(None)
        try:
            shared.lora.load(adapter.name, adapter.path)
        except (OSError, ValueError, KeyError) as error:
            raise RunError(
                f"adapter {adapter.name} ({adapter.path}) could not be loaded: {_first_line(error)}"
            ) from error
        self.loads += 1
        shared.resident[adapter.name] = None
        self._count_bytes()

    def _count_bytes(self) -> None:
        """Bytes of the shared bases, of each resident adapter at its rank, of the adapter stacks (every slot at the
        largest rank), and of each own model whole (nf4 counted packed; a base own models share counted once)."""
        adapters = {name: s.lora.adapter_bytes(name) for s in self._shared.values() for name in s.resident}
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
        quantized = self._shared.get(QUANTIZED)
        self.weight_bytes = {
            "shared_base": _bytes(self._base.model.parameters()),
            # the nf4 base the QLoRA adapters are stacked on (4-bit weights counted packed)
            "shared_nf4_base": _bytes(quantized.engine.model.parameters()) if quantized is not None else 0,
            "adapters": adapters,
            "adapter_stacks": sum(s.lora.bytes() for s in self._shared.values()),
            "own_models": own,  # each one's weights that no other own model shares
            "shared_by_own_models": _bytes(common.values()),  # such as the one nf4 base of QLoRA rungs of their own
        }


def _one_base(adapters: Sequence[ServedAdapter]) -> str:
    kinds = {a.base for a in adapters}
    if len(kinds) > 1:
        raise ValueError("rows on different shared bases cannot share a pass")
    return kinds.pop() if kinds else FULL


def _bytes(tensors: Iterable[Any]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:300]
