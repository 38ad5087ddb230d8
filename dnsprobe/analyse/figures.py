"""Analysis stage: records + the nameserver's query log + the probe's trace -> one summary per mode.

Wire queries are attributed to workloads by name: a lookup of `{rand}.api.example.test` in a pod with a
search list causes queries for `<label>.api.example.test.default.svc.cluster.local.` and so on, which all
match the workload's template followed by an optional search suffix.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dnsprobe.analyse import flows, rollup_summary, timeline, wire_rollup
from dnsprobe.analyse.trace import parse_trace
from dnsprobe.codec.names import search_walk_pattern, workload_pattern
from dnsprobe.load import threads
from dnsprobe.nameserver import logstore
from dnsprobe.nameserver.querylog import read_querylog, read_querylog_fields
from dnsprobe.scenario import Workload

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0}


def latency_summary(latencies_ns: Sequence[int] | np.ndarray[Any, Any]) -> dict[str, float | None]:
    values = np.asarray(latencies_ns, dtype=np.float64) / 1e6
    if values.size == 0:
        return {key: None for key in (*PERCENTILES, "max")}
    found = np.percentile(values, list(PERCENTILES.values()))
    out: dict[str, float | None] = {k: round(float(v), 3) for k, v in zip(PERCENTILES, found, strict=True)}
    out["max"] = round(float(values.max()), 3)
    return out


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


def search_walk_after(
    querylog_lines: Iterable[str],
    workloads: Sequence[Workload],
    search: Sequence[str],
    since: Sequence[float],
) -> list[float]:
    """For each moment in `since` (unix times): seconds to the last wire query after it that walked the
    search list (a workload's name with a search domain appended), 0.0 when none came after. After a
    resolv.conf change that ends the walk, this is how long the resolver kept the old configuration.
    One pass over the log, however many moments."""
    walks = [p for p in (search_walk_pattern(w.query, search) for w in workloads) if p is not None]
    last = 0.0  # the latest walking query seen
    if walks:
        for fields in read_querylog_fields(querylog_lines):
            name = fields[5].lower()
            if any(walk.match(name) for walk in walks):
                last = max(last, float(fields[0]))
    return [round(max(0.0, last - moment), 3) for moment in since]


def go_queries_after(querylog_lines: Iterable[str], since: Sequence[float]) -> list[float]:
    """For each moment in `since` (unix times): seconds to the last wire query after it that carried
    Go's EDNS0 OPT record (Go's own resolver sends one with every query since 1.19; glibc without
    `options edns0` and musl send none), 0.0 when none came after. After an nsswitch.conf change that
    sends a default cgo build to libc, this is how long Go's resolver kept answering its lookups."""
    last = 0.0
    for fields in read_querylog_fields(querylog_lines):
        if len(fields) > 7 and fields[7] not in ("-", ""):
            last = max(last, float(fields[0]))
    return [round(max(0.0, last - moment), 3) for moment in since]


def answer_counts(records_path: Path, mode: str) -> dict[str, dict[str, float]]:
    """Per workload: the fewest, most and mean addresses a successful lookup returned (from the records
    kept). A resolver that returns fewer addresses than the others for the same names read only part of
    the answer (musl keeps what fits in 512 bytes)."""
    if not records_path.exists():
        return {}
    db = sqlite3.connect(f"file:{records_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute(
            "SELECT workload, MIN(answers), MAX(answers), AVG(answers) FROM lookups "
            "WHERE mode = ? AND outcome = 'ok' GROUP BY workload",
            (mode,),
        ).fetchall()
    except sqlite3.OperationalError:  # no lookups table
        return {}
    finally:
        db.close()
    return {w: {"min": int(lo), "max": int(hi), "mean": round(float(avg), 2)} for w, lo, hi, avg in rows}


