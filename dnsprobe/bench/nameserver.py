"""`dnsprobe bench nameserver`: dnsperf against the embedded nameserver and against dnsmasq serving the
same records, alternating a few rounds in one run, so both see the same machine load.

The embedded server runs as `dnsprobe serve` (its own process, the query log on unless asked not to),
on the Go engine that pods without fault rules use, or with `engine="python"` on the Python engine
(uvloop) that fault rules need; dnsmasq runs from the configuration `dnsprobe.nameserver.real` writes.
Both listen on loopback only. After the rounds, a sample of the embedded server's answers is parsed
with dnspython's own parser, so speed never comes from a malformed answer. The result ends with
`ratio: X`, the median embedded qps over the median dnsmasq qps (the CLI prints it).
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
from dnsprobe.errors import NameserverError, ToolMissing
from dnsprobe.nameserver.real import RealServer, wait_answering
from dnsprobe.nameserver.zone import Zone

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
_SAMPLE = 500  # answers checked with dnspython


@dataclass
class BenchResult:
    embedded_qps: list[float] = field(default_factory=list)
    dnsmasq_qps: list[float] = field(default_factory=list)
    lost: dict[str, int] = field(default_factory=lambda: {"embedded": 0, "dnsmasq": 0})
    checked_answers: int = 0
    querylog_lines: int = 0

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


def _dnsperf(port: int, queries: Path, seconds: float) -> tuple[float, int]:
    done = proc.run(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", f"{seconds:g}", *_LOAD],
        timeout=seconds + 30,
        error=NameserverError,
        what="dnsperf",
    )
    qps = _QPS.search(done.stdout)
    lost = _LOST.search(done.stdout)
    if qps is None or lost is None:
        raise NameserverError(f"dnsperf printed no figures: {done.stdout[-300:]!r}")
    return float(qps.group(1)), int(lost.group(1))


def _check_answers(port: int, count: int) -> int:
    """Ask `count` questions with dnspython and parse every answer with its parser; return how many."""
    checked = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index in range(count):
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
    report: Callable[[str], None] = print,
) -> BenchResult:
    """Alternate dnsperf runs against the embedded server and dnsmasq; report each figure as it comes."""
    for tool, package in (
        ("dnsperf", "apt-get install dnsperf"),
        ("dnsmasq", "apt-get install dnsmasq-base"),
    ):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            raise ToolMissing(tool, "bench nameserver compares against it", package)
    result = BenchResult()
    with tempfile.TemporaryDirectory(prefix="dnsprobe-bench-") as tmp:
        work = Path(tmp)
        queries = work / "queries.txt"
        _query_file(queries)
        scenario = work / "bench.toml"
        scenario.write_text(
            'name = "bench"\n[load]\n[[load.workloads]]\nlabel = "x"\nquery = "{rand}.api.example.test"\n'
            f'[nameserver]\nzone = """\n{ZONE}"""\n',
            encoding="utf-8",
        )
        embedded_port, dnsmasq_port = _free_port(), _free_port()
        log_path = work / "queries.tsv"
        argv = [sys.executable, "-m", "dnsprobe", "serve", str(scenario), "--port", str(embedded_port)]
        argv += ["--engine", engine]
        if querylog:
            argv += ["--querylog", str(log_path)]
        server_log = (work / "serve.log").open("wb")
        embedded = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=server_log, stderr=server_log)
        try:
            if not wait_answering("127.0.0.1", embedded_port, 15):
                raise NameserverError(f"bench: the embedded server did not start: {argv}")
            with RealServer("dnsmasq", Zone.from_text(ZONE), work / "dnsmasq", port=dnsmasq_port):
                report(
                    f"dnsperf -c 8 -q 200 -T 1, {seconds:g} s per run, {rounds} rounds, {engine} engine, "
                    f"query log {'on' if querylog else 'off'}"
                )
                for round_number in range(1, rounds + 1):
                    for label, port, figures in (
                        ("embedded", embedded_port, result.embedded_qps),
                        ("dnsmasq", dnsmasq_port, result.dnsmasq_qps),
                    ):
                        qps, lost = _dnsperf(port, queries, seconds)
                        figures.append(qps)
                        result.lost[label] += lost
                        report(f"round {round_number}: {label:<8} {qps:>10,.0f} qps  lost {lost}")
                result.checked_answers = _check_answers(embedded_port, _SAMPLE)
        finally:
            proc.terminate(embedded, timeout=10)
            server_log.close()
        if querylog:  # the server flushed its log when SIGTERM stopped it
            with log_path.open(encoding="utf-8") as lines:
                result.querylog_lines = sum(1 for _ in lines) - 1
    report(f"embedded median: {statistics.median(result.embedded_qps):,.0f} qps")
    report(f"dnsmasq median:  {statistics.median(result.dnsmasq_qps):,.0f} qps")
    report(f"answers parsed by dnspython: {result.checked_answers}")
    if querylog:
        report(f"query-log lines: {result.querylog_lines:,}")
    return result
