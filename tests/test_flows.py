"""The dropped queries' window and flows, from query-log lines (analyse/flows.py), what the stale_flows
rule makes of them beyond its golden case, and the timeouts-over-time series that charts the window."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

from dnsprobe.analyse.flows import drop_window
from dnsprobe.analyse.timeline import Columns, build_timeline
from dnsprobe.judge import rules
from dnsprobe.report.timecharts import failures_over_time_figure
from dnsprobe.vocabulary import OUTCOMES

HEADER = "time\tproto\tclient\tport\tid\tqname\tqtype\tedns\tfault\trcode\n"
T0 = 1_000.0


def line(t: float, port: int, dropped: bool = False) -> str:
    fault, rcode = ("stale_flows", "drop") if dropped else ("-", "NOERROR")
    return f"{T0 + t:.6f}\tudp\t127.0.0.1\t{port}\t1\tx.api.example.test.\tA\t-\t{fault}\t{rcode}\n"


def stale_log() -> list[str]:
    """10 s, a new port every 0.1 s; from 5 to 6 s the server ignores the ports it saw before 5 s (their
    lookups retry on them), and answers new ones."""
    lines = [HEADER]
    for i in range(100):
        t = i * 0.1
        lines.append(line(t, 20_000 + i))
        if 5.0 <= t < 6.0:
            lines.append(line(t, 20_000 + i - 40, dropped=True))  # an old flow's retry
    return lines


def test_stale_flows_are_dropped_on_old_ports_while_new_ports_answer() -> None:
    seen = drop_window(stale_log, int(T0 * 1e9))
    assert seen is not None
    assert seen["drops"] == 10
    assert seen["window_s"] == [5.0, 5.9]
    assert seen["window_share_of_run"] == 0.091  # 0.9 s of 9.9
    assert seen["dropped_on_old_ports"] == 1.0
    assert seen["answered_in_window"] == 10
    assert seen["answered_on_new_ports"] == 1.0


def test_drops_spread_over_the_run_on_fresh_ports() -> None:
    lines = [HEADER]
    for i in range(100):
        lines.append(line(i * 0.1, 30_000 + i, dropped=i % 10 == 0))  # every tenth query, first on its port
    seen = drop_window(lambda: lines, int(T0 * 1e9))
    assert seen is not None
    assert seen["window_s"] == [0.0, 9.0]
    assert seen["window_share_of_run"] > 0.9
    assert seen["dropped_on_old_ports"] == 0.0


def test_nothing_dropped_gives_no_window() -> None:
    assert drop_window(lambda: [HEADER, line(0.0, 1), line(1.0, 2)], None) is None


def golden() -> dict[str, Any]:
    path = Path(__file__).parent / "data" / "rules" / "stale_flows.json"
    case: dict[str, Any] = json.loads(path.read_text())
    return case


def test_an_outage_window_is_not_stale_flows() -> None:
    """The same window, but nothing answered in it: every flow was dead, not just the old ones."""
    summary = copy.deepcopy(golden()["fires"]["summary"])
    for mode in summary["modes"]:
        mode["wire"]["drop_window"].update(answered_in_window=0, answered_on_new_ports=None)
    assert rules.stale_flows(summary) is None


def test_a_long_window_is_not_stale_flows() -> None:
    summary = copy.deepcopy(golden()["fires"]["summary"])
    for mode in summary["modes"]:
        mode["wire"]["drop_window"]["window_share_of_run"] = 0.9
    assert rules.stale_flows(summary) is None


def test_stale_flows_names_only_the_modes_that_show_it() -> None:
    summary = copy.deepcopy(golden()["fires"]["summary"])
    summary["modes"][0]["wire"]["drop_window"]["dropped_on_old_ports"] = 0.2
    finding = rules.stale_flows(summary)
    assert finding is not None and finding.modes == ("cgo", "musl")


def test_timeouts_over_time_count_lookups_that_waited_whether_or_not_they_failed() -> None:
    """Go's resolver retries a stale flow's query on a new socket and succeeds after one timeout: the
    failures chart alone would show nothing, the waited-out-a-timeout line shows the window."""
    start = np.arange(0, 10_000_000_000, 50_000_000, dtype=np.int64)  # 200 lookups over 10 s
    latency = np.full(start.size, 2_000_000, np.int64)
    hit = (start >= 5_000_000_000) & (start < 6_000_000_000) & (np.arange(start.size) % 4 == 0)
    latency[hit] = 1_003_000_000  # one 1 s timeout, then answered
    outcome = np.zeros(start.size, np.int8)
    outcome[np.flatnonzero(hit)[:2]] = OUTCOMES.index("timeout")  # two of them failed after all
    cols = Columns(start, latency, outcome, np.zeros(start.size, np.int16), ("external",))
    tl = build_timeline(cols, max_bins=10, timeout_s=1.0)
    assert tl["bin_s"] == 1.0
    assert tl["waited_timeout"] == [0, 0, 0, 0, 0, 5, 0, 0, 0, 0]
    assert tl["failures"]["timeout"] == [0, 0, 0, 0, 0, 2, 0, 0, 0, 0]
    summary = {"modes": [{"mode": "go", "status": "ran", "lookups": int(start.size), "timeline": tl}]}
    fig = failures_over_time_figure(summary)
    lines = {ln.get_gid(): ln for ln in fig.axes[0].get_lines()}
    assert list(np.asarray(lines["go:waited_timeout"].get_ydata())) == [0, 0, 0, 0, 0, 5, 0, 0, 0, 0]
    assert "waited_timeout" not in build_timeline(cols, max_bins=10)  # without a timeout, no such series
