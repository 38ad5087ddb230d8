"""Time-series and distribution data from the records store and the nameserver's query log, as arrays.

The analysis stage reads one mode's lookups into numpy columns (`read_columns`) and reduces them here to
small JSON-ready figures: percentiles and outcome classes per time bin, a latency CDF on a log grid, the
share of lookups that ended at a multiple of the resolver timeout (the timeout fingerprint), and the
nameserver's view (rcodes, source ports). Everything is vectorised: a run of a million lookups reduces in
well under a second, where a Python object per lookup would take many.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from dnsprobe.bins import MAX_BINS, nice_width
from dnsprobe.nameserver.querylog import read_querylog_fields
from dnsprobe.vocabulary import OUTCOMES

# What Go, glibc and musl assume without `options timeout:` / `attempts:` in resolv.conf.
DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_ATTEMPTS: Final = 2
_UNSEEN: Final = object()  # a name not matched against the workloads yet
CDF_POINTS: Final = 240
# Bin widths a person reads without arithmetic.
# A lookup "ended at k x timeout" when it took k*T within this band (the resolver adds a little work).
PEAK_BELOW: Final = 0.02
PEAK_ABOVE: Final = 0.04
PEAK_SLACK_S: Final = 0.05

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Columns:
    """One mode's lookups as columns; `outcome` indexes `records.OUTCOMES`, `workload` indexes `workloads`."""

    start_ns: IntArray
    latency_ns: IntArray
    outcome: npt.NDArray[np.int8]
    workload: npt.NDArray[np.int16]
    workloads: tuple[str, ...]
    # Open loop (read with from_intended): start_ns and latency_ns count from each lookup's intended start,
    # and this holds the latency from its actual start, as Go measured it. Otherwise None.
    service_ns: IntArray | None = None

    def __len__(self) -> int:
        return int(self.start_ns.size)

    @classmethod
    def empty(cls) -> Columns:
        return cls(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int16), ()
        )


def read_columns(path: Path, mode: str, *, from_intended: bool = False) -> Columns:
    """Read one mode's lookups from records.sqlite; SQL maps the text columns to small integers.

    `from_intended` (open-loop runs): latency runs from each lookup's intended start, so the time a lookup
    waited behind a stalled generator or a full probe counts (no coordinated omission); Go's own latency
    from the actual start is kept as `service_ns`."""
    if not path.exists():
        return Columns.empty()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        labels = tuple(
            row[0]
            for row in db.execute(
                "SELECT DISTINCT workload FROM lookups WHERE mode = ? ORDER BY workload", (mode,)
            )
        )
        outcome_case = " ".join(f"WHEN {o!r} THEN {i}" for i, o in enumerate(OUTCOMES))
        # Labels go in as parameters: they come from the scenario file.
        workload_case = " ".join(f"WHEN ? THEN {i}" for i in range(len(labels))) or "WHEN NULL THEN 0"
        # Only constants and integers are formatted in; the labels are bound parameters.
        times = "start_ns, latency_ns"
        fields = [("s", np.int64), ("l", np.int64)]
        if from_intended:
            times = "intended_ns, latency_ns + MAX(0, start_ns - intended_ns), latency_ns"
            fields.append(("g", np.int64))
        query = (
            f"SELECT {times}, CASE outcome {outcome_case} ELSE {len(OUTCOMES) - 1} END, "  # noqa: S608
            f"CASE workload {workload_case} ELSE 0 END FROM lookups WHERE mode = ?"
        )
        dtype = np.dtype([*fields, ("o", np.int8), ("w", np.int16)])
        table = np.fromiter(db.execute(query, (*labels, mode)), dtype=dtype)
    finally:
        db.close()
    return Columns(
        np.ascontiguousarray(table["s"]),
        np.ascontiguousarray(table["l"]),
        np.ascontiguousarray(table["o"]),
        np.ascontiguousarray(table["w"]),
        labels,
        np.ascontiguousarray(table["g"]) if from_intended else None,
    )


def outcome_split(outcome: npt.NDArray[np.int8]) -> tuple[int, dict[str, int]]:
    """(ok, {failure class: count}) with classes in `OUTCOMES` order, zero counts left out."""
    counts = np.bincount(outcome.astype(np.int64), minlength=len(OUTCOMES))
    failures = {cls: int(counts[i]) for i, cls in enumerate(OUTCOMES) if i and counts[i]}
    return int(counts[0]), failures


