"""The nameserver's Go engine: the same bytes as the Python engine, its process, and when it is chosen.

Both engines run on loopback ports these tests pick; each packet is sent to both and the replies are
compared byte for byte, then the two query logs line by line (time and client port aside).
"""

from __future__ import annotations

import functools
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.query
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsprobe import proc
from dnsprobe.cli import main
from dnsprobe.errors import NameserverError
from dnsprobe.nameserver import NameserverThread, Zone, read_querylog
from dnsprobe.nameserver.goengine import GoNameserver, compile_zone, engine_for
from dnsprobe.nameserver.group import group_spec, nameserver_engine
from dnsprobe.nameserver.querylog import HEADER
from dnsprobe.scenario import Nameserver as NameserverSpec

ROOT = Path(__file__).resolve().parents[1]
BIG = "".join(f"big.example.test. IN A 10.0.{i // 250}.{i % 250 + 1}\n" for i in range(120))
ZONE_TEXT = f"""\
$TTL 30
cluster.local.  IN SOA ns.cluster.local. hostmaster.cluster.local. 1 7200 900 86400 5
*.default.svc.cluster.local.    IN A 10.96.0.10
*.default.svc.cluster.local.    IN TXT "wild"
web.default.svc.cluster.local.  IN A 10.0.0.1
web.default.svc.cluster.local.  IN AAAA fd00::1
api.default.svc.cluster.local.  IN CNAME web.default.svc.cluster.local.
out.default.svc.cluster.local.  IN CNAME www.elsewhere.example.
*.alias.cluster.local.          IN CNAME api.default.svc.cluster.local.
loop1.cluster.local. IN CNAME loop2.cluster.local.
loop2.cluster.local. IN CNAME loop1.cluster.local.
_http._tcp.web.default.svc.cluster.local. IN SRV 0 50 80 web.default.svc.cluster.local.
example.test.   IN SOA ns.example.test. hostmaster.example.test. 7 7200 900 86400 60
example.test.   IN MX 10 mail.example.test.
a.b.c.deep.example.test. IN PTR web.default.svc.cluster.local.
odd\\.name\\040x.example.test. IN A 192.0.2.7
{BIG}"""
NAMES = [
    "web.default.svc.cluster.local.",
    "api.default.svc.cluster.local.",
    "out.default.svc.cluster.local.",
    "x.alias.cluster.local.",
    "loop1.cluster.local.",
    "default.svc.cluster.local.",
    "_http._tcp.web.default.svc.cluster.local.",
    "c.deep.example.test.",
    "a.b.c.deep.example.test.",
    "odd\\.name\\040x.example.test.",
    "big.example.test.",
    "example.test.",
    "local.",
    ".",
]
TIMEOUT = 3.0


@pytest.fixture(scope="module")
def zone() -> Zone:
    return Zone.from_text(ZONE_TEXT, "test zone")


class Pair:
    """Both engines on the same zone, each with its own query log."""

    def __init__(self, zone: Zone, logs: Path) -> None:
        self.logs = logs
        self.python = NameserverThread(zone, querylog=logs / "python.tsv")
        self.go = GoNameserver(zone, querylog=logs / "go.tsv", workers=1)

    def __enter__(self) -> Pair:
        self.python.start()
        try:
            self.go.start()
        except BaseException:
            self.python.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.go.stop()
        self.python.stop()

    def udp(self, packet: bytes) -> tuple[bytes | None, bytes | None]:
        return _udp(packet, self.python.endpoints[0]), _udp(packet, self.go.endpoints[0])

    def tcp(self, packets: list[bytes]) -> tuple[list[bytes], list[bytes]]:
        return _tcp(packets, self.python.endpoints[0]), _tcp(packets, self.go.endpoints[0])


MARKER = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0) + b"\x06marker\x04test\x00\x00\x01\x00\x01"


