"""`--pcap`: both engines log every DNS message; dns.pcap, read back with dpkt, holds every query of the
query log and its answer, over UDP and TCP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dns.message
import dns.query
import dpkt
import pytest

from dnsprobe.codec.zone import Zone
from dnsprobe.nameserver.goengine import GoNameserver
from dnsprobe.nameserver.pcap import PacketLog, write_pcap
from dnsprobe.nameserver.querylog import read_querylog
from dnsprobe.nameserver.server import NameserverThread

ROOT = Path(__file__).resolve().parent.parent
ZONE = """\
example.test.      30 SOA ns.example.test. h.example.test. 1 7200 1800 86400 30
*.web.example.test. 30 A    10.0.0.1
*.web.example.test. 30 AAAA fd00::1
"""


def read_pcap(path: Path) -> list[tuple[str, str, int, int, dpkt.dns.DNS]]:
    """(proto, src ip, src port, dst port, DNS message) of every frame."""
    out = []
    with path.open("rb") as f:
        for _, frame in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(frame).data
            segment = ip.data
            payload = segment.data
            proto = "udp" if isinstance(segment, dpkt.udp.UDP) else "tcp"
            if proto == "tcp":
                assert int.from_bytes(payload[:2], "big") == len(payload) - 2
                payload = payload[2:]
            src = dpkt.utils.inet_to_str(ip.src)
            out.append((proto, src, segment.sport, segment.dport, dpkt.dns.DNS(payload)))
    return out


def check_every_query_is_there(querylog: Path, pcap: Path, server_port: int) -> int:
    packets = read_pcap(pcap)
    queries = Counter(
        (proto, sport, msg.id, msg.qd[0].name.lower(), msg.qd[0].type)
        for proto, _, sport, dport, msg in packets
        if dport == server_port and msg.qr == dpkt.dns.DNS_Q
    )
    answers = Counter(
        (proto, dport, msg.id, msg.qd[0].name.lower())
        for proto, _, sport, dport, msg in packets
        if sport == server_port and msg.qr == dpkt.dns.DNS_R
    )
    types = {"A": dpkt.dns.DNS_A, "AAAA": dpkt.dns.DNS_AAAA}
    entries = list(read_querylog(querylog.read_text().splitlines(keepends=True)))
    assert entries
    for e in entries:
        key = (e.proto, e.port, e.id, e.qname.rstrip(".").lower(), types[e.qtype])
        assert queries[key] > 0, f"query {key} of the query log is not in {pcap.name}"
        queries[key] -= 1
        if e.rcode != "drop":
            assert answers[key[:4]] > 0, f"no answer to {key}"
            answers[key[:4]] -= 1
    assert sum(queries.values()) == 0  # and nothing the log does not have
    return len(entries)


def ask_both_ways(host: str, port: int) -> None:
    for i in range(20):
        for rdtype in ("A", "AAAA"):
            query = dns.message.make_query(f"n{i}.web.example.test", rdtype)
            assert dns.query.udp(query, host, port=port, timeout=5).answer
    for i in range(5):
        assert dns.query.tcp(
            dns.message.make_query(f"t{i}.web.example.test", "A"), host, port=port, timeout=5
        ).answer


def test_python_engine_packets(tmp_path: Path) -> None:
    log, raw, pcap = tmp_path / "q.tsv", tmp_path / "dns.raw", tmp_path / "dns.pcap"
    server = NameserverThread(Zone.from_text(ZONE), querylog=log)
    server.nameserver.packets = packets = PacketLog(raw)
    with server:
        host, port = server.endpoints[0]
        ask_both_ways(host, port)
    packets.close()
    assert write_pcap(raw, pcap) == 2 * 45
    assert check_every_query_is_there(log, pcap, port) == 45


def test_go_engine_packets(tmp_path: Path) -> None:
    log, raw, pcap = tmp_path / "q.tsv", tmp_path / "dns.raw", tmp_path / "dns.pcap"
    with GoNameserver(Zone.from_text(ZONE), querylog=log, packets=raw, workers=1) as server:
        host, port = server.endpoints[0]
        ask_both_ways(host, port)
    assert write_pcap(raw, pcap) == 2 * 45
    assert check_every_query_is_there(log, pcap, port) == 45


def test_a_cut_raw_record_is_left_out(tmp_path: Path) -> None:
    raw = tmp_path / "dns.raw"
    log = PacketLog(raw, clock=lambda: 1.5)
    log.add("udp", True, ("127.0.0.1", 4000), ("127.0.0.1", 53), b"\x00\x01" + bytes(10))
    log.add("tcp", False, ("::1", 4001), ("::1", 53), b"\x00\x02" + bytes(10))
    log.close()
    raw.write_bytes(raw.read_bytes()[:-3])
    assert write_pcap(raw, tmp_path / "dns.pcap") == 1


SCENARIO = """
name = "pcap"
modes = ["go"]

[load]
users = 1
duration = 3
batch = 50
concurrency = 4

[[load.workloads]]
label = "service"
query = "{rand}.web"

[nameserver]
engine = "{engine}"
zone = '''
cluster.local.                   30 SOA ns.cluster.local. h.cluster.local. 1 7200 1800 86400 30
*.web.default.svc.cluster.local. 30 A    10.96.0.10
*.web.default.svc.cluster.local. 30 AAAA fd00:10:96::10
'''
"""


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["go", "python"])
def test_run_with_pcap_has_every_query(tmp_path: Path, probe_cache: Path, engine: str) -> None:
    scenario = tmp_path / "pcap.toml"
    scenario.write_text(SCENARIO.replace("{engine}", engine))
    out = tmp_path / "runs"
    argv = [
        sys.executable,
        "-m",
        "dnsprobe",
        "run",
        str(scenario),
        "--out",
        str(out),
        "--cache",
        str(probe_cache),
        "--pcap",
    ]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    run_dir = next(out.iterdir())
    pod = run_dir / "pods" / "go"
    assert not (pod / "dns.raw").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["nameserver"]["engine"] == engine
    n = check_every_query_is_there(pod / "queries.tsv", pod / "dns.pcap", 53)
    assert n == summary["modes"][0]["wire_queries"] > 0
