"""The probe's OS thread count while its load runs, sampled once a second from the host's /proc.

A cgo lookup holds an OS thread in getaddrinfo for its whole duration, so a probe with hundreds of slow
cgo lookups in flight has hundreds of threads; Go's resolver parks goroutines and keeps a handful. The
count comes from the `Threads:` line of /proc/PID/status of the probe's host pid (the pod translates the
pid the probe reports from inside its PID namespace): it measures the probe, not the harness, and needs no
help from the probe. Go never ends the threads it made, so samples a second apart see the peak.

Table `threads` in `records.sqlite`, one row per sample, next to the rollups:

    run, mode  TEXT     as in `lookups`
    at_ns      INTEGER  Unix time of the sample
    threads    INTEGER  the probe's OS threads at that moment
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from dnsprobe.load import records

INTERVAL_S: Final = 1.0
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS threads (
    run TEXT NOT NULL, mode TEXT NOT NULL, at_ns INTEGER NOT NULL, threads INTEGER NOT NULL
);
"""


def parse_threads(lines: Iterable[str]) -> int | None:
    """The `Threads:` figure of /proc/PID/status lines; None when there is none."""
    for line in lines:
        key, _, value = line.partition(":")
        if key == "Threads":
            text = value.strip()
            return int(text) if text.isdigit() else None
    return None


def read_threads(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The process's OS thread count now; None once it is gone (or /proc does not say)."""
    try:
        text = (proc / str(pid) / "status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return parse_threads(text.splitlines())


class ThreadSampler:
    """Samples `pid` every `interval_s` on a daemon thread (one sample at once, one at `stop`) and writes
    each into records.sqlite at once: a harness killed mid-load keeps what it sampled."""

    def __init__(
        self,
        records_path: Path,
        *,
        run: str,
        mode: str,
        pid: int,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], int] = time.time_ns,
        proc: Path = Path("/proc"),
    ) -> None:
        self.records_path = records_path
        self.run = run
        self.mode = mode
        self.pid = pid
        self.interval_s = interval_s
        self._clock = clock
        self._proc = proc
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples: list[tuple[int, int]] = []
        self.error: str | None = None  # why the samples are no longer written, if they are not

    def sample(self, db: sqlite3.Connection | None) -> int | None:
        """One sample, kept and (with `db`) written; None once the probe is gone. A database that
        refuses the write (a full disk) is given up: `error` says why, the samples stay in memory, and
        the run's own writer reports the disk."""
        count = read_threads(self.pid, self._proc)
        if count is None:
            return None
        at = self._clock()
        self.samples.append((at, count))
        if db is not None and self.error is None:
            try:
                db.execute("INSERT INTO threads VALUES (?, ?, ?, ?)", (self.run, self.mode, at, count))
            except sqlite3.Error as exc:
                self.error = str(exc)
        return count

    def _loop(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            db = records.connect(self.records_path)
            db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            self.error, db = str(exc), None
        try:
            self.sample(db)
            while not self._stop.wait(self.interval_s):
                if self.sample(db) is None:
                    return  # the probe is gone
            self.sample(db)
        finally:
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.close()

    def start(self) -> ThreadSampler:
        self._thread = threading.Thread(target=self._loop, name=f"threads-{self.mode}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[tuple[int, int]]:
        """Stop after a last sample; the samples taken, (unix ns, threads)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.samples

    def __enter__(self) -> ThreadSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def probe_host_pid(info: dict[str, object]) -> int | None:
    """The probe's pid on the host, from a pod's /info: only once the pod translated the pid the probe
    sees inside its PID namespace (`pod_pid` set); None otherwise (nothing to sample)."""
    pid = info.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        return None
    return pid if "pod_pid" in info else None


def read_samples(records_path: Path, mode: str) -> list[tuple[int, int]]:
    """One mode's samples, (unix ns, threads) in time order; [] without the table."""
    if not records_path.exists():
        return []
    db = sqlite3.connect(f"file:{records_path}?mode=ro", uri=True, timeout=30)
    try:
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'threads'"
        if db.execute(table).fetchone() is None:
            return []
        rows = db.execute("SELECT at_ns, threads FROM threads WHERE mode = ? ORDER BY at_ns", (mode,))
        return [(int(at), int(n)) for at, n in rows]
    finally:
        db.close()
