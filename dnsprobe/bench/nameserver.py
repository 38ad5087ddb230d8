"""`dnsprobe bench nameserver`: dnsperf against the embedded nameserver and against dnsmasq serving the
same records, alternating a few rounds in one run, so both see the same machine load.

The embedded server runs as `dnsprobe serve` (its own process, the query log on unless asked not to),
on the Go engine that pods use, or with `engine="python"` on the Python engine (uvloop), the
reference; dnsmasq runs from the configuration `dnsprobe.nameserver.real` writes.
Both listen on loopback only. After the rounds, a sample of the embedded server's answers is parsed
with dnspython's own parser, so speed never comes from a malformed answer. The result ends with
`ratio: X`, the median embedded qps over the median dnsmasq qps (the CLI prints it).

With `faults=True` the embedded servers carry a representative fault mix (`FAULT_MIX`: a delay on 1% of
the names, SERVFAIL on 5%, a drop on 1%, a rate limit that does not bind) and both engines run, the Go
engine and the Python engine, against dnsmasq without faults; the ratio is the Go engine's. dnsperf then
keeps more queries in flight with a shorter timeout (`_FAULT_LOAD`), so the dropped 1% (each holding a
slot until dnsperf gives up on it) does not cap the rate; dnsmasq gets the same dnsperf options.
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from dnsprobe import proc
from dnsprobe.codec.zone import Zone
from dnsprobe.errors import NameserverError, ToolMissing
from dnsprobe.nameserver.real import RealServer, wait_answering

__all__ = ["BenchResult", "bench_nameserver"]

ZONE = """$TTL 30
cluster.local.                   SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30
*.web.default.svc.cluster.local. A    10.96.0.10
*.web.default.svc.cluster.local. AAAA fd00:10:96::10
example.test.                    SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 30
*.api.example.test.              A     192.0.2.10
*.api.example.test.              AAAA  2001:db8::10
"""
_QPS = re.compile(r"Queries per second:\s+([0-9.]+)")
_LOST = re.compile(r"Queries lost:\s+(\d+)")
_LOAD = ("-c", "8", "-q", "200", "-T", "1")  # 8 sockets, 200 queries in flight, one sending thread
_FAULT_LOAD = ("-c", "8", "-q", "1000", "-t", "1", "-T", "1")  # drops hold a slot for 1 s, not 5
_SAMPLE = 500  # answers checked with dnspython
# The fault mix, by name (the query file's names are h<index>...): 1% end in 00, 5% in [1-5]1, 1% in 99.
FAULT_MIX = """
[[nameserver.faults]]
action = "delay"
name = "h*00.*"
delay_ms = 20
[[nameserver.faults]]
action = "servfail"
name = "h*[1-5]1.*"
[[nameserver.faults]]
action = "drop"
name = "h*99.*"
[[nameserver.faults]]
action = "ratelimit"
rate = 10000000
"""


@dataclass
class BenchResult:
    embedded_qps: list[float] = field(default_factory=list)
    dnsmasq_qps: list[float] = field(default_factory=list)
    lost: dict[str, int] = field(default_factory=lambda: {"embedded": 0, "dnsmasq": 0})
    checked_answers: int = 0
    querylog_lines: int = 0
    others: dict[str, list[float]] = field(default_factory=dict)  # more embedded engines (--faults)

    @property
    def ratio(self) -> float:
        return statistics.median(self.embedded_qps) / statistics.median(self.dnsmasq_qps)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port: int = udp.getsockname()[1]
    return port


def _query_file(path: Path, count: int = 50_000) -> None:
    """Distinct names under the wildcards, A and AAAA, NXDOMAIN now and then (a realistic mix)."""
    rng = random.Random(7)  # noqa: S311 (test data)
    lines = []
    for index in range(count):
        kind = rng.choice(("A", "AAAA"))
        roll = rng.random()
        if roll < 0.45:
            name = f"h{index}.api.example.test"
        elif roll < 0.9:
            name = f"h{index}.web.default.svc.cluster.local"
        else:
            name = f"h{index}.missing.example.test"
        lines.append(f"{name} {kind}\n")
    path.write_text("".join(lines), encoding="ascii")


def _dnsperf(port: int, queries: Path, seconds: float, load: tuple[str, ...] = _LOAD) -> tuple[float, int]:
    done = proc.run(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", f"{seconds:g}", *load],
        timeout=seconds + 30,
        error=NameserverError,
        what="dnsperf",
    )
    qps = _QPS.search(done.stdout)
    lost = _LOST.search(done.stdout)
    if qps is None or lost is None:
        raise NameserverError(f"dnsperf printed no figures: {done.stdout[-300:]!r}")
    return float(qps.group(1)), int(lost.group(1))


def _check_answers(port: int, count: int, faults: bool = False) -> int:
    """Ask `count` questions with dnspython and parse every answer with its parser; return how many.
    With `faults`, the names the fault mix touches are skipped (they are dropped, delayed or SERVFAIL)."""
    checked = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index in range(count):
            if faults and (index % 100 in (0, 99) or (index % 10 == 1 and 1 <= index // 10 % 10 <= 5)):
                continue
            name = ("h{}.api.example.test.", "h{}.web.default.svc.cluster.local.", "h{}.nx.example.test.")[
                index % 3
            ].format(index)
            query = dns.message.make_query(name, ("A", "AAAA", "TXT")[index % 3], use_edns=index % 2 == 0)
            reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=2, sock=sock)
            if not query.is_response(reply):
                raise NameserverError(f"bench: the answer to {name} does not match its question")
            if index % 3 < 2 and not reply.answer:
                raise NameserverError(f"bench: {name} got no answer ({dns.rcode.to_text(reply.rcode())})")
            checked += 1
    return checked


def bench_nameserver(
    *,
    seconds: float = 5.0,
    rounds: int = 3,
    querylog: bool = True,
    engine: str = "go",
    faults: bool = False,
    report: Callable[[str], None] = print,
) -> BenchResult:
    """Alternate dnsperf runs against the embedded server(s) and dnsmasq; report each figure as it comes.
    With `faults`, the fault mix is on and both engines run (`engine` is the one the ratio uses)."""
    for tool, package in (
        ("dnsperf", "apt-get install dnsperf"),
        ("dnsmasq", "apt-get install dnsmasq-base"),
    ):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            raise ToolMissing(tool, "bench nameserver compares against it", package)
    result = BenchResult()
    engines = [engine, *(["python" if engine != "python" else "go"] if faults else [])]
    load = _FAULT_LOAD if faults else _LOAD
    with tempfile.TemporaryDirectory(prefix="dnsprobe-bench-") as tmp:
        work = Path(tmp)
        queries = work / "queries.txt"
        _query_file(queries)
        scenario = work / "bench.toml"
        scenario.write_text(
            'name = "bench"\n[load]\n[[load.workloads]]\nlabel = "x"\nquery = "{rand}.api.example.test"\n'
            f'[nameserver]\nfault_seed = 1\nzone = """\n{ZONE}"""\n' + (FAULT_MIX if faults else ""),
            encoding="utf-8",
        )
        servers: list[tuple[str, int, subprocess.Popen[bytes], Path]] = []
        logs = []
        try:
            for name in engines:
                port = _free_port()
                log_path = work / f"queries-{name}.tsv"
                argv = [sys.executable, "-m", "dnsprobe", "serve", str(scenario), "--port", str(port)]
                argv += ["--engine", name]
                if querylog:
                    argv += ["--querylog", str(log_path)]
                server_log = (work / f"serve-{name}.log").open("wb")
                logs.append(server_log)
                process = proc.spawn(argv, stdout=server_log, stderr=server_log)
                servers.append((name, port, process, log_path))
                if not wait_answering("127.0.0.1", port, 15):
                    raise NameserverError(f"bench: the embedded server did not start: {argv}")
            dnsmasq_port = _free_port()
            with RealServer("dnsmasq", Zone.from_text(ZONE), work / "dnsmasq", port=dnsmasq_port):
                report(
                    f"dnsperf {' '.join(load)}, {seconds:g} s per run, {rounds} rounds, "
                    f"{' and '.join(engines)} engine{'s' if faults else ''}"
                    f"{' with the fault mix (dnsmasq without)' if faults else ''}, "
                    f"query log {'on' if querylog else 'off'}"
                )
                for name in engines[1:]:
                    result.others[name] = []
                for round_number in range(1, rounds + 1):
                    sides: list[tuple[str, int, list[float]]] = [
                        ("embedded", servers[0][1], result.embedded_qps),  # engines[0]
                        *((name, port, result.others[name]) for name, port, _, _ in servers[1:]),
                        ("dnsmasq", dnsmasq_port, result.dnsmasq_qps),
                    ]
                    for label, port, figures in sides:
                        qps, lost = _dnsperf(port, queries, seconds, load)
                        figures.append(qps)
                        result.lost[label] = result.lost.get(label, 0) + lost
                        report(f"round {round_number}: {label:<8} {qps:>10,.0f} qps  lost {lost}")
                result.checked_answers = _check_answers(servers[0][1], _SAMPLE, faults)
        finally:
            for _, _, process, _ in servers:
                proc.terminate(process, timeout=10)
            for server_log in logs:
                server_log.close()
        if querylog:  # the server flushed its log when SIGTERM stopped it
            with servers[0][3].open(encoding="utf-8") as lines:
                result.querylog_lines = sum(1 for _ in lines) - 1
    report(f"embedded median: {statistics.median(result.embedded_qps):,.0f} qps ({engines[0]} engine)")
    for name, figures in result.others.items():
        report(f"{name} median: {statistics.median(figures):,.0f} qps ({name} engine)")
    report(f"dnsmasq median:  {statistics.median(result.dnsmasq_qps):,.0f} qps")
    report(f"answers parsed by dnspython: {result.checked_answers}")
    if querylog:
        report(f"query-log lines ({engines[0]} engine): {result.querylog_lines:,}")
    return result
