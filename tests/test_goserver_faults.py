"""Fault rules on both engines: the same packets get the same bytes, the same timing class and the same
query-log lines from the Go engine as from the Python engine (the reference).

Each exchange sends the packet, then a marker query that no rule touches. Both engines answer one socket
in order (the Go engine here runs one reader goroutine), so a reply before the marker's was answered at
once, none before it was delayed or dropped: the timing class is read from the order, not from a clock.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsprobe.nameserver import NameserverThread, Zone
from dnsprobe.nameserver.faults import RulePolicy, compile_rules, glob_regex, glob_steps, server_seed
from dnsprobe.nameserver.goengine import GoNameserver
from dnsprobe.scenario import FaultRule
from tests.test_goserver import NAMES, ZONE_TEXT, query

MARKER = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0) + b"\x06marker\x04test\x00\x00\x01\x00\x01"
WAIT = 3.0  # seconds to wait for any reply
AFTER = 1.0  # seconds to wait for a delayed reply once the marker's is in (the longest delay here: 0.3 s)


@dataclass
class Seen:
    reply: bytes | None
    timing: str  # "answered" (before the marker), "delayed" (after it), "dropped"
    seconds: float  # from sending to the reply (or to giving up)


def exchange(packet: bytes, endpoint: tuple[str, int], wait: float = AFTER) -> Seen:
    """Send packet and marker; return once both replies are in, or `wait` after the marker's."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(WAIT)
        sent = time.monotonic()
        sock.sendto(packet, endpoint)
        sock.sendto(MARKER, endpoint)
        marked = False
        seen: Seen | None = None
        while True:
            try:
                reply = sock.recv(65535)
            except TimeoutError:
                return seen or Seen(None, "dropped", time.monotonic() - sent)
            if reply[:2] == MARKER[:2] and reply[12 : len(MARKER)] == MARKER[12:] and reply != MARKER:
                marked = True
                if seen is not None:
                    return seen
                sock.settimeout(wait)
                continue
            seen = Seen(reply, "delayed" if marked else "answered", time.monotonic() - sent)
            if marked:
                return seen


def rcode_of(seen: Seen) -> int:
    """The reply's rcode; a dropped query fails the test here."""
    assert seen.reply is not None, seen
    return int(dns.message.from_wire(seen.reply).rcode())


def tcp_exchange(packets: list[bytes], endpoint: tuple[str, int], quiet: float = 0.5) -> list[bytes]:
    replies = []
    with socket.create_connection(endpoint, timeout=WAIT) as sock:
        sock.sendall(b"".join(len(p).to_bytes(2, "big") + p for p in packets))
        sock.settimeout(quiet)
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


def rules(*specs: dict[str, Any]) -> list[FaultRule]:
    return [FaultRule.model_validate(spec) for spec in specs]


class Pair:
    """Both engines with the same rules and seed, each with its own query log."""

    def __init__(self, zone: Zone, logs: Path, faults: list[FaultRule], seed: int = 1) -> None:
        self.logs = logs
        policy = RulePolicy(faults, seed=server_seed(seed, 0))
        self.python = NameserverThread(zone, querylog=logs / "python.tsv", policy=policy)
        self.go = GoNameserver(zone, querylog=logs / "go.tsv", workers=1, faults=[faults], seed=seed)
        self._policy = policy

    def __enter__(self) -> Pair:
        self.python.start()
        self._policy.restart_clock()
        try:
            self.go.start()
        except BaseException:
            self.python.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.go.stop()
        self.python.stop()

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        return [self.python.endpoints[0], self.go.endpoints[0]]

    def both(self, packet: bytes, wait: float = AFTER) -> tuple[Seen, Seen]:
        python, go = (exchange(packet, endpoint, wait) for endpoint in self.endpoints)
        return python, go

    def logs_say_the_same(self) -> list[list[str]]:
        self.go.stop()
        self.python.stop()
        python = (self.logs / "python.tsv").read_text(encoding="utf-8").splitlines()
        go = (self.logs / "go.tsv").read_text(encoding="utf-8").splitlines()

        def comparable(line: str) -> list[str]:
            fields = line.split("\t")
            return fields[1:3] + fields[4:]  # time and client port differ

        assert [comparable(line) for line in go] == [comparable(line) for line in python]
        return [comparable(line) for line in go[1:]]


