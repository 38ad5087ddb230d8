"""Bounded storage for long runs: per-second rollups with mergeable latency histograms, and the lookups
whose full records are kept (`[load] keep_records`).

Table `rollups` in `records.sqlite`, one row per (writer flush, mode, workload, second, outcome):

    run, mode, workload, kind  TEXT     as in `lookups`
    second       INTEGER  the Unix second the lookups started in
    outcome      TEXT     ok, not_found, timeout, ...
    lookups      INTEGER  how many
    first_ns     INTEGER  the earliest start among them
    last_ns      INTEGER  the latest start among them
    last_end_ns  INTEGER  the latest start + latency among them
    latency      BLOB     HdrHistogram (V2 compressed encoding, nanoseconds, 3 significant digits) of
                          Go's latency from the actual start
    response     BLOB     the same from the intended start (open loop), NULL in closed loop

Several rows can share a key (Locust processes, a second split by two flushes): readers add them up.
Histograms are HdrHistogram's: every percentile over any window is the same as from the full records to
within 0.1% (three significant digits), and two windows merge by adding counts.

The writer keeps the records `keep_records` asks for: `all` (every lookup, as short runs always did),
`failures` (every failed lookup, no successful one) or `sample` (every failure and up to
`SAMPLE_PER_SECOND` successful lookups per second and writer, chosen at random). Records and the rollups
of the same lookups go into one transaction, about once a second: whatever the harness is killed by, the
store holds whole flushes only, and `lookups == ok + failures` holds exactly from the rollups.
"""

from __future__ import annotations

import ctypes
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

from dnsprobe.load import records
from dnsprobe.load.records import Row
from dnsprobe.vocabulary import OUTCOMES

KeepRecords = Literal["all", "failures", "sample"]
KEEP_RECORDS: Final = ("all", "failures", "sample")
LOWEST_NS: Final = 1
HIGHEST_NS: Final = 3_600_000_000_000  # one hour; longer latencies are counted as one hour
DIGITS: Final = 3
FLUSH_INTERVAL_S: Final = 1.0
SAMPLE_PER_SECOND: Final = 20  # successful lookups kept per second and writer with keep_records = "sample"

ROLLUP_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS rollups (
    run TEXT NOT NULL, mode TEXT NOT NULL, workload TEXT NOT NULL, kind TEXT NOT NULL,
    second INTEGER NOT NULL, outcome TEXT NOT NULL, lookups INTEGER NOT NULL,
    first_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL, last_end_ns INTEGER NOT NULL,
    latency BLOB NOT NULL, response BLOB
);
"""
_INSERT = "INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
IntArray = npt.NDArray[np.int64]


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_NS, HIGHEST_NS, DIGITS)


_TEMPLATE: Final = new_histogram()
COUNTS_LEN: Final = int(_TEMPLATE.counts_len)


def bucket_indexes(values_ns: npt.ArrayLike) -> IntArray:
    """HdrHistogram's counts index of each value, vectorised (the formula of `HdrHistogram.record_value`);
    values are clipped to [LOWEST_NS, HIGHEST_NS]."""
    h = _TEMPLATE
    v = np.clip(np.asarray(values_ns, dtype=np.int64), LOWEST_NS, HIGHEST_NS)
    # bit length of (v | mask); exact through frexp for integers below 2**53
    _, bits = np.frexp((v | h.sub_bucket_mask).astype(np.float64))
    bucket = bits.astype(np.int64) - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    sub = v >> (bucket + h.unit_magnitude)
    index: IntArray = ((bucket + 1) << h.sub_bucket_half_count_magnitude) + (sub - h.sub_bucket_half_count)
    return index


def bucket_values() -> tuple[IntArray, IntArray]:
    """(lowest, highest equivalent value) of every counts index: what one count there stands for."""
    h = _TEMPLATE
    lows = np.array([h.get_value_from_index(i) for i in range(COUNTS_LEN)], dtype=np.int64)
    highs = np.array([h.get_highest_equivalent_value(int(x)) for x in lows], dtype=np.int64)
    return lows, highs


_BUCKETS: tuple[IntArray, IntArray] | None = None


def bucket_bounds() -> tuple[IntArray, IntArray]:
    global _BUCKETS
    if _BUCKETS is None:
        _BUCKETS = bucket_values()
    return _BUCKETS


def encode_counts(counts: IntArray) -> bytes:
    """HdrHistogram's V2 compressed encoding of a counts array (readable by any HdrHistogram library)."""
    h = new_histogram()
    source = np.ascontiguousarray(counts, dtype=np.uint64)  # held: memmove reads its buffer
    ctypes.memmove(h.counts, source.ctypes.data, COUNTS_LEN * 8)
    nonzero = np.flatnonzero(counts)
    total = int(counts.sum())
    h.set_internal_tacking_values(int(nonzero[0]) if total else -1, int(nonzero[-1]) if total else -1, total)
    return bytes(h.encode())


