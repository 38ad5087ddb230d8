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