@pytest.fixture(scope="module")
def zone() -> Zone:
    return Zone.from_text(ZONE_TEXT, "test zone")


WEB = "web.default.svc.cluster.local."
FIXED_KINDS: dict[str, dict[str, Any]] = {
    "drop": {"action": "drop"},
    "outage": {"action": "outage", "end_s": 3600},
    "servfail": {"action": "servfail"},
    "refused": {"action": "refused"},
    "nxdomain": {"action": "nxdomain"},
    "truncate": {"action": "truncate"},
    "oversize": {"action": "oversize"},
    "garbage": {"action": "garbage"},
    "wrong_id": {"action": "wrong_id"},
    "wrong_question": {"action": "wrong_question"},
    "tc_bit": {"action": "tc_bit"},
    "delay": {"action": "delay", "delay_ms": 300},
    "formerr": {"action": "formerr"},
    "lame_nodata": {"action": "lame_nodata"},
    "uncompressed": {"action": "uncompressed"},
}
# stale_flows: tested on its own below (its gate needs packets before and after its time)
PACKETS = [
    query(WEB, 1),
    query(WEB, 28, edns=1232),
    query("big.example.test.", 1),
    query("big.example.test.", 1, edns=4096),
    query("nx.example.test.", 1, qid=0),
    query("x.alias.cluster.local.", 255, flags=0x0110),
    query("example.test.", 6, edns=512),
]


@pytest.mark.parametrize("kind", list(FIXED_KINDS))
def test_each_fault_kind_gets_the_same_bytes_timing_and_log(zone: Zone, tmp_path: Path, kind: str) -> None:
    faults = rules({**FIXED_KINDS[kind], "name": "[!m]*"})  # every name but the marker
    with Pair(zone, tmp_path, faults) as pair:
        seen = [pair.both(packet, wait=WAIT if kind == "delay" else 0.2) for packet in PACKETS]
        for packet, (python, go) in zip(PACKETS, seen, strict=True):
            assert go.reply == python.reply, (kind, packet)
            assert go.timing == python.timing, (kind, packet)
        timings = {python.timing for python, _ in seen}
        expected = {"drop": "dropped", "outage": "dropped", "delay": "delayed"}.get(kind, "answered")
        assert timings == {expected}
        if kind == "delay":
            for python, go in seen:  # delayed by the same amount, within a generous tolerance
                assert (
                    0.29 <= python.seconds < WAIT and 0.29 <= go.seconds < WAIT
                )  # asyncio fires a hair early
        over_tcp = [query(WEB, 1), query("big.example.test.", 1)]
        quiet = 1.5 if kind == "delay" else 0.5
        go_tcp, python_tcp = (tcp_exchange(over_tcp, e, quiet) for e in reversed(pair.endpoints))
        if kind == "delay":  # two replies due at once: RFC 7766 lets them go in any order, Go's timers do
            go_tcp, python_tcp = sorted(go_tcp), sorted(python_tcp)
        assert go_tcp == python_tcp
        lines = pair.logs_say_the_same()
    faulted = [line for line in lines if line[3] != "marker.test."]  # proto client id qname type edns fault
    assert faulted and {line[6] for line in faulted} == {kind}


def test_selectors_name_type_protocol_and_window(zone: Zone, tmp_path: Path) -> None:
    faults = rules(
        {"action": "servfail", "qtype": ["AAAA", "MX"]},
        {"action": "refused", "proto": "tcp"},
        {"action": "nxdomain", "name": "*.alias.cluster.local"},
        {"action": "drop", "name": "w?b.*", "start_s": 3600},  # not yet
        {"action": "drop", "name": "w?b.*", "start_s": 3600, "end_s": 3700, "period_s": 7200},  # not now
        {"action": "truncate", "name": "w[a-e]b.default.svc.cluster.local"},
        {"action": "tc_bit", "name": "_http._tcp.*", "end_s": 3600},  # now
    )
    packets = [query(name, qtype) for name in NAMES for qtype in (1, 28, 15, 33, 65300)]
    with Pair(zone, tmp_path, faults) as pair:
        for packet in packets:
            python, go = pair.both(packet)
            assert (go.reply, go.timing) == (python.reply, python.timing)
        tcp = [query(WEB, 1), query(WEB, 28)]
        assert tcp_exchange(tcp, pair.endpoints[1]) == tcp_exchange(tcp, pair.endpoints[0])
        lines = pair.logs_say_the_same()
    assert {"servfail", "refused", "nxdomain", "truncate", "tc_bit", "-"} == {line[6] for line in lines}


