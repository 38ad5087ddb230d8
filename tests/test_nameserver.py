"""The embedded nameserver over real sockets on 127.0.0.1, its wire path, and its query log.

Tests that take the `server` fixture run against both engines, Python and Go.

Queries go only to the servers these tests start on loopback ports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsprobe.codec.wire import BadQuery, Responder, parse_query, qname_text
from dnsprobe.errors import NameserverError
from dnsprobe.nameserver import (
    Fault,
    Nameserver,
    NameserverThread,
    Query,
    QueryLog,
    Zone,
    read_querylog,
)
from dnsprobe.nameserver.goengine import GoNameserver
from dnsprobe.nameserver.querylog import HEADER

ROOT = Path(__file__).resolve().parents[1]
BIG = "".join(f"big.example.test. IN A 10.0.{i // 250}.{i % 250 + 1}\n" for i in range(120))
ZONE_TEXT = f"""\
$TTL 30
cluster.local.  IN SOA ns.cluster.local. hostmaster.cluster.local. 1 7200 900 86400 5
cluster.local.  IN NS  ns.cluster.local.
ns.cluster.local.   IN A 10.96.0.53
*.default.svc.cluster.local.    IN A 10.96.0.10
web.default.svc.cluster.local.  IN A 10.0.0.1
web.default.svc.cluster.local.  IN AAAA fd00::1
web.default.svc.cluster.local.  IN TXT "v=probe" "second string"
api.default.svc.cluster.local.  IN CNAME alias.default.svc.cluster.local.
alias.default.svc.cluster.local. IN CNAME web.default.svc.cluster.local.
_http._tcp.web.default.svc.cluster.local. IN SRV 0 50 80 web.default.svc.cluster.local.
loop1.cluster.local. IN CNAME loop2.cluster.local.
loop2.cluster.local. IN CNAME loop1.cluster.local.
example.test.   IN SOA ns.example.test. hostmaster.example.test. 7 7200 900 86400 60
example.test.   IN MX 10 mail.example.test.
a.b.c.deep.example.test. IN A 192.0.2.1
{BIG}"""
KNOWN_NAMES = [
    "web.default.svc.cluster.local.",
    "api.default.svc.cluster.local.",
    "default.svc.cluster.local.",
    "_http._tcp.web.default.svc.cluster.local.",
    "loop1.cluster.local.",
    "cluster.local.",
    "example.test.",
    "c.deep.example.test.",
    "a.b.c.deep.example.test.",
    "big.example.test.",
    "local.",
    ".",
]
TIMEOUT = 3.0


@pytest.fixture(scope="module")
def zone() -> Zone:
    return Zone.from_text(ZONE_TEXT, "test zone")


@pytest.fixture(scope="module", params=["python", "go"])
def server(zone: Zone, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """The server on each engine: every test that asks it questions runs against both."""
    engine = NameserverThread(zone) if request.param == "python" else GoNameserver(zone)
    with engine as ns:
        yield ns.endpoints[0]


def ask(
    endpoint: tuple[str, int], name: str, rdtype: str = "A", *, tcp: bool = False, edns: int | None = None
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=False if edns is None else 0, payload=edns)
    host, port = endpoint
    if tcp:
        return dns.query.tcp(query, host, port=port, timeout=TIMEOUT)
    return dns.query.udp(query, host, port=port, timeout=TIMEOUT)


def rdata_texts(reply: dns.message.Message) -> list[tuple[str, str, list[str]]]:
    return [
        (r.name.to_text(), dns.rdatatype.to_text(r.rdtype), sorted(rd.to_text() for rd in r))
        for r in reply.answer
    ]


# -- answers over the wire ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_a_and_aaaa(server: tuple[str, int], tcp: bool) -> None:
    reply = ask(server, "web.default.svc.cluster.local.", "A", tcp=tcp)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert rdata_texts(reply) == [("web.default.svc.cluster.local.", "A", ["10.0.0.1"])]
    reply = ask(server, "web.default.svc.cluster.local.", "AAAA", tcp=tcp)
    assert rdata_texts(reply) == [("web.default.svc.cluster.local.", "AAAA", ["fd00::1"])]


def test_cname_chain(server: tuple[str, int]) -> None:
    reply = ask(server, "api.default.svc.cluster.local.")
    assert rdata_texts(reply) == [
        ("api.default.svc.cluster.local.", "CNAME", ["alias.default.svc.cluster.local."]),
        ("alias.default.svc.cluster.local.", "CNAME", ["web.default.svc.cluster.local."]),
        ("web.default.svc.cluster.local.", "A", ["10.0.0.1"]),
    ]


def test_cname_loop_is_answered(server: tuple[str, int]) -> None:
    reply = ask(server, "loop1.cluster.local.")
    assert reply.rcode() == dns.rcode.NOERROR
    assert len(reply.answer) == 2


def test_wildcard(server: tuple[str, int]) -> None:
    reply = ask(server, "q-81723.default.svc.cluster.local.")
    assert rdata_texts(reply) == [("q-81723.default.svc.cluster.local.", "A", ["10.96.0.10"])]


def test_nxdomain_has_the_soa(server: tuple[str, int]) -> None:
    reply = ask(server, "nope.svc.cluster.local.")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.answer == []
    assert [(r.name.to_text(), r.rdtype, r.ttl) for r in reply.authority] == [
        ("cluster.local.", dns.rdatatype.SOA, 5)
    ]


def test_nodata_and_empty_non_terminal(server: tuple[str, int]) -> None:
    for name, rdtype in [
        ("ns.cluster.local.", "AAAA"),
        ("c.deep.example.test.", "A"),
        ("x.default.svc.cluster.local.", "MX"),
    ]:
        reply = ask(server, name, rdtype)
        assert reply.rcode() == dns.rcode.NOERROR, name
        assert reply.answer == [], name
        assert len(reply.authority) == 1, name


def test_srv_txt_mx(server: tuple[str, int]) -> None:
    assert rdata_texts(ask(server, "_http._tcp.web.default.svc.cluster.local.", "SRV"))[0][2] == [
        "0 50 80 web.default.svc.cluster.local."
    ]
    assert rdata_texts(ask(server, "web.default.svc.cluster.local.", "TXT"))[0][2] == [
        '"v=probe" "second string"'
    ]
    assert rdata_texts(ask(server, "example.test.", "MX"))[0][2] == ["10 mail.example.test."]


def test_question_case_is_preserved(server: tuple[str, int]) -> None:
    for sent in ("WeB.DeFaUlT.sVc.ClUsTeR.lOcAl.", "RaNdOm.DEFAULT.svc.cluster.LOCAL."):
        reply = ask(server, sent)
        assert reply.question[0].name.labels == dns.name.from_text(sent).labels
        assert reply.answer[0].name.labels == dns.name.from_text(sent).labels
        assert len(reply.answer[0]) == 1


def test_big_rrset_truncates_without_edns(server: tuple[str, int]) -> None:
    reply = ask(server, "big.example.test.")
    assert reply.flags & dns.flags.TC
    assert reply.answer == []
    assert reply.rcode() == dns.rcode.NOERROR


def test_big_rrset_over_tcp(server: tuple[str, int]) -> None:
    reply = ask(server, "big.example.test.", tcp=True)
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == 120


def test_big_rrset_fits_with_edns(server: tuple[str, int]) -> None:
    reply = ask(server, "big.example.test.", edns=4096)
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == 120
    assert reply.edns == 0
    assert ask(server, "big.example.test.", edns=1232).flags & dns.flags.TC


def test_opt_only_when_asked(server: tuple[str, int]) -> None:
    assert ask(server, "web.default.svc.cluster.local.").edns == -1
    assert ask(server, "web.default.svc.cluster.local.", edns=1232).edns == 0


def test_unknown_edns_version_is_badvers(server: tuple[str, int]) -> None:
    query = dns.message.make_query("web.default.svc.cluster.local.", "A", use_edns=1)
    reply = dns.query.udp(query, server[0], port=server[1], timeout=TIMEOUT)
    assert reply.rcode() == dns.rcode.BADVERS


def test_several_queries_on_one_tcp_connection(server: tuple[str, int]) -> None:
    names = ["web.default.svc.cluster.local.", "nope.cluster.local.", "big.example.test."]
    queries = [dns.message.make_query(name, "A") for name in names]
    with socket.create_connection(server, timeout=TIMEOUT) as sock:
        sock.sendall(b"".join(len(w).to_bytes(2, "big") + w for w in (q.to_wire() for q in queries)))
        replies = [dns.query.receive_tcp(sock, time.time() + TIMEOUT)[0] for _ in queries]
    assert all(query.is_response(reply) for query, reply in zip(queries, replies, strict=True))
    assert [reply.rcode() for reply in replies] == [dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.NOERROR]
    assert len(replies[2].answer[0]) == 120


def test_stop_closes_open_tcp_connections(zone: Zone) -> None:
    with NameserverThread(zone) as ns, socket.create_connection(ns.endpoints[0], timeout=TIMEOUT) as idle:
        idle.sendall(b"\x00")  # half a length prefix: the server waits for the rest
        ns.stop()
        with contextlib.suppress(ConnectionResetError):  # closed with unread data: a reset, also a close
            assert idle.recv(10) == b""


def test_idle_tcp_connections_are_closed(zone: Zone, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dnsprobe.nameserver.server.TCP_IDLE", 0.2)
    with NameserverThread(zone) as ns, socket.create_connection(ns.endpoints[0], timeout=TIMEOUT) as idle:
        started = time.monotonic()
        assert idle.recv(10) == b""
        assert time.monotonic() - started < TIMEOUT


def test_ipv6_loopback(zone: Zone) -> None:
    thread = NameserverThread(zone, [("::1", 0)])
    try:
        thread.start()
    except NameserverError as exc:
        # A host without IPv6 (some CI containers) must get one clear line, not a traceback.
        assert str(exc).startswith("cannot listen on [::1]:0/udp: ")
        assert "\n" not in str(exc)
        return
    try:
        reply = ask(thread.endpoints[0], "web.default.svc.cluster.local.", "AAAA")
        assert rdata_texts(reply)[0][2] == ["fd00::1"]
    finally:
        thread.stop()


# -- malformed input ---------------------------------------------------------------------------------------

VALID = dns.message.make_query("web.default.svc.cluster.local.", "A", use_edns=0, id=0x1234).to_wire()


def header(qdcount: int = 1, flags: int = 0x0100, arcount: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 0x1234, flags, qdcount, 0, 0, arcount)


@pytest.mark.parametrize(
    "packet",
    [
        header(qdcount=0),
        header(qdcount=2) + VALID[12:] * 2,
        header() + b"\xc0\x0c\x00\x01\x00\x01",  # the question's name points at itself
        header() + b"\x46" + b"a" * 70 + b"\x00\x00\x01\x00\x01",  # a 70-byte label
        header() + b"\x03web\x07default",  # cut inside the name
        header() + b"\x03web\x00\x00",  # cut inside type and class
        header() + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01",  # a 321-byte name
        VALID[:-3],  # OPT record cut short
        header(arcount=2) + b"\x00\x00\x01\x00\x01" + (b"\x00\x00\x29\x10\x00" + b"\x00" * 6) * 2,  # two OPTs
    ],
)
def test_malformed_queries_get_formerr(packet: bytes) -> None:
    with pytest.raises(BadQuery) as caught:
        parse_query(packet)
    assert caught.value.outcome == "formerr"
    assert caught.value.reply is not None
    reply = dns.message.from_wire(caught.value.reply)
    assert reply.rcode() == dns.rcode.FORMERR
    assert reply.id == 0x1234


@pytest.mark.parametrize(
    "packet", [b"", b"\x12", b"\x12\x34\x01\x00\x00\x01", header(flags=0x8000) + VALID[12:]]
)
def test_unreadable_packets_and_responses_are_dropped(packet: bytes) -> None:
    with pytest.raises(BadQuery) as caught:
        parse_query(packet)
    assert caught.value.reply is None
    assert caught.value.outcome == "drop"


def test_other_opcodes_get_notimp() -> None:
    with pytest.raises(BadQuery) as caught:
        parse_query(header(flags=0x2800) + VALID[12:])  # opcode UPDATE
    assert caught.value.reply is not None
    assert dns.message.from_wire(caught.value.reply).rcode() == dns.rcode.NOTIMP


def truncated_queries() -> st.SearchStrategy[bytes]:
    return st.builds(lambda cut: VALID[:cut], st.integers(min_value=0, max_value=len(VALID)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    packet=st.one_of(
        st.binary(max_size=300), truncated_queries(), st.binary(max_size=40).map(lambda b: VALID[:12] + b)
    )
)
def test_garbage_never_stops_the_udp_server(server: tuple[str, int], packet: bytes) -> None:
    probe = dns.message.make_query("web.default.svc.cluster.local.", "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendto(packet, server)
        sock.sendto(probe.to_wire(), server)
        while True:
            data, _ = sock.recvfrom(65535)
            reply = dns.message.from_wire(data)  # whatever comes back parses
            if probe.is_response(reply):
                break
    assert reply.answer


def test_a_burst_is_answered_whole(server: tuple[str, int]) -> None:
    """More packets than one wake-up serves (see server._UDP_BURST), sent before any answer is read."""
    count = 1500
    queries = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        sock.settimeout(TIMEOUT)
        for index in range(count):
            query = dns.message.make_query(f"b{index}.default.svc.cluster.local.", "A")
            query.id = index
            queries[index] = query
            sock.sendto(query.to_wire(), server)
        answered: set[int] = set()
        while len(answered) < count:
            reply = dns.message.from_wire(sock.recv(4096))
            assert queries[reply.id].is_response(reply)
            assert reply.answer
            answered.add(reply.id)


def test_garbage_never_stops_the_tcp_server(server: tuple[str, int]) -> None:
    probe = dns.message.make_query("web.default.svc.cluster.local.", "A")
    packets = [
        b"",
        b"\x00",
        header(qdcount=0),
        header() + b"\xc0\x0c",
        os.urandom(200),
        VALID[:20],
        probe.to_wire(),
    ]
    with socket.create_connection(server, timeout=TIMEOUT) as sock:
        sock.sendall(b"".join(len(p).to_bytes(2, "big") + p for p in packets))
        while True:
            reply, _ = dns.query.receive_tcp(sock, time.time() + TIMEOUT)
            if probe.is_response(reply):
                break
    assert reply.answer


# -- every reply parses, and says what the zone says -------------------------------------------------------

LABEL = st.one_of(
    st.binary(min_size=1, max_size=12),
    st.text(alphabet="abcXYZ019-_*", min_size=1, max_size=10).map(str.encode),
)
CASES: st.SearchStrategy[Callable[[bytes], bytes]] = st.sampled_from(
    [bytes.lower, bytes.upper, bytes.swapcase, bytes]
)


@st.composite
def query_names(draw: st.DrawFn) -> dns.name.Name:
    base = dns.name.from_text(draw(st.sampled_from(KNOWN_NAMES)))
    prefix = draw(st.lists(LABEL, max_size=3))
    if draw(st.booleans()):
        base = dns.name.root
        prefix = draw(st.lists(LABEL, max_size=6))
    change = draw(CASES)
    return dns.name.Name([change(label) for label in (*prefix, *base.labels)])


QTYPES = st.one_of(
    st.sampled_from(["A", "AAAA", "CNAME", "SRV", "TXT", "MX", "NS", "PTR", "SOA", "ANY"]).map(
        dns.rdatatype.from_text
    ),
    st.integers(min_value=0, max_value=65535),
)


def query_wire(qid: int, name: dns.name.Name, qtype: int, qclass: int, edns: int | None) -> bytes:
    wire = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0 if edns is None else 1)
    name_wire = name.to_wire()
    assert name_wire is not None
    wire += name_wire + struct.pack("!HH", qtype, qclass)
    if edns is not None:
        wire += b"\x00" + struct.pack("!HHIH", 41, edns, 0, 0)
    return wire


@settings(max_examples=400, deadline=None)
@given(
    qid=st.integers(0, 65535),
    name=query_names(),
    qtype=QTYPES,
    qclass=st.sampled_from([1, 1, 1, 3, 255]),
    edns=st.one_of(st.none(), st.integers(0, 65535)),
    tcp=st.booleans(),
)
def test_every_reply_parses_and_matches_the_zone(
    zone: Zone, qid: int, name: dns.name.Name, qtype: int, qclass: int, edns: int | None, tcp: bool
) -> None:
    responder = Responder(zone)
    query = parse_query(query_wire(qid, name, qtype, qclass, edns))
    wire, rcode = responder.respond(query, 65535 if tcp else query.udp_limit)
    reply = dns.message.from_wire(wire)
    assert reply.id == qid
    assert reply.flags & dns.flags.QR
    assert len(reply.question) == 1
    assert reply.question[0].name.labels == name.labels  # the client's bytes, case included
    assert (reply.edns == 0) == (edns is not None)
    if not tcp:
        assert len(wire) <= query.udp_limit
    if reply.flags & dns.flags.TC:
        assert not tcp or len(wire) > 65535
        assert reply.answer == []
        return
    if qclass == 3 or qtype in (41, 249, 250, 251, 252, 253, 254):
        assert reply.rcode() in (dns.rcode.REFUSED, dns.rcode.NOTIMP, dns.rcode.FORMERR)
        return
    expected = zone.resolve(name, qtype)
    assert reply.rcode() == expected.rcode == rcode
    assert reply.answer == list(expected.answer)
    assert [r.ttl for r in reply.answer] == [r.ttl for r in expected.answer]
    assert reply.authority == list(expected.authority)


@given(labels=st.lists(st.binary(min_size=1, max_size=20), max_size=8))
def test_qname_text_matches_dnspython(labels: list[bytes]) -> None:
    name = dns.name.Name([*labels, b""])
    wire = name.to_wire()
    assert wire is not None
    assert qname_text(wire) == name.to_text()


# -- the query log -----------------------------------------------------------------------------------------


def test_query_log_lines(zone: Zone, tmp_path: Path) -> None:
    path = tmp_path / "queries.tsv"
    with NameserverThread(zone, querylog=path) as ns:
        endpoint = ns.endpoints[0]
        ask(endpoint, "Web.Default.svc.cluster.local.", "AAAA", edns=1232)
        ask(endpoint, "nope.cluster.local.", "A", tcp=True)
        ask(endpoint, "big.example.test.", "A")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"\x00\x01", endpoint)  # unreadable: dropped
            sock.sendto(header(qdcount=0), endpoint)  # FORMERR
            sock.settimeout(TIMEOUT)
            sock.recvfrom(512)
    lines = path.read_text().splitlines(keepends=True)
    assert lines[0] == HEADER + "\n"
    entries = list(read_querylog(lines))
    assert [(e.proto, e.qname, e.qtype, e.edns, e.fault, e.rcode) for e in entries] == [
        ("udp", "Web.Default.svc.cluster.local.", "AAAA", 1232, None, "NOERROR"),
        ("tcp", "nope.cluster.local.", "A", None, None, "NXDOMAIN"),
        ("udp", "big.example.test.", "A", None, None, "NOERROR"),
        ("udp", "-", "-", None, None, "drop"),
        ("udp", "-", "-", None, None, "formerr"),
    ]
    assert all(e.client == "127.0.0.1" and e.port > 0 for e in entries)
    assert entries[4].id == 0x1234
    assert entries[3].id is None
    assert all(abs(e.time - time.time()) < 60 for e in entries)


def test_query_log_is_flushed_while_running(zone: Zone, tmp_path: Path) -> None:
    path = tmp_path / "queries.tsv"
    with NameserverThread(zone, querylog=path) as ns:
        ask(ns.endpoints[0], "web.default.svc.cluster.local.")
        deadline = time.monotonic() + 2.0
        while len(path.read_text().splitlines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(path.read_text().splitlines()) == 2


def test_query_log_writer_format_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text(
        HEADER + "\n1.000000\tudp\t127.0.0.1\t5\t7\ta.\tA\t-\t-\tNOERROR\n2.0\tudp\t127.0"
    )  # crashed
    wire = dns.name.from_text("x y.Example.").to_wire()
    assert wire is not None
    with QueryLog(path, clock=lambda: 1700000000.25) as querylog:
        querylog.record("tcp", ("::1", 53000), 9, wire, 65534, 4096, "servfail-storm", "SERVFAIL")
    lines = path.read_text().splitlines()
    assert lines[1:] == [
        "1.000000\tudp\t127.0.0.1\t5\t7\ta.\tA\t-\t-\tNOERROR",
        "1700000000.250000\ttcp\t::1\t53000\t9\tx\\032y.Example.\tTYPE65534\t4096\tservfail-storm\tSERVFAIL",
    ]


def test_read_querylog_tolerates_a_cut_last_line() -> None:
    good = "1.5\tudp\t127.0.0.1\t5\t7\ta.\tA\t-\t-\tNOERROR\n"
    assert len(list(read_querylog([HEADER + "\n", good, good, "2.0\tudp\t127"]))) == 2
    assert len(list(read_querylog([good, good[:-8]]))) == 1  # parses, but lost its newline: cut
    with pytest.raises(NameserverError, match="line 2"):
        list(read_querylog([good, "garbage\n", good]))


# -- binding -----------------------------------------------------------------------------------------------


def test_taken_udp_port(zone: Zone) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(NameserverError) as caught, NameserverThread(zone, [("127.0.0.1", port)]):
            pass
    assert (
        str(caught.value)
        == f"cannot listen on 127.0.0.1:{port}/udp: address already in use; pick another --port"
    )


def test_taken_tcp_port(zone: Zone) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            NameserverError, match=rf"^cannot listen on 127\.0\.0\.1:{port}/tcp: address already in use"
        ):
            NameserverThread(zone, [("127.0.0.1", port)]).start()


def test_port_zero_gives_udp_and_tcp_the_same_port(zone: Zone) -> None:
    with NameserverThread(zone, [("127.0.0.1", 0), ("127.0.0.1", 0)]) as ns:
        assert len({port for _, port in ns.endpoints}) == 2
        for endpoint in ns.endpoints:
            assert ask(endpoint, "web.default.svc.cluster.local.", tcp=True).answer
            assert ask(endpoint, "web.default.svc.cluster.local.").answer


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("10.1.2.3", "not a loopback address"),
        ("0.0.0.0", "not a loopback address"),
        ("localhost", "not an IP address"),
    ],
)
def test_only_loopback_by_default(zone: Zone, address: str, words: str) -> None:
    with pytest.raises(NameserverError, match=words):
        Nameserver(zone, [(address, 5353)])


def test_non_loopback_when_allowed_reports_a_missing_address(zone: Zone) -> None:
    with pytest.raises(NameserverError, match=r"192\.0\.2\.1:5353/udp: address not available"):
        NameserverThread(zone, [("192.0.2.1", 5353)], allow_non_loopback=True).start()


# -- the policy hook and serve_forever ---------------------------------------------------------------------


class FirstLabelFaults:
    """A test policy: the query's first label names the fault."""

    FAULTS: ClassVar[dict[bytes, Fault]] = {
        b"servfail": Fault("servfail", rcode=dns.rcode.SERVFAIL),
        b"refused": Fault("refused", rcode=dns.rcode.REFUSED),
        b"drop": Fault("drop", drop=True),
        b"slow": Fault("slow", delay=0.3),
        b"tc": Fault("tc", truncate=True),
    }

    def fault_for(self, query: Query, proto: str, client: tuple[str, int]) -> Fault | None:
        first = query.key[1 : 1 + query.key[0]]
        return self.FAULTS.get(first)


