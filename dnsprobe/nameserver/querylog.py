"""The server-side query log: one TSV line for every packet the nameserver receives.

    time  proto  client  port  id  qname  qtype  edns  fault  rcode

`time` is unix seconds with 6 decimals, `qname` is the name as received (dnspython's text form, `\\DDD`
escapes, trailing dot), `edns` the advertised UDP payload size, `fault` the injected fault's name, `rcode`
the answer's mnemonic, `formerr` for a malformed query or `drop` when nothing was sent. An unknown field
is `-`.

Lines are buffered and written at least every `FLUSH_INTERVAL` seconds (the server's timer calls
`flush`) and on close, so a crash loses at most that much. The file is only ever appended to; a line
cut by a crash is removed when the log is opened again.

The Go engine (`goserver/querylog.go`) appends the same lines to a log this class opened.

`record` runs once per packet on the server's hot path, so it only appends the packet's fields as they
are (the name in wire form); `flush` turns a whole buffer into text at once, with one format string and
a cache of names. Done per record, the text took about half of the server's time per query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dnsprobe.codec.wire import qname_text, qtype_text
from dnsprobe.errors import NameserverError

__all__ = [
    "FIELDS",
    "FLUSH_INTERVAL",
    "HEADER",
    "QueryLog",
    "QueryLogEntry",
    "read_querylog",
    "read_querylog_fields",
]

FIELDS = ("time", "proto", "client", "port", "id", "qname", "qtype", "edns", "fault", "rcode")
HEADER = "\t".join(FIELDS)
FLUSH_INTERVAL = 0.2
_MAX_BUFFERED = 2000  # lines; a burst is written out before the timer comes round
_NAME_CACHE = 4096  # names
_T = TypeVar("_T")
_LINE = "%.6f\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n"
_Row = tuple[float, str, tuple[str, int], int | None, bytes | None, int | None, int | None, str | None, str]


class QueryLog:
    """An append-only writer. Not thread-safe: the server's event loop owns it."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._buffer: list[_Row] = []
        self._names: dict[bytes, str] = {}  # wire -> text: a lookup's A, AAAA and retries share a name
        try:
            _drop_cut_line(path)
            self._file = path.open("a", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise NameserverError(
                f"cannot write the query log {path}: {exc.strerror}; pick another path"
            ) from exc
        if self._file.tell() == 0:
            self._file.write(HEADER + "\n")
            self._file.flush()

    def record(
        self,
        proto: str,
        client: tuple[str, int],
        qid: int | None,
        qname: bytes | None,
        qtype: int | None,
        edns: int | None,
        fault: str | None,
        outcome: str,
    ) -> None:
        """Log one packet; `qname` in wire form as received, `outcome` an rcode mnemonic, formerr or drop."""
        buffer = self._buffer
        buffer.append((self._clock(), proto, client, qid, qname, qtype, edns, fault, outcome))
        if len(buffer) >= _MAX_BUFFERED:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        self._file.write("".join(self._lines(rows)))
        self._file.flush()  # to the OS: a crash of this process no longer loses them

    def _lines(self, rows: list[_Row]) -> Iterator[str]:
        names = self._names
        if len(names) >= _NAME_CACHE:
            names.clear()
        for when, proto, client, qid, qname, qtype, edns, fault, outcome in rows:
            if qname is None:
                name = "-"
            else:
                name = names.get(qname)  # type: ignore[assignment]
                if name is None:
                    name = names[qname] = qname_text(qname)
            yield _LINE % (
                when,
                proto,
                client[0],
                client[1],
                "-" if qid is None else qid,
                name,
                "-" if qtype is None else qtype_text(qtype),
                "-" if edns is None else edns,
                fault or "-",
                outcome,
            )

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()

    def __enter__(self) -> QueryLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _drop_cut_line(path: Path) -> None:
    """Truncate a last line without its newline (the previous writer crashed mid-write)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with path.open("rb+") as log:
        tail_start = max(0, size - 65536)
        log.seek(tail_start)
        tail = log.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        log.truncate(tail_start + cut + 1 if cut >= 0 else 0)


@dataclass(frozen=True)
class QueryLogEntry:
    """One line of the query log.

    `qname` and `qtype` are the text as logged, `-` for a packet without a readable question; the
    numbers and `fault` are None where the line has `-`.
    """

    time: float
    proto: str
    client: str
    port: int
    id: int | None
    qname: str
    qtype: str
    edns: int | None
    fault: str | None
    rcode: str


def read_querylog(lines: Iterable[str], source: str = "query log") -> Iterator[QueryLogEntry]:
    """Parse query-log lines (with or without their newlines); header lines are skipped.

    The last line is ignored if a crash cut it: it lacks the newline the lines before it have, or does
    not parse. A bad line anywhere else raises NameserverError naming `source` and the line number.
    """
    return _read(lines, source, _parse_line)


def read_querylog_fields(lines: Iterable[str], source: str = "query log") -> Iterator[list[str]]:
    """As `read_querylog`, but each line's ten fields as the text logged, nothing converted: for readers
    that count over millions of lines (no object per line). Indexes follow `FIELDS`."""
    return _read(lines, source, _split_line)


def _read(lines: Iterable[str], source: str, parse: Callable[[str], _T]) -> Iterator[_T]:
    held: tuple[int, str] | None = None  # the latest line: judged once we know whether it is the last
    terminated = False
    for number, line in enumerate(lines, start=1):
        if held is not None:
            entry = _parse_numbered(*held, source, parse)
            if entry is not None:
                yield entry
            terminated = held[1].endswith("\n")
        held = (number, line)
    if held is None or (terminated and not held[1].endswith("\n")):
        return
    try:
        entry = _parse_numbered(*held, source, parse)
    except NameserverError:
        return
    if entry is not None:
        yield entry


def _parse_numbered(number: int, line: str, source: str, parse: Callable[[str], _T]) -> _T | None:
    text = line.rstrip("\n")
    if not text or text == HEADER:
        return None
    try:
        return parse(text)
    except (ValueError, IndexError) as exc:
        raise NameserverError(f"{source}: line {number}: not a query-log line ({exc})") from exc


def _split_line(text: str) -> list[str]:
    fields = text.split("\t")
    if len(fields) != len(FIELDS):
        raise ValueError(f"{len(fields)} fields, expected {len(FIELDS)}")
    return fields


def _parse_line(text: str) -> QueryLogEntry:
    when, proto, client, port, qid, qname, qtype, edns, fault, rcode = _split_line(text)
    return QueryLogEntry(
        time=float(when),
        proto=proto,
        client=client,
        port=int(port),
        id=_optional_int(qid),
        qname=qname,
        qtype=qtype,
        edns=_optional_int(edns),
        fault=None if fault == "-" else fault,
        rcode=rcode,
    )


def _optional_int(text: str) -> int | None:
    return None if text == "-" else int(text)
