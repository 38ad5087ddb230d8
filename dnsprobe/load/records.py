"""The lookup records: one row per lookup, appended while the run goes, in `runs/<id>/records.sqlite`.

Schema (table `lookups`; times are Unix nanoseconds, latency measured by the probe in Go):

    run          TEXT     the run id
    mode         TEXT     resolver mode (go, cgo, musl, ...)
    workload     TEXT     the scenario's workload label
    kind         TEXT     host, ip4, srv, ... (the Go call)
    name         TEXT     the name looked up (distinct per lookup when the workload uses {rand})
    intended_ns  INTEGER  when the harness meant the lookup to start: in open loop (a target rate) its slot
                          in the schedule, so start_ns - intended_ns is how late the generator was; in
                          closed loop the time the batch was sent
    start_ns     INTEGER  when the probe started it (wall clock)
    latency_ns   INTEGER  the lookup's duration (Go's monotonic clock), from start_ns; the response time
                          from the intended start is start_ns + latency_ns - intended_ns
    outcome      TEXT     ok, not_found, timeout, temporary, refused, start_failure, lost, other
                          (lost: a lookup of a batch the probe never answered because it, or the pod, died;
                          name is the workload's template, latency 0, error says what happened)
    error        TEXT     the error text Go returned ('' when ok)
    answers      INTEGER  number of answers (addresses, records)

Several processes (Locust workers) append at once: WAL mode, one transaction per flush (load/rollups.py
writes the rollups of the same lookups in it, about once a second). The table has no
index and no CHECK constraint while the run goes (each halves the append rate; outcomes come from the
probe's fixed set); `add_index` adds the index on mode afterwards. Appends reach well over 100k rows/s
(`dnsprobe bench fidelity` prints the rate measured on this machine).
Query it with any SQLite client: `sqlite3 runs/<id>/records.sqlite 'select outcome, count(*) ...'`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

COLUMNS = (
    "run",
    "mode",
    "workload",
    "kind",
    "name",
    "intended_ns",
    "start_ns",
    "latency_ns",
    "outcome",
    "error",
    "answers",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lookups (
    run TEXT NOT NULL, mode TEXT NOT NULL, workload TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    intended_ns INTEGER NOT NULL, start_ns INTEGER NOT NULL, latency_ns INTEGER NOT NULL,
    outcome TEXT NOT NULL, error TEXT NOT NULL, answers INTEGER NOT NULL
);
"""

_INSERT = "INSERT INTO lookups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
Row = tuple[str, str, str, str, str, int, int, int, str, str, int]


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA wal_autocheckpoint=10000")  # fewer, larger checkpoints while appending
    db.executescript(_SCHEMA)
    return db


class RecordWriter:
    """Appends rows; each `append` is one transaction, durable against the harness being killed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path)

    def append(self, rows: Iterable[Row]) -> None:
        with _transaction(self._db):
            self._db.executemany(_INSERT, rows)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_index(path: Path) -> None:
    """The index on mode, for queries after the run (appends are faster without it)."""
    db = connect(path)
    try:
        db.execute("CREATE INDEX IF NOT EXISTS lookups_mode ON lookups (mode)")
    finally:
        db.close()


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, t: type[BaseException] | None, *rest: object) -> None:
        self.db.execute("COMMIT" if t is None else "ROLLBACK")


@dataclass(frozen=True)
class Lookup:
    workload: str
    name: str
    start_ns: int
    latency_ns: int
    outcome: str
    error: str


def count(path: Path, mode: str | None = None) -> int:
    """Rows so far (the live display polls this)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        if mode is None:
            return int(db.execute("SELECT count(*) FROM lookups").fetchone()[0])
        return int(db.execute("SELECT count(*) FROM lookups WHERE mode = ?", (mode,)).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


class Tail:
    """Reads the rows appended since the last call (by rowid), for the live display."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_rowid = 0

    def read(self, limit: int = 200_000) -> list[tuple[str, int, int, int, str]]:
        """New rows as (mode, intended_ns, start_ns, latency_ns, outcome); [] when the file is not there."""
        if not self.path.exists():
            return []
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute(
                "SELECT rowid, mode, intended_ns, start_ns, latency_ns, outcome FROM lookups "
                "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (self.last_rowid, limit),
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()
        if rows:
            self.last_rowid = rows[-1][0]
        return [row[1:] for row in rows]


def read_mode(path: Path, mode: str) -> Iterator[Lookup]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        query = "SELECT workload, name, start_ns, latency_ns, outcome, error FROM lookups WHERE mode = ?"
        for row in db.execute(query, (mode,)):
            yield Lookup(*row)
    finally:
        db.close()
