"""What an observed program's DNS was, per name: Go's resolver trace joined with the nameserver's query log.

`analyse` reads the program's stderr (trace lines and its own lines) and the query log; `explain` turns
the result into findings, in the report's shape. Used by `dnsprobe observe` (dnsprobe/tools/observe.py).

A name is what the program asked for (`hostLookupOrder(NAME)`); its wire queries are the query names a
lookup of it can send: as is, and under each search domain. Queries no trace line claims (SRV, MX, TXT
lookups print none) are listed under their own query name.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dnsprobe.analyse.trace import MARKER, parse_trace, trace_file_lines
from dnsprobe.nameserver.querylog import QueryLogEntry, read_querylog

MODE = "observed"
OK_OUTCOMES = ("ok", "local")  # local: answered without a query (/etc/hosts)
_CONTEXT_LINES = 1  # program stderr lines kept before and after each line that names a failed lookup
_MAX_STDERR_LINES = 12  # per name


# --- the analysis ------------------------------------------------------------------------------------


def analyse(
    *,
    stderr: bytes,
    querylog_lines: Iterable[str],
    search: Sequence[str],
    started: float,
    timeout_s: float,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Per name: resolver and order (trace), wire queries, rcodes, retries, timeouts, the delay each fault
    added, the outcome, and the program's stderr lines that mention it; plus the time to the first
    successful answer. Times are seconds from the program's start."""
    lines = list(trace_file_lines(stderr))
    trace = parse_trace(lines)
    program_lines = [line for line in lines if MARKER not in line]
    entries = list(read_querylog(querylog_lines))
    by_wire: dict[str, str] = {}
    for name in [n for n in trace.names if n]:  # Go <= 1.20 prints some order lines without the name
        for variant in _wire_names(name, search):
            by_wire.setdefault(variant, name)
    grouped: dict[str, list[QueryLogEntry]] = {name: [] for name in trace.names if name}
    other: dict[str, list[QueryLogEntry]] = {}
    for entry in entries:
        owner = by_wire.get(entry.qname.lower())
        (grouped.setdefault(owner, []) if owner is not None else other.setdefault(entry.qname, [])).append(
            entry
        )
    names = [
        _name_view(name, trace.names.get(name, []), queries, program_lines, started, timeout_s)
        for name, queries in grouped.items()
    ]
    for view in names:
        reason = selection_reason(view["resolver"], trace.selection, config or {})
        if reason:
            view["why"] = f"{view['why']}: {reason}"
    names += [
        _name_view(qname, [], queries, program_lines, started, timeout_s) for qname, queries in other.items()
    ]
    answered = [e.time for e in entries if e.rcode == "NOERROR" and e.fault is None]
    return {
        "resolver": trace.resolver,
        "selection": list(trace.selection),
        "names": names,
        "wire_queries": len(entries),
        "rcodes": dict(Counter(e.rcode for e in entries)),
        "first_answer_s": round(min(answered) - started, 3) if answered else None,
        "stderr_lines": len(program_lines),
        "fault_delays_s": _fault_totals(names),
    }


def selection_reason(resolver: str | None, selection: Sequence[str], config: Mapping[str, Any]) -> str:
    """Why Go chose this resolver, from its startup line and the facts it decides on: the build (`go`:
    cgo_enabled, tags), GODEBUG, and the pod's nsswitch.conf, resolv.conf and environment."""
    if resolver is None:
        return ""
    text = " ".join(selection).lower()
    go = config.get("go") or {}
    godebug = str(config.get("godebug") or "")
    if "forcing use of" in text:
        return f"GODEBUG {godebug} forces it"
    if resolver == "go":
        if go.get("cgo_enabled") is False or "cgo resolver not supported" in text:
            return "built with CGO_ENABLED=0, so there is no cgo resolver"
        if "netgo" in (go.get("tags") or []) or "netgo build tag" in text:
            return "built with -tags netgo"
        return "dynamic selection: nothing in the pod's settings needs the C library for this name"
    if resolver in ("cgo", "mixed"):
        if "netcgo" in (go.get("tags") or []):
            return "built with -tags netcgo"
        reasons = cgo_reasons(config)
        return "; ".join(reasons) if reasons else "dynamic selection (see the startup lines)"
    return ""


