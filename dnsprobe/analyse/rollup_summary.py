"""The analysis stage's figures from the per-second rollups, for modes whose records were not all kept
(`[load] keep_records = "failures" | "sample"`).

The same keys as from the records (`analysis.summarise_mode`): counts are exact (the accounting identity
holds from the rollups), percentiles are HdrHistogram's, within 0.1% of the exact ones, time bins are whole
seconds at least, and memory depends on the number of bins, not on the run's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dnsprobe.analyse.timeline import CDF_POINTS, PEAK_ABOVE, PEAK_BELOW, PEAK_SLACK_S
from dnsprobe.bins import MAX_BINS
from dnsprobe.load import rollups
from dnsprobe.vocabulary import OUTCOMES

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0}


def latency_summary(counts: np.ndarray[Any, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, q in PERCENTILES.items():
        value = rollups.percentile_ms(counts, q)
        out[key] = None if value is None else round(value, 3)
    top = rollups.max_ms(counts)
    out["max"] = None if top is None else round(top, 3)
    return out


def needs_rollups(records_path: Path, mode: str, records_count: int) -> bool:
    """True when the rollups count more lookups than the records hold (not every record was kept)."""
    return rollups.rollup_lookups(records_path, mode) > records_count


def rollup_figures(
    records_path: Path,
    mode: str,
    *,
    workloads: Sequence[str],
    timeout_s: float,
    open_loop: bool,
    records_count: int,
) -> dict[str, Any] | None:
    """The summary keys that come from the lookups, from the rollups; None when the records are complete
    (then the records give the exact figures, as always)."""
    if not needs_rollups(records_path, mode, records_count):
        return None
    rollup = rollups.read_rollup(records_path, mode, max_bins=MAX_BINS)
    if rollup is None:
        return None
    main = rollup.response if open_loop and rollup.response is not None else rollup.latency
    total = main.sum(axis=0)
    n = len(rollup)
    ok, failures = rollups.outcome_counts(rollup)
    span_s = (rollup.end_ns - rollup.t0_ns) / 1e9
    per_workload = {}
    for label in workloads:
        mask = rollup.select(workload=label)
        w_ok, w_failures = rollups.outcome_counts(rollup, mask)
        per_workload[label] = {
            "lookups": int(rollup.lookups[mask].sum()),
            "ok": w_ok,
            "failures": w_failures,
            "latency_ms": latency_summary(main[mask].sum(axis=0)),
        }
    figures: dict[str, Any] = {
        "lookups": n,
        "ok": ok,
        "failures": failures,
        "lookups_per_s": round(n / span_s, 1) if span_s > 0 else 0.0,
        "latency_ms": latency_summary(total),
        "workloads_from_rollups": per_workload,
        "timeout_peaks": timeout_peaks(rollup.latency.sum(axis=0), n, timeout_s),
        "timeline": {**timeline(rollup, main), "waited_timeout": waited_timeout(rollup, timeout_s)},
        "latency_cdf": latency_cdf(total),
        "storage": {"figures_from": "rollups", "records_kept": records_count, "bin_s": rollup.bin_s},
    }
    if open_loop:
        figures["latency_from_start_ms"] = latency_summary(rollup.latency.sum(axis=0))
    return figures


def timeline(rollup: rollups.Rollup, main: np.ndarray[Any, Any]) -> dict[str, Any]:
    n_bins, width = rollup.n_bins, rollup.bin_s
    per_bin = np.zeros((n_bins, rollups.COUNTS_LEN), np.int64)
    np.add.at(per_bin, rollup.bins, main)
    lookups = np.bincount(rollup.bins, weights=rollup.lookups, minlength=n_bins).astype(np.int64)
    failures: dict[str, list[int]] = {}
    for cls in OUTCOMES[1:]:
        mask = rollup.select(outcome=cls)
        if mask.any():
            failures[cls] = (
                np.bincount(rollup.bins[mask], weights=rollup.lookups[mask], minlength=n_bins)
                .astype(np.int64)
                .tolist()
            )
    covered = np.full(n_bins, width)
    covered[-1] = max(rollup.span_s - width * (n_bins - 1), min(width, 1e-3))
    pct = {key: [rollups.percentile_ms(row, q) for row in per_bin] for key, q in PERCENTILES.items()}
    return {
        "t0_ns": rollup.t0_ns,
        "bin_s": width,
        "start_s": [round(i * width, 3) for i in range(n_bins)],
        "lookups": lookups.tolist(),
        "lookups_per_s": [round(float(v), 1) for v in lookups / covered],
        **{key: [None if v is None else round(v, 3) for v in values] for key, values in pct.items()},
        "failures": failures,
        "p99_by_workload": workload_p99(rollup, main),
    }


def waited_timeout(rollup: rollups.Rollup, timeout_s: float) -> list[int]:
    """As `timeline.waited_timeout`, from the histograms of the latency from the actual start."""
    per_bin = np.zeros((rollup.n_bins, rollups.COUNTS_LEN), np.int64)
    np.add.at(per_bin, rollup.bins, rollup.latency)
    low = timeout_s * (1 - PEAK_BELOW) * 1e9
    return [rollups.count_between(row, low, float(rollups.HIGHEST_NS)) for row in per_bin]


def workload_p99(rollup: rollups.Rollup, main: np.ndarray[Any, Any]) -> dict[str, list[float | None]]:
    """As `timeline.workload_p99`, from the histograms."""
    out: dict[str, list[float | None]] = {}
    for label in sorted(set(rollup.workload)):
        mask = rollup.select(workload=label)
        per_bin = np.zeros((rollup.n_bins, rollups.COUNTS_LEN), np.int64)
        np.add.at(per_bin, rollup.bins[mask], main[mask])
        values = [rollups.percentile_ms(row, 99.0) for row in per_bin]
        out[label] = [None if v is None else round(v, 3) for v in values]
    return out


def latency_cdf(counts: np.ndarray[Any, Any], points: int = CDF_POINTS) -> dict[str, list[float]]:
    low_ms, high_ms = rollups.percentile_ms(counts, 0.0), rollups.max_ms(counts)
    if low_ms is None or high_ms is None:
        return {"ms": [], "share": []}
    low = max(low_ms, 1e-3)
    grid = np.geomspace(low, max(high_ms, low * 1.01), points)
    share = rollups.share_within(counts, grid.tolist())
    return {"ms": [round(float(v), 4) for v in grid], "share": [round(v, 5) for v in share]}


def timeout_peaks(
    counts: np.ndarray[Any, Any], n: int, timeout_s: float, max_k: int = 8
) -> list[dict[str, Any]]:
    """As `timeline.timeout_peaks`, counted from the histogram."""
    if n == 0 or timeout_s <= 0:
        return []
    peaks = []
    for k in range(1, max_k + 1):
        at = k * timeout_s
        lo, hi = at * (1 - PEAK_BELOW), at * (1 + PEAK_ABOVE) + PEAK_SLACK_S
        found = rollups.count_between(counts, lo * 1e9, hi * 1e9)
        if found:
            peaks.append({"k": k, "at_s": at, "lookups": found, "share": round(found / n, 5)})
    return peaks


def apply_figures(summary: dict[str, Any], figures: dict[str, Any]) -> None:
    """Put the rollups' figures in a mode's summary (built from the records kept), per workload too."""
    per_workload = figures.pop("workloads_from_rollups")
    summary.update(figures)
    n = summary["lookups"]
    queries = summary.get("wire_queries") or 0
    summary["wire_queries_per_lookup"] = round(queries / n, 3) if n else None
    for entry in summary.get("workloads", []):
        found = per_workload.get(entry["workload"])
        if found is None:
            continue
        wire_count = entry.get("wire_queries") or 0
        entry.update(found)
        n_w = found["lookups"]
        entry["wire_queries_per_lookup"] = round(wire_count / n_w, 3) if n_w else None
