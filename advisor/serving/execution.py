"""One batch of work on the models: what the serving worker thread runs for each group of jobs.

Four kinds of work, each a key type (jobs with equal keys run in one call):
- `Generate`: greedy completions of token ids as sent, on the shared model (rows for different
  adapters in one forward pass) or on one own model;
- `Logprobs`: per-token log-probabilities of token ids (completions' `echo` and `logprobs`);
- `Answer`: a tuned rung's own prompt answered as `advisor assess` answers it (scoring the labels
  or generating), rows for different shared-base rungs in one pass;
- `RungAnswer`: a rung's own `predict` (a prompting rung on the base weights, or a tuned rung that
  runs on a model of its own), exactly the assessment's answer.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from advisor.serving.batcher import Job
from advisor.serving.catalog import FULL, ServedAdapter
from advisor.serving.pool import ModelPool
from harness.inference.answering import Mode, Prompt, answer
from harness.inference.engine import Engine, TokenCallback
from harness.inference.prompts import PromptBuilder
from harness.rungs import Predictor
from harness.types import Example


class Models(NamedTuple):
    """The model a group of jobs runs on: a shared base of one kind (FULL or QUANTIZED), every adapter stacked
    on it, or one adapter's model of its own."""

    shared: bool
    name: str  # the shared base's kind, or the own model's adapter name


SHARED = Models(shared=True, name=FULL)  # the full-precision shared base


def group_of(adapter: ServedAdapter | None) -> Models:
    """Where an adapter's rows run (None: the base's rows, on the full-precision shared base)."""
    if adapter is None:
        return SHARED
    if adapter.group == "shared":
        return Models(shared=True, name=adapter.base)
    return Models(shared=False, name=adapter.name)


_Run = Callable[[Engine, Sequence[Job], "list[str] | None"], Sequence[Any]]
"""One call on an engine for a chunk of jobs, with the rows' adapter names (None: the model as it is)."""


@dataclass
class PassCounter:
    """What the shared model's passes held: how many rows and how many distinct adapters at most (GET /health)."""

    passes: int = 0
    rows: int = 0
    widest: int = 0  # the most rows in one pass
    most_adapters: int = 0  # the most distinct adapters (the base counted as one) in one pass
    mixed: int = 0  # passes whose rows named more than one adapter

    def count(self, adapters: Sequence[ServedAdapter | None]) -> None:
        """One pass over these rows' adapters (None: the base)."""
        distinct = len(_distinct(adapters))
        self.passes += 1
        self.rows += len(adapters)
        self.widest = max(self.widest, len(adapters))
        self.most_adapters = max(self.most_adapters, distinct)
        self.mixed += distinct > 1

    def as_dict(self) -> dict[str, int]:
        """The counts, for GET /health."""
        return asdict(self)


@dataclass(frozen=True)
class Generate:
    """Greedy completions with these settings on one model group."""

    group: Models
    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Logprobs:
    """Per-token log-probabilities (and the `top` likeliest tokens) on one model group."""

    group: Models
    top: int


@dataclass(frozen=True)
class Answer:
    """Shared-base tuned rungs answering in their own prompt, in one mode, on one shared base's group."""

    mode: Mode
    max_new_tokens: int
    group: Models


@dataclass(frozen=True)
class RungAnswer:
    """One rung answering through its own predict."""

    rung: str


@dataclass(frozen=True)
class TokensWork:
    """Token ids as sent, and the adapter that reads them (None: the base weights)."""

    tokens: tuple[int, ...]
    adapter: ServedAdapter | None


@dataclass(frozen=True)
class PromptWork:
    """A prompt a tuned rung built, and the rung's adapter."""

    prompt: Prompt
    adapter: ServedAdapter


@dataclass(frozen=True)
class ExampleWork:
    """An example for a rung's predict (with the adapter when the rung is tuned)."""

    example: Example
    adapter: ServedAdapter | None