def summarise_mode(
    *,
    records_path: Path,
    mode: str,
    workloads: Sequence[Workload],
    search: Sequence[str],
    querylog: Path | None,
    trace: Path | None,
    resolv_conf: str = "",
    open_loop: bool = False,
    changes: Sequence[float] = (),
    nsswitch_changes: bool = False,
) -> dict[str, Any]:
    """The figures of one mode (the keys of summary.json's `modes[]` that come from measurement).

    Records are read as numpy columns, never as one object per lookup: a million lookups summarise in
    about a second. Besides the contract's figures this adds the series the charts plot ("timeline",
    "latency_cdf"), the timeout fingerprint ("timeout_peaks", against the pod's resolv.conf timeout) and
    the nameserver's view ("wire": rcodes, query types, source ports).

    `changes`: when resolv.conf was rewritten (unix times); each gets "search_walk_after_s" (see
    `search_walk_after`), and the first one's figure is also the mode's "search_walk_after_change_s";
    with `nsswitch_changes`, also "go_queries_after_s" (see `go_queries_after`), the first one's figure
    the mode's "go_queries_after_change_s".

    `open_loop`: latencies (and the charts' series) run from each lookup's intended start, and
    "latency_from_start_ms" adds Go's own latency from the actual start; the timeout fingerprint uses the
    latter, since it describes the resolver.
    """
    cols = timeline.read_columns(records_path, mode, from_intended=open_loop)
    resolver_ns = cols.latency_ns if cols.service_ns is None else cols.service_ns
    ok, failures = timeline.outcome_split(cols.outcome)
    span_s = 0.0
    if len(cols):
        span_s = float((cols.start_ns + cols.latency_ns).max() - cols.start_ns.min()) / 1e9
    patterns = [(w.label, workload_pattern(w.query, search)) for w in workloads]
    wire = timeline.WireView(0, Counter(), Counter(), Counter(), Counter(), Counter(), 0)
    if querylog is not None and logstore.querylog_exists(
        querylog
    ):  # queries.tsv, or compressed (logstore.py)
        wire = wire_rollup.read_wire_view(records_path, mode, querylog, patterns)
    per_workload = []
    for w in workloads:
        index = cols.workloads.index(w.label) if w.label in cols.workloads else -1
        mask = cols.workload == index
        n = int(mask.sum()) if index >= 0 else 0
        w_ok, w_failures = timeline.outcome_split(cols.outcome[mask] if n else cols.outcome[:0])
        per_workload.append(
            {
                "workload": w.label,
                "kind": w.kind,
                "name": w.query,
                "lookups": n,
                "ok": w_ok,
                "failures": w_failures,
                "latency_ms": latency_summary(cols.latency_ns[mask] if n else cols.latency_ns[:0]),
                "wire_queries": wire.per_workload[w.label],
                "wire_queries_per_lookup": round(wire.per_workload[w.label] / n, 3) if n else None,
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
    resolv = timeline.resolv_options(resolv_conf)
    summary = {
        "resolver": trace_summary["resolver"],
        "lookups": len(cols),
        "ok": ok,
        "failures": failures,
        "lookups_per_s": round(len(cols) / span_s, 1) if span_s > 0 else 0.0,
        "latency_ms": latency_summary(cols.latency_ns),
        "wire_queries": wire.queries,
        "wire_queries_per_lookup": round(wire.queries / len(cols), 3) if len(cols) else None,
        "workloads": per_workload,
        "trace": trace_summary,
        "resolv": resolv,
        "wire": wire.to_json(),
        "timeout_peaks": timeline.timeout_peaks(resolver_ns, float(resolv["timeout_s"])),
        "timeline": timeline.build_timeline(cols, timeout_s=float(resolv["timeout_s"])),
        "latency_cdf": timeline.latency_cdf(cols.latency_ns),
        "latency_from": "intended_start" if open_loop else "start",
    }
    if open_loop:
        summary["latency_from_start_ms"] = latency_summary(resolver_ns)
    figures = rollup_summary.rollup_figures(  # when not every record was kept
        records_path,
        mode,
        workloads=[w.label for w in workloads],
        timeout_s=float(resolv["timeout_s"]),
        open_loop=open_loop,
        records_count=len(cols),
    )
    if figures is not None:
        rollup_summary.apply_figures(summary, figures)
    t0_ns = summary["timeline"].get("t0_ns")
    if wire.rcodes.get("drop") and querylog is not None and logstore.querylog_exists(querylog):
        summary["wire"]["drop_window"] = flows.drop_window(lambda: logstore.querylog_lines(querylog), t0_ns)
    answers = answer_counts(records_path, mode)
    for entry in summary["workloads"]:
        if entry["workload"] in answers:
            entry["answers"] = answers[entry["workload"]]
    thread_samples = threads.read_samples(records_path, mode)
    if (series := timeline.thread_series(thread_samples, t0_ns)) is not None:
        summary["threads"] = series
    if changes:
        walks = [0.0] * len(changes)
        if querylog is not None and logstore.querylog_exists(querylog):
            walks = search_walk_after(logstore.querylog_lines(querylog), workloads, search, changes)
        summary["changes"] = [
            {"at": round(at, 6), "search_walk_after_s": after}
            for at, after in zip(changes, walks, strict=True)
        ]
        summary["search_walk_after_change_s"] = walks[0]
        if nsswitch_changes:  # [[pod.changes]] nsswitch_hosts: when Go's resolver stopped asking
            gone = [0.0] * len(changes)
            if querylog is not None and logstore.querylog_exists(querylog):
                gone = go_queries_after(logstore.querylog_lines(querylog), changes)
            for change, after in zip(summary["changes"], gone, strict=True):
                change["go_queries_after_s"] = after
            summary["go_queries_after_change_s"] = gone[0]
    return summary