def _udp(packet: bytes, endpoint: tuple[str, int]) -> bytes | None:
    """The reply to one packet, None when none comes. A marker query follows the packet, so "none" is
    known as soon as the marker's reply arrives first (both engines answer one socket in order: the Go
    engine here runs one reader goroutine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendto(packet, endpoint)
        sock.sendto(MARKER, endpoint)
        replies = []
        while True:
            reply = sock.recv(65535)
            if reply[:2] == MARKER[:2] and reply[12 : len(MARKER)] == MARKER[12:] and reply != MARKER:
                break
            replies.append(reply)
    assert len(replies) <= 1, replies
    return replies[0] if replies else None


def _tcp(packets: list[bytes], endpoint: tuple[str, int]) -> list[bytes]:
    """Every reply to packets sent pipelined on one connection, until the server has nothing more."""
    replies = []
    with socket.create_connection(endpoint, timeout=TIMEOUT) as sock:
        sock.sendall(b"".join(len(p).to_bytes(2, "big") + p for p in packets))
        sock.settimeout(0.3)
        buffer = b""
        while True:
            try:
                data = sock.recv(65535)
            except TimeoutError:
                break
            if not data:
                break
            buffer += data
        while len(buffer) >= 2:
            size = int.from_bytes(buffer[:2], "big")
            replies.append(buffer[2 : 2 + size])
            buffer = buffer[2 + size :]
    return replies


@pytest.fixture(scope="module")
def pair(zone: Zone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with Pair(zone, tmp_path_factory.mktemp("logs")) as both:
        yield both


def query(
    name: str | dns.name.Name,
    qtype: int = 1,
    *,
    qid: int = 4660,
    flags: int = 0x0100,
    qclass: int = 1,
    edns: int | None = None,
    version: int = 0,
) -> bytes:
    qname = name if isinstance(name, dns.name.Name) else dns.name.from_text(name)
    wire = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0 if edns is None else 1)
    name_wire = qname.to_wire()
    assert name_wire is not None
    wire += name_wire + struct.pack("!HH", qtype, qclass)
    if edns is not None:
        wire += b"\x00" + struct.pack("!HHIH", 41, edns, version << 16, 0)
    return wire


# -- the same bytes --------------------------------------------------------------------------------------

QTYPES = [1, 28, 5, 33, 16, 15, 12, 6, 2, 255, 65300, 252, 41, 99]


@pytest.mark.parametrize("name", NAMES)
def test_every_known_name_and_type_gets_the_same_reply(pair: Pair, name: str) -> None:
    for qtype in QTYPES:
        for edns in (None, 1232, 4096):
            packet = query(name, qtype, edns=edns)
            python, go = pair.udp(packet)
            assert python is not None
            assert go == python, (name, qtype, edns)


@pytest.mark.parametrize(
    "packet",
    [
        query("big.example.test.", 1),  # 120 records: TC without EDNS
        query("big.example.test.", 1, edns=512),
        query("WeB.DeFault.SVC.cluster.LOCAL.", 1, flags=0x0110),  # case kept, RD and CD copied
        query("new.default.svc.cluster.local.", 16, qid=0),  # wildcard TXT
        query("nothing.example.test.", 1, edns=4096, version=1),  # BADVERS
        query("web.default.svc.cluster.local.", 1, qclass=3),  # CHAOS: REFUSED
        query("web.default.svc.cluster.local.", 1, flags=0x2900),  # UPDATE: NOTIMP
        query("web.default.svc.cluster.local.", 1, flags=0x8100),  # a response: dropped
        query("web.default.svc.cluster.local.", 1)[:20],  # cut inside the name: FORMERR
        query("web.default.svc.cluster.local.", 1) + b"\x00\x00",  # trailing bytes are ignored
        struct.pack("!HHHHHH", 7, 0x0100, 2, 0, 0, 0) + b"\x00\x00\x01\x00\x01" * 2,  # two questions
        struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # a pointer
        query(".", 1, edns=600)[:-11] + b"\x00\x00\x29\x02\x00\x00\x00\x00\x00\x00\x00" * 2,  # two OPTs
        b"",
        b"\x00" * 11,
        b"\x12\x34",
    ],
    ids=lambda p: p[:6].hex(),
)
def test_edge_cases_get_the_same_reply(pair: Pair, packet: bytes) -> None:
    python, go = pair.udp(packet)
    assert go == python


def test_tcp_pipelined_queries_get_the_same_replies(pair: Pair) -> None:
    packets = [query(name, qtype) for name in NAMES for qtype in (1, 28, 255)]
    packets.insert(3, b"\x00")  # garbage in the middle of the stream: dropped, the rest still answered
    python, go = pair.tcp(packets)
    assert len(python) == len(packets) - 1
    assert go == python
    big = dns.message.from_wire(go[[n for n in NAMES for _ in range(3)].index("big.example.test.")])
    assert len(big.answer[0]) == 120  # over TCP the whole RRset, no TC


LABEL = st.one_of(
    st.binary(min_size=1, max_size=12),
    st.text(alphabet="abcXYZ019-_*", min_size=1, max_size=10).map(str.encode),
)


@st.composite
def packets(draw: st.DrawFn) -> bytes:
    base = dns.name.from_text(draw(st.sampled_from(NAMES)))
    labels = [*draw(st.lists(LABEL, max_size=3)), *base.labels]
    if sum(len(label) + 1 for label in labels) > 255:
        labels = list(base.labels)
    cases: list[Callable[[bytes], bytes]] = [bytes.lower, bytes.upper, bytes.swapcase, bytes]
    case = draw(st.sampled_from(cases))
    packet = query(
        dns.name.Name([case(label) for label in labels]),
        draw(st.one_of(st.sampled_from(QTYPES), st.integers(0, 65535))),
        qid=draw(st.integers(0, 65535)),
        flags=draw(st.sampled_from([0, 0x0100, 0x0110, 0x0500])),
        qclass=draw(st.sampled_from([1, 1, 1, 255, 3])),
        edns=draw(st.one_of(st.none(), st.integers(0, 65535))),
        version=draw(st.sampled_from([0, 0, 0, 1])),
    )
    mangle = draw(st.sampled_from(["none", "none", "cut", "flip", "random"]))
    if mangle == "cut":
        return packet[: draw(st.integers(0, len(packet)))]
    if mangle == "flip":
        index = draw(st.integers(0, len(packet) - 1))
        return packet[:index] + bytes([draw(st.integers(0, 255))]) + packet[index + 1 :]
    if mangle == "random":
        return draw(st.binary(max_size=300))
    return packet


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packet=packets())
def test_fuzzed_packets_get_the_same_reply(pair: Pair, packet: bytes) -> None:
    python, go = pair.udp(packet)
    assert go == python


def test_the_query_logs_say_the_same(zone: Zone, tmp_path: Path) -> None:
    sent = [
        query(name, qtype, edns=edns) for name in NAMES for qtype in (1, 28, 65300) for edns in (None, 4096)
    ]
    sent += [
        query("nx.example.test.", 1),
        b"",
        b"\x12\x34" * 6,
        query("web.default.svc.cluster.local.", 1, flags=0x8100),
    ]
    with Pair(zone, tmp_path) as both:
        for packet in sent:
            both.udp(packet)
        both.tcp(sent[:5])
    python = (tmp_path / "python.tsv").read_text(encoding="utf-8").splitlines()
    go = (tmp_path / "go.tsv").read_text(encoding="utf-8").splitlines()
    assert python[0] == go[0] == HEADER
    assert len(go) == len(python) == 1 + 2 * len(sent) + 5  # each UDP packet is followed by a marker

    def comparable(line: str) -> list[str]:
        fields = line.split("\t")
        return fields[1:3] + fields[4:]  # time and client port differ

    assert [comparable(line) for line in go[1:]] == [comparable(line) for line in python[1:]]
    entries = list(read_querylog(go))  # and the reader takes the Go engine's lines
    assert entries[0].qname == NAMES[0] and entries[0].fault is None
    assert {"-", "NOERROR", "NXDOMAIN", "drop"} <= {e.rcode for e in entries} | {e.qname for e in entries}
    assert abs(entries[-1].time - time.time()) < 60


# -- the process --------------------------------------------------------------------------------------------


def test_query_log_is_written_while_running_and_appended_to(zone: Zone, tmp_path: Path) -> None:
    path = tmp_path / "queries.tsv"
    path.write_text(
        HEADER + "\n1.0\tudp\t127.0.0.1\t1\t1\told.\tA\t-\t-\tNOERROR\n1.5\tudp\tcut", encoding="utf-8"
    )
    with GoNameserver(zone, querylog=path) as ns:
        dns.query.udp(
            dns.message.make_query("web.default.svc.cluster.local.", "A"),
            "127.0.0.1",
            port=ns.endpoints[0][1],
            timeout=TIMEOUT,
        )
        deadline = time.monotonic() + 5
        while path.read_text(encoding="utf-8").count("\n") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # flushed by its timer, not only at exit
        lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[1].startswith("1.0\t") and "cut" not in path.read_text(encoding="utf-8")
    assert lines[2].split("\t")[5:] == ["web.default.svc.cluster.local.", "A", "-", "-", "NOERROR"]


def test_several_addresses_and_port_zero(zone: Zone) -> None:
    with GoNameserver(zone, [("127.0.0.1", 0), ("127.0.0.2", 0)]) as ns:
        assert [host for host, _ in ns.endpoints] == ["127.0.0.1", "127.0.0.2"]
        for host, port in ns.endpoints:
            assert port > 0
            ask = dns.message.make_query("web.default.svc.cluster.local.", "AAAA")
            assert dns.query.udp(ask, host, port=port, timeout=TIMEOUT).answer
            assert dns.query.tcp(ask, host, port=port, timeout=TIMEOUT).answer


def test_only_loopback_and_a_taken_port_is_explained(zone: Zone) -> None:
    with pytest.raises(NameserverError, match="not a loopback address"):
        GoNameserver(zone, [("192.0.2.1", 53)])
    with NameserverThread(zone) as taken, pytest.raises(NameserverError, match="address already in use"):
        GoNameserver(zone, taken.endpoints).start()


def test_a_process_that_does_not_start_is_explained(zone: Zone, tmp_path: Path) -> None:
    fake = tmp_path / "goserver"
    fake.write_text("#!/bin/sh\necho 'cannot load the zone' >&2\nexit 1\n", encoding="utf-8")
    fake.chmod(0o755)
    with pytest.raises(NameserverError, match=r"did not start.*cannot load the zone"):
        GoNameserver(zone, binary=fake).start()


def test_stop_ends_the_process_and_frees_the_port(zone: Zone) -> None:
    ns = GoNameserver(zone)
    ns.start()
    host, port = ns.endpoints[0]
    assert ns.running
    ns.stop()
    assert not ns.running
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))  # nobody holds it any more


def test_compiled_zone_is_shared_answers() -> None:
    zone = Zone.from_text("*.w.example.test. 30 A 192.0.2.1\n" * 1 + "x.example.test. 30 A 192.0.2.2\n")
    compiled = compile_zone(zone)
    # example.test., test., the root, w.example.test. and x.example.test. are all empty or NODATA alike
    assert len(compiled["answers"]) < 2 * len(compiled["nodes"])
    assert compiled["qtypes"]["28"] == "AAAA" and compiled["rcodes"]["3"] == "NXDOMAIN"


def test_dnsprobe_serve_runs_the_go_engine_until_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "q.tsv"
    argv = [sys.executable, "-m", "dnsprobe", "serve", str(ROOT / "scenarios" / "quickstart.toml")]
    argv += ["--port", str(port), "--querylog", str(log)]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert server.stdout is not None
        assert b"(udp and tcp, go engine)" in server.stdout.readline()
        reply = dns.query.udp(
            dns.message.make_query("x1.api.example.test.", "A"), "127.0.0.1", port=port, timeout=TIMEOUT
        )
        assert reply.answer
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert any("goserver" in Path(f"/proc/{pid}/cmdline").read_text() for pid in children)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0
    finally:
        proc.terminate(server)
        if server.stdout is not None:
            server.stdout.close()
    assert "x1.api.example.test.\tA" in log.read_text(encoding="utf-8")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port: int = udp.getsockname()[1]
    return port


# -- which engine ------------------------------------------------------------------------------------------


def test_auto_picks_go_with_or_without_fault_rules() -> None:
    assert engine_for("auto", has_faults=False) == engine_for("auto", has_faults=True) == "go"
    assert engine_for("go", has_faults=True) == "go"
    assert engine_for("python", has_faults=False) == engine_for("python", has_faults=True) == "python"
    plain = NameserverSpec(zone="x.test. 30 A 192.0.2.1")
    faulty = NameserverSpec.model_validate(
        {"zone": "x.test. 30 A 192.0.2.1", "faults": [{"action": "servfail"}]}
    )
    assert nameserver_engine(None) == nameserver_engine(plain) == nameserver_engine(faulty) == "go"
    assert nameserver_engine(faulty.model_copy(update={"engine": "python"})) == "python"
    assert nameserver_engine(NameserverSpec(kind="dnsmasq", zone="x.test. 30 A 192.0.2.1")) is None


def test_group_spec_builds_the_go_engine_only_when_used(tmp_path: Path) -> None:
    spec_of = functools.partial(
        group_spec, zone_file=tmp_path / "z", querylog=tmp_path / "q", workdir=tmp_path
    )
    go = spec_of(None)
    assert go["engine"] == "go" and Path(go["go_binary"]).exists()
    faulty = NameserverSpec.model_validate(
        {"zone": "x.test. 30 A 192.0.2.1", "faults": [{"action": "drop"}], "fault_seed": 7}
    )
    assert spec_of(faulty)["engine"] == "go"
    python = spec_of(faulty.model_copy(update={"engine": "python"}))
    assert python["engine"] == "python" and python["go_binary"] is None
    assert python["fault_seed"] == 7 and python["listen"][0]["faults"][0]["action"] == "drop"


def test_bad_engine_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(ROOT / "scenarios" / "quickstart.toml"), "--engine", "turbo"]) == 2
    assert "--engine turbo: not an engine" in capsys.readouterr().err
