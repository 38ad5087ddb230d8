"""The hot path: queries parsed and answers built by hand from bytes encoded once per zone.

A full dnspython parse costs ~300 µs a query here; this path does a header unpack, a walk over the
question's labels, one dict lookup and a concatenation. Answers are encoded once per (node, type) with
dnspython's `to_wire`: owners that are the query name become the pointer 0xC00C to the question, so one
encoding serves every name a wildcard matches. Other names are written out uncompressed (legal, and their
offsets would otherwise depend on the length of the question).

Case: the question is echoed with the client's bytes (0x20 randomisation survives), and matched in lower
case (DNS compares ASCII letters only, which is what `bytes.lower` does).
"""

from __future__ import annotations

import struct

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from dnsprobe.codec.zone import Resolution, Zone

__all__ = [
    "EDNS_PAYLOAD",
    "TCP_LIMIT",
    "BadQuery",
    "Encoded",
    "Query",
    "RRsetMemo",
    "Responder",
    "encode_resolution",
    "name_wire",
    "parse_query",
    "qname_text",
    "qtype_text",
    "rcode_text",
]

EDNS_PAYLOAD = 4096
"""The UDP payload size the server advertises; an answer over UDP never exceeds it."""
TCP_LIMIT = 65535
"""The largest message TCP's 2-byte length prefix can carry."""