class Executor:
    """Runs each group of jobs on the pool's models; called on the serving worker thread only."""

    def __init__(
        self,
        pool: ModelPool,
        tuned_prompts: PromptBuilder,
        labels: Sequence[str],
        prompting: Callable[[str], Predictor],
        switching: bool = False,
    ):
        """`prompting(name)`: the built prompting rung of that name (on the shared engine).

        `switching`: rows on the shared model run one at a time, each after switching the model to its
        adapter (peft's set_adapter), instead of in one mixed-adapter pass: the naive way of serving
        several adapters, kept as the baseline that benchmarks/serve.py measures the mixed batches against.
        """
        self.pool = pool
        self.tuned_prompts = tuned_prompts
        self.labels = tuple(labels)
        self._prompting = prompting
        self.switching = switching
        self.counter = PassCounter()

    def __call__(self, key: Hashable, jobs: Sequence[Job]) -> list[Any]:
        """One result per job: a Generation, a list of TokenLogprob, or an Output."""
        if isinstance(key, Generate):
            return self._generate(key, jobs)
        if isinstance(key, Logprobs):
            return self._logprobs(key, jobs)
        if isinstance(key, Answer):
            return self._answer(key, jobs)
        if isinstance(key, RungAnswer):
            return self._rung(key, jobs)
        raise TypeError(f"unknown work {key!r}")

    def _generate(self, key: Generate, jobs: Sequence[Job]) -> list[Any]:
        def run(engine: Engine, chunk: Sequence[Job], names: list[str] | None) -> list[Any]:
            prompts = [job.payload.tokens for job in chunk]
            listener = _listener(chunk)
            return engine.generate(
                prompts, max_new_tokens=key.max_new_tokens, stop=key.stop, adapters=names, on_token=listener
            )

        return self._on_engine(key.group, jobs, run)

    def _logprobs(self, key: Logprobs, jobs: Sequence[Job]) -> list[Any]:
        def run(engine: Engine, chunk: Sequence[Job], names: list[str] | None) -> list[Any]:
            return engine.token_logprobs([job.payload.tokens for job in chunk], top=key.top, adapters=names)

        return self._on_engine(key.group, jobs, run)

    def _answer(self, key: Answer, jobs: Sequence[Job]) -> list[Any]:
        def run(engine: Engine, chunk: Sequence[Job], names: list[str] | None) -> list[Any]:
            encoded = [job.payload.prompt for job in chunk]
            return answer(
                engine, self.tuned_prompts, encoded, self.labels, key.mode, key.max_new_tokens, adapters=names
            )

        return self._on_engine(key.group, jobs, run)

    def _on_engine(self, group: Models, jobs: Sequence[Job], run: _Run) -> list[Any]:
        """`run` over the jobs in chunks the model can take at once: mixed adapters, or one row per switch."""
        results: list[Any] = []
        if not group.shared:
            adapter = jobs[0].payload.adapter
            tuned = self.pool.own(adapter).tuned()
            assert tuned is not None  # the pool only keeps tuned rungs
            return list(run(tuned.engine(), jobs, None))
        engine = self.pool.shared_on(group.name)
        if self.switching:
            for job in jobs:
                with self.pool.switched_to(job.payload.adapter):
                    self.counter.count([job.payload.adapter])
                    results += run(engine, [job], None)
            return results
        for chunk in self._chunks(jobs):
            adapters = [job.payload.adapter for job in chunk]
            self.counter.count(adapters)
            # one adapter for every row: its two plain matmuls, and the engine's cached prefix stays usable
            if len(_distinct(adapters)) == 1:
                with self.pool.switched_to(adapters[0]):
                    results += run(engine, chunk, None)
            else:
                results += run(engine, chunk, self.pool.row_names(adapters))
        return results

    def _rung(self, key: RungAnswer, jobs: Sequence[Job]) -> list[Any]:
        examples = [job.payload.example for job in jobs]
        adapter = jobs[0].payload.adapter
        if adapter is not None:
            return self.pool.own(adapter).predict(examples)
        with self.pool.base_weights():
            return self._prompting(key.rung).predict(examples)

    def _chunks(self, jobs: Sequence[Job]) -> list[list[Job]]:
        """Consecutive runs of jobs that name at most max_adapters distinct adapters (all must be resident)."""
        chunks: list[list[Job]] = []
        seen: set[str] = set()
        for job in jobs:
            adapter = job.payload.adapter
            name = adapter.name if adapter is not None else None
            if not chunks or (name is not None and name not in seen and len(seen) >= self.pool.max_adapters):
                chunks.append([])
                seen = set()
            chunks[-1].append(job)
            if name is not None:
                seen.add(name)
        return chunks


def _distinct(adapters: Sequence[ServedAdapter | None]) -> set[str | None]:
    """The adapters' names (None: the base)."""
    return {a.name if a is not None else None for a in adapters}


def _listener(jobs: Sequence[Job]) -> TokenCallback:
    """Each generated token goes to its job (a stream hears it); a job whose client left stops its row."""

    def heard(index: int, token: int) -> bool:
        return jobs[index].heard(token)

    return heard
