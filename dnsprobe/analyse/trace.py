"""Go's resolver trace: which resolver a Go program used, read from its GODEBUG=netdns=+1/+2 lines.

Go prints these lines to stderr from src/net/conf.go (runtime `println`/`print`, so they bypass any
logger). Level 1 gives one startup line that says how the resolver is selected; level 2 adds
`confVal.netCgo = B  netGo = B` and one line per lookup, `hostLookupOrder(NAME) = ORDER` or
`addrLookupOrder(ADDR) = ORDER`. ORDER `cgo` means the C library resolved that name; any other order
(`files,dns`, `dns,files`, `files`, `dns`) means Go's own resolver did.

The startup wording changed in Go 1.24 (quoted from conf.go at each release):

    Go <= 1.20   built with netgo build tag; using Go's DNS resolver     (also CGO_ENABLED=0 builds)
                 GODEBUG setting forcing use of Go's resolver
                 using cgo DNS resolver
                 dynamic selection of DNS resolver
                 (the confVal line appears around 1.20; before 1.21, port/CNAME/PTR lookups
                 print `hostLookupOrder() = ORDER`, with no name)
    Go 1.21-1.23 as above, plus `cgo resolver not supported; using Go's DNS resolver` (CGO_ENABLED=0)
                 and `addrLookupOrder(ADDR) = ORDER`
    Go >= 1.24   using the Go DNS resolver / using the cgo DNS resolver
                 GODEBUG setting forcing use of the Go resolver / ... of the cgo resolver
                 dynamic selection of DNS resolver
                 ignoring GODEBUG=netdns=cgo as the binary was compiled without support for the cgo resolver
                 GODEBUG=netdns contains an invalid dns mode, ignoring it

Users paste logs, not clean stderr: the marker `go package net:` is looked for anywhere in a line, so
timestamps, `kubectl logs --prefix` tags, syslog and CRI prefixes fall away, and a marker inside a JSON
or logfmt string is read as that string's decoded value (escaped newlines split messages). Damaged
lines (truncated, or torn by another writer: runtime `print` writes each argument separately) are
skipped rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dnsprobe.analyse.tracewhy import PodContext, explain, explain_name
from dnsprobe.errors import InspectError

MARKER = "go package net:"

# Every order name Go has printed (hostLookupOrder.String, unchanged from Go 1.5 to 1.27).
KNOWN_ORDERS = ("cgo", "files,dns", "dns,files", "files", "dns")

# The order must be one Go prints and end there: "files,d" is a cut line, "= 2026/11/20 ..." a torn one.
_ORDER_RE = re.compile(
    r"(?P<fn>host|addr)LookupOrder\((?P<name>.*)\) = "
    r"(?P<order>files,dns|dns,files|files|dns|cgo|hostLookupOrder=-?\d+\?\?)(?![\w,])"
)
_CONF_RE = re.compile(r"confVal\.netCgo = (?P<cgo>true|false)\s+netGo = (?P<go>true|false)")

# (pattern, kind, resolver), first match wins. Matched with `search`, case-insensitively, so the
# wordings of every release (and a stray suffix) are covered by a few patterns.
_STARTUP_RULES: tuple[tuple[re.Pattern[str], str, str | None], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind, resolver)
    for pattern, kind, resolver in (
        (r"ignoring GODEBUG=netdns=cgo\b", "ignored", "go"),
        (r"invalid dns mode", "invalid", None),
        (r"forcing use of (?:the )?cgo resolver", "selection", "cgo"),
        (r"forcing use of (?:the )?go(?:'s)? resolver", "selection", "go"),
        (r"built with netgo build tag", "selection", "go"),
        (r"cgo resolver not supported", "selection", "go"),
        (r"using (?:the )?cgo dns resolver", "selection", "cgo"),
        (r"using (?:the )?go(?:'s)? dns resolver", "selection", "go"),
        (r"dynamic selection of dns resolver", "selection", None),
    )
)

# Every startup message Go has printed, to tell a cut one ("using the Go DN") from a new wording.
_KNOWN_MESSAGES = (
    "using the Go DNS resolver",
    "using the cgo DNS resolver",
    "GODEBUG setting forcing use of the Go resolver",
    "GODEBUG setting forcing use of the cgo resolver",
    "dynamic selection of DNS resolver",
    "ignoring GODEBUG=netdns=cgo as the binary was compiled without support for the cgo resolver",
    "GODEBUG=netdns contains an invalid dns mode, ignoring it",
    "built with netgo build tag; using Go's DNS resolver",
    "cgo resolver not supported; using Go's DNS resolver",
    "GODEBUG setting forcing use of Go's resolver",
    "using cgo DNS resolver",
    "confVal.netCgo = ",
    "hostLookupOrder(",
    "addrLookupOrder(",
)

# A backslash escape or a double quote, as JSON and logfmt (Go's %q) write strings.
_QUOTE_OR_ESCAPE = re.compile(r'\\(?:u[0-9a-fA-F]{4}|.)|"', re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "/": "/", '"': '"', "\\": "\\"}
_MAX_NESTING = 3  # a JSON log line whose string holds another JSON document, and so on


@dataclass(frozen=True)
class TraceEvent:
    """One trace message. `text` is the message after `go package net: `, without any log prefix."""

    line_no: int
    kind: str  # "selection", "order", "conf", "ignored" or "invalid"
    resolver: str | None  # "go" or "cgo" when the message settles it, else None
    name: str | None  # order lines: the name (or address) looked up; "" for Go <= 1.20's nameless lines
    order: str | None  # order lines: "cgo", "files,dns", "dns,files", "files" or "dns"
    text: str


@dataclass
class TraceReport:
    """What a whole log says. Built by `parse_trace`; `to_json` is the `dnsprobe trace --json` contract."""

    resolver: str = "unknown"  # "go", "cgo", "mixed" or "unknown"
    selection: list[str] = field(default_factory=list)  # startup messages, in order, de-duplicated
    names: dict[str, list[str]] = field(default_factory=dict)  # name -> distinct orders, first seen first
    order_counts: dict[str, int] = field(default_factory=dict)  # order -> order lines with it
    lines: int = 0  # lines read
    trace_lines: int = 0  # trace messages understood
    go_resolver_names: int = 0  # distinct names with a non-cgo order
    cgo_resolver_names: int = 0  # distinct names with order cgo
    name_count: int = 0  # distinct names seen, including those beyond max_names
    containers: dict[str, TraceReport] = field(default_factory=dict)  # per container, when a log says
    cgo_reasons: list[str] | None = None  # why names went to cgo, from the pod's files (when given)
    name_reasons: dict[str, list[str]] = field(default_factory=dict)  # cgo name -> per-name reasons

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "resolver": self.resolver,
            "selection": list(self.selection),
            "names": {name: list(orders) for name, orders in self.names.items()},
            "order_counts": dict(self.order_counts),
            "lines": self.lines,
            "trace_lines": self.trace_lines,
        }
        if self.containers:
            data["containers"] = {key: report.to_json() for key, report in self.containers.items()}
        if self.cgo_reasons is not None:
            data["cgo_reasons"] = list(self.cgo_reasons)
            data["name_reasons"] = {name: list(r) for name, r in self.name_reasons.items()}
        return data


def parse_trace_line(line: str, line_no: int) -> TraceEvent | None:
    """The first trace message in `line`, or None when it holds none (or only a damaged one)."""
    for text in _messages(line, 0):
        parsed = _classify(text)
        if parsed is not None:
            return TraceEvent(line_no, *parsed)
    return None


def parse_trace(lines: Iterable[str], *, max_names: int | None = None) -> TraceReport:
    """Read a log line by line; memory grows with the distinct names, not with the lines.

    With `max_names`, `names` keeps the first `max_names` distinct names only; every count (orders,
    names per resolver, `name_count`) still covers all of them.
    """
    if max_names is not None and max_names < 0:
        raise ValueError(f"max_names must be >= 0, not {max_names}")
    report = TraceReport()
    seen_selection: set[str] = set()
    startup_resolvers: set[str] = set()
    # name -> bit 1: some lookup went to Go's resolver, bit 2: some lookup went to cgo
    name_resolvers: dict[str, int] = {}
    names, order_counts = report.names, report.order_counts
    count = 0
    # The loop body is the hot path of a load run (one line per lookup): tuples, no events, no calls
    # that a plain order line does not need.
    for line in lines:
        count += 1
        if MARKER not in line:
            continue
        for text in _messages(line, 0):
            parsed = _classify(text)
            if parsed is None:
                continue
            report.trace_lines += 1
            _kind, resolver, name, order, text = parsed
            if name is not None and order is not None:
                order_counts[order] = order_counts.get(order, 0) + 1
                name_resolvers[name] = name_resolvers.get(name, 0) | (2 if resolver == "cgo" else 1)
                orders = names.get(name)
                if orders is None:
                    if max_names is None or len(names) < max_names:
                        names[name] = [order]
                elif order not in orders:
                    orders.append(order)
                continue
            if resolver is not None:
                startup_resolvers.add(resolver)
            if text not in seen_selection:
                seen_selection.add(text)
                report.selection.append(text)
    report.lines = count
    report.name_count = len(name_resolvers)
    report.go_resolver_names = sum(1 for bits in name_resolvers.values() if bits & 1)
    report.cgo_resolver_names = sum(1 for bits in name_resolvers.values() if bits & 2)
    report.resolver = _decide(report.go_resolver_names, report.cgo_resolver_names, startup_resolvers)
    return report


def format_trace(report: TraceReport, *, max_rows: int = 30) -> str:
    """A short summary for people: the resolver, why (the startup lines), and the order per name."""
    out = [f"resolver: {report.resolver} ({_verdict(report)})"]
    if report.selection:
        out.append("startup lines:")
        out.extend(f"  {text}" for text in report.selection)
    if report.name_count:
        counts = ", ".join(f"{order} {count}" for order, count in report.order_counts.items())
        plural = "s" if report.name_count != 1 else ""
        out.append(f"lookup order per name ({report.name_count} name{plural}; order lines: {counts}):")
        shown = list(report.names.items())[:max_rows]
        width = min(max((len(_display_name(name)) for name, _ in shown), default=0), 60)
        for name, orders in shown:
            out.append(f"  {_display_name(name):<{width}}  {' then '.join(orders)}")
        if report.name_count > len(shown):
            out.append(f"  ... and {report.name_count - len(shown)} more")
    elif report.trace_lines:
        out.append(
            "no per-lookup lines: run with GODEBUG=netdns=+2 (or go+2, cgo+2) to see each name's order"
        )
    if report.containers:
        out.append(f"per container ({len(report.containers)}):")
        for key, sub in report.containers.items():
            out.append(f"  {key}: {sub.resolver} ({_verdict(sub)})")
            if sub.cgo_reasons and (sub.cgo_resolver_names or sub.resolver == "cgo"):
                out.extend(f"    why cgo: {reason}" for reason in sub.cgo_reasons)
            elif sub.cgo_reasons:
                out.append(
                    f"    its files would send names to cgo ({len(sub.cgo_reasons)} reason(s)), but this "
                    "build used Go's resolver (CGO_ENABLED=0 or -tags netgo)"
                )
    if report.cgo_reasons is not None:
        out.extend(_reason_lines(report))
    out.append(f"read {_count(report.lines, 'line')}, {_count(report.trace_lines, 'trace line')}")
    return "\n".join(out)


def _reason_lines(report: TraceReport) -> list[str]:
    reasons = report.cgo_reasons or []
    if reasons or report.name_reasons:
        lines = ["why names go to cgo (from the pod's files):"]
        lines += [f"  {reason}" for reason in reasons]
        lines += [f"  {name}: {'; '.join(r)}" for name, r in list(report.name_reasons.items())[:10]]
        return lines
    if report.cgo_resolver_names or report.resolver == "cgo":
        return [
            "why names go to cgo: nothing in the pod's files given explains it: the binary itself "
            "prefers cgo (-tags netcgo, or netdns=cgo in its DefaultGODEBUG: see `dnsprobe inspect`)"
        ]
    return ["the pod's files given would not send a name to cgo"]


# Control bytes that no log holds (tab, newline, carriage return, form feed and ESC for colours aside).
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_KUBECTL_PREFIX = re.compile(r"^\[pod/([^/\]\s]+)/([^\]\s]+)\] ")
_TAIL_HEADER = re.compile(r"^==> (.+) <==$")
# docker compose: `project-service-1  | message` (v2) or `project_service_1 | message` (v1); the
# replica number keeps a log level column like `INFO | ...` from passing for a container.
_COMPOSE_PREFIX = re.compile(r"^([A-Za-z0-9][\w.-]*[-_]\d+)\s+\| ")
_POD_LOG_PATH = re.compile(r"/var/log/pods/[^/_]+_([^/_]+)_[^/]+/([^/]+)/")
_CONTAINER_LOG_PATH = re.compile(r"/var/log/containers/([^_/]+)_[^_/]+_(.+)-[0-9a-f]{64}\.log$")
_DOCKER_LOG_PATH = re.compile(r"/var/lib/docker/containers/([0-9a-f]{12})[0-9a-f]*/")


def check_text(data: bytes, source: str) -> None:
    """InspectError for input that is not a text log (a Go binary, an archive, an image)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return  # UTF-16 (PowerShell's redirection): NUL bytes are expected
    if data[:4] == b"\x7fELF":
        raise InspectError(
            f"{source}: an ELF binary, not a log; give the program's stderr run with GODEBUG=netdns=+2 "
            "(`dnsprobe inspect` reads binaries)"
        )
    sample = data[: 1 << 16]
    bad = len(_BINARY_BYTES.findall(sample))
    if bad > max(8, len(sample) // 100):
        raise InspectError(
            f"{source}: not a text log ({bad} control bytes in the first {len(sample)}); give the "
            "program's stderr run with GODEBUG=netdns=+2"
        )


def container_of_path(path: str) -> str:
    """The container a log file belongs to, from the kubelet's or Docker's log path; else the path."""
    for pattern in (_POD_LOG_PATH, _CONTAINER_LOG_PATH):
        found = pattern.search(path)
        if found:
            return f"{found[1]}/{found[2]}"
    found = _DOCKER_LOG_PATH.search(path)
    return f"docker:{found[1]}" if found else path


def split_containers(lines: Iterable[str]) -> dict[str, list[str]]:
    """Lines per container when the log says whose they are: `kubectl logs --prefix` tags, `tail`
    headers over CRI or Docker json-file logs (`==> /var/log/pods/... <==`), `docker compose logs`
    prefixes. Empty when nothing in the log names a container."""
    groups: dict[str, list[str]] = {}
    current = ""
    for line in lines:
        header = _TAIL_HEADER.match(line)
        if header:
            current = container_of_path(header[1].strip())
            continue
        key = current
        tagged = _KUBECTL_PREFIX.match(line)
        if tagged:
            key = f"{tagged[1]}/{tagged[2]}"
        elif not current:
            compose = _COMPOSE_PREFIX.match(line)
            if compose:
                key = compose[1]
        if key:
            groups.setdefault(key, []).append(line)
    return groups


def analyse_log(
    data: bytes, *, source: str = "log", context: PodContext | None = None, max_names: int | None = None
) -> TraceReport:
    """`dnsprobe trace`: the whole log, each container in it, and (given the pod's files) why cgo."""
    check_text(data, source)
    lines = list(trace_file_lines(data))
    report = parse_trace(lines, max_names=max_names)
    groups = split_containers(lines)
    for key, group in groups.items():
        sub = parse_trace(group, max_names=max_names)
        if sub.trace_lines:  # a sidecar without Go's trace says nothing about DNS
            report.containers[key] = sub
    if context is not None:
        add_reasons(report, context)
    return report


def add_reasons(report: TraceReport, context: PodContext) -> None:
    report.cgo_reasons = explain(context)
    for name, orders in report.names.items():
        if "cgo" in orders:
            specific = explain_name(context, name)
            if specific:
                report.name_reasons[name] = specific


def trace_file_lines(data: bytes) -> Iterator[str]:
    """The lines of a log file of any origin, for `parse_trace`: UTF-8 (bad bytes replaced), \\n or \\r\\n.

    A UTF-16 byte-order mark is honoured too: Windows PowerShell's `kubectl logs > file` writes UTF-16.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    else:
        text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        line = text[start:end]
        yield line[:-1] if line.endswith("\r") else line
        start = end + 1


# --- internals -------------------------------------------------------------------------------------


# kind, resolver, name, order, text: a TraceEvent without its line number
_Parsed = tuple[str, str | None, str | None, str | None, str]


def _messages(line: str, depth: int) -> list[str]:
    """The text after each marker in `line`; a marker inside a quoted string yields that string decoded."""
    at = line.find(MARKER)
    if at < 0:
        return []
    body = at + len(MARKER)
    if line.find(MARKER, body) < 0 and line.find('"', 0, at) < 0:  # the usual line: one bare message
        return [line[body:].split("\r", 1)[0].strip()]
    return list(_all_messages(line, depth))


def _all_messages(line: str, depth: int) -> Iterator[str]:
    pos = 0  # where to look for the next marker
    outside = 0  # a position known to be outside any quoted string
    while (at := line.find(MARKER, pos)) >= 0:
        opening = _opening_quote(line, outside, at)
        if opening < 0:
            body = at + len(MARKER)
            nxt = line.find(MARKER, body)
            end = nxt if nxt >= 0 else len(line)
            # A bare carriage return ends the message too (a CRLF log split on \n only, or a \r overwrite).
            yield line[body:end].split("\r", 1)[0].strip()
            pos = end
            continue
        decoded, closing = _decode_quoted(line, opening + 1)
        if depth < _MAX_NESTING:
            for part in decoded.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
                if MARKER in part:
                    yield from _messages(part, depth + 1)
        pos = outside = closing


def _opening_quote(line: str, start: int, end: int) -> int:
    """Index of the quote that opens the string around `end`, or -1 when `end` is outside strings."""
    if line.find('"', start, end) < 0:
        return -1
    opening = -1
    for match in _QUOTE_OR_ESCAPE.finditer(line, start, end):
        if match.group() == '"':
            opening = match.start() if opening < 0 else -1
    return opening


def _decode_quoted(line: str, start: int) -> tuple[str, int]:
    """Decode a JSON/logfmt string body from `start`; returns it and the index after its closing quote."""
    parts: list[str] = []
    pos = start
    for match in _QUOTE_OR_ESCAPE.finditer(line, start):
        parts.append(line[pos : match.start()])
        piece = match.group()
        pos = match.end()
        if piece == '"':
            return "".join(parts), pos
        escaped = piece[1:]
        if len(escaped) == 5:  # \uXXXX
            parts.append(chr(int(escaped[1:], 16)))
        else:
            parts.append(_SIMPLE_ESCAPES.get(escaped, escaped))
    parts.append(line[pos:])  # no closing quote: the line was cut
    return "".join(parts), len(line)


def _classify(text: str) -> _Parsed | None:
    if text.startswith(("hostLookupOrder(", "addrLookupOrder(")):
        match = _ORDER_RE.match(text)
        if match is None:
            return None  # cut off, or torn by another writer
        name, order = match["name"], match["order"]
        return "order", "cgo" if order == "cgo" else "go", name, order, match.group()  # without any tail
    if not text:
        return None
    if text.startswith("confVal."):
        conf = _CONF_RE.match(text)
        if conf is None:
            return None
        # netGo = true rules out cgo in every release; netCgo = true does not force cgo (1.24 prints it
        # for a CGO_ENABLED=0 binary run with netdns=cgo).
        return "conf", "go" if conf["go"] == "true" else None, None, None, conf.group()
    for pattern, kind, resolver in _STARTUP_RULES:
        if pattern.search(text):
            return kind, resolver, None, None, text
    if any(known.startswith(text) for known in _KNOWN_MESSAGES):
        return None  # a known message, cut short
    # An unknown wording (a later release?) is kept, undecided, so a reader of `selection` sees it.
    return "selection", None, None, None, text


def _decide(go_names: int, cgo_names: int, startup: set[str]) -> str:
    """Per-name lines settle it; without them, a definitive startup line does ("dynamic" does not)."""
    if go_names or cgo_names:
        evidence = {"go"} if not cgo_names else {"cgo"} if not go_names else {"go", "cgo"}
    else:
        evidence = startup
    if evidence == {"go"}:
        return "go"
    if evidence == {"cgo"}:
        return "cgo"
    return "mixed" if evidence else "unknown"


def _verdict(report: TraceReport) -> str:
    go, cgo = report.go_resolver_names, report.cgo_resolver_names
    if go or cgo:
        parts = []
        if go:
            parts.append(f"{go} name{'s' if go != 1 else ''} on Go's resolver")
        if cgo:
            parts.append(f"{cgo} name{'s' if cgo != 1 else ''} on cgo")
        return ", ".join(parts)
    if report.resolver in ("go", "cgo"):
        return "from the startup line; no per-lookup lines"
    if report.resolver == "mixed":
        return "the startup lines disagree: more than one program or build in this log?"
    if report.trace_lines:
        return "dynamic selection: Go decides per name at lookup time, and the log has no per-lookup lines"
    return f"no Go resolver trace in {report.lines} lines: run the program with GODEBUG=netdns=+2 (stderr)"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _display_name(name: str) -> str:
    return name if name else "(no name: port, CNAME or PTR lookup, Go <= 1.20)"
