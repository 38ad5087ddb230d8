"""The series charts plot what the analysis computed from the records: checked on the data, not pixels."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from dnsprobe.analyse.timeline import (
    Columns,
    build_timeline,
    grouped_percentiles,
    read_columns,
    timeout_peaks,
)
from dnsprobe.bench.report import generate_run
from dnsprobe.report.timecharts import (
    failures_over_time_figure,
    latency_cdf_figure,
    latency_over_time_figure,
    source_ports_figure,
    throughput_figure,
)


def bars_of(ax: Axes) -> list[Rectangle]:
    """The axes' patches, every one of them a bar."""
    bars = [patch for patch in ax.patches if isinstance(patch, Rectangle)]
    assert len(bars) == len(ax.patches), ax.patches
    return bars


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from dnsprobe.bench.report import build_report

    run = tmp_path_factory.mktemp("run") / "series"
    run.mkdir()
    generate_run(run, 20_000)
    build_report(run)
    data: dict[str, Any] = json.loads((run / "summary.json").read_text())
    data["records"] = str(run / "records.sqlite")
    return data


def mode(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in summary["modes"] if m["mode"] == name)


def test_grouped_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 7, 5000)
    values = rng.lognormal(0, 1, 5000)
    got = grouped_percentiles(groups, values, 8, (50.0, 99.0))
    for g in range(7):
        assert got[:, g] == pytest.approx(np.percentile(values[groups == g], [50, 99]))
    assert np.isnan(got[:, 7]).all()


def test_timeline_counts_add_up(summary: dict[str, Any]) -> None:
    for m in summary["modes"]:
        tl = m["timeline"]
        assert sum(tl["lookups"]) == m["lookups"]
        assert sum(sum(v) for v in tl["failures"].values()) == m["lookups"] - m["ok"]


def test_timeout_peaks_find_the_musl_waits(summary: dict[str, Any]) -> None:
    musl = mode(summary, "musl")
    assert [p["k"] for p in musl["timeout_peaks"]] == [1, 2]
    cols = read_columns(Path(summary["records"]), "musl")
    waited = int(((cols.latency_ns >= 0.98e9) & (cols.latency_ns < 2.2e9)).sum())
    assert sum(p["lookups"] for p in musl["timeout_peaks"]) == waited
    assert mode(summary, "go")["timeout_peaks"] == []
    assert timeout_peaks(np.array([5_000_000_000, 10_010_000_000]), 5.0)[1]["k"] == 2


def test_latency_over_time_lines_are_the_timeline(summary: dict[str, Any]) -> None:
    fig = latency_over_time_figure(summary)
    lines = {ln.get_gid(): ln for ax in fig.axes for ln in ax.get_lines()}
    for m in summary["modes"]:
        for p in ("p50", "p90", "p99"):
            line = lines[f"{m['mode']}:{p}"]
            assert list(np.asarray(line.get_xdata())) == m["timeline"]["start_s"]
            assert list(np.asarray(line.get_ydata())) == pytest.approx(m["timeline"][p], nan_ok=True)
        assert np.asarray(lines[f"{m['mode']}:timeout"].get_ydata())[0] == 1000.0  # resolv.conf timeout:1


def test_cdf_is_log_scale_with_timeouts_marked(summary: dict[str, Any]) -> None:
    fig = latency_cdf_figure(summary)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    lines = {ln.get_gid(): ln for ln in ax.get_lines()}
    musl = lines["musl"]
    assert list(np.asarray(musl.get_xdata())) == mode(summary, "musl")["latency_cdf"]["ms"]
    assert np.asarray(musl.get_ydata())[-1] == pytest.approx(100.0)
    marks = sorted(float(g.split(":")[1]) for g in lines if g is not None and g.startswith("timeout:"))
    assert marks[:2] == [1.0, 2.0]


def test_failures_throughput_and_ports(summary: dict[str, Any]) -> None:
    fig = failures_over_time_figure(summary)
    timeouts = [r for ax in fig.axes for r in bars_of(ax) if r.get_gid() == "musl:timeout"]
    width = mode(summary, "musl")["timeline"]["bin_s"]
    assert sum(r.get_height() * width for r in timeouts) == pytest.approx(
        mode(summary, "musl")["failures"]["timeout"]
    )
    fig = throughput_figure(summary)
    lines = {ln.get_gid(): ln for ln in fig.axes[0].get_lines()}
    assert list(np.asarray(lines["cgo"].get_ydata())) == mode(summary, "cgo")["timeline"]["lookups_per_s"]
    fig = source_ports_figure(summary)
    bars = {r.get_gid(): r.get_height() for r in bars_of(fig.axes[0])}
    assert bars == {m["mode"]: m["wire"]["source_ports"] for m in summary["modes"]}


