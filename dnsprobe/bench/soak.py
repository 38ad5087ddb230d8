"""`dnsprobe bench soak`: an hour of one mode at 10,000 lookups/s and 5 wire queries per lookup, through
the real writers, then the full report from what is on disk.

Synthetic, like `bench report`: the lookups (lognormal latency around 2 ms, 0.5% failures, a few timeouts)
go in batches of 200 through `RollupWriter` with `keep_records = "sample"`; every wire query goes through
the nameserver's `QueryLog` writer, and the `LogCompactor` with its `WireCounter` takes the log every two
seconds, as in a run. Time is simulated (each writer gets the simulated clock), so an hour takes as long
as the writers need, not an hour. Then a fresh child process builds the report (analysis from the rollups
and the wire totals, checks, rules, charts, HTML, Markdown, JUnit), timed from spawn to exit, its peak RSS
read with getrusage.

Prints bytes on disk per hour (extrapolated from `--seconds` when shorter: storage grows linearly with
time), the largest the run directory got, the report's seconds and peak memory, and `ratio:` = 60 s /
the report's seconds. Targets: < 1 GB per hour, report < 60 s, < 1 GiB.
"""

from __future__ import annotations

import multiprocessing
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from dnsprobe.errors import DnsProbeError

TARGET_REPORT_S: Final = 60.0
TARGET_BYTES_PER_HOUR: Final = 1_000_000_000
TARGET_MEMORY: Final = 1 << 30
BATCH: Final = 200
MODE: Final = "go"
SEARCH: Final = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
RESOLV: Final = (
    "search default.svc.cluster.local svc.cluster.local cluster.local\n"
    "nameserver 127.0.0.1\noptions ndots:5 timeout:1 attempts:2\n"
)
ZONE: Final = "$TTL 30\nexample.test. SOA ns.example.test. h.example.test. 1 7200 1800 86400 30\n"
T0_S: Final = 1_800_000_000


def _wire_name(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".") if p) + b"\x00"


# A lookup of {rand}.api.example.test with ndots:5: two search domains answer NXDOMAIN for A and AAAA,
# then the name itself answers A. Five wire queries.
_QUERIES: Final = (
    (_wire_name("api.example.test.default.svc.cluster.local"), 1, "NXDOMAIN"),
    (_wire_name("api.example.test.default.svc.cluster.local"), 28, "NXDOMAIN"),
    (_wire_name("api.example.test.svc.cluster.local"), 1, "NXDOMAIN"),
    (_wire_name("api.example.test.svc.cluster.local"), 28, "NXDOMAIN"),
    (_wire_name("api.example.test"), 1, "NOERROR"),
)


@dataclass(frozen=True)
class SoakResult:
    seconds: float
    lookups: int
    wire_queries: int
    generate_s: float
    disk_bytes: int
    peak_disk_bytes: int
    report_s: float
    report_peak_bytes: int

    @property
    def bytes_per_hour(self) -> float:
        return self.disk_bytes * 3600.0 / self.seconds

    @property
    def ratio(self) -> float:
        return TARGET_REPORT_S / self.report_s if self.report_s > 0 else 0.0


def _scenario_data() -> dict[str, Any]:
    return {
        "name": "bench-soak",
        "modes": [MODE],
        "pod": {"search": list(SEARCH), "ndots": 5, "timeout": 1, "attempts": 2},
        "nameserver": {"zone": ZONE},
        "load": {
            "workloads": [{"label": "external", "query": "{rand}.api.example.test"}],
            "keep_records": "sample",
            "duration": "1h",
        },
        "expect": {"max_error_rate": 0.05},
    }