def test_edns_selector_formerr_and_lame_nodata_on_both(zone: Zone, tmp_path: Path) -> None:
    faults = rules(
        {"action": "formerr", "name": "[!m]*", "edns": "present", "qtype": "A"},
        {"action": "drop", "name": "[!m]*", "edns": "present", "qtype": "AAAA"},
        {"action": "lame_nodata", "name": "[!m]*", "edns": "absent", "qtype": "AAAA"},
    )
    packets = [query(WEB, qtype, edns=edns) for qtype in (1, 28) for edns in (None, 1232)]
    with Pair(zone, tmp_path, faults) as pair:
        seen = [pair.both(packet) for packet in packets]
        lines = pair.logs_say_the_same()
    for python, go in seen:
        assert (go.reply, go.timing) == (python.reply, python.timing)
    (a_plain, a_edns, aaaa_plain, aaaa_edns) = (python for python, _ in seen)
    assert a_plain.reply is not None and dns.message.from_wire(a_plain.reply).answer  # untouched
    formerr = a_edns.reply
    assert formerr is not None
    flags, counts = struct.unpack("!H", formerr[2:4])[0], struct.unpack("!HHHH", formerr[4:12])
    assert flags & 0xF == 1 and counts == (1, 0, 0, 0)  # FORMERR, the question, no OPT
    assert aaaa_edns.timing == "dropped"
    lame = aaaa_plain.reply
    assert lame is not None
    flags, counts = struct.unpack("!H", lame[2:4])[0], struct.unpack("!HHHH", lame[4:12])
    assert flags & 0xF == 0 and not flags & 0x0480 and flags & 0x8000 and counts == (1, 0, 0, 0)
    assert [line[6] for line in lines if line[3] != "marker.test."] == [
        "-",
        "formerr",
        "lame_nodata",
        "drop",
    ]


def _ask_from(sock: socket.socket, packet: bytes, endpoint: tuple[str, int]) -> bytes | None:
    sock.sendto(packet, endpoint)
    try:
        return sock.recv(65535)
    except TimeoutError:
        return None


def test_stale_flows_drop_old_client_ports_only_in_their_window_on_both(zone: Zone, tmp_path: Path) -> None:
    # Flows first seen before 0.8 s are ignored from 0.8 s to 2.0 s; new flows are answered throughout.
    # Generous margins: every step is at least 0.5 s from a boundary.
    faults = rules({"action": "stale_flows", "name": "[!m]*", "start_s": 0.8, "end_s": 2.0})
    packet = query(WEB, 1)
    with Pair(zone, tmp_path, faults) as pair:
        started = time.monotonic()
        old = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in pair.endpoints]
        for sock in old:
            sock.settimeout(0.3)
        try:
            before = [_ask_from(sock, packet, e) for sock, e in zip(old, pair.endpoints, strict=True)]
            time.sleep(max(0.0, 1.3 - (time.monotonic() - started)))
            during_old = [_ask_from(sock, packet, e) for sock, e in zip(old, pair.endpoints, strict=True)]
            during_new = [exchange(packet, e, 0.3).reply for e in pair.endpoints]
            time.sleep(max(0.0, 2.6 - (time.monotonic() - started)))
            after = [_ask_from(sock, packet, e) for sock, e in zip(old, pair.endpoints, strict=True)]
        finally:
            for sock in old:
                sock.close()
        lines = pair.logs_say_the_same()
    for python, go in (before, during_new, after):
        assert python is not None and go == python
    assert during_old == [None, None]
    assert [line[6] for line in lines if line[3] != "marker.test."].count("stale_flows") == 1


