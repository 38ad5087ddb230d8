"""`dnsprobe compare RUN_A RUN_B`: what changed between two runs (or releases), per mode.

Only differences that matter are flagged, each with a noise band so two runs of the same build do not
cry wolf: the resolver changed; a mode stopped starting; the error rate rose by more than three standard
errors of the difference (and at least half a percentage point); p99 rose by more than 25 % and 2 ms;
wire queries per lookup moved by more than a quarter query. A rise is a regression (exit 1); a fall is
reported as an improvement.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dnsprobe.errors import DnsProbeError

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
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DnsProbeError(
            f"{path}: no such file; give a run directory (runs/<run-id>) or its summary.json"
        ) from None
    except (OSError, ValueError) as exc:
        raise DnsProbeError(f"{path}: not a readable summary.json ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("modes"), list):
        raise DnsProbeError(f'{path}: not a dnsprobe summary (no "modes" list)')
    return data


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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


def compare_runs(run_a: Path, run_b: Path) -> list[Difference]:
    """Every difference that matters between two runs, mode by mode (modes of A first)."""
    a, b = read_summary(run_a), read_summary(run_b)
    modes_a = {str(m.get("mode")): m for m in a["modes"] if isinstance(m, Mapping)}
    modes_b = {str(m.get("mode")): m for m in b["modes"] if isinstance(m, Mapping)}
    out: list[Difference] = []
    for name in [*modes_a, *(n for n in modes_b if n not in modes_a)]:
        if name not in modes_b:
            out.append(Difference(name, "mode", "present", "missing", True))
        elif name not in modes_a:
            out.append(Difference(name, "mode", "missing", "present", False))
        else:
            out += compare_modes(modes_a[name], modes_b[name])
    return out


def format_differences(diffs: list[Difference], run_a: Path, run_b: Path) -> str:
    if not diffs:
        return f"no difference that matters between {run_a} and {run_b}"
    width = max(len(d.mode) for d in diffs)
    lines = [f"A = {run_a}", f"B = {run_b}"]
    for d in diffs:
        tag = "REGRESSION " if d.regression else "improvement" if d.what != "mode" else "new mode   "
        lines.append(f"{tag}  {d.mode:<{width}}  {d.what}: {d.a} -> {d.b}")
    regressions = sum(d.regression for d in diffs)
    lines.append(f"{regressions} regression{'s' if regressions != 1 else ''}")
    return "\n".join(lines)
