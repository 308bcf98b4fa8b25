"""The models behind the served names: one shared base with its LoRA adapters, and models of their own.

The shared model is the base, wrapped by peft when the first LoRA adapter loads; every further
adapter is loaded into the same wrapper, so one copy of the base weights serves all of them and rows
for different adapters (and "__base__") run in one forward pass. At most `max_adapters` adapters stay
resident; the least recently used one is dropped to make room and loaded again when asked for.

Rungs whose weights cannot share the base (QLoRA's own nf4 base, IA3, prompt and prefix tuning, full
fine-tunes, DoRA) are loaded by their own rung, built by the task's bound rungs exactly as the assessment
builds it, on a base loaded fresh from disk: the shared base has LoRA layers injected into it and must not
be copied. They are kept under the same limit, counted separately.

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
from harness.inference.engine import BASE_ADAPTER, Engine
from harness.rungs import Predictor


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
        self._peft: Any = None
        self._shared: Engine | None = None
        # served name -> peft's name for it: peft misreads an adapter named like its own prefix ("lora" in "lora_")
        self._resident: OrderedDict[str, str] = OrderedDict()
        self._own: OrderedDict[str, Predictor] = OrderedDict()
        self.loads = 0  # adapters and own models loaded so far (evictions make this grow)
        # bytes of weights in memory, recounted on the worker thread after each load or eviction and
        # replaced whole, so GET /health reads a finished dict without touching a model being changed
        self.weight_bytes: dict[str, Any] = {}

    def start(self, catalog: Catalog) -> None:
        """Load the base and the first shared adapters (up to the limit), so a broken one fails at start."""
        shared = [a for a in catalog.adapters if a.group == "shared"]
        for adapter in shared[: self.max_adapters]:
            self._load_shared(adapter)
        model = self._peft if self._peft is not None else self._base.model
        self._count_bytes()
        self._shared = Engine(
            model,
            self._base.tokenizer,
            max_batch_tokens=self._base.max_batch_tokens,
            max_batch_size=self._base.max_batch_size,
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
        """peft's per-row adapter names for rows on the shared model, loading what is missing.

        None when the shared model holds no adapter (plain base: every row is a base row). The rows may
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
        if self._peft is None:
            return None
        return [self._resident[a.name] if a is not None else BASE_ADAPTER for a in adapters]

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
        """Every adapter switched off while a prompting rung runs the shared model its own way."""
        if self._peft is None:
            yield
            return
        with self._peft.disable_adapter():
            yield

    @contextmanager
    def switched_to(self, adapter: ServedAdapter | None) -> Iterator[None]:
        """The shared model with only this adapter active (None: the base), switched as peft's set_adapter does.

        The one-request-at-a-time way of serving several adapters, kept as the baseline the mixed
        batches are measured against (benchmarks/serve.py).
        """
        if adapter is None:
            with self.base_weights():
                yield
            return
        self.row_names([adapter])
        self._peft.set_adapter(self._resident[adapter.name], inference_mode=True)
        yield

    def _load_shared(self, adapter: ServedAdapter, keep: Sequence[str] = ()) -> None:
        from peft import PeftModel

        internal = f"served_{self.loads}"
        try:
            if self._peft is None:
                model = PeftModel.from_pretrained(self._base.model, str(adapter.path), adapter_name=internal)
                self._peft = model.eval()
            else:
                self._peft.load_adapter(str(adapter.path), adapter_name=internal)
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            raise RunError(
                f"adapter {adapter.name} ({adapter.path}) could not be loaded: {_first_line(error)}"
            ) from error
        self.loads += 1
        self._resident[adapter.name] = internal
        # loaded first, evicted after: peft cannot hold zero adapters
        while len(self._resident) > self.max_adapters:
            victim = next(name for name in self._resident if name not in keep and name != adapter.name)
            dropped = self._resident.pop(victim)
            if dropped in self._peft.active_adapters:  # peft warns when it has to pick a new active one itself
                self._peft.set_adapter(internal, inference_mode=True)
            self._peft.delete_adapter(dropped)
        self._count_bytes()

    def _count_bytes(self) -> None:
        """Bytes of the shared base, of each resident adapter, and of each own model whole (nf4 counted packed)."""
        adapters = {}
        if self._peft is not None:
            named = list(self._peft.named_parameters())
            for served, internal in self._resident.items():
                adapters[served] = _bytes(p for n, p in named if f".{internal}." in n)
            base = _bytes(p for n, p in named if ".lora_" not in n)
        else:
            base = _bytes(self._base.model.parameters())
        own = {}
        for name, predictor in self._own.items():
            tuned = predictor.tuned()
            if tuned is not None:
                model = tuned.engine().model
                own[name] = _bytes(model.parameters()) + _bytes(model.buffers())
        self.weight_bytes = {"shared_base": base, "adapters": adapters, "own_models": own}


def _bytes(tensors: Iterable[Any]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:300]
