"""What `assess`, `train` and `serve` print while they work: bars on a terminal, plain lines in a log.

Without a terminal (CI, `| tee`, a file) a bar draws nothing, so every phase, rung, trial and
evaluation becomes one plain line instead: what, how far, the time since the start and, once the
plan is known, about how long is left. On a terminal the same events print above the bars.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from advisor.report.plan import duration


@dataclass
class Clock:
    """Elapsed time since the start, and what the plan says is left (the current rung's plan less its time)."""

    planned: dict[str, float] = field(default_factory=dict)  # rung -> planned seconds; empty: no estimate
    started: float = field(default_factory=time.perf_counter)
    rung: str | None = None
    rung_started: float = 0.0
    done: set[str] = field(default_factory=set)

    def begin(self, rung: str) -> None:
        """A rung starts now."""
        self.rung, self.rung_started = rung, time.perf_counter()

    def end(self, rung: str) -> None:
        """A rung is done."""
        self.done.add(rung)
        self.rung = None

    def elapsed(self) -> str:
        """m:ss since the start."""
        seconds = int(time.perf_counter() - self.started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def left(self) -> float | None:
        """Seconds the plan says are left; None without a plan."""
        if not self.planned:
            return None
        rest = sum(s for name, s in self.planned.items() if name not in self.done and name != self.rung)
        if self.rung is not None:
            rest += max(0.0, self.planned.get(self.rung, 0.0) - (time.perf_counter() - self.rung_started))
        return rest

    def stamp(self) -> str:
        """`[elapsed]`, with `~left` when the plan gives it."""
        left = self.left()
        return f"[{self.elapsed()}{f', ~{duration(left)} left' if left is not None else ''}]"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())


def _judged(epoch: float, loss: float, metric: float | None, metric_name: str) -> str:
    shown = f", {metric_name} {metric:.3f}" if metric is not None else ""
    return f"epoch {epoch:g}: validation loss {loss:.3f}{shown}"


class LineHooks:
    """Progress as one plain line per event, for logs and pipes."""

    def __init__(self, console: Console, clock: Clock | None = None):
        self.console = console
        self.clock = clock or Clock()
        self.total = 0

    def _line(self, text: str) -> None:
        self.console.print(f"{self.clock.stamp()} {escape(text)}", highlight=False, soft_wrap=True)

    def plan(self, planned: dict[str, float]) -> None:
        """The plan is known: say its total, and estimate what is left from now on."""
        self.clock.planned = dict(planned)
        self._line(f"plan: about {duration(sum(planned.values()))} for {len(planned)} rungs on this machine")

    def stage(self, text: str) -> None:
        self._line(text)

    def rung_started(self, name: str, total: int) -> None:
        self.clock.begin(name)
        self.total = total
        self._line(f"{name}: started ({total} test examples)")

    def advance(self, count: int) -> None:
        """Counted, not printed: a log gets a line per rung, not per chunk."""

    def rung_finished(self, name: str) -> None:
        spent = time.perf_counter() - self.clock.rung_started
        self.clock.end(name)
        self._line(f"{name}: done in {duration(spent)}")

    def training(self, rung: str, step: int, total: int, loss: float, tokens_per_s: float) -> None:
        """Steps are not printed one by one; evaluations are."""
        if self.clock.rung != rung and rung not in self.clock.done:
            self.clock.begin(rung)

    def trial(self, rung: str, number: int, trials: int, params: dict[str, Any]) -> None:
        self._line(f"{rung}: search trial {number + 1} of {trials} ({_params(params)})")

    def evaluated(self, rung: str, epoch: float, loss: float, metric: float | None, metric_name: str) -> None:
        self._line(f"{rung}: {_judged(epoch, loss, metric, metric_name)}")


class BarHooks:
    """Progress as bars on a terminal: one per rung's test examples, one for training steps."""

    def __init__(self, progress: Progress, clock: Clock | None = None):
        self.progress = progress
        self.clock = clock or Clock()
        self.current: Any = None
        self.training_task: Any = None
        self.started = False

    def _start(self) -> None:
        if not self.started:  # started late so that an early input error prints nothing else
            self.progress.start()
            self.started = True

    def _note(self, text: str) -> None:
        self.progress.console.print(f"[dim]{self.clock.stamp()} {escape(text)}[/dim]", highlight=False)

    def plan(self, planned: dict[str, float]) -> None:
        """The plan is known: say its total, and estimate what is left from now on."""
        self.clock.planned = dict(planned)
        self._note(f"plan: about {duration(sum(planned.values()))} for {len(planned)} rungs on this machine")

    def stage(self, text: str) -> None:
        self._note(f"{text}...")

    def rung_started(self, name: str, total: int) -> None:
        self._start()
        self.clock.begin(name)
        self.current = self.progress.add_task(escape(name), total=total)

    def advance(self, count: int) -> None:
        if self.current is not None:
            self.progress.advance(self.current, count)

    def rung_finished(self, name: str) -> None:
        self.clock.end(name)
        self.current = None

    def training(self, rung: str, step: int, total: int, loss: float, tokens_per_s: float) -> None:
        """One training step done: the bar shows the loss and useful tokens/s."""
        self._start()
        if self.clock.rung != rung and rung not in self.clock.done:
            self.clock.begin(rung)
        description = f"{escape(rung)} training  loss {loss:.3f}  {tokens_per_s:.0f} tok/s"
        if self.training_task is None:
            self.training_task = self.progress.add_task(description, total=total)
        self.progress.update(self.training_task, completed=step, total=max(total, step), description=description)
        if step >= total:
            self.training_task = None

    def trial(self, rung: str, number: int, trials: int, params: dict[str, Any]) -> None:
        self.training_task = None
        self._note(f"{rung}: search trial {number + 1} of {trials} ({_params(params)})")

    def evaluated(self, rung: str, epoch: float, loss: float, metric: float | None, metric_name: str) -> None:
        self._note(f"{rung}: {_judged(epoch, loss, metric, metric_name)}")


def progress_hooks(console: Console) -> BarHooks | LineHooks:
    """Bars on a terminal, plain lines otherwise."""
    if not console.is_terminal:
        return LineHooks(console)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    return BarHooks(Progress(*columns, console=console, transient=False))


def stop(hooks: object) -> None:
    """Stop the bars, if any were drawn."""
    if isinstance(hooks, BarHooks) and hooks.started:
        hooks.progress.stop()
