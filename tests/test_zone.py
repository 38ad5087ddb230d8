"""Zone parsing and resolution (no sockets)."""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from dnsprobe.codec.zone import MAX_CHAIN
from dnsprobe.errors import NameserverError
from dnsprobe.nameserver import Zone

ZONE = """\
$TTL 30
cluster.local.  IN SOA ns.cluster.local. hostmaster.cluster.local. (
                    1 7200 900 86400 5 )   ; a negative answer's TTL is min(30, 5)
cluster.local.  IN NS  ns.cluster.local.
ns.cluster.local.   IN A 10.96.0.53
*.default.svc.cluster.local.    IN A 10.96.0.10
web.default.svc.cluster.local.  IN A 10.0.0.1
                                IN AAAA fd00::1
web.default.svc.cluster.local.  IN TXT "v=probe" "second string"
api.default.svc.cluster.local.  60 IN CNAME alias.default.svc.cluster.local.
alias.default.svc.cluster.local. IN CNAME web.default.svc.cluster.local.
_http._tcp.web.default.svc.cluster.local. IN SRV 0 50 80 web.default.svc.cluster.local.
loop1.cluster.local. IN CNAME loop2.cluster.local.
loop2.cluster.local. IN CNAME loop1.cluster.local.
dangling.cluster.local. IN CNAME missing.cluster.local.
outside.cluster.local. IN CNAME www.example.org.
wild.cluster.local. IN CNAME x.default.svc.cluster.local.
10.0.0.10.in-addr.arpa. IN PTR web.default.svc.cluster.local.

example.test.   IN SOA ns.example.test. hostmaster.example.test. 7 7200 900 86400 60
example.test.   IN MX 10 mail.example.test.
a.b.c.deep.example.test. IN A 192.0.2.1
"""


@pytest.fixture(scope="module")
def zone() -> Zone:
    return Zone.from_text(ZONE, "test zone")


def texts(rrset: dns.rrset.RRset) -> list[str]:
    return sorted(rdata.to_text() for rdata in rrset)


def test_a_and_aaaa(zone: Zone) -> None:
    answer = zone.resolve("web.default.svc.cluster.local.", "A")
    assert answer.rcode == dns.rcode.NOERROR
    assert [texts(r) for r in answer.answer] == [["10.0.0.1"]]
    assert answer.answer[0].ttl == 30
    assert answer.authority == ()
    aaaa = zone.resolve("web.default.svc.cluster.local.", dns.rdatatype.AAAA)
    assert [texts(r) for r in aaaa.answer] == [["fd00::1"]]


def test_lookup_ignores_case(zone: Zone) -> None:
    answer = zone.resolve(dns.name.from_text("WEB.Default.SVC.cluster.local."), "A")
    assert [texts(r) for r in answer.answer] == [["10.0.0.1"]]


def test_cname_chain_comes_first_then_the_target(zone: Zone) -> None:
    answer = zone.resolve("api.default.svc.cluster.local.", "A")
    assert answer.rcode == dns.rcode.NOERROR
    assert [(r.name.to_text(), dns.rdatatype.to_text(r.rdtype)) for r in answer.answer] == [
        ("api.default.svc.cluster.local.", "CNAME"),
        ("alias.default.svc.cluster.local.", "CNAME"),
        ("web.default.svc.cluster.local.", "A"),
    ]
    assert answer.answer[0].ttl == 60


def test_cname_question_is_not_followed(zone: Zone) -> None:
    answer = zone.resolve("api.default.svc.cluster.local.", "CNAME")
    assert [texts(r) for r in answer.answer] == [["alias.default.svc.cluster.local."]]


def test_cname_loop_ends(zone: Zone) -> None:
    answer = zone.resolve("loop1.cluster.local.", "A")
    assert answer.rcode == dns.rcode.NOERROR
    assert [r.name.to_text() for r in answer.answer] == ["loop1.cluster.local.", "loop2.cluster.local."]


def test_long_chain_stops_at_the_limit() -> None:
    lines = [f"c{i}.x. 5 IN CNAME c{i + 1}.x." for i in range(40)]
    answer = Zone.from_text("\n".join(lines)).resolve("c0.x.", "A")
    assert len(answer.answer) == MAX_CHAIN


