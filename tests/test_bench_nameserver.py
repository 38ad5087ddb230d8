"""`dnsprobe bench nameserver` runs end to end (briefly) and ends with its ratio line."""

from __future__ import annotations

import re

import pytest

from dnsprobe.cli import main

pytestmark = pytest.mark.tools


def test_bench_nameserver_prints_figures_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nameserver", "--seconds", "1", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("round 1: embedded") for line in lines)
    assert any(line.startswith("round 1: dnsmasq") for line in lines)
    assert "answers parsed by dnspython: 500" in lines
    ratio = re.fullmatch(r"ratio: ([0-9.]+)", lines[-1])
    assert ratio is not None and float(ratio.group(1)) > 0


def test_bench_nameserver_with_faults_runs_both_engines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nameserver", "--faults", "--seconds", "1", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "with the fault mix (dnsmasq without)" in lines[0]
    for label in ("embedded", "python", "dnsmasq"):
        assert any(line.startswith(f"round 1: {label} ") for line in lines), label
    lost = [int(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("round 1: ")]
    assert lost[0] > 0 and lost[1] > 0  # the fault mix drops 1% of the names
    checked = next(line for line in lines if line.startswith("answers parsed by dnspython: "))
    assert 400 < int(checked.rsplit(" ", 1)[1]) < 500  # the names the faults touch are skipped
    assert re.fullmatch(r"ratio: [0-9.]+", lines[-1])
