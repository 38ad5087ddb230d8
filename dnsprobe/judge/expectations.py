"""The catalog's checks: does each mode behave as its `[[behaviour]]` says the resolver is documented to?

A behaviour bounds what was measured (resolver, dominant outcome class and its share, p50/p99 bands, wire
queries per lookup, whether the probe started); each bound that fails is named in the check's detail, with
the figure that was seen.

A scenario without `[expect]` gets a default gate: every mode that no behaviour describes must keep its
error rate at or below 1%, and a critical finding about such a mode fails the run; each such check says
it is the default gate. A scenario that expects failures declares them (behaviours, or its own [expect]).
"""

from __future__ import annotations

from typing import Any

from dnsprobe.scenario import Behaviour, Scenario

DEFAULT_MAX_ERROR_RATE = 0.01
DEFAULT_GATE = "default gate: the scenario has no [expect]"


def declares(scenario: Scenario, mode: str, field: str) -> bool:
    """Whether some behaviour sets `field` for this mode (it then replaces the generic check)."""
    return any(mode in b.modes and getattr(b, field) is not None for b in scenario.behaviour)


def has_expect(scenario: Scenario) -> bool:
    """Whether the scenario file has its own `[expect]` (else the default gate applies)."""
    return "expect" in scenario.model_fields_set


def described(scenario: Scenario, mode: str) -> bool:
    """Whether a `[[behaviour]]` names this mode: it then says what the mode is expected to do, failures
    included, and the default gate leaves it alone. Docker cells ("go+alpine") count as their mode."""
    base = mode.split("+", 1)[0]
    return any(base in b.modes for b in scenario.behaviour)


def default_error_rate(scenario: Scenario, mode: str) -> float | None:
    """The error-rate gate the default gate sets for `mode` (None: none, the scenario sets its own or a
    behaviour describes the mode)."""
    if has_expect(scenario) or described(scenario, mode):
        return None
    return DEFAULT_MAX_ERROR_RATE


