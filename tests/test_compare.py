"""`dnsprobe compare`: regressions beyond noise are flagged per mode and exit 1; noise and gains do not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from dnsprobe.cli import main
from dnsprobe.tools.compare import compare_runs


def mode(name: str, **kw: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "mode": name,
        "status": "ran",
        "resolver": "go",
        "lookups": 10_000,
        "ok": 9_990,
        "failures": {"timeout": 10},
        "latency_ms": {"p50": 2.0, "p90": 4.0, "p99": 10.0, "max": 30.0},
        "wire_queries_per_lookup": 2.0,
    }
    m.update(kw)
    if "failures" not in kw:  # keep lookups == ok + sum(failures), as every summary dnsprobe writes
        missing = m["lookups"] - m["ok"]
        cls = "start_failure" if m["status"] == "start_failure" else "timeout"
        m["failures"] = {cls: missing} if missing else {}
    return m


def write(tmp: Path, name: str, modes: list[dict[str, Any]]) -> Path:
    run = tmp / name
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"run_id": name, "modes": modes, "checks": []}))
    return run


def test_same_figures_within_noise_are_no_regression(tmp_path: Path) -> None:
    a = write(tmp_path, "a", [mode("go"), mode("cgo", resolver="cgo")])
    b = write(tmp_path, "b", [mode("go", ok=9_985, latency_ms={"p99": 11.5}), mode("cgo", resolver="cgo")])
    assert compare_runs(a, b) == []
    assert main(["compare", str(a), str(b)]) == 0


def test_each_regression_is_flagged(tmp_path: Path) -> None:
    a = write(tmp_path, "a", [mode("go"), mode("cgo", resolver="cgo"), mode("musl", resolver="cgo")])
    b = write(
        tmp_path,
        "b",
        [
            mode("go", resolver="cgo", wire_queries_per_lookup=8.0),
            mode("cgo", resolver="cgo", ok=9_700, latency_ms={"p99": 40.0}),
        ],
    )
    found = {(d.mode, d.what): d for d in compare_runs(a, b)}
    assert set(found) == {
        ("go", "resolver"),
        ("go", "wire queries/lookup"),
        ("cgo", "error rate"),
        ("cgo", "p99 ms"),
        ("musl", "mode"),
    }
    assert all(d.regression for d in found.values())
    assert (found[("cgo", "p99 ms")].a, found[("cgo", "p99 ms")].b) == ("10", "40")
    assert main(["compare", str(a), str(b)]) == 1


def test_improvements_are_reported_but_pass(tmp_path: Path) -> None:
    slow = mode("go", ok=9_000, latency_ms={"p99": 900.0}, wire_queries_per_lookup=8.0)
    a = write(tmp_path, "a", [slow])
    b = write(tmp_path, "b", [mode("go")])
    diffs = compare_runs(a, b)
    assert {d.what for d in diffs} == {"error rate", "p99 ms", "wire queries/lookup"}
    assert not any(d.regression for d in diffs)
    assert main(["compare", str(a / "summary.json"), str(b)]) == 0


def test_a_mode_that_stops_starting_is_a_regression(tmp_path: Path) -> None:
    a = write(tmp_path, "a", [mode("cgo")])
    broken = copy.deepcopy(mode("cgo", status="start_failure", lookups=1, ok=0))
    b = write(tmp_path, "b", [broken])
    diffs = compare_runs(a, b)
    assert [(d.what, d.a, d.b, d.regression) for d in diffs] == [("status", "ran", "start_failure", True)]


def test_missing_run_is_bad_input(tmp_path: Path) -> None:
    assert main(["compare", str(tmp_path / "nope"), str(tmp_path)]) == 2
