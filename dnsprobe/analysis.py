"""Analysis stage: records + the nameserver's query log + the probe's trace -> one summary per mode.

Wire queries are attributed to workloads by name: a lookup of `{rand}.api.example.test` in a pod with a
search list causes queries for `<label>.api.example.test.default.svc.cluster.local.` and so on, which all
match the workload's template followed by an optional search suffix.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dnsprobe import records
from dnsprobe.nameserver.querylog import read_querylog
from dnsprobe.scenario import Workload
from dnsprobe.trace import parse_trace

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0}


def latency_summary(latencies_ns: Sequence[int] | np.ndarray[Any, Any]) -> dict[str, float | None]:
    values = np.asarray(latencies_ns, dtype=np.float64) / 1e6
    if values.size == 0:
        return {key: None for key in (*PERCENTILES, "max")}
    found = np.percentile(values, list(PERCENTILES.values()))
    out: dict[str, float | None] = {k: round(float(v), 3) for k, v in zip(PERCENTILES, found, strict=True)}
    out["max"] = round(float(values.max()), 3)
    return out


def workload_pattern(query: str, search: Sequence[str]) -> re.Pattern[str]:
    """A regex matching every wire query name one lookup of this workload can cause."""
    parts = re.split(r"(\{rand\}|\{seq\})", query.rstrip(".").lower())
    body = "".join(
        "[0-9a-f]{16}" if part == "{rand}" else r"\d+" if part == "{seq}" else re.escape(part)
        for part in parts
    )
    suffixes = "|".join(re.escape(s.rstrip(".").lower()) for s in search)
    tail = rf"(?:\.(?:{suffixes}))?" if suffixes and not query.endswith(".") else ""
    return re.compile(rf"^{body}{tail}\.?$")


def count_wire_queries(
    querylog_lines: Iterable[str], workloads: Sequence[Workload], search: Sequence[str]
) -> tuple[int, Counter[str]]:
    """(all queries, queries per workload label)."""
    patterns = [(w.label, workload_pattern(w.query, search)) for w in workloads]
    total = 0
    per: Counter[str] = Counter()
    for entry in read_querylog(querylog_lines):
        total += 1
        name = entry.qname.lower()
        for label, pattern in patterns:
            if pattern.match(name):
                per[label] += 1
                break
    return total, per


def _outcomes(lookups: Sequence[records.Lookup]) -> tuple[int, dict[str, int]]:
    counts = Counter(lookup.outcome for lookup in lookups)
    ok = counts.pop("ok", 0)
    return ok, {cls: counts[cls] for cls in records.OUTCOMES if counts.get(cls)}


def summarise_mode(
    *,
    records_path: Path,
    mode: str,
    workloads: Sequence[Workload],
    search: Sequence[str],
    querylog: Path | None,
    trace: Path | None,
) -> dict[str, Any]:
    """The figures of one mode (the keys of summary.json's `modes[]` that come from measurement)."""
    lookups = list(records.read_mode(records_path, mode)) if records_path.exists() else []
    ok, failures = _outcomes(lookups)
    latencies = np.fromiter((lk.latency_ns for lk in lookups), dtype=np.int64, count=len(lookups))
    span_s = 0.0
    if lookups:
        starts = np.fromiter((lk.start_ns for lk in lookups), dtype=np.int64, count=len(lookups))
        span_s = float((starts + latencies).max() - starts.min()) / 1e9
    wire_total, wire_per = 0, Counter[str]()
    if querylog is not None and querylog.exists():
        with querylog.open(encoding="utf-8", errors="replace") as lines:
            wire_total, wire_per = count_wire_queries(lines, workloads, search)
    per_workload = []
    for w in workloads:
        mine = [lk for lk in lookups if lk.workload == w.label]
        w_ok, w_failures = _outcomes(mine)
        per_workload.append(
            {
                "workload": w.label,
                "kind": w.kind,
                "name": w.query,
                "lookups": len(mine),
                "ok": w_ok,
                "failures": w_failures,
                "latency_ms": latency_summary([lk.latency_ns for lk in mine]),
                "wire_queries_per_lookup": round(wire_per[w.label] / len(mine), 3) if mine else None,
            }
        )
    trace_summary: dict[str, Any] = {"resolver": None, "selection": [], "order_counts": {}}
    if trace is not None and trace.exists():
        with trace.open(encoding="utf-8", errors="replace") as lines:
            report = parse_trace(lines, max_names=200)
        trace_summary = {
            "resolver": report.resolver if report.trace_lines else None,
            "selection": report.selection,
            "order_counts": dict(report.order_counts),
        }
    return {
        "resolver": trace_summary["resolver"],
        "lookups": len(lookups),
        "ok": ok,
        "failures": failures,
        "lookups_per_s": round(len(lookups) / span_s, 1) if span_s > 0 else 0.0,
        "latency_ms": latency_summary(latencies),
        "wire_queries": wire_total,
        "wire_queries_per_lookup": round(wire_total / len(lookups), 3) if lookups else None,
        "workloads": per_workload,
        "trace": trace_summary,
    }
