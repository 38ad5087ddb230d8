"""The postmortem shape every renderer shares: summary, impact, timeline, evidence, likely cause, fix.

Plain data out of the summary (sentences, events, rows), so report.html and report.md say the same thing.
The likely cause and remediation are the "findings" the rules wrote into the summary (dnsprobe.judge.rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from dnsprobe.report.common import (
    count,
    fmt_int,
    fmt_ms,
    fmt_pct,
    mode_name,
    modes,
    number,
    outcome_counts,
    ran,
    section,
    verdict,
)

SEVERITY_LABELS: Final = {"critical": "critical", "warning": "warning", "info": "note"}
WIRE_COLUMNS: Final = ("mode", "queries", "source ports", "rcodes", "faults injected")


def findings(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [f for f in summary.get("findings") or () if isinstance(f, Mapping)]


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """Three or four sentences a person reads first: verdict, worst mode, likely cause."""
    _, sentence = verdict(summary)
    out = [sentence]
    worst: tuple[float, str, int, int] | None = None
    for m in modes(summary):
        counts = outcome_counts(m)
        total = sum(counts.values())
        if total:
            failed = total - counts["ok"]
            if worst is None or failed / total > worst[0]:
                worst = (failed / total, mode_name(m), failed, total)
    if worst and worst[2]:
        out.append(f"Worst mode: {worst[1]}, {fmt_pct(worst[2], worst[3])} of {worst[3]:,} lookups failed.")
    elif worst:
        out.append("Every lookup succeeded.")
    slow = sorted(
        (
            (v, mode_name(m))
            for m in modes(summary)
            if ran(m) and (v := number(section(m, "latency_ms").get("p99")))
        ),
        reverse=True,
    )
    if slow:
        out.append(f"Slowest p99: {slow[0][1]} {fmt_ms(slow[0][0])} ms.")
    top = [f for f in findings(summary) if f.get("severity") in ("critical", "warning")]
    if top:
        out.append(f"Likely cause: {top[0].get('why')}")
    return out


@dataclass(frozen=True)
class Impact:
    mode: str
    lookups: int
    failed: int
    share: str
    p99_ms: str
    classes: str


def impact_rows(summary: Mapping[str, Any]) -> list[Impact]:
    rows = []
    for m in modes(summary):
        counts = outcome_counts(m)
        total = sum(counts.values())
        failed = total - counts["ok"]
        classes = ", ".join(f"{c} {n:,}" for c, n in counts.items() if c != "ok" and n) or "none"
        rows.append(
            Impact(
                mode_name(m),
                total,
                failed,
                fmt_pct(failed, total),
                fmt_ms(section(m, "latency_ms").get("p99")),
                classes,
            )
        )
    return rows


def _clock(ns: float) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M:%S")


def timeline_events(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(UTC time, what happened): each mode's load, its first failures, its worst moment."""
    events: list[tuple[str, str]] = []
    if started := summary.get("started_at"):
        events.append((str(started)[11:19], f"run {summary.get('run_id') or ''} started"))
    for m in modes(summary):
        name = mode_name(m)
        tl = section(m, "timeline")
        t0, width, xs = number(tl.get("t0_ns")), number(tl.get("bin_s")), tl.get("start_s") or []
        if t0 is None or width is None or not xs:
            if not ran(m):
                events.append(("", f"{name}: {str(m.get('status') or 'not run').replace('_', ' ')}"))
            continue
        end = t0 + (float(xs[-1]) + width) * 1e9
        events.append(
            (_clock(t0), f"{name}: load started ({fmt_int(m.get('lookups'))} lookups until {_clock(end)})")
        )
        failures = section(tl, "failures")
        firsts = []
        for cls, counts in failures.items():
            first = next((i for i, c in enumerate(counts or ()) if count(c)), None)
            if first is not None:
                firsts.append((first, cls, sum(count(c) for c in counts)))
        for first, cls, total in sorted(firsts):
            events.append(
                (_clock(t0 + float(xs[first]) * 1e9), f"{name}: first {cls} failure ({total:,} in all)")
            )
        p99 = [(number(v), i) for i, v in enumerate(tl.get("p99") or ())]
        measured = [(v, i) for v, i in p99 if v is not None]
        if measured:
            worst, i = max(measured)
            events.append((_clock(t0 + float(xs[i]) * 1e9), f"{name}: worst p99 {fmt_ms(worst)} ms"))
    if finished := summary.get("finished_at"):
        events.append((str(finished)[11:19], "run finished" if summary.get("finished") else "run stopped"))
    return events


def wire_rows(summary: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The nameserver's view per mode: queries, distinct source ports, rcodes, injected faults."""
    rows: list[tuple[str, ...]] = []
    for m in modes(summary):
        wire = section(m, "wire")
        if not wire:
            continue
        rcodes = ", ".join(f"{k} {fmt_int(v)}" for k, v in section(wire, "rcodes").items()) or "—"
        faults = ", ".join(f"{k} {fmt_int(v)}" for k, v in section(wire, "faults").items()) or "none"
        rows.append(
            (mode_name(m), fmt_int(wire.get("queries")), fmt_int(wire.get("source_ports")), rcodes, faults)
        )
    return rows


def trace_excerpts(summary: Mapping[str, Any], limit: int = 6) -> list[tuple[str, list[str]]]:
    """Per mode, the trace lines that say which resolver Go chose and the lookup orders seen."""
    out = []
    for m in modes(summary):
        trace = section(m, "trace")
        lines = [str(s) for s in trace.get("selection") or ()][:limit]
        lines += [
            f"hostLookupOrder = {k}  ({fmt_int(v)} names)" for k, v in section(trace, "order_counts").items()
        ]
        if lines:
            out.append((mode_name(m), lines))
    return out


def remediation(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(rule, fix) for each finding, duplicates folded: several rules share the decision tree's advice."""
    seen: set[str] = set()
    out = []
    for f in findings(summary):
        fix = str(f.get("fix") or "")
        if fix and fix not in seen:
            seen.add(fix)
            out.append((str(f.get("rule") or "?"), fix))
    return out