def decode_counts(blob: bytes) -> IntArray:
    h = HdrHistogram.decode(blob)
    if h.counts_len != COUNTS_LEN:
        raise ValueError(f"histogram with {h.counts_len} buckets, expected {COUNTS_LEN}")
    return np.frombuffer(h.counts, dtype=np.uint64, count=COUNTS_LEN).astype(np.int64)


def percentile_ms(counts: IntArray, q: float) -> float | None:
    """HdrHistogram's percentile (the value at rank ceil-ish q% of the count, its bucket's highest
    equivalent value), in milliseconds; None for an empty histogram."""
    total = int(counts.sum())
    if total == 0:
        return None
    target = max(1, int(q / 100.0 * total + 0.5))
    index = int(np.searchsorted(np.cumsum(counts), target, side="left"))
    return float(bucket_bounds()[1][index]) / 1e6


def max_ms(counts: IntArray) -> float | None:
    nonzero = np.flatnonzero(counts)
    return None if nonzero.size == 0 else float(bucket_bounds()[1][nonzero[-1]]) / 1e6


def count_between(counts: IntArray, low_ns: float, high_ns: float) -> int:
    """Lookups whose latency lies in [low, high] (to the histogram's precision)."""
    lows, highs = bucket_bounds()
    mid = (lows + highs) / 2
    return int(counts[(mid >= low_ns) & (mid <= high_ns)].sum())


def share_within(counts: IntArray, grid_ms: Sequence[float]) -> list[float]:
    """Share of lookups done within each latency of `grid_ms` (a CDF from the histogram)."""
    total = int(counts.sum())
    if total == 0:
        return [0.0 for _ in grid_ms]
    cumulative = np.cumsum(counts)
    lows = bucket_bounds()[0]
    places = np.searchsorted(lows, np.asarray(grid_ms) * 1e6, side="right") - 1
    return [float(cumulative[p]) / total if p >= 0 else 0.0 for p in places]


@dataclass
class _Cell:
    kind: str
    lookups: int = 0
    first_ns: int = 2**63 - 1
    last_ns: int = 0
    last_end_ns: int = 0
    latency: IntArray = field(default_factory=lambda: np.zeros(COUNTS_LEN, np.int64))
    response: IntArray | None = None