def test_socket_gap_closes_the_port_and_binds_it_again_on_both(zone: Zone, tmp_path: Path) -> None:
    # The UDP socket is closed from 0.6 s to 1.6 s: a query in between meets a closed port (ICMP port
    # unreachable: a connected client socket reports it as ConnectionRefusedError); before and after,
    # an answer. Every step is at least 0.4 s from a boundary.
    python = NameserverThread(zone, querylog=tmp_path / "python.tsv", gaps=[(0.6, 1.6)])
    go = GoNameserver(zone, querylog=tmp_path / "go.tsv", workers=1, gaps=[[(0.6, 1.6)]])
    packet = query(WEB, 1)

    def ask(endpoint: tuple[str, int]) -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            sock.connect(endpoint)
            sock.send(packet)
            try:
                return "answered" if sock.recv(65535) else "empty"
            except ConnectionRefusedError:
                return "refused"
            except TimeoutError:
                return "silent"

    python.start()
    try:
        go.start()
        try:
            started = time.monotonic()
            endpoints = [python.endpoints[0], go.endpoints[0]]
            seen = [[ask(e) for e in endpoints]]
            time.sleep(max(0.0, 1.1 - (time.monotonic() - started)))
            seen.append([ask(e) for e in endpoints])
            time.sleep(max(0.0, 2.2 - (time.monotonic() - started)))
            seen.append([ask(e) for e in endpoints])
        finally:
            go.stop()
    finally:
        python.stop()
    assert seen == [["answered"] * 2, ["refused"] * 2, ["answered"] * 2]
    python_log = (tmp_path / "python.tsv").read_text().splitlines()
    go_log = (tmp_path / "go.tsv").read_text().splitlines()
    assert len(python_log) == len(go_log) == 3  # the header and the two answered queries


def test_rate_limit_refuses_beyond_the_rate_on_both(zone: Zone, tmp_path: Path) -> None:
    faults = rules({"action": "ratelimit", "rate": 2, "over": "refused", "name": "*.cluster.local"})
    with Pair(zone, tmp_path, faults) as pair:
        for endpoint in pair.endpoints:
            started = time.monotonic()
            rcodes = [rcode_of(exchange(query(WEB, 1), endpoint)) for _ in range(12)]
            budget = 2 + 2 * (time.monotonic() - started) + 1  # the bucket's depth, its refill, rounding
            assert rcodes[:2] == [0, 0]
            assert 2 <= rcodes.count(0) <= budget and 5 in rcodes
        lines = pair.logs_say_the_same()
    assert {line[6] for line in lines if line[7] == "REFUSED"} == {"ratelimit"}


def test_conntrack_race_drops_the_second_packet_from_one_port_on_both(zone: Zone, tmp_path: Path) -> None:
    faults = rules({"action": "conntrack_race", "window_ms": 2000, "name": "*.svc.cluster.local"})
    with Pair(zone, tmp_path, faults) as pair:
        for endpoint in pair.endpoints:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(1.0)
                sock.sendto(query(WEB, 1, qid=1), endpoint)
                sock.sendto(query(WEB, 28, qid=2), endpoint)
                first = sock.recv(65535)
                with pytest.raises(TimeoutError):
                    sock.recv(65535)  # the AAAA lost the race
            assert first[:2] == b"\x00\x01"
            assert exchange(query(WEB, 28), endpoint).timing == "answered"  # another port: no race
        lines = pair.logs_say_the_same()
    assert [line[6:] for line in lines if line[6] != "-"] == [["conntrack_race", "drop"]]


def question_of(reply: bytes) -> tuple[str, int]:
    message = dns.message.from_wire(reply)
    return message.question[0].name.to_text().lower(), message.question[0].rdtype


