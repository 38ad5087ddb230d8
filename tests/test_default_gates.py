"""A scenario without `[expect]` still fails a run that failed: the default gate (no start failure, error
rate at most 1% per mode, no critical finding) applies to every mode no `[[behaviour]]` describes, and
says so. A run in which no mode ran fails too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dnsprobe.judge.expectations import DEFAULT_GATE, critical_finding_check
from dnsprobe.scenario import parse_scenario

ROOT = Path(__file__).resolve().parent.parent

# Every lookup asks for a name the zone does not have: NXDOMAIN, 100% not_found.
MISSING = """
name = "gate"
modes = ["go"]

[load]
users = 1
duration = 2
batch = 50
concurrency = 4

[[load.workloads]]
label = "missing"
query = "{rand}.nowhere.example.test."

[nameserver]
zone = '''
example.test. 30 SOA ns.example.test. h.example.test. 1 7200 1800 86400 30
*.api.example.test. 30 A 192.0.2.10
'''
"""

DECLARED = (
    MISSING
    + """
[[behaviour]]
modes = ["go"]
outcome = "not_found"
why = "every name is missing"
"""
)


def run(
    tmp_path: Path, text: str, cache: Path, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    scenario = tmp_path / "gate.toml"
    scenario.write_text(text)
    out = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "dnsprobe", "run", str(scenario), "--out", str(out), "--cache", str(cache)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    (run_dir,) = out.iterdir()
    assert (run_dir / "report.html").is_file(), done.stderr
    return done.returncode, json.loads((run_dir / "summary.json").read_text())


@pytest.mark.slow
def test_without_expect_a_failing_mode_fails_the_run(tmp_path: Path, probe_cache: Path) -> None:
    code, summary = run(tmp_path, MISSING, probe_cache)
    assert code == 1
    (gate,) = [c for c in summary["checks"] if c["name"].startswith("go: error rate")]
    assert DEFAULT_GATE in gate["name"] and not gate["passed"]
    assert "100.00% of" in gate["detail"] and "[[behaviour]]" in gate["detail"]


@pytest.mark.slow
def test_a_declared_failure_is_no_failure(tmp_path: Path, probe_cache: Path) -> None:
    code, summary = run(tmp_path, DECLARED, probe_cache)
    failed = [c for c in summary["checks"] if not c["passed"]]
    assert code == 0, failed
    assert not [c for c in summary["checks"] if c["name"].startswith("go: error rate")]
    assert any(c["name"] == "go: every name is missing" and c["passed"] for c in summary["checks"])


def test_a_run_in_which_no_mode_ran_fails(tmp_path: Path, probe_cache: Path) -> None:
    """cgo without a C compiler on PATH is skipped; a run of nothing but skipped modes exits 1."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("unshare", "true"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    env = {**os.environ, "PATH": str(bin_dir)}
    code, summary = run(tmp_path, MISSING.replace('modes = ["go"]', 'modes = ["cgo"]'), probe_cache, env)
    assert code == 1
    assert [m["status"] for m in summary["modes"]] == ["skipped"]
    (check,) = [c for c in summary["checks"] if c["name"] == "a mode ran"]
    assert not check["passed"] and "gcc not found" in check["detail"]


def _scenario(text: str) -> Any:
    import tomllib

    return parse_scenario(tomllib.loads(text), source="gate.toml")


CRITICAL = [{"rule": "servfail_storm", "severity": "critical", "modes": ["go"], "seen": "SERVFAIL storm"}]


def test_a_critical_finding_fails_without_expect() -> None:
    check = critical_finding_check(_scenario(MISSING), CRITICAL)
    assert check is not None and not check["passed"] and "servfail_storm" in check["detail"]
    passed = critical_finding_check(_scenario(MISSING), [{**CRITICAL[0], "severity": "warning"}])
    assert passed is not None and passed["passed"]


def test_a_critical_finding_about_a_described_mode_or_with_expect_is_the_scenarios_call() -> None:
    check = critical_finding_check(_scenario(DECLARED), CRITICAL)
    assert check is not None and check["name"] == f"no critical finding ({DEFAULT_GATE})"
    assert check["passed"] and check["detail"].startswith("none (expected by the scenario's behaviours")
    assert critical_finding_check(_scenario(MISSING + "\n[expect]\nmax_error_rate = 0.5\n"), CRITICAL) is None


def test_every_catalog_mode_is_described() -> None:
    """The catalog expects its failures: every mode of every catalog scenario has a behaviour, so the
    default gate leaves them to their own checks."""
    from dnsprobe.judge.expectations import described
    from dnsprobe.scenario import load_scenario

    for path in sorted((ROOT / "scenarios" / "catalog").glob("*.toml")):
        scenario = load_scenario(path)
        assert all(described(scenario, m) for m in scenario.modes), path.name
