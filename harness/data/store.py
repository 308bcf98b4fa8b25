"""The result store: one SQLite file (WAL) of finished outputs, keyed by content hashes.

Every batch is committed as it finishes, so a run killed at any moment keeps what it finished and
the next run computes only the rest. Readers and a second writer wait on a busy timeout instead of
failing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.distributed import writes_files
from harness.errors import RunError
from harness.pause_points import pause_point
from harness.types import Output

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    key TEXT PRIMARY KEY,
    predictor TEXT NOT NULL,
    example TEXT NOT NULL,
    mode TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outputs_predictor ON outputs (predictor, mode);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    created REAL NOT NULL
);
"""


OutputRow = tuple[str, str, str, str, str, float]  # key, predictor, example, mode, payload (JSON), created
ResponseRow = tuple[str, str, float]  # key, payload (JSON), created


class NotStored(Exception):
    """A store opened for stored answers only met one that would have to be computed."""


class Store:
    """Finished outputs by key; safe to share between processes.

    Opened with `stored_only`, it is a question rather than a cache: "can this be answered without
    computing anything?" (an executor asks it before sending work elsewhere).
    """

    def __init__(
        self,
        path: Path,
        busy_timeout_s: float = 60.0,
        *,
        stored_only: bool = False,
        on_first_compute: Callable[[], None] | None = None,
    ):
        """`on_first_compute` runs once, just before the first thing that is not stored is computed."""
        self.path = path
        self.stored_only = stored_only
        self._on_first_compute = on_first_compute
        self.first_compute_s = 0.0  # time `on_first_compute` took (a plan's calibration): no rung's own time
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None)
            self._use_wal(busy_timeout_s)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise RunError(
                f"{path}: the result store cannot be opened ({error}); move it aside to start afresh"
            ) from None

    def _use_wal(self, busy_timeout_s: float) -> None:
        """Switch to write-ahead logging. SQLite answers "database is locked" at once, without waiting out the
        busy timeout, when another process (a launch's other rank) is switching the same new file: retry."""
        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def get_outputs(self, keys: Sequence[str]) -> dict[str, Output]:
        """The stored outputs among these keys."""
        found: dict[str, Output] = {}
        for start in range(0, len(keys), 500):
            part = list(keys[start : start + 500])
            marks = ",".join("?" * len(part))
            for key, payload in self._db.execute(f"SELECT key, payload FROM outputs WHERE key IN ({marks})", part):
                found[key] = Output(**json.loads(payload))
        return found

    def put_outputs(self, predictor: str, mode: str, items: Iterable[tuple[str, str, Output]]) -> None:
        """Store (key, example key, output) triples in one transaction (under a launch, rank 0 alone writes)."""
        if not writes_files():
            return
        now = time.time()
        rows = [(key, predictor, example, mode, json.dumps(asdict(output)), now) for key, example, output in items]
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?)", rows)
        pause_point(f"outputs stored ({mode})")

    def get_response(self, key: str) -> dict[str, Any] | None:
        """A stored answer of a remote endpoint (or its probe), or None."""
        row = self._db.execute("SELECT payload FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_response(self, key: str, payload: dict[str, Any]) -> None:
        """Store an endpoint's answer as soon as it arrives, so a killed run never asks for it again (rank 0 only)."""
        if not writes_files():
            return
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (key, json.dumps(payload), time.time())
            )

    def must_compute(self, what: str) -> None:
        """Say that `what` is not stored and is about to be computed (refused when opened `stored_only`)."""
        if self.stored_only:
            raise NotStored(what)
        if self._on_first_compute is not None:
            first, self._on_first_compute = self._on_first_compute, None
            started = time.perf_counter()
            first()
            self.first_compute_s = time.perf_counter() - started

    def output_rows(self) -> list[OutputRow]:
        """Every stored output as it is kept (to carry a store's results to another one)."""
        return list(self._db.execute("SELECT key, predictor, example, mode, payload, created FROM outputs"))

    def response_rows(self) -> list[ResponseRow]:
        """Every stored endpoint answer as it is kept."""
        return list(self._db.execute("SELECT key, payload, created FROM responses"))

    def put_rows(self, outputs: Sequence[OutputRow], responses: Sequence[ResponseRow] = ()) -> None:
        """Take in rows another store kept; what is here already stays (the same key is the same result)."""
        if not writes_files():
            return
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO outputs VALUES (?, ?, ?, ?, ?, ?)", outputs)
            self._db.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?, ?)", responses)

    def integrity_ok(self) -> bool:
        """SQLite's own integrity check."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