def test_policy_faults(zone: Zone, tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    with NameserverThread(zone, querylog=path, policy=FirstLabelFaults()) as ns:
        endpoint = ns.endpoints[0]
        assert ask(endpoint, "servfail.default.svc.cluster.local.").rcode() == dns.rcode.SERVFAIL
        assert ask(endpoint, "refused.default.svc.cluster.local.", tcp=True).rcode() == dns.rcode.REFUSED
        assert ask(endpoint, "tc.default.svc.cluster.local.").flags & dns.flags.TC
        started = time.monotonic()
        assert ask(endpoint, "slow.default.svc.cluster.local.").answer
        assert time.monotonic() - started >= 0.25
        query = dns.message.make_query("drop.default.svc.cluster.local.", "A")
        with pytest.raises(dns.exception.Timeout):
            dns.query.udp(query, endpoint[0], port=endpoint[1], timeout=0.3)
        assert ask(endpoint, "fine.default.svc.cluster.local.").answer
    entries = list(read_querylog(path.read_text().splitlines(keepends=True)))
    assert [(e.fault, e.rcode) for e in entries] == [
        ("servfail", "SERVFAIL"),
        ("refused", "REFUSED"),
        ("tc", "NOERROR"),
        ("slow", "NOERROR"),
        ("drop", "drop"),
        (None, "NOERROR"),
    ]


def test_serve_forever_until_sigterm() -> None:
    code = (
        "import sys\n"
        "from dnsprobe.nameserver import Zone, serve_forever\n"
        "zone = Zone.from_text(sys.stdin.read())\n"
        "serve_forever(zone, on_ready=lambda endpoints: print(endpoints[0][1], flush=True))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(ZONE_TEXT)
        proc.stdin.close()
        port = int(proc.stdout.readline())
        try:
            assert ask(("127.0.0.1", port), "web.default.svc.cluster.local.").answer
        finally:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