def test_empty_columns_give_empty_series() -> None:
    tl = build_timeline(Columns.empty())
    assert tl["start_s"] == [] and tl["lookups"] == []


def test_open_loop_latency_runs_from_the_intended_start(tmp_path: Path) -> None:
    """A generator that fell behind: each lookup started 40 ms after its slot and took 2 ms in Go. Open-loop
    figures count the wait (no coordinated omission); Go's own figure stays beside them."""
    from dnsprobe.analyse.figures import summarise_mode
    from dnsprobe.load.records import RecordWriter
    from dnsprobe.scenario import Workload

    path = tmp_path / "records.sqlite"
    slot = 1_000_000_000_000
    rows = [
        (
            "r",
            "go",
            "w",
            "host",
            f"{i}.web",
            slot + i * 10**6,
            slot + i * 10**6 + 40 * 10**6,
            2 * 10**6,
            "ok",
            "",
            1,
        )
        for i in range(200)
    ]
    with RecordWriter(path) as writer:
        writer.append(rows)
    summarise = functools.partial(
        summarise_mode,
        records_path=path,
        mode="go",
        workloads=[Workload(label="w", query="{rand}.web")],
        search=[],
        querylog=None,
        trace=None,
    )
    open_loop = summarise(open_loop=True)
    assert open_loop["latency_from"] == "intended_start"
    assert open_loop["latency_ms"]["p50"] == pytest.approx(42.0)
    assert open_loop["latency_from_start_ms"]["p50"] == pytest.approx(2.0)
    closed = summarise()
    assert closed["latency_from"] == "start"
    assert closed["latency_ms"]["p50"] == pytest.approx(2.0)
    assert "latency_from_start_ms" not in closed


def test_search_walk_after_a_change_is_read_from_the_query_log() -> None:
    from dnsprobe.analyse.figures import search_walk_after
    from dnsprobe.nameserver.querylog import HEADER
    from dnsprobe.scenario import Workload

    def line(when: float, name: str) -> str:
        return f"{when:.6f}\tudp\t127.0.0.1\t5353\t1\t{name}\tA\t-\t-\tNXDOMAIN\n"

    name = "0123456789abcdef.api.example.test"
    log = [
        HEADER + "\n",
        line(99.0, f"{name}.svc.cluster.local."),  # before the change
        line(101.5, f"{name}.cluster.local."),  # still walking 1.5 s after it
        line(102.0, f"{name}."),  # the name as given: not a walk
        line(103.0, "other.example.test.cluster.local."),  # not this workload
    ]
    workloads = [Workload(label="x", query="{rand}.api.example.test")]
    search = ["svc.cluster.local", "cluster.local"]
    assert search_walk_after(log, workloads, search, [100.0, 101.6]) == [pytest.approx(1.5), 0.0]
    absolute = [Workload(label="x", query="{rand}.api.example.test.")]
    assert search_walk_after(log, absolute, search, [98.0]) == [0.0]


def test_wire_view_counts_a_query_log() -> None:
    from collections import Counter

    from dnsprobe.analyse.timeline import read_wire_view
    from dnsprobe.codec.names import workload_pattern
    from dnsprobe.nameserver.querylog import HEADER

    name = "0123456789abcdef.api.example.test"
    log = [
        HEADER + "\n",
        f"1.0\tudp\t127.0.0.1\t5000\t1\t{name}.cluster.local.\tA\t-\t-\tNXDOMAIN\n",
        f"1.1\tudp\t127.0.0.1\t5000\t2\t{name.upper()}.\tAAAA\t1232\tdrop-aaaa\tdrop\n",
        f"1.2\ttcp\t127.0.0.1\t5001\t3\t{name}.\tAAAA\t-\t-\tNOERROR\n",
        "1.3\tudp\t127.0.0.1\t5002\t-\t-\t-\t-\t-\tformerr\n",
        "1.4\tudp\t127.0.0.1\t50",  # cut by a crash: not counted
    ]
    wire = read_wire_view(log, [("ext", workload_pattern("{rand}.api.example.test", ["cluster.local"]))])
    assert wire.queries == 4
    assert wire.per_workload == Counter(ext=3)
    assert wire.rcodes == Counter(NXDOMAIN=1, drop=1, NOERROR=1, formerr=1)
    assert wire.qtypes == Counter(A=1, AAAA=2, **{"-": 1})
    assert wire.protos == Counter(udp=3, tcp=1)
    assert wire.faults == Counter({"drop-aaaa": 1})
    assert wire.source_ports == 3
