"""`dnsprobe bench fidelity`: does the harness measure DNS, or itself?

One pod (one probe binary, its embedded nameserver, the same GODEBUG trace), one concurrency, alternated
rounds of:

- the bare loop: the probe's own POST /loop, N goroutines looking up fresh names back to back for T
  seconds, timed in Go; nothing of the harness runs meanwhile;
- the harness: Locust (the same locustfile `dnsprobe run` uses) with U users, each asking for batches with
  N/U lookups in flight, for T seconds; every lookup reported to Locust and appended to a records file.
  Its rate is the records' count over their span (first start to last end), latencies are Go's.

The ratio is the harness's lookups/s over the bare loop's (totals over all rounds); the target is >= 0.9
with the p50s within 10%. The records file's append rate is measured too (target >= 100k rows/s).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dnsprobe.build.probe import build_probe
from dnsprobe.errors import DnsProbeError
from dnsprobe.load import records
from dnsprobe.load.runner import locust_argv, run_load
from dnsprobe.modes import MODES
from dnsprobe.probe_client import ProbeClient
from dnsprobe.sandbox import Pod, check_namespaces, render_pod_files
from dnsprobe.sandbox.pod import NAMESERVER_ADDRESS
from dnsprobe.scenario import Load, Workload
from dnsprobe.scenario import Pod as PodSpec

# The quickstart's pod and zone: an in-cluster name, completed by the first search domain (2 wire queries).
ZONE = """$TTL 30
cluster.local.                  SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30
*.web.default.svc.cluster.local. A    10.96.0.10
*.web.default.svc.cluster.local. AAAA fd00:10:96::10
example.test.                   SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 30
*.api.example.test.             A     192.0.2.10
*.api.example.test.             AAAA  2001:db8::10
"""
DEFAULT_QUERY = "{rand}.web"


@dataclass(frozen=True)
class Side:
    """One measurement: lookups, over how long, and Go-measured latency percentiles (ms)."""

    lookups: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int

    @property
    def rate(self) -> float:
        return self.lookups / self.seconds if self.seconds > 0 else 0.0


@dataclass
class FidelityResult:
    loops: list[Side] = field(default_factory=list)
    harness: list[Side] = field(default_factory=list)
    record_rate: float = 0.0

    @property
    def ratio(self) -> float:
        loop = sum(s.lookups for s in self.loops) / max(1e-9, sum(s.seconds for s in self.loops))
        harness = sum(s.lookups for s in self.harness) / max(1e-9, sum(s.seconds for s in self.harness))
        return harness / loop if loop else 0.0

    @staticmethod
    def median(sides: list[Side], key: Callable[[Side], float]) -> float:
        return float(np.median([key(s) for s in sides])) if sides else 0.0


def measure_record_rate(directory: Path, rows: int = 200_000, batch: int = 1000) -> float:
    """Rows appended per second through `RecordWriter`, in batches as the load appends them."""
    path = directory / "append-rate.sqlite"
    row = ("bench", "go", "service", "host", "0123456789abcdef.web", 0, 0, 3_000_000, "ok", "", 2)
    chunk = [(*row[:5], i, i, *row[7:]) for i in range(batch)]
    with records.RecordWriter(path) as writer:
        started = time.perf_counter()
        for _ in range(rows // batch):
            writer.append(chunk)
        elapsed = time.perf_counter() - started
    path.unlink()
    return rows / elapsed


def side_of(starts_ns: np.ndarray[Any, Any], latencies_ns: np.ndarray[Any, Any], failures: int) -> Side:
    """Both sides are measured alike, from per-lookup times: the rate over the middle 80% of the span
    (lookups that started in it), so that start-up and the last lookups' drain count for neither."""
    if starts_ns.size == 0:
        raise DnsProbeError("bench fidelity: a round recorded no lookup")
    first, last = int(starts_ns.min()), int((starts_ns + latencies_ns).max())
    trim = (last - first) // 10
    inside = int(np.count_nonzero((starts_ns >= first + trim) & (starts_ns < last - trim)))
    p50, p99 = np.percentile(latencies_ns / 1e6, [50, 99])
    return Side(inside, (last - first - 2 * trim) / 1e9, float(p50), float(p99), failures)


def _harness_side(path: Path, run_id: str) -> Side:
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT start_ns, latency_ns, outcome != 'ok' FROM lookups WHERE run = ?", (run_id,)
        ).fetchall()
    finally:
        db.close()
    data = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    return side_of(data[:, 0], data[:, 1], int(data[:, 2].sum()))