def cgo_reasons(config: Mapping[str, Any]) -> list[str]:
    """The settings in the pod Go's resolver cannot honour (each makes a cgo-capable build use cgo)."""
    from dnsprobe.goresolver import CGO_ENV, GO_NSS_SOURCES, GO_RESOLV_OPTIONS

    reasons = []
    for line in str(config.get("nsswitch") or "").splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "hosts:":
            extra = [w for w in words[1:] if w not in GO_NSS_SOURCES]
            if extra:
                reasons.append(f"nsswitch.conf hosts: {' '.join(extra)} (Go cannot follow it)")
    for line in str(config.get("resolv_conf") or "").splitlines():
        words = line.split()
        if words and words[0] == "options":
            unknown = [o for o in words[1:] if o.partition(":")[0] not in GO_RESOLV_OPTIONS]
            if unknown:
                reasons.append(f"resolv.conf options {' '.join(unknown)}")
    env = config.get("env") or {}
    reasons += [f"{k}={env[k]}" for k in CGO_ENV if k in env and (k == "LOCALDOMAIN" or env[k])]
    return reasons


def _wire_names(name: str, search: Sequence[str]) -> list[str]:
    """The query names a lookup of `name` can send: as is, and with each search domain (any order); for
    an address (addrLookupOrder), its reverse-lookup name."""
    try:
        return [ipaddress.ip_address(name.split("%", 1)[0]).reverse_pointer + "."]
    except ValueError:
        pass
    base = name.lower()
    if base.endswith("."):
        return [base]
    return [f"{base}.", *(f"{base}.{domain.strip('.').lower()}." for domain in search)]


def _name_view(
    name: str,
    orders: list[str],
    queries: list[QueryLogEntry],
    program_lines: list[str],
    started: float,
    timeout_s: float,
) -> dict[str, Any]:
    queries = sorted(queries, key=lambda e: e.time)
    resolver = None
    if orders:
        resolver = "cgo" if set(orders) == {"cgo"} else "go" if "cgo" not in orders else "mixed"
    pairs = Counter((e.qname, e.qtype) for e in queries)
    outcome = _outcome(queries, _error_line(name, program_lines))
    view: dict[str, Any] = {
        "name": name,
        "orders": orders,
        "resolver": resolver,
        "why": _order_meaning(orders),
        "queries": len(queries),
        "qnames": sorted({e.qname for e in queries}),
        "qtypes": dict(Counter(e.qtype for e in queries)),
        "rcodes": dict(Counter(e.rcode for e in queries)),
        "faults": dict(Counter(e.fault for e in queries if e.fault)),
        "retries": sum(n - 1 for n in pairs.values()),
        "timeouts": sum(1 for e in queries if e.rcode == "drop"),
        "first_query_s": round(queries[0].time - started, 3) if queries else None,
        "last_query_s": round(queries[-1].time - started, 3) if queries else None,
        "fault_delay_s": _fault_delays(queries, timeout_s),
        "outcome": outcome,
        "stderr": _stderr_around(name, program_lines) if outcome not in OK_OUTCOMES else [],
    }
    return view


def _outcome(queries: list[QueryLogEntry], error_line: str) -> str:
    """From the wire: ok, not_found, temporary, refused, timeout, other. A name that sent no query was
    answered locally (/etc/hosts, or the C library's own sources) unless the program logged an error
    for it."""
    rcodes = {e.rcode for e in queries}
    if not queries:
        return "other" if error_line else "local"
    if "NOERROR" in rcodes:
        return "ok"
    if rcodes == {"NXDOMAIN"} or rcodes == {"NXDOMAIN", "drop"}:
        return "not_found"
    if "SERVFAIL" in rcodes:
        return "temporary"
    if "REFUSED" in rcodes:
        return "refused"
    if rcodes == {"drop"}:
        return "timeout"
    return "other"


