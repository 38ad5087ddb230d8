"""The probe's OS thread count: read from /proc, sampled during the load, summarised, judged and charted.

The pod test runs real probes (go and cgo) against a nameserver that delays every answer, with hundreds
of lookups in flight: the cgo probe holds a thread per lookup (up to Go's 500-call cap), Go's does not.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from dnsprobe.analyse.timeline import Columns, build_timeline, thread_series
from dnsprobe.build.probe import build_probe
from dnsprobe.judge.expectations import judge
from dnsprobe.load.threads import ThreadSampler, parse_threads, probe_host_pid, read_samples, read_threads
from dnsprobe.modes import MODES
from dnsprobe.nameserver.group import server_addresses
from dnsprobe.probe_client import ProbeClient
from dnsprobe.report.common import chart_titles
from dnsprobe.report.timecharts import threads_figure, workload_p99_over_time_figure
from dnsprobe.sandbox import Pod, render_pod_files
from dnsprobe.scenario import Behaviour
from dnsprobe.scenario import Nameserver as NameserverSpec
from dnsprobe.scenario import Pod as PodSpec

STATUS = """Name:\tprobe
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
NSpid:\t4242\t7
Threads:\t507
SigQ:\t0/63471
"""


def test_parse_threads_reads_the_threads_line() -> None:
    assert parse_threads(STATUS.splitlines()) == 507
    assert parse_threads(["Name:\tprobe", "Threads:\tmany"]) is None
    assert parse_threads(["Name:\tprobe"]) is None


def test_read_threads_counts_this_process_threads() -> None:
    before = read_threads(os.getpid())
    assert before is not None and before >= 1
    stop = threading.Event()
    extra = [threading.Thread(target=stop.wait) for _ in range(5)]
    for t in extra:
        t.start()
    try:
        during = read_threads(os.getpid())
        assert during is not None and during >= before + 5
    finally:
        stop.set()
        for t in extra:
            t.join()
    assert read_threads(2**22 + 12345) is None  # above pid_max: no such process


def test_only_a_translated_pid_is_sampled() -> None:
    assert probe_host_pid({"pid": 4242, "pod_pid": 7}) == 4242
    assert probe_host_pid({"pid": 7}) is None  # the pod's own pid: not ours to read
    assert probe_host_pid({"pid": True, "pod_pid": 1}) is None
    assert probe_host_pid({}) is None


def test_thread_series_counts_from_the_first_lookup() -> None:
    samples = [(10_500_000_000, 7), (11_500_000_000, 506), (12_500_000_000, 507)]
    series = thread_series(samples, t0_ns=11_000_000_000)
    assert series is not None
    assert series["peak"] == 507
    assert series["at_s"] == [-0.5, 0.5, 1.5]
    assert series["count"] == [7, 506, 507]
    assert thread_series([], 0) is None


def test_peak_threads_behaviour_band() -> None:
    behaviour = Behaviour(modes=["cgo"], peak_threads=[300, 1000], why="cap")
    mode: dict[str, Any] = {"status": "ran", "workloads": [], "threads": {"peak": 507}}
    assert judge(behaviour, mode) == (True, "peak OS threads 507 (within 300–1000)")
    mode["threads"] = {"peak": 8}
    assert judge(behaviour, mode)[0] is False
    mode["threads"] = None
    passed, detail = judge(behaviour, mode)
    assert not passed and "nothing measured" in detail


ZONE = (
    "$TTL 30\n"
    "example.test. SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 30\n"
    "*.slow.example.test. A 192.0.2.10\n"
)


def _sample_under_slow_load(
    tmp_path: Path, probe_cache: Path, mode: str
) -> tuple[list[tuple[int, int]], int]:
    """(samples, host pid) of a probe with 300 lookups in flight, each answered after 2 s."""
    binary = build_probe(MODES[mode], cache_dir=probe_cache).path
    spec = NameserverSpec.model_validate(
        {"zone": ZONE, "faults": [{"action": "delay", "name": "*.slow.example.test", "delay_ms": 2000}]}
    )
    files = render_pod_files(
        PodSpec(search=[], ndots=1, timeout=5, attempts=1),
        hostname="probe",
        nameservers=server_addresses(spec),
    )
    socket_dir = tmp_path / "s"
    socket_dir.mkdir(parents=True)
    pod = Pod(
        mode=mode,
        binary=binary,
        files=files,
        zone_text=spec.zone,
        workdir=tmp_path / mode,
        socket_dir=socket_dir,
        godebug=MODES[mode].godebug,
        nameserver=spec,
    )
    records = tmp_path / "records.sqlite"
    with pod:
        pid = probe_host_pid(pod.info)
        assert pid is not None, pod.info
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"-listen" in cmdline  # the probe itself, not the pod's init or the harness
        with ThreadSampler(records, run="t", mode=mode, pid=pid, interval_s=0.5) as sampler:
            client = ProbeClient(pod.address, timeout=60)
            try:
                results = client.batch(
                    kind="host",
                    name="{rand}.slow.example.test.",
                    count=300,
                    concurrency=300,
                    timeout_ms=20_000,
                )
            finally:
                client.close()
            time.sleep(0.6)  # one more sample after the lookups
        assert sum(r.outcome == "ok" for r in results) >= 290
    assert read_samples(records, mode) == sampler.samples
    return sampler.samples, pid


def test_sampler_sees_cgo_threads_pile_up_and_go_stay_few(tmp_path: Path, probe_cache: Path) -> None:
    go, _ = _sample_under_slow_load(tmp_path / "go", probe_cache, "go")
    cgo, _ = _sample_under_slow_load(tmp_path / "cgo", probe_cache, "cgo")
    assert len(go) >= 4 and len(cgo) >= 4  # 2 s of lookups at 0.5 s: one at start, several, one at stop
    assert [at for at, _ in go] == sorted(at for at, _ in go)
    go_peak, cgo_peak = max(n for _, n in go), max(n for _, n in cgo)
    assert go_peak < 60, go
    assert cgo_peak >= 200, cgo  # a thread per lookup in getaddrinfo
    assert cgo_peak <= 600, cgo  # ... up to Go's cap of 500 cgo calls, plus the runtime's own


def _columns() -> Columns:
    """Two workloads over 4 s: `slow` takes 3 s, `fast` 5 ms, except in second 2 where it takes 2 s."""
    rng = np.random.default_rng(3)
    n = 4000
    start = np.sort(rng.integers(0, 4_000_000_000, n)).astype(np.int64)
    workload = (rng.random(n) < 0.5).astype(np.int16)  # 0 fast, 1 slow
    latency = np.where(workload == 1, 3_000_000_000, 5_000_000).astype(np.int64)
    queued = (workload == 0) & (start >= 2_000_000_000) & (start < 3_000_000_000)
    latency[queued] = 2_000_000_000
    return Columns(start, latency, np.zeros(n, np.int8), workload, ("fast", "slow"))


def test_workload_p99_over_time_is_each_workloads_own() -> None:
    cols = _columns()
    tl = build_timeline(cols, max_bins=4)
    assert tl["bin_s"] == 1.0
    bins = (cols.start_ns // 1_000_000_000).astype(np.int64)
    for index, label in enumerate(cols.workloads):
        for b in range(4):
            mask = (cols.workload == index) & (bins == b)
            expected = float(np.percentile(cols.latency_ns[mask] / 1e6, 99))
            assert tl["p99_by_workload"][label][b] == pytest.approx(expected, rel=1e-3)
    assert tl["p99_by_workload"]["fast"][2] == pytest.approx(2000)  # queued behind the slow names
    assert tl["p99_by_workload"]["fast"][1] == pytest.approx(5)


def _summary() -> dict[str, Any]:
    tl = build_timeline(_columns(), max_bins=4)
    return {
        "run_id": "t",
        "scenario": "33-cgo-thread-cap",
        "finished": True,
        "modes": [
            {
                "mode": "go",
                "status": "ran",
                "lookups": 4000,
                "timeline": tl,
                "threads": {"peak": 8, "at_s": [0.0, 1.0, 2.0], "count": [6, 8, 8]},
            },
            {
                "mode": "cgo",
                "status": "ran",
                "lookups": 4000,
                "timeline": tl,
                "threads": {"peak": 507, "at_s": [0.0, 1.0, 2.0], "count": [7, 506, 507]},
            },
            {"mode": "musl", "status": "skipped", "reason": "no musl-gcc", "lookups": 0},
        ],
    }


def test_threads_chart_plots_the_samples() -> None:
    summary = _summary()
    fig = threads_figure(summary)
    lines = {line.get_gid(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"go", "cgo"}
    assert list(np.asarray(lines["cgo"].get_xdata())) == [0.0, 1.0, 2.0]
    assert list(np.asarray(lines["cgo"].get_ydata())) == [7, 506, 507]
    assert list(np.asarray(lines["go"].get_ydata())) == [6, 8, 8]
    assert chart_titles(summary)["threads"][0] == "Peak OS threads: cgo 507, go 8"
    summary["modes"] = [{k: v for k, v in m.items() if k != "threads"} for m in summary["modes"]]
    empty = threads_figure(summary)
    assert not empty.axes[0].get_lines()
    assert "no thread samples" in " ".join(t.get_text() for t in empty.axes[0].texts)


def test_workload_p99_chart_draws_a_line_per_workload_per_mode() -> None:
    summary = _summary()
    fig = workload_p99_over_time_figure(summary)
    go_axes, cgo_axes, musl_axes = fig.axes[:3]
    lines = {line.get_gid(): line for ax in (go_axes, cgo_axes) for line in ax.get_lines()}
    tl = summary["modes"][0]["timeline"]
    for mode in ("go", "cgo"):
        for label in ("fast", "slow"):
            assert list(np.asarray(lines[f"{mode}:{label}"].get_ydata())) == tl["p99_by_workload"][label]
            assert list(np.asarray(lines[f"{mode}:{label}"].get_xdata())) == tl["start_s"]
    assert "skipped" in " ".join(t.get_text() for t in musl_axes.texts)
    assert chart_titles(summary)["workload_p99_over_time"][0].startswith(
        "Worst p99 of one workload: go `slow`"
    )


@pytest.mark.docker
def test_a_docker_cell_samples_its_probe(tmp_path: Path, probe_cache: Path) -> None:
    """On the docker backend the probe is the container's first process: the container's host pid."""
    from dnsprobe.dockerengine import connect
    from dnsprobe.errors import DockerError
    from dnsprobe.sandbox.docker import DockerPod, build_probe_image
    from dnsprobe.sandbox.standins import ensure_standins

    try:
        engine = connect(timeout=30)
    except DockerError as exc:
        pytest.skip(str(exc))
    try:
        standins = ensure_standins(engine, ["debian-slim"])
        binary = build_probe(MODES["go"], cache_dir=probe_cache).path
        tag = build_probe_image(
            engine, binary=binary, base_tag=standins["debian-slim"].tag, mode="go", base="debian-slim"
        )
    finally:
        engine.close()
    socket_dir = tmp_path / "s"
    socket_dir.mkdir()
    pod = DockerPod(
        mode="go",
        image=tag,
        files=render_pod_files(PodSpec(), hostname="probe", nameservers=["127.0.0.1"]),
        zone_text=ZONE,
        workdir=tmp_path / "go",
        socket_dir=socket_dir,
        godebug=MODES["go"].godebug,
    )
    pod.start()
    try:
        pid = probe_host_pid(pod.info)
        assert pid is not None and pod.info["pod_pid"] == 1, pod.info
        assert b"-listen" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        with ThreadSampler(tmp_path / "records.sqlite", run="t", mode="go", pid=pid, interval_s=0.2) as s:
            time.sleep(0.5)
        assert s.samples and all(1 <= n < 60 for _, n in s.samples), s.samples
    finally:
        pod.stop()


def test_a_records_file_that_cannot_be_written_leaves_the_samples_in_memory(tmp_path: Path) -> None:
    """A full disk or a broken records path must not kill the sampler with a traceback: it keeps
    sampling into memory and says why it stopped writing (the run's own writer reports the disk)."""
    (tmp_path / "not-a-dir").write_text("")
    sampler = ThreadSampler(tmp_path / "not-a-dir" / "records.sqlite", run="r", mode="go", pid=os.getpid())
    with sampler:
        time.sleep(0.05)
    assert sampler.error and len(sampler.samples) >= 2
    assert all(n >= 1 for _, n in sampler.samples)


@pytest.mark.parametrize("unfinished", [False, True])
def test_a_time_charts_title_subtitle_and_panels_do_not_overlap(unfinished: bool) -> None:
    """The bold finding, the subtitle under it (wrapped, with the unfinished-run note) and the plots are
    stacked without overlapping, and the subtitle stays inside the figure."""
    summary = _summary()
    if unfinished:
        summary["interrupted"] = True
    for fig in (threads_figure(summary), workload_p99_over_time_figure(summary)):
        canvas = FigureCanvasAgg(fig)
        canvas.draw()  # type: ignore[no-untyped-call]
        renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
        title = getattr(fig, "_suptitle", None)  # the figure's own title, as the layout placed it
        assert title is not None
        subtitle = next(t for t in fig.texts if t is not title and t.get_text())
        title_box, sub_box = title.get_window_extent(renderer), subtitle.get_window_extent(renderer)
        blank_lines = title.get_text().count("\n")
        first_line_bottom = title_box.y1 - title_box.height / (blank_lines + 1)
        assert sub_box.y1 <= first_line_bottom + 1
        assert sub_box.x1 <= fig.bbox.width
        assert ("unfinished run" in subtitle.get_text().replace("\n", " ")) is unfinished
        for ax in fig.axes:
            box = ax.get_tightbbox(renderer)
            assert box is not None and box.y1 <= sub_box.y0 + 1, ax.get_title()