def test_cname_to_a_missing_name_is_nxdomain(zone: Zone) -> None:
    # RFC 6604: the rcode describes the last name of the chain.
    answer = zone.resolve("dangling.cluster.local.", "A")
    assert answer.rcode == dns.rcode.NXDOMAIN
    assert len(answer.answer) == 1
    assert [r.name.to_text() for r in answer.authority] == ["cluster.local."]


def test_cname_out_of_our_zones_ends_the_answer(zone: Zone) -> None:
    answer = zone.resolve("outside.cluster.local.", "A")
    assert answer.rcode == dns.rcode.NOERROR
    assert [texts(r) for r in answer.answer] == [["www.example.org."]]
    assert answer.authority == ()


def test_wildcard_answers_carry_the_query_name(zone: Zone) -> None:
    answer = zone.resolve("r4nd0m.default.svc.cluster.local.", "A")
    assert answer.rcode == dns.rcode.NOERROR
    assert [(r.name.to_text(), texts(r)) for r in answer.answer] == [
        ("r4nd0m.default.svc.cluster.local.", ["10.96.0.10"])
    ]
    deeper = zone.resolve("a.b.default.svc.cluster.local.", "A")
    assert deeper.answer[0].name.to_text() == "a.b.default.svc.cluster.local."


def test_cname_into_a_wildcard(zone: Zone) -> None:
    answer = zone.resolve("wild.cluster.local.", "A")
    assert [(r.name.to_text(), texts(r)) for r in answer.answer] == [
        ("wild.cluster.local.", ["x.default.svc.cluster.local."]),
        ("x.default.svc.cluster.local.", ["10.96.0.10"]),
    ]


def test_wildcard_does_not_cover_names_below_a_closer_node(zone: Zone) -> None:
    # web.default... exists, so x.web.default... has a closer encloser than the wildcard's parent.
    answer = zone.resolve("x.web.default.svc.cluster.local.", "A")
    assert answer.rcode == dns.rcode.NXDOMAIN


def test_wildcard_nodata(zone: Zone) -> None:
    answer = zone.resolve("anything.default.svc.cluster.local.", "AAAA")
    assert answer.rcode == dns.rcode.NOERROR
    assert answer.answer == ()
    assert [r.name.to_text() for r in answer.authority] == ["cluster.local."]


def test_nodata_for_an_existing_name(zone: Zone) -> None:
    answer = zone.resolve("ns.cluster.local.", "AAAA")
    assert answer.rcode == dns.rcode.NOERROR
    assert answer.answer == ()
    assert len(answer.authority) == 1


def test_empty_non_terminal_is_nodata(zone: Zone) -> None:
    for name in ("b.c.deep.example.test.", "deep.example.test.", "_tcp.web.default.svc.cluster.local."):
        answer = zone.resolve(name, "A")
        assert answer.rcode == dns.rcode.NOERROR, name
        assert answer.answer == ()


def test_nxdomain_carries_the_closest_apex_soa(zone: Zone) -> None:
    local = zone.resolve("nope.cluster.local.", "A")
    assert local.rcode == dns.rcode.NXDOMAIN
    assert [(r.name.to_text(), r.ttl) for r in local.authority] == [("cluster.local.", 5)]
    other = zone.resolve("x.deep.example.test.", "A")
    assert other.rcode == dns.rcode.NXDOMAIN
    assert [(r.name.to_text(), r.ttl) for r in other.authority] == [("example.test.", 30)]


def test_nxdomain_without_any_soa() -> None:
    zone = Zone.from_text("a.example. 30 IN A 192.0.2.1\n")
    answer = zone.resolve("b.example.", "A")
    assert answer.rcode == dns.rcode.NXDOMAIN
    assert answer.authority == ()


def test_outside_every_zone_is_nxdomain(zone: Zone) -> None:
    answer = zone.resolve("www.example.org.", "A")
    assert answer.rcode == dns.rcode.NXDOMAIN
    assert answer.authority == ()