def test_swap_replies_cross_wires_a_pair_on_both(zone: Zone, tmp_path: Path) -> None:
    """Each reply of a pair goes to the other query's port under the other query's ID: each socket gets
    its own ID with the other question (golang/go#35521); a lone query is answered as it is after W."""
    faults = rules({"action": "swap_replies", "window_ms": 400, "name": "*.svc.cluster.local"})
    api = "api.default.svc.cluster.local."
    with Pair(zone, tmp_path, faults) as pair:
        for endpoint in pair.endpoints:
            # Go's way: A and AAAA from two sockets
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as one,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as two,
            ):
                one.settimeout(WAIT)
                two.settimeout(WAIT)
                one.sendto(query(WEB, 1, qid=11), endpoint)
                time.sleep(0.05)  # the first is held, not lost
                two.sendto(query(WEB.upper(), 28, qid=22), endpoint)
                to_one, to_two = one.recv(65535), two.recv(65535)
            assert to_one[:2] == (11).to_bytes(2, "big") and question_of(to_one) == (WEB, 28)
            assert to_two[:2] == (22).to_bytes(2, "big") and question_of(to_two) == (WEB, 1)
            assert dns.message.from_wire(to_one).answer[0].rdtype == 28  # the AAAA records, whole
            # glibc's and musl's way: both from one socket
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(WAIT)
                sock.sendto(query(api, 1, qid=33), endpoint)
                sock.sendto(query(api, 28, qid=44), endpoint)
                got = [sock.recv(65535) for _ in range(2)]
            by_id = {int.from_bytes(reply[:2], "big"): question_of(reply) for reply in got}
            assert by_id == {33: (api, 28), 44: (api, 1)}
            # a lone query waits out the window, then gets its own answer
            lone = exchange(query("solo.default.svc.cluster.local.", 1, qid=55), endpoint, wait=2.0)
            assert lone.timing == "delayed" and lone.seconds >= 0.35 and lone.reply is not None
            assert lone.reply[:2] == (55).to_bytes(2, "big")
            assert question_of(lone.reply) == ("solo.default.svc.cluster.local.", 1)
            assert exchange(query(WEB, 1, qid=66), endpoint, wait=2.0).timing == "delayed"  # no partner
            # TCP is never paired
            (over_tcp,) = tcp_exchange([query(WEB, 28, qid=77)], endpoint)
            assert over_tcp[:2] == (77).to_bytes(2, "big") and question_of(over_tcp) == (WEB, 28)
        lines = pair.logs_say_the_same()
    assert [line[6] for line in lines if line[6] != "-"] == ["swap_replies"] * 6


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_packets_through_every_fault_get_the_same_reply(data: st.DataObject, fuzz: Pair) -> None:
    from tests.test_goserver import packets

    packet = data.draw(packets())
    python, go = fuzz.both(packet, wait=0.2)  # the longest delay here: 50 ms
    assert go.reply == python.reply
    assert go.timing == python.timing