# How Go's and the C libraries' resolver errors read in a program's log.
_ERROR_WORDS = (
    "no such host",
    "server misbehaving",
    "i/o timeout",
    "temporary failure",
    "try again",
    "name or service not known",
    "error",
    "fail",
)


def _error_line(name: str, lines: list[str]) -> str:
    """The first line of the program's stderr that names `name` and reads as an error."""
    bare = name.rstrip(".")
    for line in lines:
        if bare and bare in line and any(word in line.lower() for word in _ERROR_WORDS):
            return line
    return ""


def _order_meaning(orders: list[str]) -> str:
    meaning = {
        "cgo": "handed to the C library's getaddrinfo (cgo)",
        "files,dns": "Go's own resolver: /etc/hosts, then DNS",
        "dns,files": "Go's own resolver: DNS, then /etc/hosts",
        "files": "Go's own resolver: /etc/hosts only",
        "dns": "Go's own resolver: DNS only",
    }
    if not orders:
        return "no trace line: SRV, MX, TXT and NS lookups print none (they always use Go's resolver)"
    return "; then ".join(meaning.get(order, order) for order in orders)


def _fault_delays(queries: list[QueryLogEntry], timeout_s: float) -> dict[str, float]:
    """Wall-clock seconds each fault cost this name: from a faulted query to the client's next query of
    the same question (its retry, or the next server), intervals of parallel queries merged. A fault
    after which the client asked nothing more cost up to its timeout, or to the name's last query."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for i, entry in enumerate(queries):
        if not entry.fault:
            continue
        later = [e.time for e in queries[i + 1 :] if e.qtype == entry.qtype]
        end = later[0] if later else entry.time + (timeout_s if entry.rcode == "drop" else 0.0)
        spans.setdefault(entry.fault, []).append((entry.time, end))
    return {fault: round(_union(intervals), 3) for fault, intervals in spans.items()}


def _union(intervals: list[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


def _fault_totals(names: list[dict[str, Any]]) -> dict[str, float]:
    totals: Counter[str] = Counter()
    for view in names:
        for fault, seconds in view["fault_delay_s"].items():
            totals[fault] += seconds
    return {fault: round(seconds, 3) for fault, seconds in totals.items()}


def _stderr_around(name: str, lines: list[str]) -> list[str]:
    bare = name.rstrip(".")
    hits = [i for i, line in enumerate(lines) if bare and bare in line]
    keep: list[int] = []
    for i in hits:
        for j in range(max(0, i - _CONTEXT_LINES), min(len(lines), i + _CONTEXT_LINES + 1)):
            if j not in keep:
                keep.append(j)
    return [lines[j] for j in sorted(keep)][:_MAX_STDERR_LINES]


# --- explaining what was seen -----------------------------------------------------------------------


def explain(observed: Mapping[str, Any], *, timeout_s: float, servers: int) -> list[dict[str, Any]]:
    """Findings about the observed program, in the report's shape (rule, severity, names, seen, why, fix)."""
    found: list[dict[str, Any]] = []

    def add(rule: str, severity: str, names: list[str], seen: str, why: str, fix: str) -> None:
        found.append(
            {
                "rule": rule,
                "severity": severity,
                "modes": [MODE],
                "names": names,
                "seen": seen,
                "why": why,
                "fix": fix,
            }
        )

    views = observed["names"]
    dropped = [v for v in views if v["fault_delay_s"].get("drop")]
    if dropped:
        worst = max(v["fault_delay_s"]["drop"] for v in dropped)
        add(
            "queries_dropped",
            "critical" if worst >= timeout_s else "warning",
            [v["name"] for v in dropped],
            f"{len(dropped)} name(s) had queries go unanswered; the waits added up to {worst:.1f} s for one "
            f"name ({', '.join(_short(v, 'drop') for v in dropped[:4])}).",
            f"A query with no answer costs the resolver its whole timeout ({timeout_s:g} s here) before it "
            f"retries or asks the next of the {servers} nameserver(s). Go and glibc try servers in order, so "
            "a dead first server delays every lookup; musl asks all servers at once.",
            "Take the dead server out of resolv.conf (fix the endpoint behind it), lower `options timeout:`, "
            "or put a node-local cache in front of the cluster DNS.",
        )
    servfail = [v for v in views if v["rcodes"].get("SERVFAIL")]
    if servfail:
        failed = [v for v in servfail if v["outcome"] != "ok"]
        add(
            "servfail_answers",
            "critical" if failed else "warning",
            [v["name"] for v in servfail],
            f"SERVFAIL for {', '.join(v['name'] for v in servfail[:4])}"
            + (f"; the program saw: {_naming_line(failed[0])}" if failed and _naming_line(failed[0]) else "")
            + ".",
            "SERVFAIL means the nameserver's upstream failed. Go's resolver tries the next server and then "
            "returns a temporary error (`server misbehaving`, IsTemporary); glibc returns EAI_AGAIN; "
            "musl retries after 1 s.",
            "Fix the upstream the nameserver forwards to; let the service retry temporary errors with "
            "backoff instead of failing its start.",
        )
    for rcode, rule, meaning in (
        ("NXDOMAIN", "names_not_found", "no such host"),
        ("REFUSED", "queries_refused", "server misbehaving (not temporary)"),
    ):
        hit = [v for v in views if v["outcome"] == {"NXDOMAIN": "not_found", "REFUSED": "refused"}[rcode]]
        if hit:
            add(
                rule,
                "warning",
                [v["name"] for v in hit],
                f"{rcode} for {', '.join(v['name'] for v in hit[:4])}.",
                f"Go reports `{meaning}` for these names.",
                "Check the name and the records the service's nameserver serves.",
            )
    walked = [v for v in views if len(v["qnames"]) > 1]
    if walked:
        add(
            "search_list_walk",
            "info",
            [v["name"] for v in walked],
            f"{len(walked)} name(s) were tried under several search domains "
            f"({walked[0]['name']}: {len(walked[0]['qnames'])} names, {walked[0]['queries']} queries).",
            "A name with fewer dots than resolv.conf's ndots is tried with every search domain first; each "
            "try is an A and an AAAA query, and each one pays any fault again.",
            "Use fully qualified names with a trailing dot for external names, or lower ndots.",
        )
    cgo = [v for v in views if v["resolver"] in ("cgo", "mixed")]
    if cgo:
        add(
            "cgo_resolver",
            "info",
            [v["name"] for v in cgo],
            f"{len(cgo)} name(s) went to the C library's resolver (trace: hostLookupOrder(...) = cgo); "
            f"startup: {'; '.join(observed['selection']) or 'no startup line'}.",
            "A cgo-capable Go binary hands a lookup to getaddrinfo when GODEBUG=netdns=cgo, a netcgo build "
            "tag, or a setting Go cannot honour asks for it: nsswitch.conf `hosts:` sources other than files "
            "and dns, unknown resolv.conf options, LOCALDOMAIN, RES_OPTIONS or HOSTALIASES.",
            "Build with CGO_ENABLED=0 (or -tags netgo) if the service needs no cgo; otherwise expect the C "
            "library's timeouts and retries.",
        )
    return found


def _naming_line(view: Mapping[str, Any]) -> str:
    bare = str(view["name"]).rstrip(".")
    return next((line for line in view["stderr"] if bare in line), "")


def _short(view: Mapping[str, Any], fault: str) -> str:
    return f"{view['name']} +{view['fault_delay_s'][fault]:.1f} s"
