"""Where tracked runs go: a registry of sinks, each a tracking backend that writes a TrackedRun tree.

A sink registers by name through the `ladder.trackers` entry point group, the built-in ones exactly as a
plug-in would (`--track <name>`, `tracking.to: [<name>]`); its library is imported only when it writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from advisor.tracking.record import TrackedRun
from harness.registry import Registry


class TrackingUnavailable(Exception):
    """The backend cannot be reached or refused the runs; the assessment stands, tracking is skipped."""


@dataclass(frozen=True)
class TrackingTarget:
    """What every sink needs to know about where the task's runs go."""

    folder: Path  # the task's .advisor folder: embedded stores live here
    experiment: str
    uri: str | None  # an MLflow tracking URI (tracking.uri, else MLFLOW_TRACKING_URI); None: the embedded store
    in_house_only: bool  # facts.data_must_stay_in_house
    in_house_hosts: tuple[str, ...] = ()


class Sink(Protocol):
    """A tracking backend."""

    def write(self, run: TrackedRun) -> str:
        """Write the run tree; return the line that tells the user how to look at it."""


SinkFactory = Callable[[TrackingTarget], Sink]


@dataclass(frozen=True)
class RegisteredSink:
    """A sink factory and the package it needs installed to write (None: nothing beyond the advisor's own)."""

    factory: SinkFactory
    library: str | None = None


_SINKS: Registry[RegisteredSink] = Registry("tracking backend", "ladder.trackers")


def register_sink(name: str, library: str | None = None) -> Callable[[SinkFactory], SinkFactory]:
    """Register a sink factory under `name`; `library` is the package it needs installed to write."""

    def add(factory: SinkFactory) -> SinkFactory:
        _SINKS.add(name, RegisteredSink(factory, library), factory.__module__)
        return factory

    return add


def required_library(name: str) -> str | None:
    """The package the named sink needs installed (None: nothing beyond the advisor's own)."""
    return _SINKS.get(name).library if name in _SINKS else None


def sink_names() -> list[str]:
    """The registered sinks' names."""
    return _SINKS.names()


def get_sink(name: str, target: TrackingTarget, where: str) -> Sink:
    """The named sink for this target, or one line naming the known ones."""
    return _SINKS.get(name, where).factory(target)