def generate(
    run_dir: Path,
    seconds: int,
    rate: int,
    *,
    seed: int = 11,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int, int]:
    """Write `seconds` of lookups and their wire queries through the real writers;
    returns (lookups, wire queries, largest run directory size on disk seen)."""
    from dnsprobe.analyse.wire_rollup import WireCounter
    from dnsprobe.codec.names import workload_pattern
    from dnsprobe.load.live import disk_usage
    from dnsprobe.load.rollups import RollupWriter
    from dnsprobe.nameserver.logstore import LogCompactor
    from dnsprobe.nameserver.querylog import QueryLog

    rng = np.random.default_rng(seed)
    records_path = run_dir / "records.sqlite"
    pod = run_dir / "pods" / MODE
    pod.mkdir(parents=True)
    querylog_path = pod / "queries.tsv"
    (pod / "probe.stderr").write_text("go package net: using the Go DNS resolver\n")
    now = [float(T0_S)]
    clock = lambda: now[0]  # noqa: E731 - the simulated clock both writers read
    writer = RollupWriter(records_path, keep="sample", clock=clock)
    log = QueryLog(querylog_path, clock=clock)
    counter = WireCounter(
        records_path, MODE, [("external", workload_pattern("{rand}.api.example.test", SEARCH))]
    )

    def on_step(chunk: bytes, covered: int, zst_size: int) -> None:
        counter.count(chunk)
        counter.save(covered, zst_size)

    compactor = LogCompactor(querylog_path, on_step=on_step)
    outcomes = np.array(["ok", "not_found", "timeout", "temporary"])
    lookups = wire = peak = 0
    batches = max(1, rate // BATCH)
    record = log.record
    try:
        for second in range(seconds):
            for b in range(batches):
                base_ns = (T0_S + second) * 10**9 + b * (10**9 // batches)
                start = base_ns + np.sort(rng.integers(0, 10**9 // batches, BATCH))
                latency = rng.lognormal(np.log(2e6), 0.5, BATCH).astype(np.int64)
                pick = rng.random(BATCH)
                outcome = np.zeros(BATCH, np.int64)
                outcome[pick < 0.003] = 1
                outcome[(pick >= 0.003) & (pick < 0.004)] = 2
                outcome[(pick >= 0.004) & (pick < 0.005)] = 3
                latency[outcome == 2] = 2_000_000_000 + latency[outcome == 2]
                labels = [f"{v:016x}" for v in rng.integers(0, 2**62, BATCH).tolist()]
                now[0] = base_ns / 1e9
                writer.append(
                    ("bench", MODE, "external", "host", f"{label}.api.example.test", s, s, lat, str(o), "", 1)
                    for label, s, lat, o in zip(
                        labels, start.tolist(), latency.tolist(), outcomes[outcome].tolist(), strict=True
                    )
                )
                port = 30000 + b
                for i, label in enumerate(labels):
                    head = b"\x10" + label.encode()
                    client = ("127.0.0.1", port + i)
                    for qname, qtype, rcode in _QUERIES:
                        record("udp", client, i, head + qname, qtype, 1232, None, rcode)
                lookups += BATCH
                wire += BATCH * len(_QUERIES)
            now[0] = T0_S + second + 1.0
            log.flush()
            if second % 2 == 1:
                compactor.step()
            if second % 60 == 59:
                peak = max(peak, disk_usage(run_dir))
                if progress is not None:
                    progress(second + 1)
    finally:
        writer.close()
        log.close()
        compactor.finish()
    return lookups, wire, max(peak, disk_usage(run_dir))


def build_report(run_dir: Path) -> None:
    """What the pipeline does after the load: analysis, checks, rules, all report files."""
    from dnsprobe.analyse import figures as analysis
    from dnsprobe.results import write_run_files
    from dnsprobe.scenario import parse_scenario

    scenario = parse_scenario(_scenario_data(), source="bench")
    summary: dict[str, Any] = {
        "run_id": run_dir.name,
        "scenario": scenario.name,
        "started_at": "2027-01-15T08:00:00+00:00",
        "finished_at": "2027-01-15T09:00:00+00:00",
        "finished": True,
        "interrupted": False,
        "quick": False,
        "pod": {"resolv_conf": RESOLV, "nsswitch": "hosts: files dns\n", "hosts": "", "env": {}},
        "modes": [],
        "checks": [],
    }
    pod = run_dir / "pods" / MODE
    entry: dict[str, Any] = {
        "mode": MODE,
        "status": "ran",
        "reason": None,
        "expected_resolver": "go",
        "binary": {"libc": None},
    }
    entry.update(
        analysis.summarise_mode(
            records_path=run_dir / "records.sqlite",
            mode=MODE,
            workloads=scenario.load.workloads,
            search=scenario.pod.search,
            querylog=pod / "queries.tsv",
            trace=pod / "probe.stderr",
            resolv_conf=RESOLV,
        )
    )
    summary["modes"].append(entry)
    write_run_files(scenario, summary, run_dir)  # judged and written as `dnsprobe run` does


def run_soak_bench(
    seconds: int = 3600,
    rate: int = 10_000,
    keep: Path | None = None,
    report: Callable[[str], None] = print,
) -> SoakResult:
    from dnsprobe.load.live import disk_usage

    if seconds < 2 or rate < BATCH:
        raise DnsProbeError(f"bench soak: give --seconds >= 2 and --rate >= {BATCH} (got {seconds}, {rate})")
    base = Path(tempfile.mkdtemp(prefix="dnsprobe-bench-soak-"))
    run_dir = base / "bench-soak"
    run_dir.mkdir()
    try:
        started = time.perf_counter()
        lookups, wire, peak_disk = generate(
            run_dir,
            seconds,
            rate,
            progress=lambda s: report(
                f"  {s:,} of {seconds:,} simulated seconds ({time.perf_counter() - started:.0f} s)"
            ),
        )
        generated = time.perf_counter() - started
        disk = disk_usage(run_dir)
        report(
            f"generated {seconds:,} s: {lookups:,} lookups, {wire:,} wire queries in {generated:.0f} s; "
            f"on disk {disk / 1e6:,.1f} MB (largest seen {peak_disk / 1e6:,.1f} MB)"
        )
        for name in ("records.sqlite", "records.sqlite-wal", "pods/go/queries.tsv.zst"):
            path = run_dir / name
            if path.exists():
                report(f"  {name}: {path.stat().st_blocks * 512 / 1e6:,.1f} MB")
        child = multiprocessing.get_context("spawn").Process(target=build_report, args=(run_dir,))
        started = time.perf_counter()
        child.start()
        child.join()
        built = time.perf_counter() - started
        if child.exitcode != 0:
            raise DnsProbeError(
                f"bench soak: building the report failed (exit {child.exitcode}) in {run_dir}"
            )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        for name in ("summary.json", "report.html", "report.md", "junit.xml"):
            if not (run_dir / name).is_file():
                raise DnsProbeError(f"bench soak: {name} was not written in {run_dir}")
        result = SoakResult(seconds, lookups, wire, generated, disk, peak_disk, built, peak)
        scale = "" if seconds >= 3600 else f" (extrapolated from {seconds:,} s)"
        report(
            f"bytes per hour of one mode: {result.bytes_per_hour / 1e6:,.0f} MB{scale} "
            f"(target < {TARGET_BYTES_PER_HOUR / 1e6:,.0f} MB)"
        )
        report(
            f"report built in {built:.2f} s (target {TARGET_REPORT_S:g} s), "
            f"peak memory {peak / 2**20:,.0f} MiB (target {TARGET_MEMORY / 2**20:,.0f} MiB)"
            + ("" if seconds >= 3600 else f"; from {seconds:,} s of data, not an hour")
        )
        if keep is not None:
            shutil.copytree(run_dir, keep / run_dir.name, dirs_exist_ok=True)
            report(f"kept: {keep / run_dir.name}")
        return result
    finally:
        shutil.rmtree(base, ignore_errors=True)