@pytest.fixture(scope="module")
def fuzz(zone: Zone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    faults = rules(
        {"action": "servfail", "qtype": "AAAA", "name": "*.svc.cluster.local"},
        {"action": "refused", "qtype": "MX"},
        {"action": "truncate", "qtype": "TXT"},
        {"action": "garbage", "qtype": "SRV"},
        {"action": "wrong_id", "qtype": "PTR"},
        {"action": "wrong_question", "qtype": "NS"},
        {"action": "tc_bit", "qtype": "SOA"},
        {"action": "oversize", "name": "big.*"},
        {"action": "nxdomain", "qtype": "ANY"},
        {"action": "drop", "qtype": "CNAME"},
        {"action": "delay", "delay_ms": 50, "qtype": "TYPE99"},
        {"action": "outage", "name": "*[0-9]x*", "end_s": 3600},
    )
    with Pair(zone, tmp_path_factory.mktemp("fuzz"), faults) as both:
        yield both


def test_probability_rules_agree_in_distribution_and_replay(zone: Zone, tmp_path: Path) -> None:
    faults = rules({"action": "servfail", "probability": 0.3, "name": "*.default.svc.cluster.local"})
    sent = [query(f"n{i}.default.svc.cluster.local.", 1, qid=i) for i in range(800)]
    outcomes: dict[str, list[list[int]]] = {"python": [], "go": []}
    for run in range(2):
        (tmp_path / str(run)).mkdir()
        with Pair(zone, tmp_path / str(run), faults, seed=42) as pair:
            for engine, endpoint in zip(("python", "go"), pair.endpoints, strict=True):
                seen = [exchange(packet, endpoint) for packet in sent]
                outcomes[engine].append([rcode_of(s) for s in seen])
    for engine, runs in outcomes.items():
        assert runs[0] == runs[1], f"{engine}: the same seed replays the same fates"
        share = runs[0].count(2) / len(sent)
        assert 0.3 - 0.065 < share < 0.3 + 0.065, (engine, share)  # 4 standard deviations
    python, go = (outcomes[e][0].count(2) / len(sent) for e in ("python", "go"))
    assert abs(python - go) < 0.09  # two binomials of 800: the difference has a deviation of 0.023


def test_another_seed_draws_other_fates(zone: Zone, tmp_path: Path) -> None:
    faults = rules({"action": "drop", "probability": 0.5, "name": "*.default.svc.cluster.local"})
    fates = []
    for seed in (1, 2):
        (tmp_path / str(seed)).mkdir()
        with Pair(zone, tmp_path / str(seed), faults, seed=seed) as pair:
            sent = [query(f"n{i}.default.svc.cluster.local.", 1) for i in range(60)]
            fates.append([exchange(p, pair.endpoints[1], wait=0.05).timing for p in sent])
    assert fates[0] != fates[1]


# -- the compiled form -----------------------------------------------------------------------------------

GLOB = st.one_of(
    st.text(alphabet="ab.*?[]!-", min_size=1, max_size=8),
    st.text(alphabet="ab.-", max_size=6).map(lambda tail: "*" + tail),  # a name's tail
    st.lists(st.sampled_from(["*", "a", "b", ".", "?", "[ab]", "[!a]", "[a-]", "[]a]"]), max_size=6).map(
        lambda parts: "".join(parts) or "a"
    ),
)
NAME = st.text(alphabet="ab.-!]", min_size=0, max_size=8)


@settings(max_examples=500, deadline=None)
@given(glob=GLOB, name=NAME)
def test_glob_expression_means_what_fnmatch_means(glob: str, name: str) -> None:
    pattern = glob.lower() if glob.endswith((".", "*")) else glob.lower() + "."
    expression = glob_regex(glob)
    text = name + "."
    want = fnmatchcase(text, pattern)
    got = True if expression is None else re.fullmatch(expression, text, re.S) is not None
    assert got == want, (glob, expression, text)
    steps = glob_steps(glob)  # what the Go engine tests instead, as globMatch in faults.go walks them
    assert (steps is None or steps_match(steps, text)) == want, (glob, steps, text)


def steps_match(steps: list[str | None], text: str) -> bool:
    """globMatch of goserver/faults.go, line for line (its Go test checks the Go side on cases)."""
    si = ti = 0
    star_step, star_text = -1, 0
    while ti < len(text):
        if si < len(steps):
            step = steps[si]
            if step is None:
                star_step, star_text = si, ti
                si += 1
                continue
            if text[ti] in step:
                si += 1
                ti += 1
                continue
        if star_step < 0:
            return False
        star_text += 1
        si, ti = star_step + 1, star_text
    while si < len(steps) and steps[si] is None:
        si += 1
    return si == len(steps)


def test_compiled_rules_are_plain_json_for_both_engines() -> None:
    (delay, limit, race) = compile_rules(
        rules(
            {
                "action": "delay",
                "delay_ms": 20,
                "jitter_ms": 5,
                "distribution": "normal",
                "qtype": ["A", "AAAA"],
            },
            {"action": "ratelimit", "rate": 1024, "proto": "udp"},
            {"action": "conntrack_race", "window_ms": 50, "name": "*.svc.cluster.local"},
        )
    )
    assert delay["match"]["qtypes"] == [1, 28] and delay["match"]["name"] is None
    assert delay["act"]["delay"] == {"dist": "normal", "mean_s": 0.02, "spread_s": 0.005}
    assert limit["gate"] == {"kind": "ratelimit", "rate": 1024} and limit["act"]["drop"] is True
    assert race["gate"] == {"kind": "race", "window_s": 0.05}
    assert race["match"]["name_steps"] == [None, *".svc.cluster.local."]
    assert re.fullmatch(race["match"]["name"], "web.default.svc.cluster.local.")
    assert not re.fullmatch(race["match"]["name"], "svc.cluster.local.")


def test_dnsprobe_serve_runs_fault_rules_on_the_go_engine(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.test_goserver import ROOT, _free_port

    scenario = tmp_path / "faulty.toml"
    text = (ROOT / "scenarios" / "quickstart.toml").read_text(encoding="utf-8")
    text = text.replace("[nameserver]\n", "[nameserver]\nfault_seed = 3\n", 1)
    assert "fault_seed" in text
    scenario.write_text(
        text + '\n[[nameserver.faults]]\naction = "servfail"\nqtype = "AAAA"\n', encoding="utf-8"
    )
    port = _free_port()
    argv = [sys.executable, "-m", "dnsprobe", "serve", str(scenario), "--port", str(port)]
    server = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert server.stdout is not None
        assert b"(udp and tcp, go engine, fault seed 3)" in server.stdout.readline()
        aaaa = exchange(query("x1.api.example.test.", 28), ("127.0.0.1", port))
        a = exchange(query("x1.api.example.test.", 1), ("127.0.0.1", port))
        assert aaaa.reply is not None and dns.message.from_wire(aaaa.reply).rcode() == 2
        assert a.reply is not None and dns.message.from_wire(a.reply).answer
    finally:
        server.terminate()
        server.wait(timeout=15)
        if server.stdout is not None:
            server.stdout.close()


def test_each_address_gets_its_own_rules(zone: Zone) -> None:
    faults = [rules({"action": "servfail"}), []]
    with GoNameserver(zone, [("127.0.0.1", 0), ("127.0.0.2", 0)], faults=faults, seed=5) as ns:
        first, second = (exchange(query(WEB, 1), endpoint) for endpoint in ns.endpoints)
    assert first.reply is not None and dns.message.from_wire(first.reply).rcode() == 2
    assert second.reply is not None and dns.message.from_wire(second.reply).answer


def test_a_run_gets_one_fault_seed_for_every_mode() -> None:
    from dnsprobe.nameserver.group import with_fault_seed
    from dnsprobe.scenario import Scenario

    base = {"name": "s", "load": {"workloads": [{"label": "x", "query": "{rand}.web"}]}}
    zone_text = "x.test. 30 A 192.0.2.1"
    plain = Scenario.model_validate({**base, "nameserver": {"zone": zone_text}})
    assert with_fault_seed(plain).nameserver.fault_seed is None  # nothing to draw for
    faulty = Scenario.model_validate(
        {**base, "nameserver": {"zone": zone_text, "faults": [{"action": "drop", "probability": 0.5}]}}
    )
    seeded = with_fault_seed(faulty)
    assert seeded.nameserver.fault_seed is not None and faulty.nameserver.fault_seed is None
    pinned = faulty.model_copy(update={"nameserver": faulty.nameserver.model_copy(update={"fault_seed": 9})})
    assert with_fault_seed(pinned).nameserver.fault_seed == 9  # a scenario's own seed replays


TRICKY_GLOBS = ["*a*b*", "a*", "[!a]*", "?.*", "*.", "**.test", "[a-]b*", "[]]*", "x[", "w?b*.*l"]
GLOB_NAMES = ["ab.test.", "a.test.", "xaxb.", "b.test.", "]x.", "x[.", "-b.", "web.cluster.local.", "."]


@pytest.mark.parametrize("glob", TRICKY_GLOBS)
def test_name_globs_select_the_same_names_on_both_engines(zone: Zone, tmp_path: Path, glob: str) -> None:
    with Pair(zone, tmp_path, rules({"action": "refused", "name": glob})) as pair:
        for name in GLOB_NAMES:
            python, go = pair.both(query(dns.name.from_text(name), 1), wait=0.2)
            assert python.reply is not None and go.reply == python.reply, (glob, name)
            refused = dns.message.from_wire(python.reply).rcode() == 5
            assert refused == fnmatchcase(name, glob if glob.endswith((".", "*")) else glob + "."), name


def test_uncompressed_answers_hold_the_same_records_written_out(zone: Zone, tmp_path: Path) -> None:
    packets = [query(WEB, 1), query("big.example.test.", 1, edns=4096), query("x.alias.cluster.local.", 1)]
    plain = NameserverThread(zone)
    with Pair(zone, tmp_path, rules({"action": "uncompressed", "name": "[!m]*"})) as pair:
        plain.start()
        try:
            for packet in packets:
                python, go = pair.both(packet)
                assert python.reply is not None and go.reply == python.reply
                normal = exchange(packet, plain.endpoints[0]).reply
                assert normal is not None
                got, want = dns.message.from_wire(python.reply), dns.message.from_wire(normal)
                assert got.answer == want.answer and got.authority == want.authority and got.answer
                assert b"\xc0\x0c" not in python.reply[12:] and len(python.reply) > len(normal)
        finally:
            plain.stop()
