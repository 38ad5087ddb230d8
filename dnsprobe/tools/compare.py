"""`dnsprobe compare RUN_A RUN_B`: what changed between two runs (or releases), per mode.

Only differences that matter are flagged, each with a noise band so two runs of the same build do not
cry wolf: the resolver changed; a mode stopped starting; the error rate rose by more than three standard
errors of the difference (and at least half a percentage point); p99 rose by more than 25 % and 2 ms;
wire queries per lookup moved by more than a quarter query. A rise is a regression (exit 1); a fall is
reported as an improvement.

An interrupted run (`interrupted: true` in its summary) says so in one line, and the modes it never got
to are noted, not flagged; runs of different scenarios are named as such. A summary.json whose figures
have the wrong types is refused in one line naming the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dnsprobe.errors import DnsProbeError
from dnsprobe.files_io import read_limited
from dnsprobe.summary import validate_summary

P99_RATIO: Final = 1.25
P99_MIN_MS: Final = 2.0
ERROR_MIN: Final = 0.005
ERROR_SIGMAS: Final = 3.0
WIRE_MIN: Final = 0.25


@dataclass(frozen=True)
class Difference:
    mode: str
    what: str
    a: str
    b: str
    regression: bool

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "what": self.what, "a": self.a, "b": self.b, "regression": self.regression}


def read_summary(run: Path) -> dict[str, Any]:
    path = run / "summary.json" if run.is_dir() else run
    try:
        data = json.loads(read_limited(path, "summary.json"))
    except FileNotFoundError:
        raise DnsProbeError(
            f"{path}: no such file; give a run directory (runs/<run-id>) or its summary.json"
        ) from None
    except OSError as exc:
        raise DnsProbeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise DnsProbeError(f"{path}: not a readable summary.json ({why})") from None
    if not isinstance(data, dict) or not isinstance(data.get("modes"), list):
        raise DnsProbeError(f'{path}: not a dnsprobe summary (no "modes" list)')
    _check_types(path, data)
    return validate_summary(data, source=str(path)).to_json()  # the model reads every layout since v1


_NUMBER = (int, float)
_TOP_TYPES: dict[str, tuple[type, ...]] = {"scenario": (str,), "interrupted": (bool,), "finished": (bool,)}
_MODE_TYPES: dict[str, tuple[type, ...]] = {
    "mode": (str,),
    "status": (str,),
    "resolver": (str, type(None)),
    "lookups": (int,),
    "ok": (int,),
    "failures": (dict,),
    "latency_ms": (dict, type(None)),
    "wire_queries_per_lookup": (*_NUMBER, type(None)),
}


def _check_types(path: Path, data: dict[str, Any]) -> None:
    """The fields compare reads, with the types dnsprobe writes; DnsProbeError naming the first wrong one."""

    def wrong(field: str, value: object, expected: str) -> DnsProbeError:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return DnsProbeError(
            f"{path}: {field}: expected {expected}, got {shown}; not a summary.json as dnsprobe writes it"
        )

    def check(field: str, value: object, types: tuple[type, ...]) -> None:
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        if isinstance(value, bool) and bool not in types:
            raise wrong(field, value, names)
        if not isinstance(value, types):
            raise wrong(field, value, names)
        if isinstance(value, float) and not math.isfinite(value):
            raise wrong(field, value, "a finite number")
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise wrong(field, value, "a count (0 or more)")

    for key, types in _TOP_TYPES.items():
        if key in data:
            check(key, data[key], types)
    for index, entry in enumerate(data["modes"]):
        where = f"modes[{index}]"
        if not isinstance(entry, dict):
            raise wrong(where, entry, "a table")
        for key, types in _MODE_TYPES.items():
            if key in entry:
                check(f"{where}.{key}", entry[key], types)
        if "mode" not in entry:
            raise DnsProbeError(
                f"{path}: {where}: has no mode name; not a summary.json as dnsprobe writes it"
            )
        if entry.get("ok", 0) > entry.get("lookups", entry.get("ok", 0)):
            raise wrong(f"{where}.ok", entry["ok"], f"at most lookups ({entry['lookups']})")
        for key, value in (entry.get("latency_ms") or {}).items():
            check(f"{where}.latency_ms.{key}", value, (*_NUMBER, type(None)))


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _error_rate(m: Mapping[str, Any]) -> tuple[float, int] | None:
    n = int(_num(m.get("lookups")) or 0)
    ok = _num(m.get("ok"))
    return ((n - ok) / n, n) if n and ok is not None else None


def error_rate_rose(a: tuple[float, int], b: tuple[float, int]) -> bool:
    """Beyond noise: more than ERROR_SIGMAS standard errors of a two-proportion difference."""
    (pa, na), (pb, nb) = a, b
    pooled = (pa * na + pb * nb) / (na + nb)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / na + 1 / nb))
    return pb - pa > max(ERROR_MIN, ERROR_SIGMAS * se)


def compare_modes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Difference]:
    name = str(a.get("mode") or b.get("mode"))
    out: list[Difference] = []
    status_a, status_b = a.get("status", "ran"), b.get("status", "ran")
    if status_a != status_b:
        out.append(Difference(name, "status", str(status_a), str(status_b), status_b != "ran"))
        if status_b != "ran" or status_a != "ran":
            return out
    if a.get("resolver") != b.get("resolver"):
        out.append(Difference(name, "resolver", str(a.get("resolver")), str(b.get("resolver")), True))
    ea, eb = _error_rate(a), _error_rate(b)
    if ea and eb:
        if error_rate_rose(ea, eb):
            out.append(Difference(name, "error rate", f"{ea[0]:.2%}", f"{eb[0]:.2%}", True))
        elif error_rate_rose(eb, ea):
            out.append(Difference(name, "error rate", f"{ea[0]:.2%}", f"{eb[0]:.2%}", False))
    pa = _num((a.get("latency_ms") or {}).get("p99"))
    pb = _num((b.get("latency_ms") or {}).get("p99"))
    if pa is not None and pb is not None:
        if pb > pa * P99_RATIO and pb - pa > P99_MIN_MS:
            out.append(Difference(name, "p99 ms", f"{pa:g}", f"{pb:g}", True))
        elif pa > pb * P99_RATIO and pa - pb > P99_MIN_MS:
            out.append(Difference(name, "p99 ms", f"{pa:g}", f"{pb:g}", False))
    wa, wb = _num(a.get("wire_queries_per_lookup")), _num(b.get("wire_queries_per_lookup"))
    if wa is not None and wb is not None and abs(wb - wa) > WIRE_MIN:
        out.append(Difference(name, "wire queries/lookup", f"{wa:g}", f"{wb:g}", wb > wa))
    return out


RUN: Final = "(run)"  # the `mode` of a difference about a whole run, not one mode


def _interrupted(summary: Mapping[str, Any]) -> bool:
    return bool(summary.get("interrupted")) or summary.get("finished") is False


def _ran(m: Mapping[str, Any] | None) -> bool:
    """The mode got as far as its figures (a mode an interruption reached before its pod did is pending)."""
    return m is not None and m.get("status", "ran") != "pending"


def compare_runs(run_a: Path, run_b: Path) -> list[Difference]:
    """Every difference that matters between two runs, mode by mode (modes of A first); first, notes on
    the runs themselves (different scenarios, an interrupted run), which are never regressions."""
    a, b = read_summary(run_a), read_summary(run_b)
    modes_a = {str(m.get("mode")): m for m in a["modes"] if isinstance(m, Mapping)}
    modes_b = {str(m.get("mode")): m for m in b["modes"] if isinstance(m, Mapping)}
    out: list[Difference] = []
    if a.get("scenario") and b.get("scenario") and a["scenario"] != b["scenario"]:
        out.append(Difference(RUN, "scenario", str(a["scenario"]), str(b["scenario"]), False))
    cut_a, cut_b = _interrupted(a), _interrupted(b)
    if cut_a or cut_b:
        yes_no = {True: "interrupted", False: "finished"}
        out.append(Difference(RUN, "run", yes_no[cut_a], yes_no[cut_b], False))
    for name in [*modes_a, *(n for n in modes_b if n not in modes_a)]:
        ma, mb = modes_a.get(name), modes_b.get(name)
        if cut_b and not _ran(mb):
            out.append(Difference(name, "mode", "run", "not run (B was interrupted)", False))
        elif cut_a and not _ran(ma):
            out.append(Difference(name, "mode", "not run (A was interrupted)", "run", False))
        elif mb is None:
            out.append(Difference(name, "mode", "present", "missing", True))
        elif ma is None:
            out.append(Difference(name, "mode", "missing", "present", False))
        else:
            out += compare_modes(ma, mb)
    return out


def format_differences(diffs: list[Difference], run_a: Path, run_b: Path) -> str:
    if not diffs:
        return f"no difference that matters between {run_a} and {run_b}"
    width = max(len(d.mode) for d in diffs)
    lines = [f"A = {run_a}", f"B = {run_b}"]
    for d in diffs:
        if d.mode == RUN:
            lines.append(_run_note(d))
            continue
        tag = "REGRESSION " if d.regression else "improvement" if d.what != "mode" else "new mode   "
        if d.what == "mode" and "interrupted" in d.a + d.b:
            tag = "not run    "
        lines.append(f"{tag}  {d.mode:<{width}}  {d.what}: {d.a} -> {d.b}")
    regressions = sum(d.regression for d in diffs)
    lines.append(f"{regressions} regression{'s' if regressions != 1 else ''}")
    return "\n".join(lines)


def _run_note(d: Difference) -> str:
    if d.what == "scenario":
        return (
            f"note         A and B ran different scenarios ({d.a} and {d.b}): the modes are compared anyway"
        )
    which = " and ".join(side for side, state in (("A", d.a), ("B", d.b)) if state == "interrupted")
    verb = "were" if " and " in which else "was"
    return f"note         {which} {verb} interrupted: the figures cover what was measured before the stop"
