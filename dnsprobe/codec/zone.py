"""The nameserver's data: records in master-file syntax, and how a question is answered from them.

The zone is authoritative for every name it holds. Resolution follows RFC 1034 §4.3.2 without
delegations, and RFC 4592 for wildcards: a name that does not exist is answered from `*.<closest
encloser>` when that name exists. Names that exist are the owners of records and all their ancestors
(empty non-terminals), so NODATA and NXDOMAIN are told apart the way a real server does.

`Zone.resolve` gives dnspython RRsets for tests and tools; `Zone.lookup` gives the same answer as steps
whose owner is None when it is the query name, which is what `wire.py` pre-encodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.node
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.SOA
import dns.rrset
import dns.tokenizer
import dns.ttl

from dnsprobe.errors import NameserverError

__all__ = ["MAX_CHAIN", "Answer", "Resolution", "Zone"]

MAX_CHAIN = 16
"""CNAME links followed for one question; a longer chain (or a loop) ends the answer where it is."""

_WILDCARD = b"*"
_HINT = "fix the record (NAME [TTL] [IN] TYPE RDATA, absolute names end with a dot)"

Step = tuple[dns.name.Name | None, dns.rrset.RRset]
"""One RRset of an answer. The owner is None when it is the query name (exact or wildcard match)."""


@dataclass(frozen=True)
class Resolution:
    """An answer before owner names are filled in: what `wire.py` encodes once per node and type."""

    rcode: dns.rcode.Rcode
    steps: tuple[Step, ...]
    soa: dns.rrset.RRset | None  # authority section of a negative answer


@dataclass(frozen=True)
class Answer:
    """What the nameserver says to one question."""

    rcode: dns.rcode.Rcode
    answer: tuple[dns.rrset.RRset, ...]  # CNAME chain first, then the target's RRset
    authority: tuple[dns.rrset.RRset, ...]  # the SOA of a negative answer, if the zone has one


class Zone:
    """Records by owner and type, plus the set of names that exist.

    Build one with `Zone.from_text`, or from RRsets with absolute owner names.
    """

    def __init__(self, rrsets: Iterable[dns.rrset.RRset]) -> None:
        self._rrsets: dict[dns.name.Name, dict[int, tuple[dns.rrset.RRset, ...]]] = {}
        for rrset in rrsets:
            if not rrset.name.is_absolute():
                raise NameserverError(f"zone: {rrset.name}: owner names must be absolute (end with a dot)")
            node = self._rrsets.setdefault(rrset.name, {})
            node[rrset.rdtype] = (*node.get(rrset.rdtype, ()), rrset)
        self._names: set[dns.name.Name] = set()
        for owner in self._rrsets:
            name = owner
            while name not in self._names:
                self._names.add(name)
                if name == dns.name.root:
                    break
                name = name.parent()
        self._negative_soa: dict[dns.name.Name, dns.rrset.RRset] = {}
        for owner, node in self._rrsets.items():
            for soa_rrset in node.get(dns.rdatatype.SOA, ()):
                self._negative_soa[owner] = _negative_soa(soa_rrset)

    @classmethod
    def from_text(cls, text: str, source: str = "scenario") -> Zone:
        """Parse master-file text (absolute names, `$TTL` and `$ORIGIN` allowed).

        A bad record raises NameserverError naming `source` and the record's line.
        """
        return cls(_read_records(text, source))

    # -- the view wire.py builds its index from ------------------------------------------------------------

    def names(self) -> Iterator[dns.name.Name]:
        """Every name that exists: record owners and their ancestors (empty non-terminals)."""
        return iter(self._names)

    def types_at(self, name: dns.name.Name) -> frozenset[int]:
        """The record types owned by `name` (empty for an empty non-terminal or a missing name)."""
        return frozenset(self._rrsets.get(name, ()))

    def rrsets(self) -> Iterator[dns.rrset.RRset]:
        """Every RRset as given (for configuring dnsmasq and unbound with the same records)."""
        for node in self._rrsets.values():
            for group in node.values():
                yield from group

    def __len__(self) -> int:
        return sum(len(r) for node in self._rrsets.values() for rs in node.values() for r in rs)

    # -- answering ---------------------------------------------------------------------------------------

    def resolve(self, qname: dns.name.Name | str, rdtype: dns.rdatatype.RdataType | int | str) -> Answer:
        """Answer one question; wildcard answers carry the query name as owner."""
        name = qname if isinstance(qname, dns.name.Name) else dns.name.from_text(qname)
        found = self.lookup(name, dns.rdatatype.RdataType.make(rdtype))
        answer = tuple(_with_owner(rrset, name if owner is None else owner) for owner, rrset in found.steps)
        authority = () if found.soa is None else (found.soa,)
        return Answer(found.rcode, answer, authority)

    def lookup(self, name: dns.name.Name, rdtype: int) -> Resolution:
        """Answer one question as steps; an owner of None stands for the query name."""
        steps: list[Step] = []
        seen = {name}
        owner: dns.name.Name | None = None
        current = name
        while True:
            source = self.source_of(current)
            if source is None:
                if steps and not self._authoritative_for(current):
                    # A CNAME pointing out of our zones: the chain is all we can say, as a real server would.
                    return Resolution(dns.rcode.NOERROR, tuple(steps), None)
                return Resolution(dns.rcode.NXDOMAIN, tuple(steps), self.soa_for(current))
            node = self._rrsets.get(source, {})
            if rdtype == dns.rdatatype.ANY and node:
                steps.extend((owner, rrset) for rdt in sorted(node) for rrset in node[rdt])
                return Resolution(dns.rcode.NOERROR, tuple(steps), None)
            found = node.get(rdtype)
            if found:
                steps.extend((owner, rrset) for rrset in found)
                return Resolution(dns.rcode.NOERROR, tuple(steps), None)
            cnames = node.get(dns.rdatatype.CNAME)
            if not cnames:
                return Resolution(dns.rcode.NOERROR, tuple(steps), self.soa_for(current))
            steps.append((owner, cnames[0]))
            rdata = cnames[0][0]
            assert isinstance(rdata, dns.rdtypes.ANY.CNAME.CNAME)
            target = rdata.target
            if target in seen or len(steps) >= MAX_CHAIN:
                return Resolution(dns.rcode.NOERROR, tuple(steps), None)
            seen.add(target)
            current = owner = target

    def source_of(self, name: dns.name.Name) -> dns.name.Name | None:
        """The node that answers for `name`: itself if it exists, else a matching wildcard, else None."""
        if name in self._names:
            return name
        encloser = self.closest_encloser(name)
        if encloser is None:
            return None
        wildcard = dns.name.Name((_WILDCARD, *encloser.labels))
        return wildcard if wildcard in self._names else None

    def closest_encloser(self, name: dns.name.Name) -> dns.name.Name | None:
        """The longest existing ancestor of `name` (or `name` itself); None for an empty zone."""
        while name not in self._names:
            if name == dns.name.root or not name.labels:
                return None
            name = name.parent()
        return name

    def soa_for(self, name: dns.name.Name) -> dns.rrset.RRset | None:
        """The SOA (with its negative-caching TTL) of the closest zone apex enclosing `name`."""
        if not self._negative_soa:
            return None
        while True:
            soa = self._negative_soa.get(name)
            if soa is not None:
                return soa
            if name == dns.name.root or not name.labels:
                return None
            name = name.parent()

    def _authoritative_for(self, name: dns.name.Name) -> bool:
        # Without any SOA the zone speaks for the whole namespace.
        return not self._negative_soa or self.soa_for(name) is not None


class _Reader:
    """A master-file reader over dnspython's tokenizer that remembers the line of every record.

    dnspython's own zone reader insists that an SOA sits at the zone origin and silently lets a later
    CNAME replace other data; this one accepts SOAs anywhere (several zones in one text) and reports
    conflicts with their line numbers.
    """

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.tok = dns.tokenizer.Tokenizer(text, source)
        self.origin = dns.name.root
        self.default_ttl: int | None = None  # $TTL
        self.last_ttl: int | None = None
        self.last_name: dns.name.Name | None = None
        self.line = 1
        self.rdatas: dict[tuple[dns.name.Name, int, int], list[dns.rdata.Rdata]] = {}
        self.ttls: dict[tuple[dns.name.Name, int, int], int] = {}
        self.kinds: dict[dns.name.Name, tuple[dns.node.NodeKind, int]] = {}  # CNAME or other data, first line

    def fail(self, message: str) -> NameserverError:
        return NameserverError(f"{self.source}: line {self.line}: {message}")

    def read(self) -> list[dns.rrset.RRset]:
        tok = self.tok
        while True:
            token = tok.get(want_leading=True, want_comment=True)
            self.line = tok.where()[1]
            if token.is_eof():
                break
            if token.is_eol():
                continue
            if token.is_comment():
                tok.get_eol()
                continue
            if token.is_identifier() and token.value.startswith("$"):
                self.directive(token.value.upper())
                continue
            tok.unget(token)
            self.record()
        return [
            dns.rrset.from_rdata_list(key[0], self.ttls[key], rdatas) for key, rdatas in self.rdatas.items()
        ]

    def directive(self, name: str) -> None:
        if name == "$TTL":
            self.default_ttl = dns.ttl.from_text(self.tok.get_identifier())
        elif name == "$ORIGIN":
            self.origin = self.tok.get_name(dns.name.root)
        else:
            raise self.fail(f"{name} is not supported here; only $TTL and $ORIGIN")
        self.tok.get_eol()

    def record(self) -> None:
        tok = self.tok
        token = tok.get(want_leading=True)
        if token.is_whitespace():
            following = tok.get()
            if following.is_eol_or_eof():
                return  # a blank line, or blanks and a comment
            tok.unget(following)
            if self.last_name is None:
                raise self.fail(
                    "the record has no owner name (a line starting with blanks continues the last)"
                )
        else:
            self.last_name = tok.as_name(token, self.origin)
        name = self.last_name
        token = tok.get()
        if not token.is_identifier():
            raise self.fail("expected a TTL, class or type after the owner name")
        ttl: int | None = None
        rdclass = dns.rdataclass.IN
        for _ in range(2):  # TTL and class, in either order (RFC 1035 §5.1)
            if ttl is None and token.value[:1].isdigit():
                ttl = dns.ttl.from_text(token.value)
                token = tok.get()
            elif _is_class(token.value):
                rdclass = dns.rdataclass.from_text(token.value)
                token = tok.get()
        if rdclass != dns.rdataclass.IN:
            raise self.fail(f"class {dns.rdataclass.to_text(rdclass)} is not served; use IN")
        if not token.is_identifier():
            raise self.fail("expected a record type")
        try:
            rdtype = dns.rdatatype.from_text(token.value)
        except dns.rdatatype.UnknownRdatatype:
            raise self.fail(f"unknown record type {token.value!r}") from None
        rdata = dns.rdata.from_text(rdclass, rdtype, tok, self.origin, relativize=False)
        if ttl is None:
            ttl = self.default_ttl if self.default_ttl is not None else self.last_ttl
            if ttl is None:
                raise self.fail("the record has no TTL; give one or start the text with $TTL")
        else:
            self.last_ttl = ttl
        self.add(name, ttl, rdata)

    def add(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        covers = rdata.covers()
        kind = dns.node.NodeKind.classify(rdata.rdtype, covers)
        if kind != dns.node.NodeKind.NEUTRAL:
            seen = self.kinds.setdefault(name, (kind, self.line))
            if seen[0] != kind:
                raise self.fail(
                    f"{name} has a CNAME and other records (the other is on line {seen[1]}); "
                    "a CNAME cannot share its name, move the other records to its target"
                )
        key = (name, rdata.rdtype, covers)
        rdatas = self.rdatas.setdefault(key, [])
        if rdatas and dns.rdatatype.is_singleton(rdata.rdtype) and rdata not in rdatas:
            raise self.fail(
                f"{name} has a second {dns.rdatatype.to_text(rdata.rdtype)}; it can have only one"
            )
        if rdata not in rdatas:
            rdatas.append(rdata)
        self.ttls[key] = min(ttl, self.ttls.get(key, ttl))  # one TTL per RRset: the smallest, as BIND does


def _is_class(text: str) -> bool:
    try:
        dns.rdataclass.from_text(text)
    except dns.rdataclass.UnknownRdataclass:
        return False
    return True


def _read_records(text: str, source: str) -> list[dns.rrset.RRset]:
    reader = _Reader(text, source)
    try:
        return reader.read()
    except NameserverError:
        raise
    except (dns.exception.DNSException, ValueError) as exc:
        _reraise_interrupt(exc)
        # dnspython reports bad rdata with assorted exceptions; all of them are a bad record.
        detail = (str(exc) or type(exc).__name__).rstrip(".")
        raise reader.fail(f"{detail}; {_HINT}") from exc


def _reraise_interrupt(exc: BaseException) -> None:
    """dnspython's ExceptionWrapper turns *any* exception inside rdata parsing into a SyntaxError, Ctrl-C
    (KeyboardInterrupt) and SystemExit included: an interrupt stays an interrupt, not a bad record."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if not isinstance(cause, Exception):
            raise cause
        cause = cause.__cause__ or cause.__context__


def _negative_soa(rrset: dns.rrset.RRset) -> dns.rrset.RRset:
    # RFC 2308 §3: a negative answer's SOA carries min(SOA TTL, SOA MINIMUM).
    rdata = rrset[0]
    assert isinstance(rdata, dns.rdtypes.ANY.SOA.SOA)
    return dns.rrset.from_rdata_list(rrset.name, min(rrset.ttl, rdata.minimum), list(rrset))


def _with_owner(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    if rrset.name == owner and rrset.name.labels == owner.labels:
        return rrset
    return dns.rrset.from_rdata_list(owner, rrset.ttl, list(rrset))