class RollupWriter:
    """Takes the rows a Locust user reports (the `records.Row` shape), keeps the rollups and the records
    `keep` asks for, and writes both in one transaction at most every `FLUSH_INTERVAL_S` (and on
    `flush`/`close`). `open_loop`: also the histogram from each lookup's intended start."""

    def __init__(
        self,
        path: Path,
        *,
        keep: KeepRecords = "all",
        open_loop: bool = False,
        sample_per_second: int = SAMPLE_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if keep not in KEEP_RECORDS:
            raise ValueError(f"keep_records {keep!r}: expected one of {', '.join(KEEP_RECORDS)}")
        self.path = path
        self.keep = keep
        self.open_loop = open_loop
        self.sample_per_second = sample_per_second
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - a sample, not a secret
        self._db = records.connect(path)
        self._db.executescript(ROLLUP_SCHEMA)
        self._cells: dict[tuple[str, str, str, int, str], _Cell] = {}
        self._failed: list[Row] = []
        self._ok: list[Row] = []
        self._last_flush = clock()

    def append(self, rows: Iterable[Row]) -> None:
        batch = list(rows)
        if not batch:
            return
        self._roll(batch)
        if self.keep == "all":
            self._ok.extend(batch)
        else:
            self._failed.extend(r for r in batch if r[8] != "ok")
            if self.keep == "sample":
                self._ok.extend(r for r in batch if r[8] == "ok")
        if self._clock() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def _roll(self, batch: list[Row]) -> None:
        start = np.fromiter((r[6] for r in batch), np.int64, len(batch))
        latency = np.fromiter((r[7] for r in batch), np.int64, len(batch))
        intended = np.fromiter((r[5] for r in batch), np.int64, len(batch))
        second = start // 1_000_000_000
        lat_index = bucket_indexes(latency)
        resp_index = bucket_indexes(start + latency - intended) if self.open_loop else None
        keys = [(r[0], r[1], r[2], int(s), r[8]) for r, s in zip(batch, second.tolist(), strict=True)]
        groups: dict[tuple[str, str, str, int, str], list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        for key, where in groups.items():
            cell = self._cells.get(key)
            if cell is None:
                cell = self._cells[key] = _Cell(kind=batch[where[0]][3])
                if self.open_loop:
                    cell.response = np.zeros(COUNTS_LEN, np.int64)
            idx = np.asarray(where)
            cell.lookups += idx.size
            cell.first_ns = min(cell.first_ns, int(start[idx].min()))
            cell.last_ns = max(cell.last_ns, int(start[idx].max()))
            cell.last_end_ns = max(cell.last_end_ns, int((start[idx] + latency[idx]).max()))
            np.add.at(cell.latency, lat_index[idx], 1)
            if resp_index is not None and cell.response is not None:
                np.add.at(cell.response, resp_index[idx], 1)

    def _kept_ok(self, elapsed: float) -> list[Row]:
        if self.keep == "all" or len(self._ok) <= self.sample_per_second * max(elapsed, 1e-3):
            return self._ok
        k = max(1, int(self.sample_per_second * elapsed))
        return self._rng.sample(self._ok, min(k, len(self._ok)))

    def flush(self) -> None:
        now = self._clock()
        if not self._cells:
            self._last_flush = now
            return
        kept = self._failed + self._kept_ok(now - self._last_flush)
        cells, self._cells, self._failed, self._ok = self._cells, {}, [], []
        rollup_rows = [
            (
                run,
                mode,
                workload,
                cell.kind,
                second,
                outcome,
                cell.lookups,
                cell.first_ns,
                cell.last_ns,
                cell.last_end_ns,
                encode_counts(cell.latency),
                None if cell.response is None else encode_counts(cell.response),
            )
            for (run, mode, workload, second, outcome), cell in cells.items()
        ]
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(records._INSERT, kept)
            db.executemany(_INSERT, rollup_rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self._last_flush = now

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

    def __enter__(self) -> RollupWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Rollup:
    """One mode's rollups merged by (time bin, workload, outcome); histograms as counts arrays.

    Bins are whole seconds wide at least (`bin_s`), counted from `t0_ns` (the mode's first start) by the
    second each lookup started in: memory depends on the number of bins, never on the run's length."""

    t0_ns: int
    span_s: float  # from the first start to the last start
    end_ns: int  # the latest start + latency
    bin_s: float
    n_bins: int
    bins: IntArray  # per row
    workload: list[str]
    outcome: list[str]
    lookups: IntArray
    latency: npt.NDArray[np.int64]  # (rows, COUNTS_LEN)
    response: npt.NDArray[np.int64] | None
    kinds: dict[str, str]

    def __len__(self) -> int:
        return int(self.lookups.sum()) if self.lookups.size else 0

    def select(self, *, workload: str | None = None, outcome: str | None = None) -> npt.NDArray[np.bool_]:
        mask = np.ones(self.lookups.size, dtype=bool)
        if workload is not None:
            mask &= np.array([w == workload for w in self.workload], dtype=bool)
        if outcome is not None:
            mask &= np.array([o == outcome for o in self.outcome], dtype=bool)
        return mask


def has_rollups(path: Path) -> bool:
    if not path.exists():
        return False
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rollups'").fetchone()
        return row is not None
    finally:
        db.close()


def rollup_lookups(path: Path, mode: str) -> int:
    """Lookups of one mode according to the rollups (0 without the table)."""
    if not has_rollups(path):
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute("SELECT COALESCE(SUM(lookups), 0) FROM rollups WHERE mode = ?", (mode,)).fetchone()
        return int(row[0])
    finally:
        db.close()


def read_rollup(path: Path, mode: str, *, max_bins: int = 60) -> Rollup | None:
    """One mode's rollups in at most about `max_bins` time bins; None when it has none."""
    from dnsprobe.bins import nice_width

    if not has_rollups(path):
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        first, last, end = db.execute(
            "SELECT MIN(first_ns), MAX(last_ns), MAX(last_end_ns) FROM rollups WHERE mode = ?", (mode,)
        ).fetchone()
        if first is None:
            return None
        span = max((last - first) / 1e9, 1e-3)
        width = max(1.0, nice_width(span, max_bins))
        n_bins = int(span // width) + 1
        t0_second = first // 1_000_000_000
        merged: dict[tuple[int, str, str], list[Any]] = {}
        kinds: dict[str, str] = {}
        query = (
            "SELECT second, workload, kind, outcome, lookups, latency, response FROM rollups WHERE mode = ?"
        )
        for second, workload, kind, outcome, n, latency, response in db.execute(query, (mode,)):
            kinds[workload] = kind
            key = (min(int((second - t0_second) // width), n_bins - 1), workload, outcome)
            lat = decode_counts(latency)
            resp = None if response is None else decode_counts(response)
            cell = merged.get(key)
            if cell is None:
                merged[key] = [n, lat, resp]
                continue
            cell[0] += n
            cell[1] += lat
            if resp is not None:
                cell[2] = resp if cell[2] is None else cell[2] + resp
    finally:
        db.close()
    keys = sorted(merged)
    open_loop = any(cell[2] is not None for cell in merged.values())
    latency_rows = np.zeros((len(keys), COUNTS_LEN), np.int64)
    response_rows = np.zeros((len(keys), COUNTS_LEN), np.int64) if open_loop else None
    for i, key in enumerate(keys):
        latency_rows[i] = merged[key][1]
        if response_rows is not None and merged[key][2] is not None:
            response_rows[i] = merged[key][2]
    return Rollup(
        t0_ns=int(first),
        span_s=float(span),
        end_ns=int(end),
        bin_s=float(width),
        n_bins=n_bins,
        bins=np.array([k[0] for k in keys], dtype=np.int64),
        workload=[k[1] for k in keys],
        outcome=[k[2] for k in keys],
        lookups=np.array([merged[k][0] for k in keys], dtype=np.int64),
        latency=latency_rows,
        response=response_rows,
        kinds=kinds,
    )


def outcome_counts(rollup: Rollup, mask: npt.NDArray[np.bool_] | None = None) -> tuple[int, dict[str, int]]:
    """(ok, {failure class: count}) in `OUTCOMES` order, from the rollups: exact, not estimated."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for i, outcome in enumerate(rollup.outcome):
        if mask is None or mask[i]:
            counts[outcome if outcome in counts else "other"] += int(rollup.lookups[i])
    return counts["ok"], {cls: n for cls, n in counts.items() if cls != "ok" and n}