def test_other_types(zone: Zone) -> None:
    srv = zone.resolve("_http._tcp.web.default.svc.cluster.local.", "SRV")
    assert texts(srv.answer[0]) == ["0 50 80 web.default.svc.cluster.local."]
    txt = zone.resolve("web.default.svc.cluster.local.", "TXT")
    assert texts(txt.answer[0]) == ['"v=probe" "second string"']
    mx = zone.resolve("example.test.", "MX")
    assert texts(mx.answer[0]) == ["10 mail.example.test."]
    ns = zone.resolve("cluster.local.", "NS")
    assert texts(ns.answer[0]) == ["ns.cluster.local."]
    ptr = zone.resolve("10.0.0.10.in-addr.arpa.", "PTR")
    assert texts(ptr.answer[0]) == ["web.default.svc.cluster.local."]
    soa = zone.resolve("cluster.local.", "SOA")
    assert soa.answer[0].ttl == 30  # the SOA itself keeps its TTL


def test_any_returns_every_rrset(zone: Zone) -> None:
    answer = zone.resolve("web.default.svc.cluster.local.", "ANY")
    assert sorted(dns.rdatatype.to_text(r.rdtype) for r in answer.answer) == ["A", "AAAA", "TXT"]


def test_large_rrset() -> None:
    text = "$TTL 10\n" + "".join(f"big.example. IN A 10.0.{i // 250}.{i % 250 + 1}\n" for i in range(120))
    answer = Zone.from_text(text).resolve("big.example.", "A")
    assert len(answer.answer[0]) == 120


def test_origin_and_relative_names() -> None:
    zone = Zone.from_text("$ORIGIN svc.example.\n$TTL 5\nweb IN A 192.0.2.7\nalias IN CNAME web\n")
    answer = zone.resolve("alias.svc.example.", "A")
    assert [texts(r) for r in answer.answer] == [["web.svc.example."], ["192.0.2.7"]]


def test_ttl_inherited_from_the_last_record() -> None:
    zone = Zone.from_text("a.example. 77 IN A 192.0.2.1\n           IN AAAA 2001:db8::1\n")
    assert zone.resolve("a.example.", "AAAA").answer[0].ttl == 77


def test_blank_lines_comments_and_at() -> None:
    text = (
        "$TTL 1h\n   \n  ; a comment\n"
        "@ IN NS ns.example.\nexample. IN A 192.0.2.1 ; why\n  ; more\n  IN TXT x\n"
    )
    zone = Zone.from_text(text)
    assert len(zone) == 3
    assert zone.resolve(".", "NS").answer[0].ttl == 3600
    assert texts(zone.resolve("example.", "TXT").answer[0]) == ['"x"']


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("$TTL 30\nok.example. IN A 192.0.2.1\nbad.example. IN A 192.0.2\n", 3, "malformed"),
        ("\n\nx.example. 30 IN BOGUS 1\n", 3, "unknown record type 'BOGUS'"),
        ("x.example. IN A 192.0.2.1\n", 1, "no TTL"),
        ("x.example. 30 IN CNAME y.example.\nx.example. 30 IN A 192.0.2.1\n", 2, "line 1"),
        ("x.example. 30 IN CNAME y.example.\nx.example. 30 IN CNAME z.example.\n", 2, "only one"),
        ("$INCLUDE /etc/passwd\n", 1, "$INCLUDE is not supported"),
        ("x.example. 30 CH A 192.0.2.1\n", 1, "use IN"),
        ("x.example. 30 IN MX 10\n", 1, "NAME [TTL]"),
        ('x.example. 30 IN TXT "open\n', 1, "quoted"),
        ("  30 IN A 192.0.2.1\n", 1, "no owner name"),
        ("a.example. 30 IN SOA ns. host. (\n 1 2 3\n 4 5 )\nb.example. 30 IN A 1.2.3.4.5\n", 4, "malformed"),
    ],
)
def test_bad_records_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(NameserverError) as caught:
        Zone.from_text(text, "scenarios/k8s.toml")
    message = str(caught.value)
    assert message.startswith(f"scenarios/k8s.toml: line {line}: ")
    assert words in message
    assert "\n" not in message


def test_relative_owner_rrsets_are_refused() -> None:
    rrset = dns.rrset.from_text(dns.name.from_text("rel", None), 30, "IN", "A", "192.0.2.1")
    with pytest.raises(NameserverError, match="absolute"):
        Zone([rrset])