def grouped_percentiles(
    groups: IntArray, values: FloatArray, n_groups: int, qs: Sequence[float]
) -> FloatArray:
    """Percentiles (numpy's linear method) of `values` within each group; NaN for an empty group.

    One lexsort instead of a Python loop over groups: the cost is that of sorting the values once.
    """
    out = np.full((len(qs), n_groups), np.nan)
    if values.size == 0:
        return out
    order = np.lexsort((values, groups))
    ordered = values[order]
    sizes = np.bincount(groups, minlength=n_groups)
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    present = sizes > 0
    for row, q in enumerate(qs):
        pos = (q / 100.0) * (sizes[present] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.ceil(pos).astype(np.int64)
        base = offsets[present]
        a, b = ordered[base + lo], ordered[base + hi]
        out[row, present] = a + (b - a) * (pos - lo)
    return out


def _rounded(values: FloatArray, digits: int = 3) -> list[float | None]:
    return [None if np.isnan(v) else round(float(v), digits) for v in values]


def build_timeline(
    cols: Columns, max_bins: int = MAX_BINS, *, timeout_s: float | None = None
) -> dict[str, Any]:
    """Per time bin (by start time, from the mode's first lookup): lookups/s, p50/p90/p99, failures; with
    `timeout_s`, also the lookups that waited out at least one resolver timeout ("waited_timeout", whether
    they then succeeded or not: a resolver that retries on a new socket hides its timeouts otherwise)."""
    if len(cols) == 0:
        return {
            "t0_ns": None,
            "bin_s": None,
            "start_s": [],
            "lookups": [],
            "lookups_per_s": [],
            "failures": {},
        }
    t0 = int(cols.start_ns.min())
    rel_s = (cols.start_ns - t0) / 1e9
    span = float(max(rel_s.max(), 1e-3))
    width = nice_width(span, max_bins)
    n_bins = int(span // width) + 1
    bins = np.minimum((rel_s // width).astype(np.int64), n_bins - 1)
    lookups = np.bincount(bins, minlength=n_bins)
    pct = grouped_percentiles(bins, cols.latency_ns / 1e6, n_bins, (50.0, 90.0, 99.0))
    failures: dict[str, list[int]] = {}
    for i, cls in enumerate(OUTCOMES):
        mask = cols.outcome == i
        if i and mask.any():
            failures[cls] = np.bincount(bins[mask], minlength=n_bins).tolist()
    # The last bin is usually cut short by the end of the load: its rate uses the time it covered.
    covered = np.full(n_bins, width)
    covered[-1] = max(span - width * (n_bins - 1), min(width, 1e-3))
    return {
        "t0_ns": t0,
        "bin_s": width,
        "start_s": [round(i * width, 3) for i in range(n_bins)],
        "lookups": lookups.tolist(),
        "lookups_per_s": [round(float(v), 1) for v in lookups / covered],
        "p50": _rounded(pct[0]),
        "p90": _rounded(pct[1]),
        "p99": _rounded(pct[2]),
        "failures": failures,
        "p99_by_workload": workload_p99(cols, bins, n_bins),
        **({} if timeout_s is None else {"waited_timeout": waited_timeout(cols, bins, n_bins, timeout_s)}),
    }


def waited_timeout(cols: Columns, bins: IntArray, n_bins: int, timeout_s: float) -> list[int]:
    """Per bin: lookups whose resolver latency (from the actual start) reached one timeout."""
    resolver_ns = cols.latency_ns if cols.service_ns is None else cols.service_ns
    waited = resolver_ns >= timeout_s * (1 - PEAK_BELOW) * 1e9
    counts: list[int] = np.bincount(bins[waited], minlength=n_bins).tolist()
    return counts


def workload_p99(cols: Columns, bins: IntArray, n_bins: int) -> dict[str, list[float | None]]:
    """p99 per time bin of each workload's lookups alone: fast names queued behind slow ones show here,
    where the mode's p99 is the slow names'."""
    out: dict[str, list[float | None]] = {}
    for index, label in enumerate(cols.workloads):
        mask = cols.workload == index
        if mask.any():
            pct = grouped_percentiles(bins[mask], cols.latency_ns[mask] / 1e6, n_bins, (99.0,))
            out[label] = _rounded(pct[0])
    return out


def thread_series(samples: Sequence[tuple[int, int]], t0_ns: int | None) -> dict[str, Any] | None:
    """The probe's OS thread samples (unix ns, count; load/threads.py) as seconds since the mode's first
    lookup, with the peak; None without samples."""
    if not samples:
        return None
    origin = t0_ns if t0_ns is not None else samples[0][0]
    return {
        "peak": max(n for _, n in samples),
        "at_s": [round((at - origin) / 1e9, 2) for at, _ in samples],
        "count": [n for _, n in samples],
        "source": "/proc/PID/status Threads, once a second",
    }


def latency_cdf(latency_ns: IntArray, points: int = CDF_POINTS) -> dict[str, list[float]]:
    """The share of lookups done within each latency (ms) of a log-spaced grid spanning the data."""
    if latency_ns.size == 0:
        return {"ms": [], "share": []}
    ms = np.sort(latency_ns) / 1e6
    low = max(float(ms[0]), 1e-3)
    high = max(float(ms[-1]), low * 1.01)
    grid = np.geomspace(low, high, points)
    share = np.searchsorted(ms, grid, side="right") / ms.size
    return {"ms": [round(float(v), 4) for v in grid], "share": [round(float(v), 5) for v in share]}


def timeout_peaks(latency_ns: IntArray, timeout_s: float, max_k: int = 8) -> list[dict[str, Any]]:
    """Lookups that ended at k x the resolver timeout (k = 1..max_k): the fingerprint of waiting it out."""
    if latency_ns.size == 0 or timeout_s <= 0:
        return []
    seconds = np.sort(latency_ns) / 1e9
    peaks = []
    for k in range(1, max_k + 1):
        at = k * timeout_s
        lo, hi = at * (1 - PEAK_BELOW), at * (1 + PEAK_ABOVE) + PEAK_SLACK_S
        n = int(np.searchsorted(seconds, hi, "right") - np.searchsorted(seconds, lo, "left"))
        if n:
            peaks.append({"k": k, "at_s": at, "lookups": n, "share": round(n / seconds.size, 5)})
    return peaks


def resolv_options(text: str) -> dict[str, Any]:
    """The resolv.conf facts the charts and rules need, with the resolvers' defaults filled in."""
    facts: dict[str, Any] = {
        "nameservers": [],
        "search": [],
        "ndots": 1,
        "timeout_s": DEFAULT_TIMEOUT_S,
        "attempts": DEFAULT_ATTEMPTS,
        "options": [],
    }
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        key, rest = words[0], words[1:]
        if key == "nameserver" and rest:
            facts["nameservers"].append(rest[0])
        elif key in ("search", "domain"):
            facts["search"] = rest
        elif key == "options":
            for option in rest:
                name, _, value = option.partition(":")
                if name in ("ndots", "timeout", "attempts") and re.fullmatch(r"\d+", value):
                    facts["timeout_s" if name == "timeout" else name] = (
                        float(value) if name == "timeout" else int(value)
                    )
                else:
                    facts["options"].append(option)
    return facts


@dataclass
class WireView:
    """What the nameserver saw for one mode: totals, per-workload counts, rcodes, source ports."""

    queries: int
    per_workload: Counter[str]
    rcodes: Counter[str]
    qtypes: Counter[str]
    protos: Counter[str]
    faults: Counter[str]
    source_ports: int

    def to_json(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "source_ports": self.source_ports,
            "rcodes": dict(self.rcodes.most_common()),
            "qtypes": dict(self.qtypes.most_common()),
            "protos": dict(self.protos.most_common()),
            "faults": dict(self.faults.most_common()),
        }


def read_wire_view(lines: Iterable[str], patterns: Sequence[tuple[str, re.Pattern[str]]]) -> WireView:
    """One pass over a query log: counts by workload (first matching pattern), rcode, type, proto, fault.

    Fields stay text and the four small columns are counted as one key, split apart at the end (1.6
    times the speed of reading `QueryLogEntry` objects)."""
    per: Counter[str] = Counter()
    kinds: Counter[tuple[str, str, str, str]] = Counter()  # (proto, qtype, fault, rcode)
    ports: set[tuple[str, str]] = set()
    # A lookup's queries share a name: A and AAAA, retries. Cache the match per name.
    matched: dict[str, str | None] = {}
    for _, proto, _, port, _, qname, qtype, _, fault, rcode in read_querylog_fields(lines):
        kinds[proto, qtype, fault, rcode] += 1
        ports.add((proto, port))
        label = matched.get(qname, _UNSEEN)
        if label is _UNSEEN:
            name = qname.lower()
            label = next((lbl for lbl, p in patterns if p.match(name)), None)
            if len(matched) > 4096:
                matched.clear()
            matched[qname] = label
        if label is not None:
            per[label] += 1  # type: ignore[index]
    rcodes: Counter[str] = Counter()
    qtypes: Counter[str] = Counter()
    protos: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    for (proto, qtype, fault, rcode), n in kinds.items():
        protos[proto] += n
        qtypes[qtype] += n
        rcodes[rcode] += n
        if fault != "-":
            faults[fault] += n
    total = sum(kinds.values())
    return WireView(total, per, rcodes, qtypes, protos, faults, len(ports))