def _loop_side(loop: dict[str, Any]) -> Side:
    results = loop.get("results") or []
    starts = np.fromiter((r["start_ns"] for r in results), dtype=np.int64, count=len(results))
    latencies = np.fromiter((r["latency_ns"] for r in results), dtype=np.int64, count=len(results))
    return side_of(starts, latencies, loop["lookups"] - loop["ok"])


def run_fidelity(
    *,
    mode: str = "go",
    concurrency: int = 32,
    users: int = 2,
    batch: int = 500,
    seconds: float = 5.0,
    rounds: int = 3,
    query: str = DEFAULT_QUERY,
    cache_dir: Path | None = None,
    report: Callable[[str], None] = print,
) -> FidelityResult:
    if concurrency % users:
        raise DnsProbeError(
            f"bench fidelity: --concurrency {concurrency} is not a multiple of --users {users}"
        )
    check_namespaces()
    binary = build_probe(MODES[mode], cache_dir=cache_dir)
    work = Path(tempfile.mkdtemp(prefix="dnsprobe-fid-"))
    result = FidelityResult()
    try:
        result.record_rate = measure_record_rate(work)
        report(f"records: {result.record_rate:,.0f} rows/s appended (batches of 1000, {work.name})")
        pod = Pod(
            mode=mode,
            binary=binary.path,
            files=render_pod_files(PodSpec(), hostname="probe", nameservers=[NAMESERVER_ADDRESS]),
            zone_text=ZONE,
            workdir=work / "pod",
            socket_dir=work,
            godebug=MODES[mode].godebug,
        )
        load = Load(
            users=users,
            batch=batch,
            concurrency=concurrency // users,
            timeout_ms=5000,
            workloads=[Workload(label="fidelity", query=query, kind="host")],
        )
        records_path = work / "records.sqlite"
        report(
            f"{mode} probe, {concurrency} lookups in flight, {query!r}, {seconds:g} s x {rounds} rounds; "
            f"harness: {users} Locust users x {concurrency // users} in flight, batches of {batch}"
        )
        report(f"{'round':<7}{'side':<10}{'lookups/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}")
        with pod:
            client = ProbeClient(pod.address, timeout=seconds + 60)
            client.loop(kind="host", name=query, concurrency=concurrency, duration_ms=500, timeout_ms=5000)
            for n in range(1, rounds + 1):
                loop = client.loop(
                    kind="host",
                    name=query,
                    concurrency=concurrency,
                    duration_ms=int(seconds * 1000),
                    timeout_ms=5000,
                    records=True,
                )
                side = _loop_side(loop)
                result.loops.append(side)
                report(_row(n, "bare loop", side))
                run_id = f"round-{n}"
                argv = locust_argv(
                    address=pod.address,
                    load=load,
                    seconds=seconds,
                    mode=mode,
                    run_id=run_id,
                    records_path=records_path,
                    csv_prefix=work / f"locust-{n}",
                )
                run_load(
                    argv, mode=mode, seconds=seconds, records_path=records_path, log_path=work / "locust.log"
                )
                side = _harness_side(records_path, run_id)
                result.harness.append(side)
                report(_row(n, "harness", side))
            client.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = FidelityResult.median
    loop_p50, harness_p50 = med(result.loops, lambda s: s.p50_ms), med(result.harness, lambda s: s.p50_ms)
    loop_p99, harness_p99 = med(result.loops, lambda s: s.p99_ms), med(result.harness, lambda s: s.p99_ms)
    report(
        f"median p50: bare loop {loop_p50:.2f} ms, harness {harness_p50:.2f} ms "
        f"({(harness_p50 / loop_p50 - 1) * 100 if loop_p50 else 0:+.1f}%); "
        f"median p99: bare loop {loop_p99:.2f} ms, harness {harness_p99:.2f} ms"
    )
    return result


def _row(n: int, side_name: str, side: Side) -> str:
    return f"{n:<7}{side_name:<10}{side.rate:>11,.0f}{side.p50_ms:>9.2f}{side.p99_ms:>9.2f}{side.failures:>8}"


# -- the fault variant ------------------------------------------------------------------------------------

