"""Live figures while a mode's load runs, read from the records store as Locust's processes append to it:
lookups so far, lookups/s and p99 over the last few seconds, failures by outcome class.

Reading the store rather than Locust's stats keeps one source of truth (what the report will say) and
works the same with one Locust process, several, or remote workers writing to this store.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnsprobe.load import records
from dnsprobe.vocabulary import OUTCOMES

WINDOW_S = 3.0  # the rate and p99 cover lookups recorded this recently


@dataclass(frozen=True)
class LiveSnapshot:
    lookups: int = 0
    lookups_per_s: float = 0.0
    p99_ms: float | None = None
    failures: dict[str, int] = field(default_factory=dict)
    disk_bytes: int = 0  # the run directory's size on disk so far

    def describe(self) -> str:
        """One line for a terminal: `12,345 lookups  4,120/s  p99 8.1 ms  timeout 3, other 1`."""
        parts = [f"{self.lookups:,} lookups", f"{self.lookups_per_s:,.0f}/s"]
        if self.p99_ms is not None:
            parts.append(f"p99 {self.p99_ms:,.1f} ms")
        if self.failures:
            parts.append(", ".join(f"{cls} {n:,}" for cls, n in self.failures.items()))
        else:
            parts.append("no errors")
        return "  ".join(parts)


class LiveStats:
    """Polls the records of one mode (only rows appended since the last poll are read)."""

    def __init__(
        self, path: Path, mode: str, *, open_loop: bool = False, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.mode = mode
        self.open_loop = open_loop
        self.clock = clock
        self._tail = records.Tail(path)
        self._rollups = RollupTail(path, mode)  # when Locust writes rollups, they count (keep_records)
        self._run_dir = path.parent
        self._disk = (0.0, 0)  # (when measured, bytes)
        self._lookups = 0
        self._failures: Counter[str] = Counter()
        self._recent: deque[tuple[float, np.ndarray[tuple[int], np.dtype[np.int64]]]] = deque()

    def poll(self) -> LiveSnapshot:
        now = self.clock()
        # Records first, then rollups: a flush committed in between is counted once, from the rollups.
        rows = [] if self._rollups.seen else [row for row in self._tail.read() if row[0] == self.mode]
        rolled = self._rollups.read(self.open_loop)
        if self._rollups.seen:  # every lookup is in the rollups, whichever records are kept
            rows = []
            for n, classes, latencies in rolled:
                self._lookups += n
                self._failures.update(classes)
                self._recent.append((now, latencies))
        if rows:
            self._lookups += len(rows)
            self._failures.update(row[4] for row in rows if row[4] != "ok")
            if self.open_loop:  # from the intended start: a late start is latency the user sees
                values = (row[2] + row[3] - row[1] for row in rows)
            else:  # closed loop: intended_ns is the batch's send time, the wait in the batch is not DNS
                values = (row[3] for row in rows)
            latencies = np.fromiter(values, dtype=np.int64, count=len(rows))
            self._recent.append((now, latencies))
        while self._recent and self._recent[0][0] < now - WINDOW_S:
            self._recent.popleft()
        recent = [lat for _, lat in self._recent]
        count = sum(len(lat) for lat in recent)
        p99 = float(np.percentile(np.concatenate(recent), 99)) / 1e6 if count else None
        order = {cls: i for i, cls in enumerate(OUTCOMES)}
        failures = dict(sorted(self._failures.items(), key=lambda kv: order.get(kv[0], 99)))
        if now - self._disk[0] >= 5.0 or not self._disk[1]:
            self._disk = (now, disk_usage(self._run_dir))
        return LiveSnapshot(self._lookups, count / WINDOW_S, p99, failures, self._disk[1])


def disk_usage(directory: Path) -> int:
    """Bytes allocated on disk under `directory` (punched holes in a compacted query log do not count)."""
    total = 0
    for root, _, names in os.walk(directory):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512  # noqa: PTH118 - os.walk gives str
    return total


class RollupTail:
    """Reads the rollups one mode's writers appended since the last call, as (lookups, failures by class,
    latencies): each histogram stands for its lookups at their buckets' values, enough for a live p99."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path = path
        self.mode = mode
        self.last_rowid = 0
        self.seen = False

    def read(
        self, open_loop: bool = False
    ) -> list[tuple[int, Counter[str], np.ndarray[tuple[int], np.dtype[np.int64]]]]:
        from dnsprobe.load import rollups

        if not self.path.exists():
            return []
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            found = db.execute(
                "SELECT rowid, outcome, lookups, COALESCE(response, latency) if_open, latency FROM rollups "
                "WHERE rowid > ? AND mode = ? ORDER BY rowid",
                (self.last_rowid, self.mode),
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()
        if not found:
            return []
        self.seen = True
        self.last_rowid = found[-1][0]
        values = rollups.bucket_bounds()[1]
        out = []
        for _, outcome, n, if_open, latency in found:
            counts = rollups.decode_counts(if_open if open_loop else latency)
            failures: Counter[str] = Counter({outcome: n} if outcome != "ok" else {})
            out.append((int(n), failures, np.repeat(values, counts)))
        return out