_HEADER = struct.Struct("!HHHHHH")
_TYPE_CLASS = struct.Struct("!HH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, TTL, RDLENGTH
_POINTER_TO_QNAME = b"\xc0\x0c"

_QR = 0x8000
_OPCODE = 0x7800
_AA = 0x0400
_TC = 0x0200
_RD = 0x0100
_RA = 0x0080
_CD = 0x0010
_COPIED = _RD | _CD
_ANSWER_FLAGS = _QR | _AA | _RA

_OPT = 41
_NOT_ANSWERED_TYPES = frozenset({249, 250, 251, 252, 253, 254})  # TKEY TSIG IXFR AXFR MAILB MAILA
_CLASSES = frozenset({1, 255})  # IN, ANY
_CHAIN_CACHE_MAX = 64  # per CNAME node: the types that follow the chain, so random types stay bounded


class BadQuery(Exception):
    """A packet that gets no normal answer: `reply` is what to send (None: nothing), `outcome` what to log."""

    def __init__(self, qid: int | None, reply: bytes | None, outcome: str) -> None:
        super().__init__(outcome)
        self.qid = qid
        self.reply = reply
        self.outcome = outcome


class Query:
    """One parsed question. `qname` keeps the client's case; `key` is the lower-case lookup key."""

    __slots__ = (
        "edns",
        "edns_version",
        "flags",
        "id",
        "key",
        "offsets",
        "qclass",
        "qname",
        "qtype",
        "question",
    )

    def __init__(
        self,
        qid: int,
        flags: int,
        qname: bytes,
        offsets: tuple[int, ...],
        qtype: int,
        qclass: int,
        question: bytes,
        edns: int | None,
        edns_version: int,
    ) -> None:
        self.id = qid
        self.flags = flags
        self.qname = qname  # wire form as received, root label included
        self.key = qname.lower()
        self.offsets = offsets  # where each label starts in qname, the root label last
        self.qtype = qtype
        self.qclass = qclass
        self.question = question  # the question section as received, echoed back
        self.edns = edns  # advertised UDP payload size; None without an OPT record
        self.edns_version = edns_version

    @property
    def udp_limit(self) -> int:
        """The largest UDP answer this client accepts (RFC 1035: 512; RFC 6891: its payload size)."""
        if self.edns is None:
            return 512
        return min(max(512, self.edns), EDNS_PAYLOAD)

    def name(self) -> dns.name.Name:
        """The question's name as a dnspython Name (for policies; the hot path never needs it)."""
        return dns.name.from_wire(self.qname, 0)[0]


def _formerr(qid: int, flags: int) -> BadQuery:
    reply = _HEADER.pack(qid, _QR | (flags & (_OPCODE | _RD)) | dns.rcode.FORMERR, 0, 0, 0, 0)
    return BadQuery(qid, reply, "formerr")


def parse_query(data: bytes) -> Query:
    """Parse a query; raise `BadQuery` for anything that cannot be answered normally."""
    size = len(data)
    if size < 12:
        raise BadQuery(None, None, "drop")
    qid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if flags & _QR:
        raise BadQuery(qid, None, "drop")  # never answer a response: that is how reflection loops start
    if flags & _OPCODE:
        reply = _HEADER.pack(qid, _QR | (flags & (_OPCODE | _RD)) | dns.rcode.NOTIMP, 0, 0, 0, 0)
        raise BadQuery(qid, reply, dns.rcode.to_text(dns.rcode.NOTIMP))
    if qdcount != 1:
        raise _formerr(qid, flags)
    pos = 12
    offsets = []
    while True:
        if pos >= size:
            raise _formerr(qid, flags)
        length = data[pos]
        offsets.append(pos - 12)
        if length == 0:
            break
        if length > 63:  # a compression pointer (nothing precedes the question) or an extended label type
            raise _formerr(qid, flags)
        pos += length + 1
    pos += 1
    if pos - 12 > 255 or pos + 4 > size:
        raise _formerr(qid, flags)
    qname = data[12:pos]
    qtype, qclass = _TYPE_CLASS.unpack_from(data, pos)
    pos += 4
    question = data[12:pos]

    edns: int | None = None
    edns_version = 0
    records = ancount + nscount + arcount
    for index in range(records):
        owner_is_root = pos < size and data[pos] == 0
        while True:
            if pos >= size:
                raise _formerr(qid, flags)
            length = data[pos]
            if length >= 0xC0:
                pos += 2  # a pointer ends the name; it is never followed, so it cannot loop
                break
            if length > 63:
                raise _formerr(qid, flags)
            pos += length + 1
            if length == 0:
                break
        if pos + 10 > size:
            raise _formerr(qid, flags)
        rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(data, pos)
        pos += 10 + rdlength
        if pos > size:
            raise _formerr(qid, flags)
        if rtype == _OPT:
            # RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
            if edns is not None or index < ancount + nscount or not owner_is_root:
                raise _formerr(qid, flags)
            edns = rclass
            edns_version = (ttl >> 16) & 0xFF
    return Query(qid, flags, qname, tuple(offsets), qtype, qclass, question, edns, edns_version)


class Encoded:
    """An answer's sections after the question, encoded once."""

    __slots__ = ("ancount", "body", "nscount", "rcode")

    def __init__(self, rcode: int, ancount: int, nscount: int, body: bytes) -> None:
        self.rcode = rcode
        self.ancount = ancount
        self.nscount = nscount
        self.body = body


class _Node:
    """A name that exists (or a wildcard), with its encoded answers by query type."""

    __slots__ = ("cache", "chains", "name", "nodata", "types")

    def __init__(self, name: dns.name.Name, types: frozenset[int]) -> None:
        self.name = name
        self.types = types
        self.chains = dns.rdatatype.CNAME in types  # every type but CNAME follows the chain
        self.cache: dict[int, Encoded] = {}
        self.nodata: Encoded | None = None  # shared by every type the node does not have


class Responder:
    """Answers parsed queries from one zone. Not thread-safe: one per event loop."""

    def __init__(self, zone: Zone) -> None:
        self._zone = zone
        self._index: dict[bytes, _Node] = {
            name_wire(name.canonicalize()): _Node(name, zone.types_at(name)) for name in zone.names()
        }
        self._nxdomain: dict[bytes, Encoded] = {}  # by closest encloser
        self._nothing = Encoded(dns.rcode.NXDOMAIN, 0, 0, b"")  # an empty zone's answer to everything
        self._opt = _opt_record(0)
        self._badvers_opt = _opt_record(dns.rcode.BADVERS >> 4)

    def respond(self, query: Query, limit: int) -> tuple[bytes, int]:
        """The reply to `query` and its rcode; truncated (TC, question only) beyond `limit` bytes."""
        qtype = query.qtype
        if query.qclass not in _CLASSES:
            return self.error(query, dns.rcode.REFUSED), dns.rcode.REFUSED
        if query.edns_version:
            return self._badvers(query), dns.rcode.BADVERS
        if qtype in _NOT_ANSWERED_TYPES or qtype == _OPT:
            rcode = dns.rcode.FORMERR if qtype == _OPT else dns.rcode.NOTIMP
            return self.error(query, rcode), rcode
        encoded = self._answer(query)
        if query.edns is None:
            opt = b""
            arcount = 0
        else:
            opt = self._opt
            arcount = 1
        flags = _ANSWER_FLAGS | (query.flags & _COPIED) | encoded.rcode
        question = query.question
        if 12 + len(question) + len(encoded.body) + len(opt) > limit:
            # RFC 2181 §9: set TC and send what fits; we send the question only, as most servers do.
            return _HEADER.pack(query.id, flags | _TC, 1, 0, 0, arcount) + question + opt, encoded.rcode
        header = _HEADER.pack(query.id, flags, 1, encoded.ancount, encoded.nscount, arcount)
        return header + question + encoded.body + opt, encoded.rcode

    def error(self, query: Query, rcode: int, *, flags_clear: int = 0, no_opt: bool = False) -> bytes:
        """A reply with `rcode`, the question and no records (SERVFAIL, REFUSED, NOTIMP...); `flags_clear`
        clears header bits (a lame reply without RA), `no_opt` leaves out the OPT record (a server that
        does not know EDNS0)."""
        flags = (_QR | _RA | (query.flags & _COPIED) | (rcode & 0xF)) & ~flags_clear
        if query.edns is None or no_opt:
            return _HEADER.pack(query.id, flags, 1, 0, 0, 0) + query.question
        opt = self._opt if rcode < 16 else _opt_record(rcode >> 4)
        return _HEADER.pack(query.id, flags, 1, 0, 0, 1) + query.question + opt

    def truncated(self, query: Query) -> tuple[bytes, int]:
        """The answer's header with TC set and the question only, as if it did not fit."""
        return self.respond(query, 0)

    def _badvers(self, query: Query) -> bytes:
        flags = _QR | _RA | (query.flags & _COPIED)
        return _HEADER.pack(query.id, flags, 1, 0, 0, 1) + query.question + self._badvers_opt

    def _answer(self, query: Query) -> Encoded:
        key = query.key
        node = self._index.get(key)
        if node is None:
            for offset in query.offsets[1:]:
                suffix = key[offset:]
                encloser = self._index.get(suffix)
                if encloser is not None:
                    node = self._index.get(b"\x01*" + suffix)
                    if node is None:
                        return self._nxdomain_below(suffix, encloser)
                    break
            else:
                return self._nothing
        qtype = query.qtype
        encoded = node.cache.get(qtype)
        if encoded is not None:
            return encoded
        if qtype in node.types or qtype == dns.rdatatype.ANY:
            encoded = node.cache[qtype] = self._encode(node.name, qtype)
        elif node.chains:
            encoded = self._encode(node.name, qtype)
            if len(node.cache) < _CHAIN_CACHE_MAX:
                node.cache[qtype] = encoded
        else:
            encoded = node.nodata
            if encoded is None:
                encoded = node.nodata = self._encode(node.name, qtype)
        return encoded

    def _nxdomain_below(self, key: bytes, encloser: _Node) -> Encoded:
        encoded = self._nxdomain.get(key)
        if encoded is None:
            resolution = Resolution(dns.rcode.NXDOMAIN, (), self._zone.soa_for(encloser.name))
            encoded = self._nxdomain[key] = encode_resolution(resolution)
        return encoded

    def _encode(self, name: dns.name.Name, qtype: int) -> Encoded:
        return encode_resolution(self._zone.lookup(name, qtype))


RRsetMemo = dict[tuple[int, int], tuple[object, object, bytes]]
"""Encoded RRsets by (id(rrset), id(owner)), each entry holding both objects so their ids stay theirs."""


def encode_resolution(resolution: Resolution, memo: RRsetMemo | None = None) -> Encoded:
    """The answer's sections as wire bytes; `memo` saves re-encoding RRsets shared by many answers (a
    zone's CNAMEs and SOAs, when every answer is encoded up front)."""
    parts: list[bytes] = []
    ancount = 0
    for owner, rrset in resolution.steps:
        parts.append(_encode_rrset(owner, rrset, memo))
        ancount += len(rrset)
    nscount = 0
    if resolution.soa is not None:
        parts.append(_encode_rrset(resolution.soa.name, resolution.soa, memo))
        nscount = len(resolution.soa)
    return Encoded(resolution.rcode, ancount, nscount, b"".join(parts))


def _encode_rrset(owner: dns.name.Name | None, rrset: dns.rrset.RRset, memo: RRsetMemo | None) -> bytes:
    key = (id(rrset), id(owner))
    if memo is not None and key in memo:
        return memo[key][2]
    owner_wire = _POINTER_TO_QNAME if owner is None else name_wire(owner)
    parts = []
    for rdata in rrset:
        rdata_wire = rdata.to_wire()
        assert rdata_wire is not None
        parts.append(owner_wire + _RR_FIXED.pack(rrset.rdtype, rrset.rdclass, rrset.ttl, len(rdata_wire)))
        parts.append(rdata_wire)
    wire = b"".join(parts)
    if memo is not None:
        memo[key] = (rrset, owner, wire)
    return wire


def name_wire(name: dns.name.Name) -> bytes:
    wire = name.to_wire()
    assert wire is not None  # to_wire without a file returns the bytes
    return wire


def _opt_record(extended_rcode: int) -> bytes:
    # Root owner, type OPT, class = our payload size, TTL = extended rcode | version 0 | no flags.
    return b"\x00" + _RR_FIXED.pack(_OPT, EDNS_PAYLOAD, extended_rcode << 24, 0)


# -- text forms for the query log -------------------------------------------------------------------------

_PLAIN = bytes(range(ord("a"), ord("z") + 1)) + bytes(range(ord("A"), ord("Z") + 1)) + b"0123456789-_*"
_QTYPE_TEXT: dict[int, str] = {}
_RCODE_TEXT: dict[int, str] = {}


def qname_text(qname: bytes) -> str:
    """The wire name `qname` as dnspython prints it (`\\DDD` escapes, trailing dot)."""
    labels: list[bytes] = []
    pos = 0
    while qname[pos]:
        end = pos + 1 + qname[pos]
        labels.append(qname[pos + 1 : end])
        pos = end
    if not labels:
        return "."
    if not b"".join(labels).translate(None, _PLAIN):
        return b".".join(labels).decode("ascii") + "."
    return dns.name.Name([*labels, b""]).to_text()


def qtype_text(qtype: int) -> str:
    """`A`, `AAAA`, `TYPE65534`: the mnemonic dnspython uses."""
    text = _QTYPE_TEXT.get(qtype)
    if text is None:
        text = _QTYPE_TEXT[qtype] = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype))
    return text


def rcode_text(rcode: int) -> str:
    """`NOERROR`, `NXDOMAIN`, `BADVERS`..."""
    text = _RCODE_TEXT.get(rcode)
    if text is None:
        text = _RCODE_TEXT[rcode] = dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
    return text