# Rules on names the bare loop never asks (it asks {rand}.web.default.svc.cluster.local), and a rate limit
# far above any rate here that every query passes through: every query is matched against every rule,
# so the engine's fault path is on the path of every lookup, while the lookups measured are untouched.
FAULT_RULES: list[dict[str, Any]] = [
    {"action": "delay", "name": "*.api.example.test", "delay_ms": 20, "probability": 0.5},
    {"action": "servfail", "name": "*.missing.example.test"},
    {"action": "drop", "name": "d*.api.example.test", "probability": 0.01},
    {"action": "ratelimit", "rate": 10_000_000},
]
VARIANTS = (("go", False), ("go", True), ("python", True))  # engine, fault rules


@dataclass
class FaultFidelityResult:
    sides: dict[str, list[Side]] = field(default_factory=dict)  # by variant label

    @property
    def ratio(self) -> float:
        """The Go engine's p50 without faults over its p50 with them (>= 0.91: within 10%)."""
        clean = FidelityResult.median(self.sides.get(_label("go", False), []), lambda s: s.p50_ms)
        faulty = FidelityResult.median(self.sides.get(_label("go", True), []), lambda s: s.p50_ms)
        return clean / faulty if faulty else 0.0


def _label(engine: str, faults: bool) -> str:
    return f"{engine}{'+faults' if faults else ''}"


def run_fidelity_faults(
    *,
    mode: str = "go",
    concurrency: int = 32,
    seconds: float = 5.0,
    rounds: int = 3,
    query: str = DEFAULT_QUERY,
    cache_dir: Path | None = None,
    report: Callable[[str], None] = print,
) -> FaultFidelityResult:
    """The probe's bare loop (Go-timed lookups/s and p50) against three pods in alternating rounds: the Go
    engine on the zone alone, the Go engine with `FAULT_RULES`, the Python engine with them."""
    from dnsprobe.scenario import FaultRule
    from dnsprobe.scenario import Nameserver as NameserverSpec

    check_namespaces()
    binary = build_probe(MODES[mode], cache_dir=cache_dir)
    work = Path(tempfile.mkdtemp(prefix="dnsprobe-fidf-"))
    result = FaultFidelityResult()
    rules = [FaultRule.model_validate(rule) for rule in FAULT_RULES]
    pods: list[tuple[str, Pod]] = []
    try:
        for engine, faults in VARIANTS:
            label = _label(engine, faults)
            spec = NameserverSpec.model_validate(
                {"zone": ZONE, "engine": engine, "faults": rules if faults else [], "fault_seed": 1}
            )
            (work / f"{label}-socket").mkdir(parents=True)
            pods.append(
                (
                    label,
                    Pod(
                        mode=mode,
                        binary=binary.path,
                        files=render_pod_files(PodSpec(), hostname="probe", nameservers=[NAMESERVER_ADDRESS]),
                        zone_text=ZONE,
                        workdir=work / label,
                        socket_dir=work / f"{label}-socket",
                        godebug=MODES[mode].godebug,
                        nameserver=spec,
                        cache_dir=cache_dir,
                    ),
                )
            )
            result.sides[label] = []
        report(
            f"{mode} probe, bare loop, {concurrency} lookups in flight, {query!r}, {seconds:g} s x {rounds} "
            f"rounds per nameserver; fault rules: {len(FAULT_RULES) - 1} on other names, a rate limit on all"
        )
        report(f"{'round':<7}{'nameserver':<15}{'lookups/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}")
        for _, pod in pods:
            pod.start()
        clients = {label: ProbeClient(pod.address, timeout=seconds + 60) for label, pod in pods}
        for client in clients.values():
            client.loop(kind="host", name=query, concurrency=concurrency, duration_ms=500, timeout_ms=5000)
        for n in range(1, rounds + 1):
            for label, client in clients.items():
                loop = client.loop(
                    kind="host",
                    name=query,
                    concurrency=concurrency,
                    duration_ms=int(seconds * 1000),
                    timeout_ms=5000,
                    records=True,
                )
                side = _loop_side(loop)
                result.sides[label].append(side)
                report(
                    f"{n:<7}{label:<15}{side.rate:>11,.0f}{side.p50_ms:>9.2f}{side.p99_ms:>9.2f}{side.failures:>8}"
                )
        for client in clients.values():
            client.close()
    finally:
        for _, pod in pods:
            pod.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = FidelityResult.median
    for label, sides in result.sides.items():
        report(
            f"median {label}: {med(sides, lambda s: s.rate):,.0f} lookups/s, "
            f"p50 {med(sides, lambda s: s.p50_ms):.2f} ms"
        )
    return result
