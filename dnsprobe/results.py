"""A run's results, from what it left on disk: each mode's figures (records.sqlite, pods/<mode>/), the
checks it is judged by, and the files that say so (summary.json, junit.xml, the report).

`dnsprobe run` (dnsprobe.pipeline) and `dnsprobe report` (dnsprobe.rebuild) both end here, so a rebuilt
report is judged exactly as the run's own. Writes that hit a full disk become `DiskFull`: one line that
says where the records are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dnsprobe.analyse import figures as analysis
from dnsprobe.build.twin import twin_checks
from dnsprobe.judge.expectations import (
    DEFAULT_GATE,
    behaviour_checks,
    critical_finding_check,
    declares,
    default_error_rate,
    failure_mode_finding,
    has_expect,
)
from dnsprobe.judge.junit import write_junit
from dnsprobe.judge.rules import diagnose
from dnsprobe.modes import Mode, pod_dir_of
from dnsprobe.scenario import Scenario
from dnsprobe.summary import write_summary


def write_run_files(
    scenario: Scenario,
    summary: dict[str, Any],
    run_dir: Path,
    write_report: Callable[[Path, dict[str, Any]], object] | None = None,
) -> None:
    """Checks and findings, then summary.json, junit.xml and the report (also `dnsprobe report` and the
    benches): the one place a run is judged. `write_report`: the renderers (default: dnsprobe.report)."""
    from dnsprobe.report import write_report as write_the_report

    judge_run(scenario, summary)
    write_summary(run_dir / "summary.json", summary)
    write_junit(summary, run_dir / "junit.xml")
    (write_report or write_the_report)(run_dir, summary)


def judge_run(scenario: Scenario, summary: dict[str, Any]) -> None:
    """summary["checks"] and summary["findings"] from the figures."""
    summary["checks"] = evaluate_checks(scenario, summary)
    catalog = failure_mode_finding(scenario, summary["checks"])
    summary["findings"] = ([catalog] if catalog else []) + diagnose(summary)
    gate = critical_finding_check(scenario, summary["findings"])
    if gate is not None:
        summary["checks"].append(gate)
    for check in summary["checks"]:
        check.setdefault("mode", None)  # a check of the whole run


def summarise_entry(
    entry: dict[str, Any],
    scenario: Scenario,
    *,
    run_dir: Path,
    records_path: Path,
    files: Any = None,
    changes: list[float] | None = None,
) -> None:
    """A mode's figures from what is on disk: records.sqlite and pods/<mode>/ (query log, trace)."""
    pod_dir = pod_dir_of(run_dir, str(entry["mode"]))
    resolv_conf = files.resolv_conf if files is not None else (pod_dir / "resolv.conf").read_text()
    entry.update(
        analysis.summarise_mode(
            records_path=records_path,
            mode=entry["mode"],
            workloads=scenario.load.workloads,
            search=scenario.pod.search,
            querylog=pod_dir / "queries.tsv",
            trace=pod_dir / "probe.stderr",
            resolv_conf=resolv_conf,
            open_loop=scenario.load.shape == "open",
            changes=changes or [],
            nsswitch_changes=any(c.touches_nsswitch for c in scenario.pod.changes),
        )
    )
    if entry["status"] == "pending" and entry["lookups"]:
        entry["status"] = "ran"  # cut short after its lookups began


def mode_entry(mode: Mode) -> dict[str, Any]:
    return {
        "mode": mode.name,
        "description": mode.summary,
        "status": "pending",
        "reason": None,
        "resolver": None,
        "expected_resolver": mode.expected_resolver,
        "lookups": 0,
        "ok": 0,
        "failures": {},
        "lookups_per_s": 0.0,
        "latency_ms": analysis.latency_summary([]),
        "wire_queries": 0,
        "wire_queries_per_lookup": None,
        "workloads": [],
        "trace": {},
        "binary": {},
        "threads": None,  # the probe's OS threads over the load, once sampled (load/threads.py)
    }


def note_incidents(entry: dict[str, Any], incidents: list[dict[str, Any]], load_started: float) -> None:
    """The mode's `incidents` (what died, seconds into the load; [] once the mode's load is over and
    nothing died) and a reason the report shows."""
    incidents.sort(key=lambda i: float(i["at"]))
    entry["incidents"] = [
        {
            "what": str(i["what"]),
            "at_s": round(max(0.0, float(i["at"]) - load_started), 1),
            "text": str(i["text"]),
        }
        for i in incidents
    ]
    if not incidents:
        return
    lost = entry["failures"].get("lost", 0)
    said = "; ".join(f"{i['at_s']:g} s into the load: {i['text']}" for i in entry["incidents"])
    entry["reason"] = said + (f"; {lost:,} lookups in flight were lost (no response)" if lost else "")