def critical_finding_check(scenario: Scenario, findings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Default gate: a critical finding about a mode no behaviour describes fails the run (one about
    described modes is what the scenario expects; the detail names it)."""
    if has_expect(scenario):
        return None
    critical = [f for f in findings if f.get("severity") == "critical"]

    def about(f: dict[str, Any]) -> str:
        return f"{f.get('rule')} ({', '.join(map(str, f.get('modes') or []))}): {f.get('seen')}"

    failing = [f for f in critical if not all(described(scenario, str(m)) for m in f.get("modes") or ["?"])]
    expected = [f for f in critical if f not in failing]
    detail = "; ".join(about(f) for f in failing) or "none"
    if expected:
        detail += " (expected by the scenario's behaviours: " + "; ".join(about(f) for f in expected) + ")"
    return {"name": f"no critical finding ({DEFAULT_GATE})", "passed": not failing, "detail": detail}


def behaviour_checks(scenario: Scenario, summary: dict[str, Any]) -> list[dict[str, Any]]:
    by_mode = {m["mode"]: m for m in summary["modes"]}
    checks = []
    for behaviour in scenario.behaviour:
        for name in behaviour.modes:
            entry = by_mode.get(name)
            if entry is None:  # an interrupted run never reached this mode
                continue
            passed, detail = judge(behaviour, entry)
            what = behaviour.why or "behaves as documented"
            target = f" ({behaviour.workload})" if behaviour.workload else ""
            checks.append(
                {"name": f"{name}{target}: {what}", "passed": passed, "detail": detail, "mode": name}
            )
    return checks


def _band(value: float | None, band: list[float] | None, label: str, unit: str = "") -> tuple[bool, str]:
    if band is None:
        return True, ""
    if value is None:
        return False, f"{label}: nothing measured (expected {band[0]:g}–{band[1]:g}{unit})"
    ok = band[0] <= value <= band[1]
    return ok, f"{label} {value:g}{unit} ({'within' if ok else 'outside'} {band[0]:g}–{band[1]:g}{unit})"


def judge(behaviour: Behaviour, mode: dict[str, Any]) -> tuple[bool, str]:
    """(passed, what was seen) for one mode against one behaviour."""
    if mode["status"] == "skipped":
        return False, f"not run: {mode['reason']}"
    if behaviour.status is not None and mode["status"] != behaviour.status:
        seen = mode["reason"] if mode["status"] == "start_failure" else "it started"
        return False, f"expected {behaviour.status.replace('_', ' ')}, but {seen}"
    if mode["status"] == "start_failure":
        if behaviour.start_error and behaviour.start_error not in (mode["reason"] or ""):
            return False, f"did not start, but not with {behaviour.start_error!r}: {mode['reason']}"
        return True, f"did not start: {mode['reason']}"
    figures = mode
    if behaviour.workload is not None:
        figures = next((w for w in mode["workloads"] if w["workload"] == behaviour.workload), {})
        if not figures:
            return False, f"workload {behaviour.workload} has no figures"
    results: list[tuple[bool, str]] = []
    if behaviour.resolver is not None:
        ok = mode["resolver"] == behaviour.resolver
        results.append((ok, f"resolver {mode['resolver'] or 'unknown'} (expected {behaviour.resolver})"))
    lookups = figures.get("lookups", 0)
    if behaviour.outcome is not None:
        count = (
            figures.get("ok", 0)
            if behaviour.outcome == "ok"
            else figures["failures"].get(behaviour.outcome, 0)
        )
        share = count / lookups if lookups else 0.0
        classes = {"ok": figures.get("ok", 0), **figures.get("failures", {})}
        seen = ", ".join(f"{k} {v}" for k, v in classes.items() if v) or "no lookups"
        results.append(
            (
                share >= behaviour.min_share,
                f"{share:.0%} {behaviour.outcome} (need {behaviour.min_share:.0%}; {seen})",
            )
        )
    latency = figures.get("latency_ms", {})
    results.append(_band(latency.get("p50"), behaviour.p50_ms, "p50", " ms"))
    results.append(_band(latency.get("p99"), behaviour.p99_ms, "p99", " ms"))
    results.append(
        _band(figures.get("wire_queries_per_lookup"), behaviour.wire_queries_per_lookup, "wire q/lookup")
    )
    results.append(
        _band(
            mode.get("search_walk_after_change_s"),
            behaviour.search_walk_after_change_s,
            "search list walked until",
            " s after the change",
        )
    )
    results.append(
        _band(
            mode.get("go_queries_after_change_s"),
            behaviour.go_queries_after_change_s,
            "Go's resolver asked until",
            " s after the change",
        )
    )
    peak = (mode.get("threads") or {}).get("peak")
    results.append(_band(peak, behaviour.peak_threads, "peak OS threads"))
    results = [r for r in results if r[1]]
    return all(ok for ok, _ in results), "; ".join(text for _, text in results)


def failure_mode_finding(scenario: Scenario, checks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A catalog scenario's own explanation, as the report's first finding: the failure mode by name,
    what each mode was seen doing (its behaviour checks), why, and what to change."""
    failure = scenario.failure_mode
    if failure is None:
        return None
    whys = {b.why for b in scenario.behaviour if b.why}
    seen = [
        f"{c['name']}: {c['detail']}" + ("" if c["passed"] else " (NOT as documented)")
        for c in checks
        if any(why in c["name"] for why in whys)
    ]
    modes = sorted({mode for b in scenario.behaviour for mode in b.modes})
    return {
        "rule": f"failure mode {failure.number}: {failure.title}",
        "severity": "warning",
        "modes": modes,
        "seen": " · ".join(seen) or "nothing was measured",
        "why": " ".join(failure.explanation.split()),
        "fix": " ".join(failure.remedy.split()),
    }
