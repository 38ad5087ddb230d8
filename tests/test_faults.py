"""Fault rules: how the scenario says them (and how a mistake is reported), and what the real server
sends for each, checked with dnspython on loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsprobe.cli import main
from dnsprobe.errors import ScenarioError
from dnsprobe.nameserver import NameserverThread, Zone, read_querylog
from dnsprobe.nameserver.faults import RulePolicy
from dnsprobe.scenario import FaultRule, parse_scenario

ZONE_TEXT = (
    "example.test. 30 SOA ns.example.test. h.example.test. 1 7200 1800 86400 30\n"
    "*.api.example.test. 30 A 192.0.2.10\n"
    "*.api.example.test. 30 AAAA 2001:db8::10\n"
)


def scenario(faults: list[dict[str, Any]], **nameserver: Any) -> dict[str, Any]:
    return {
        "name": "f",
        "load": {"workloads": [{"label": "x", "query": "{rand}.api.example.test"}]},
        "nameserver": {"zone": ZONE_TEXT, "faults": faults, **nameserver},
    }


@pytest.mark.parametrize(
    ("faults", "field", "words"),
    [
        ([{"action": "explode"}], "nameserver.faults[0].action", "Input should be"),
        ([{"action": "delay"}], "nameserver.faults[0]", "needs delay_ms"),
        ([{"action": "drop", "delay_ms": 5}], "nameserver.faults[0]", "delay_ms only applies"),
        ([{"action": "drop", "qtype": "AAAAA"}], "nameserver.faults[0].qtype", "unknown query type"),
        ([{"action": "drop", "probability": 2}], "nameserver.faults[0].probability", "less than or equal"),
        ([{"action": "outage"}], "nameserver.faults[0]", "needs a window"),
        ([{"action": "ratelimit"}], "nameserver.faults[0]", "needs rate"),
        ([{"action": "drop", "start_s": 5, "end_s": 1}], "nameserver.faults[0]", "must be after"),
        ([{"action": "drop", "name": "a b"}], "nameserver.faults[0].name", "not a name glob"),
        ([{"action": "drop", "bogus": 1}], "nameserver.faults[0].bogus", "unknown key"),
    ],
)
def test_bad_rules_name_file_and_field(faults: list[dict[str, Any]], field: str, words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(scenario(faults), source="s.toml")
    assert caught.value.field == field
    assert words in caught.value.message
    assert str(caught.value).startswith(f"s.toml: {field}: ")


def test_other_kinds_cannot_inject_faults_and_external_needs_loopback() -> None:
    with pytest.raises(ScenarioError, match="faults need kind = 'embedded'"):
        parse_scenario(scenario([{"action": "drop"}], kind="dnsmasq"))
    with pytest.raises(ScenarioError, match="not on loopback"):
        parse_scenario(scenario([], kind="external", address="192.0.2.53"))
    ok = parse_scenario(scenario([], kind="external", address="192.0.2.53", allow_non_loopback=True))
    assert ok.nameserver.address == "192.0.2.53"


@pytest.fixture()
def zone() -> Zone:
    return Zone.from_text(ZONE_TEXT)


def rules(*specs: dict[str, Any]) -> list[FaultRule]:
    return [FaultRule.model_validate(spec) for spec in specs]


@pytest.fixture()
def served(zone: Zone, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    policy = RulePolicy(rules(*request.param), seed=1)
    with NameserverThread(zone, querylog=tmp_path / "q.tsv", policy=policy) as ns:
        yield ns.endpoints[0]


def ask(endpoint: tuple[str, int], name: str, rdtype: str = "A", tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0)
    if tcp:
        return dns.query.tcp(query, endpoint[0], port=endpoint[1], timeout=2)
    return dns.query.udp(query, endpoint[0], port=endpoint[1], timeout=2)


@pytest.mark.parametrize(
    "served",
    [[{"action": "servfail", "name": "*.bad.api.example.test", "qtype": "AAAA", "proto": "udp"}]],
    indirect=True,
)
def test_match_by_name_type_and_protocol(served: tuple[str, int]) -> None:
    assert ask(served, "x.bad.api.example.test.", "AAAA").rcode() == dns.rcode.SERVFAIL
    assert ask(served, "X.BAD.api.example.test.", "AAAA").rcode() == dns.rcode.SERVFAIL  # case-blind
    assert ask(served, "x.bad.api.example.test.", "A").rcode() == dns.rcode.NOERROR
    assert ask(served, "x.bad.api.example.test.", "AAAA", tcp=True).rcode() == dns.rcode.NOERROR
    assert ask(served, "x.good.api.example.test.", "AAAA").rcode() == dns.rcode.NOERROR


@pytest.mark.parametrize(
    "served", [[{"action": "refused", "probability": 0}, {"action": "nxdomain"}]], indirect=True
)
def test_probability_zero_never_fires_and_the_next_rule_decides(served: tuple[str, int]) -> None:
    for _ in range(5):
        assert ask(served, "x.api.example.test.").rcode() == dns.rcode.NXDOMAIN


@pytest.mark.parametrize("served", [[{"action": "ratelimit", "rate": 3, "over": "refused"}]], indirect=True)
def test_rate_limit(served: tuple[str, int]) -> None:
    rcodes = [ask(served, f"n{i}.api.example.test.").rcode() for i in range(6)]
    assert rcodes.count(dns.rcode.NOERROR) in (3, 4)  # the bucket refills while we ask
    assert rcodes[-1] == dns.rcode.REFUSED


@pytest.mark.parametrize("served", [[{"action": "conntrack_race", "window_ms": 200}]], indirect=True)
def test_conntrack_race_drops_the_second_packet_from_one_port(served: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        first = dns.message.make_query("a.api.example.test.", "A")
        second = dns.message.make_query("a.api.example.test.", "AAAA")
        sock.sendto(first.to_wire(), served)
        sock.sendto(second.to_wire(), served)
        reply = dns.message.from_wire(sock.recv(4096))
        assert reply.id == first.id
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        time.sleep(0.25)  # past the window, the same port is answered again
        sock.sendto(second.to_wire(), served)
        assert dns.message.from_wire(sock.recv(4096)).id == second.id
    # another port is another conntrack entry
    assert ask(served, "b.api.example.test.").answer


@pytest.mark.parametrize(
    "served", [[{"action": "garbage", "qtype": "A"}, {"action": "wrong_id"}]], indirect=True
)
def test_malformed_answers(served: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        query = dns.message.make_query("a.api.example.test.", "A")
        sock.sendto(query.to_wire(), served)
        garbage = sock.recv(4096)
        assert garbage[:2] == query.to_wire()[:2]
        with pytest.raises(dns.exception.FormError):
            dns.message.from_wire(garbage)
        query = dns.message.make_query("a.api.example.test.", "AAAA")
        sock.sendto(query.to_wire(), served)
        wrong = dns.message.from_wire(sock.recv(4096))
        assert wrong.id != query.id and wrong.answer


@pytest.mark.parametrize("served", [[{"action": "wrong_question"}]], indirect=True)
def test_wrong_question_is_well_formed_but_not_the_answer(served: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        query = dns.message.make_query("a.api.example.test.", "A")
        sock.sendto(query.to_wire(), served)
        reply = dns.message.from_wire(sock.recv(4096))
    assert reply.id == query.id and not query.is_response(reply)
    assert str(reply.question[0].name) == "wrong.a.api.example.test."
    assert reply.answer[0][0].to_text() == "192.0.2.10"


def test_time_windows_count_from_the_server_start() -> None:
    now = [100.0]
    policy = RulePolicy(
        rules({"action": "outage", "start_s": 2, "end_s": 3, "period_s": 10}), clock=lambda: now[0]
    )
    query = _query()
    seen = []
    for elapsed in (0.5, 2.5, 3.5, 12.2, 13.1):
        now[0] = 100.0 + elapsed
        fault = policy.fault_for(query, "udp", ("127.0.0.1", 1))
        seen.append(None if fault is None else fault.name)
    assert seen == [None, "outage", None, "outage", None]


def test_delay_distributions_stay_within_reason() -> None:
    policy = RulePolicy(
        rules({"action": "delay", "delay_ms": 100, "jitter_ms": 50, "distribution": "uniform"}), seed=3
    )
    delays = [policy.fault_for(_query(), "udp", ("127.0.0.1", 1)).delay for _ in range(200)]  # type: ignore[union-attr]
    assert 0.05 <= min(delays) < 0.07 and 0.13 < max(delays) <= 0.15
    assert len(set(delays)) > 100


def _query(name: str = "a.api.example.test.", rdtype: str = "A", qid: int | None = None) -> Any:
    from dnsprobe.codec.wire import parse_query

    message = dns.message.make_query(name, rdtype)
    if qid is not None:
        message.id = qid
    return parse_query(message.to_wire())


def test_pair_gate_pairs_two_queries_for_one_name_from_one_address_within_the_window() -> None:
    now = [50.0]
    policy = RulePolicy(rules({"action": "swap_replies", "window_ms": 100}), clock=lambda: now[0])
    a, aaaa = _query(qid=1), _query("A.API.example.test.", "AAAA", qid=2)

    def pair(query: Any, client: tuple[str, int], proto: str = "udp") -> object:
        fault = policy.fault_for(query, proto, client)
        return None if fault is None else fault.swap

    first = pair(a, ("127.0.0.1", 1000))
    assert first is not None
    assert pair(a, ("127.0.0.1", 1000)) is None  # a retransmission: answered as it is
    assert pair(_query("b.api.example.test.", qid=3), ("127.0.0.1", 1001)) is not first  # another name
    assert pair(a, ("127.0.0.2", 1001)) is not first  # another client address
    assert pair(aaaa, ("127.0.0.1", 1000), "tcp") is None  # TCP is never paired
    assert pair(aaaa, ("127.0.0.1", 1001)) is first  # the partner, in another case from another port
    third = pair(aaaa, ("127.0.0.1", 1002))
    assert third is not None and third is not first  # the pair is full: a new one starts
    now[0] += 0.2
    assert pair(a, ("127.0.0.1", 1003)) is not third  # past the window: no partner


@pytest.mark.parametrize("served", [[{"action": "drop", "name": "*.gone.api.example.test"}]], indirect=True)
def test_drop_by_name_glob(served: tuple[str, int]) -> None:
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(
            dns.message.make_query("x.gone.api.example.test.", "A"), *served[:1], port=served[1], timeout=0.3
        )
    assert ask(served, "x.api.example.test.").answer


def test_serve_refuses_other_addresses_and_taken_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "s"\n[load]\n[[load.workloads]]\nlabel = "x"\nquery = "x.api.example.test"\n'
        f'[nameserver]\nzone = """\n{ZONE_TEXT}"""\n'
    )
    assert main(["serve", str(path), "--address", "192.0.2.1"]) == 2
    assert "--allow-non-loopback" in capsys.readouterr().err
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        assert main(["serve", str(path), "--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert "address already in use" in err and len(err.strip().splitlines()) == 1


def test_log_has_fault_column(zone: Zone, tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    policy = RulePolicy(rules({"action": "nxdomain", "qtype": "AAAA"}))
    with NameserverThread(zone, querylog=path, policy=policy) as ns:
        ask(ns.endpoints[0], "a.api.example.test.", "A")
        ask(ns.endpoints[0], "a.api.example.test.", "AAAA")
    entries = list(read_querylog(path.read_text().splitlines(keepends=True)))
    assert [(e.qtype, e.fault, e.rcode) for e in entries] == [
        ("A", None, "NOERROR"),
        ("AAAA", "nxdomain", "NXDOMAIN"),
    ]


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[tuple[str, int]]:
    """Every fault kind at once, chosen by name, so fuzzed packets go through the policy path too."""
    specs: list[dict[str, Any]] = [
        {"action": action, "name": f"*.{action.replace('_', '-')}.api.example.test"}
        for action in ("garbage", "wrong_id", "wrong_question", "oversize", "truncate", "servfail")
    ]
    specs += [{"action": "conntrack_race"}, {"action": "ratelimit", "rate": 1000, "over": "refused"}]
    policy = RulePolicy(rules(*specs), seed=5)
    with NameserverThread(Zone.from_text(ZONE_TEXT), policy=policy) as ns:
        yield ns.endpoints[0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    label=st.sampled_from(
        ["garbage", "wrong-id", "wrong-question", "oversize", "truncate", "servfail", "ok"]
    ),
    noise=st.binary(max_size=64),
    cut=st.integers(min_value=0, max_value=80),
)
def test_fuzzed_packets_through_the_fault_path(
    faulty_server: tuple[str, int], label: str, noise: bytes, cut: int
) -> None:
    wire = dns.message.make_query(f"x.{label}.api.example.test.", "A", use_edns=0).to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(wire[:cut] + noise, faulty_server)  # cut, padded, or random: never a crash
    time.sleep(0.06)  # past the conntrack window of that port's next packet
    assert ask(faulty_server, "fine.api.example.test.").answer  # still answering others


def test_swap_pair_sends_each_reply_under_the_others_id_to_the_others_port() -> None:
    from dnsprobe.nameserver.server import SwapPair

    out: list[tuple[bytes, Any]] = []

    def send(reply: bytes, addr: Any) -> None:
        out.append((reply, addr))

    one, two = ("127.0.0.1", 1111), ("127.0.0.1", 2222)
    pair = SwapPair(1.0)
    assert pair.arrive(b"\x00\x01A", one, send) is True and out == []  # held
    assert pair.arrive(b"\x00\x02B", two, send) is False
    pair.release()  # too late: nothing more goes out
    assert out == [(b"\x00\x01B", one), (b"\x00\x02A", two)]

    out.clear()
    lone = SwapPair(1.0)
    lone.arrive(b"\x00\x03C", one, send)
    lone.release()
    lone.arrive(b"\x00\x04D", two, send)  # its partner was released: it goes out as it is
    assert out == [(b"\x00\x03C", one), (b"\x00\x04D", two)]
