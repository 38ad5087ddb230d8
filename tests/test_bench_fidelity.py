"""`dnsprobe bench fidelity` runs both sides against one pod and ends with `ratio: X` (the figure itself is
the benchmark's business, not the test's)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_fidelity_prints_both_sides_and_a_ratio(probe_cache: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnsprobe",
            "bench",
            "fidelity",
            "--seconds",
            "2",
            "--rounds",
            "1",
            "--concurrency",
            "8",
            "--users",
            "2",
            "--batch",
            "100",
            "--cache",
            str(probe_cache),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio: \d+\.\d{3}", lines[-1]), lines[-1]
    assert float(lines[-1].split()[1]) > 0
    sides = {}
    for line in lines:
        m = re.match(r"1\s+(bare loop|harness)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", line)
        if m:
            sides[m[1]] = (int(m[2].replace(",", "")), float(m[3]), float(m[4]), int(m[5]))
    assert set(sides) == {"bare loop", "harness"}, done.stdout
    for name, (rate, p50, p99, failed) in sides.items():
        assert rate > 0 and 0 < p50 <= p99 and failed == 0, (name, sides[name])
    assert re.search(r"records: [\d,]+ rows/s appended", done.stdout)


@pytest.mark.slow
def test_bench_fidelity_fault_variant_reports_each_nameserver(probe_cache: Path) -> None:
    argv = [sys.executable, "-m", "dnsprobe", "bench", "fidelity", "--faults", "--seconds", "1"]
    argv += ["--rounds", "1", "--concurrency", "8", "--cache", str(probe_cache)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    rows = {}
    for line in lines:
        m = re.match(r"1\s+(\S+)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", line)
        if m:
            rows[m[1]] = (int(m[2].replace(",", "")), float(m[3]), int(m[5]))
    assert set(rows) == {"go", "go+faults", "python+faults"}, done.stdout
    for label, (rate, p50, failed) in rows.items():
        assert rate > 0 and p50 > 0 and failed == 0, (label, rows[label])  # the faults miss these names
    assert re.fullmatch(r"ratio: \d+\.\d{3}", lines[-1]) and float(lines[-1].split()[1]) > 0
