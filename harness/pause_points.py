"""Test-only: named points where a run can be made to stop, so a test can kill it at exactly that point.

A kill test that sleeps a fraction of a reference run's time lands wherever the machine's load puts it
(and sometimes after the run has finished). Instead, the test sets the environment variable
LADDER_TEST_PAUSE_AT="<event pattern>:<n>" (an fnmatch pattern, "*" for any text; n counts from 1).
When the process reaches the n-th event that matches, it prints `PAUSED_LINE <event> #<n>` to stderr
and blocks until it is killed. Unset (always, outside tests), every point costs one comparison.

A process whose stderr the test cannot read (a Ray worker: its output goes to Ray's log files) is told
LADDER_TEST_PAUSE_FILE=<path> as well: the first process to reach the point creates that file, writes
`<pid> <event>` into it and pauses; any process that finds the file there goes on (a task Ray retries
after the kill runs through). The test waits for the file, and kills the pid it names.

Events, named where they happen:
- `outputs stored (<mode>)`: a batch of outputs was committed to the store (mode: batched, single, probe)
- `index built`: a retrieval index folder was renamed into place (its lock still held)
- `checkpoint written <path>`: a training checkpoint folder is in place, `latest` not yet naming it
- `writing <path>`: the temporary file (or folder) of <path> is written and about to be renamed over it
"""

from __future__ import annotations

import fnmatch
import os
import sys
import time
from dataclasses import dataclass

VARIABLE = "LADDER_TEST_PAUSE_AT"
FILE_VARIABLE = "LADDER_TEST_PAUSE_FILE"
PAUSED_LINE = "ladder test pause:"


@dataclass
class _Target:
    pattern: str
    occurrence: int
    seen: int = 0


def parse_target(value: str) -> _Target | None:
    """The pattern and occurrence in the variable's value ("<pattern>:<n>"; no ":<n>" means the first)."""
    if not value:
        return None
    pattern, _, count = value.rpartition(":")
    if not pattern or not count.isdigit() or int(count) < 1:
        return _Target(value, 1)
    return _Target(pattern, int(count))


_target = parse_target(os.environ.get(VARIABLE, ""))


def pause_point(event: str) -> None:
    """Block here forever when this is the awaited occurrence of the awaited event (tests only)."""
    if _target is None:
        return
    if not fnmatch.fnmatchcase(event, _target.pattern):
        return
    _target.seen += 1
    if _target.seen != _target.occurrence:
        return
    marker = os.environ.get(FILE_VARIABLE)
    if marker and not _claimed(marker, f"{os.getpid()} {event}\n"):
        return
    print(f"{PAUSED_LINE} {event} #{_target.seen}", file=sys.stderr, flush=True)
    while True:  # the test kills this process now
        time.sleep(60)


def _claimed(marker: str, line: str) -> bool:
    """Whether this process is the first to pause: it made the marker file (and wrote `line` into it)."""
    try:
        descriptor = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        file.write(line)
    return True
