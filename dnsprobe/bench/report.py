"""`dnsprobe bench report`: build the whole report from a million synthetic lookup records.

The records go into a temp run directory (records.sqlite, a small query log, a trace per mode); then a
fresh child process does what the pipeline does after the load: summarise every mode from the records,
evaluate the checks, run the rules, write summary.json, junit.xml, the charts, report.html and report.md.
The child is timed from spawn to exit (imports included) and its peak RSS read with getrusage, so the
generator's own memory does not count. Target: <= 10 s and <= 1 GiB; `ratio` = 10 s / measured.
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

TARGET_S: Final = 10.0
TARGET_BYTES: Final = 1 << 30
MODES: Final = ("go", "cgo", "musl", "godebug-go", "godebug-cgo")
WORKLOADS: Final = (("service", "{rand}.web"), ("external", "{rand}.api.example.test"))
SEARCH: Final = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
RESOLV: Final = (
    "search default.svc.cluster.local svc.cluster.local cluster.local\n"
    "nameserver 127.0.0.1\noptions ndots:5 timeout:1 attempts:2\n"
)
ZONE: Final = "$TTL 30\nexample.test. SOA ns.example.test. h.example.test. 1 7200 1800 86400 30\n"
QUERYLOG_LOOKUPS: Final = 5_000  # per mode: the log's size does not grow with the records here


@dataclass(frozen=True)
class BenchResult:
    records: int
    generate_s: float
    build_s: float
    peak_bytes: int

    @property
    def ratio(self) -> float:
        return TARGET_S / self.build_s if self.build_s > 0 else 0.0


def _scenario_data() -> dict[str, Any]:
    return {
        "name": "bench-report",
        "modes": list(MODES),
        "pod": {"search": list(SEARCH), "ndots": 5, "timeout": 1, "attempts": 2},
        "nameserver": {"zone": ZONE},
        "load": {"workloads": [{"label": label, "query": query} for label, query in WORKLOADS]},
        "expect": {"max_error_rate": 0.05, "modes": {"musl": {"max_p99_ms": 500}}},
    }


def generate_run(run_dir: Path, records: int, seed: int = 5) -> None:
    """Synthetic lookups: lognormal latency, a musl mode that waits out 1 s timeouts, a few failures."""
    from dnsprobe.load import records as store
    from dnsprobe.vocabulary import OUTCOMES

    rng = np.random.default_rng(seed)
    per_mode = records // len(MODES)
    t0 = 1_800_000_000 * 10**9
    outcomes = np.array(OUTCOMES)
    with store.RecordWriter(run_dir / "records.sqlite") as writer:
        for index, mode in enumerate(MODES):
            n = per_mode + (records - per_mode * len(MODES) if index == 0 else 0)
            start = t0 + index * 70 * 10**9 + np.sort(rng.integers(0, 60 * 10**9, n))
            latency = (rng.lognormal(np.log(2e6 * (1 + index)), 0.6, n)).astype(np.int64)
            outcome = np.zeros(n, np.int64)
            fail = rng.random(n)
            outcome[fail < 0.002] = 1  # not_found
            if mode == "musl":
                waited = fail > 0.9
                latency[waited] = 1e9 * rng.choice([1, 2], int(waited.sum())) + rng.integers(
                    0, 5_000_000, int(waited.sum())
                )
                outcome[waited & (fail > 0.97)] = 2  # timeout
            workload = np.array([w for w, _ in WORKLOADS])[rng.integers(0, len(WORKLOADS), n)]
            names = [f"{i:016x}" for i in rng.integers(0, 2**62, n)]
            for lo in range(0, n, 100_000):
                hi = min(n, lo + 100_000)
                writer.append(
                    (
                        "bench",
                        mode,
                        str(workload[i]),
                        "host",
                        names[i],
                        int(start[i]),
                        int(start[i]),
                        int(latency[i]),
                        str(outcomes[outcome[i]]),
                        "",
                        1 if outcome[i] == 0 else 0,
                    )
                    for i in range(lo, hi)
                )
            pod = run_dir / "pods" / mode
            pod.mkdir(parents=True)
            _write_querylog(pod / "queries.tsv", names[:QUERYLOG_LOOKUPS], start[0] / 1e9)
            resolver = "go" if mode in ("go", "godebug-go") else "cgo"
            (pod / "probe.stderr").write_text(
                f"go package net: using the {'Go' if resolver == 'go' else 'cgo'} DNS resolver\n"
            )


def _write_querylog(path: Path, labels: list[str], when: float) -> None:
    from dnsprobe.nameserver.querylog import HEADER

    lines = [HEADER]
    for i, label in enumerate(labels):
        for suffix in (*SEARCH, ""):
            name = f"{label}.api.example.test.{suffix + '.' if suffix else ''}"
            for qtype in ("A", "AAAA"):
                rcode = "NOERROR" if not suffix else "NXDOMAIN"
                lines.append(
                    f"{when + i / 1e3:.6f}\tudp\t127.0.0.1\t{30000 + i % 20000}\t1\t{name}\t{qtype}\t"
                    f"1232\t-\t{rcode}"
                )
    path.write_text("\n".join(lines) + "\n")


def build_report(run_dir: Path) -> None:
    """What the pipeline does after the load, for every mode: analysis, checks, rules, all report files."""
    from dnsprobe.analyse import figures as analysis
    from dnsprobe.results import write_run_files
    from dnsprobe.scenario import parse_scenario

    scenario = parse_scenario(_scenario_data(), source="bench")
    summary: dict[str, Any] = {
        "run_id": run_dir.name,
        "scenario": scenario.name,
        "started_at": "2027-01-15T08:00:00+00:00",
        "finished_at": "2027-01-15T08:06:00+00:00",
        "finished": True,
        "interrupted": False,
        "quick": False,
        "pod": {"resolv_conf": RESOLV, "nsswitch": "hosts: files dns\n", "hosts": "", "env": {}},
        "modes": [],
        "checks": [],
    }
    for mode in MODES:
        pod = run_dir / "pods" / mode
        entry: dict[str, Any] = {
            "mode": mode,
            "status": "ran",
            "reason": None,
            "expected_resolver": "go" if mode in ("go", "godebug-go") else "cgo",
            "binary": {"libc": "musl" if mode == "musl" else None},
        }
        entry.update(
            analysis.summarise_mode(
                records_path=run_dir / "records.sqlite",
                mode=mode,
                workloads=scenario.load.workloads,
                search=scenario.pod.search,
                querylog=pod / "queries.tsv",
                trace=pod / "probe.stderr",
                resolv_conf=RESOLV,
            )
        )
        summary["modes"].append(entry)
    write_run_files(scenario, summary, run_dir)  # judged and written as `dnsprobe run` does


def run_bench(
    records: int = 1_000_000, keep: Path | None = None, report: Callable[[str], None] = print
) -> BenchResult:
    if records < len(MODES):
        raise DnsProbeError(f"--records {records}: give at least {len(MODES)} (one per mode)")
    base = Path(tempfile.mkdtemp(prefix="dnsprobe-bench-report-"))
    run_dir = base / "bench-report"
    run_dir.mkdir()
    try:
        started = time.perf_counter()
        generate_run(run_dir, records)
        generated = time.perf_counter() - started
        report(f"generated {records:,} records in {generated:.1f} s ({run_dir})")
        child = multiprocessing.get_context("spawn").Process(target=build_report, args=(run_dir,))
        started = time.perf_counter()
        child.start()
        child.join()
        built = time.perf_counter() - started
        if child.exitcode != 0:
            raise DnsProbeError(
                f"bench report: building the report failed (exit {child.exitcode}) in {run_dir}"
            )
        # ru_maxrss is KiB on Linux, and the largest of the waited-for children: only the builder here.
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        for name in ("summary.json", "report.html", "report.md", "junit.xml"):
            if not (run_dir / name).is_file():
                raise DnsProbeError(f"bench report: {name} was not written in {run_dir}")
        report(
            f"report built from {records:,} records in {built:.2f} s (target {TARGET_S:g} s), "
            f"peak memory {peak / 2**20:,.0f} MiB (target {TARGET_BYTES / 2**20:,.0f} MiB)"
        )
        if keep is not None:
            shutil.copytree(run_dir, keep / run_dir.name, dirs_exist_ok=True)
            report(f"kept: {keep / run_dir.name}")
        return BenchResult(records, generated, built, peak)
    finally:
        shutil.rmtree(base, ignore_errors=True)