def evaluate_checks(scenario: Scenario, summary: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []

    # Mode checks are named "<mode>: <what>"; the check says its mode too, so nobody parses names.
    names = sorted((str(m["mode"]) for m in summary["modes"]), key=len, reverse=True)

    def check(name: str, passed: bool, detail: str) -> None:
        mode = next((n for n in names if name.startswith(f"{n}: ")), None)
        checks.append({"name": name, "passed": bool(passed), "detail": detail, "mode": mode})

    done = sum(m["lookups"] for m in summary["modes"])
    if summary["interrupted"]:
        stop = summary.get("interruption") or {}
        where = f" during {stop.get('stage')}" if stop.get("stage") else ""
        where += f" of {stop['mode']}" if stop.get("mode") else ""
        by = f" by {stop['signal']}" if stop.get("signal") else ""
        check(
            "run completed",
            False,
            f"interrupted{by}{where} after {done} lookups; the figures cover what was measured",
        )
    elif summary.get("error"):
        error = summary["error"]
        where = f"{error.get('stage')} of {error['mode']}" if error.get("mode") else str(error.get("stage"))
        check("run completed", False, f"failed during {where}: {error.get('text')}")
    elif summary.get("rebuilt") and not summary.get("finished"):
        check(
            "run completed",
            False,
            f"the run ended without finishing its summary (killed?) after {done} recorded lookups; "
            "rebuilt by `dnsprobe report` from what it left on disk",
        )
    elif summary["modes"] and not any(m["status"] in ("ran", "start_failure") for m in summary["modes"]):
        reasons = "; ".join(f"{m['mode']}: {m.get('reason') or m['status']}" for m in summary["modes"])
        check("a mode ran", False, f"no mode ran ({reasons})")
    expect = scenario.expect
    for m in summary["modes"]:
        name = m["mode"]
        predicted = m.get("inspect")  # docker cells: inspect's verdict for this base image
        if m["status"] == "start_failure":
            if predicted is not None:
                reason = m["reason"] or ""
                check(f"{name}: fails to start, as inspect predicted", not predicted["starts"], reason)
            elif not declares(scenario, name, "status"):
                gate = "" if has_expect(scenario) else f" ({DEFAULT_GATE})"
                check(f"{name}: probe started{gate}", False, m["reason"] or "")
            continue
        if predicted is not None and m["status"] == "ran":
            check(f"{name}: starts, as inspect predicted", predicted["starts"], predicted["why"])
        if m["status"] != "ran":
            continue
        if m.get("incidents"):
            check(f"{name}: probe, nameserver and load stayed up", False, str(m.get("reason") or ""))
        orders = (
            ", ".join(f"{k} ×{v}" for k, v in m["trace"].get("order_counts", {}).items()) or "no order lines"
        )
        if not declares(scenario, name, "resolver"):
            check(
                f"{name}: resolver is {m['expected_resolver']}",
                m["resolver"] == m["expected_resolver"],
                f"the trace shows {m['resolver'] or 'nothing'} ({orders})",
            )
        if not m["lookups"]:
            check(f"{name}: lookups happened", False, "no lookup was recorded")
            continue
        error_rate = 1 - m["ok"] / m["lookups"]
        gates = expect.gates(name)  # [expect.modes.<mode>] overrides the run-wide gates
        if gates.max_error_rate is not None:
            check(
                f"{name}: error rate <= {gates.max_error_rate:.2%}",
                error_rate <= gates.max_error_rate,
                f"{error_rate:.2%} of {m['lookups']} lookups failed",
            )
        elif (default := default_error_rate(scenario, name)) is not None:
            check(
                f"{name}: error rate <= {default:.2%} ({DEFAULT_GATE})",
                error_rate <= default,
                f"{error_rate:.2%} of {m['lookups']} lookups failed"
                + (
                    ""
                    if error_rate <= default
                    else "; declare expected failures with [[behaviour]] or [expect]"
                ),
            )
        p99 = m["latency_ms"]["p99"]
        if gates.max_p99_ms is not None:
            check(
                f"{name}: p99 <= {gates.max_p99_ms:g} ms",
                p99 is not None and p99 <= gates.max_p99_ms,
                f"p99 was {p99:g} ms",
            )
    return checks + behaviour_checks(scenario, summary) + twin_checks(summary)
