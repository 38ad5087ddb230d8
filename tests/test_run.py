"""End to end: `dnsprobe run scenarios/quickstart.toml --quick` with real probes, real namespaces, the real
embedded nameserver and real Locust; then the run directory is checked against the contracts."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dnsprobe.nameserver.querylog import read_querylog
from dnsprobe.summary import SCHEMA_VERSION, read_summary

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_RESOLVER = {"go": "go", "cgo": "cgo", "musl": "cgo", "godebug-go": "go", "godebug-cgo": "cgo"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("runs")
    done = subprocess.run(
        [sys.executable, "-m", "dnsprobe", "run", "scenarios/quickstart.toml", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    runs = list(out.iterdir())
    assert len(runs) == 1, (done.stdout, done.stderr)
    return done, runs[0]


def summary_of(run_dir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return summary


def mode(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in summary["modes"] if m["mode"] == name)


def test_run_passes_and_writes_the_report(quickstart: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, run_dir = quickstart
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("report.html", "report.md", "summary.json", "records.sqlite"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "charts").glob("*.png"))
    assert "report.html" in done.stdout


def test_summary_contract(quickstart: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    summary = summary_of(quickstart[1])
    assert summary["finished"] is True
    for key in ("run_id", "scenario", "started_at", "modes", "checks"):
        assert key in summary
    assert summary["checks"] and all(c["passed"] for c in summary["checks"]), summary["checks"]
    assert summary["schema_version"] == SCHEMA_VERSION
    assert read_summary(quickstart[1]).run_id == summary["run_id"]  # the model reads what the run wrote
    names = {m["mode"] for m in summary["modes"]}
    for check in summary["checks"]:  # every check says which mode it is about (None: the whole run)
        assert check["mode"] is None or check["mode"] in names, check
        assert check["mode"] is None or check["name"].startswith(check["mode"]), check
    assert any(c["mode"] == "go" for c in summary["checks"])
    for m in summary["modes"]:
        if m["status"] != "ran":
            continue
        assert m["lookups"] == m["ok"] + sum(m["failures"].values())
        assert m["lookups"] > 0 and m["lookups_per_s"] > 0
        assert set(m["latency_ms"]) == {"p50", "p90", "p99", "max"}
        assert 0 < m["latency_ms"]["p50"] <= m["latency_ms"]["p99"] <= m["latency_ms"]["max"]


@pytest.mark.parametrize("name", ["go", "cgo", "godebug-go", "godebug-cgo", "musl"])
def test_resolver_per_mode_matches_the_trace(
    quickstart: tuple[subprocess.CompletedProcess[str], Path], name: str
) -> None:
    if name == "musl" and shutil.which("musl-gcc") is None:
        pytest.skip("musl-gcc not found (apt-get install musl-tools)")
    m = mode(summary_of(quickstart[1]), name)
    assert m["status"] == "ran", m["reason"]
    assert m["resolver"] == EXPECTED_RESOLVER[name]
    assert m["ok"] == m["lookups"], m["failures"]


def test_ndots_amplification_is_visible(quickstart: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """An external name with 4 dots walks the 3-entry search list first: (3 + 1) x (A + AAAA) = 8."""
    for m in summary_of(quickstart[1])["modes"]:
        if m["status"] != "ran":
            continue
        per = {w["workload"]: w for w in m["workloads"]}
        assert per["external"]["wire_queries_per_lookup"] == pytest.approx(8, abs=0.25), m["mode"]
        assert per["service"]["wire_queries_per_lookup"] == pytest.approx(2, abs=0.25), m["mode"]


def test_every_lookup_reached_the_embedded_nameserver(
    quickstart: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """Each recorded lookup's name shows up in its own pod's query log, and the log holds nothing else.
    The quickstart has no fault rules, so its pods run the nameserver's Go engine."""
    run_dir = quickstart[1]
    assert summary_of(run_dir)["nameserver"]["engine"] == "go"
    db = sqlite3.connect(run_dir / "records.sqlite")
    for m in summary_of(run_dir)["modes"]:
        if m["status"] != "ran":
            continue
        rows = db.execute("SELECT name FROM lookups WHERE mode = ?", (m["mode"],))
        names = {row[0].lower() for row in rows}
        with (run_dir / "pods" / m["mode"] / "queries.tsv").open() as fh:
            queried = [entry.qname.lower() for entry in read_querylog(fh)]
        assert len(queried) == m["wire_queries"]
        first_labels = {q.split(".", 1)[0] for q in queried}
        missing = {n for n in names if n.split(".", 1)[0] not in first_labels}
        assert not missing, f"{m['mode']}: {len(missing)} lookups never reached the nameserver"
        stray = {q.split(".", 1)[0] for q in queried} - {n.split(".", 1)[0] for n in names}
        assert not stray, f"{m['mode']}: queries for names nobody looked up: {sorted(stray)[:5]}"
