"""Killing a process at a named point of its work (harness/pause_points.py), never after a guessed delay."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.pause_points import PAUSED_LINE, VARIABLE


def kill_at(command: Sequence[str], env: Mapping[str, str], point: str, timeout_s: float = 600) -> str:
    """Run `command` until it pauses at `point` ("<event pattern>:<n>"), SIGKILL it there; the pause line.

    Fails when the run ends without reaching the point, or when anything but the kill ended it.
    """
    process = subprocess.Popen(
        list(command),
        env={**env, VARIABLE: point},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    paused = ""
    for line in process.stderr:  # the run's own lines, then the pause line; EOF when it ended without one
        if line.startswith(PAUSED_LINE):
            paused = line.strip()
            process.send_signal(signal.SIGKILL)
            break
    _, rest = process.communicate(timeout=timeout_s)
    assert paused, f"{point}: never reached (exit {process.returncode})\n{rest[-2000:]}"
    assert process.returncode == -signal.SIGKILL, f"{paused}, then exit {process.returncode} instead of the kill"
    return paused


def without_pauses(env: Mapping[str, str]) -> dict[str, str]:
    """An environment with no pause point inherited (a re-run must finish)."""
    return {key: value for key, value in env.items() if key != VARIABLE}


@contextmanager
def running_beside(command: Sequence[str], env: Mapping[str, str], log: Path, timeout_s: float = 600) -> Iterator[None]:
    """Run `command` (an uninterrupted reference run) while the block runs, its stderr in `log`; at the end of
    the block it must finish with exit 0. A single-threaded worker on a core the killed run leaves idle: the
    reference no longer waits for the kill and the resume to be over. A block that fails kills it."""
    with log.open("w") as sink:
        process = subprocess.Popen(list(command), env=without_pauses(env), stdout=subprocess.DEVNULL, stderr=sink)
    try:
        yield
    except BaseException:
        process.kill()
        process.wait()
        raise
    process.wait(timeout=timeout_s)
    assert process.returncode == 0, f"{list(command)}: exit {process.returncode}\n{log.read_text()[-2000:]}"
