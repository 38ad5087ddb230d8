"""Likely cause and remediation: small rules over the evidence a run collected.

The evidence is the summary the pipeline wrote (README, "Contracts") and what it carries: per mode the
figures, Go's resolver trace ("trace"), the binary's facts ("binary": cgo, libc, linkage, loader), the
nameserver's view ("wire": rcodes, source ports), the timeout fingerprint ("timeout_peaks") and the pod's
resolv.conf facts ("resolv"); per run the pod's files ("pod"). Each rule is one function taking that and
returning a `Finding` or None, so each is tested alone on a golden case (tests/data/rules/).

A finding says what was seen (with the figures), why it happens (the resolver's behaviour), and what to
change. Remediation follows the CGO_ENABLED decision tree (README, "How it works"): no cgo needed → a static
CGO_ENABLED=0 binary on distroless/static; cgo needed → the same libc family in build and runtime stages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from dnsprobe.goresolver import CGO_ENV, GO_NSS_SOURCES, GO_RESOLV_OPTIONS

Severity = Literal["critical", "warning", "info"]
SEVERITY_ORDER: Final = ("critical", "warning", "info")
DEFAULT_TIMEOUT_S: Final = 5.0
# A share of lookups this large at k x timeout is a fingerprint, not noise.
PEAK_SHARE: Final = 0.01
PEAK_MIN_LOOKUPS: Final = 3
SERVFAIL_SHARE: Final = 0.10
SERVFAIL_MIN: Final = 20
# Above A + AAAA by this much, a lookup is walking the search list.
EXPANSION_MARGIN: Final = 0.5

NO_CGO_FIX: Final = (
    "If the service needs no cgo (`go list -deps -f '{{if .CgoFiles}}{{.ImportPath}}{{end}}' ./...` "
    'prints nothing), build it with `CGO_ENABLED=0 go build -ldflags="-s -w"` and run it on '
    "distroless/static: Go's own resolver, a static binary that starts on any base image."
)
CGO_FIX: Final = (
    "If it needs cgo, keep build and runtime on the same libc: a glibc builder (golang:1.x) with "
    "distroless/base or debian-slim, or both stages on alpine (golang:1.x-alpine with build-base). "
    "Verify with `file`/`ldd` on the binary and `GODEBUG=netdns=go+1` for the resolver actually used."
)


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    modes: tuple[str, ...]
    seen: str
    why: str
    fix: str
    # Findings of these rules say less than this one about the same lookups (and may mislead), so a
    # report that has this one leaves them out.
    supersedes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "modes": list(self.modes),
            "seen": self.seen,
            "why": self.why,
            "fix": self.fix,
        }


# --- reading the evidence ------------------------------------------------------------------------------


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _modes(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in summary.get("modes") or () if isinstance(m, Mapping)]


def _ran(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        m for m in _modes(summary) if m.get("status", "ran") == "ran" and (_num(m.get("lookups")) or 0) > 0
    ]


def _name(mode: Mapping[str, Any]) -> str:
    return str(mode.get("mode") or "?")


def _names(ms: Sequence[Mapping[str, Any]]) -> str:
    names = [_name(m) for m in ms]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _timeout_s(mode: Mapping[str, Any]) -> float:
    return _num(_map(mode.get("resolv")).get("timeout_s")) or DEFAULT_TIMEOUT_S


def _libc(mode: Mapping[str, Any]) -> str | None:
    binary = _map(mode.get("binary"))
    libc = binary.get("libc")
    if isinstance(libc, str) and libc:
        return libc
    loader = str(binary.get("interpreter") or "")
    return "musl" if "ld-musl" in loader else "glibc" if "ld-linux" in loader else None


def _rcodes(mode: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(_map(mode.get("wire")).get("rcodes"))


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%" if share < 0.995 else "all"


def _resolv_facts(summary: Mapping[str, Any]) -> tuple[int, list[str], list[str]]:
    """(ndots, search list, options) from the pod's resolv.conf text."""
    ndots, search, options = 1, [], []
    for line in str(_map(summary.get("pod")).get("resolv_conf") or "").splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] in ("search", "domain"):
            search = words[1:]
        elif words and words[0] == "options":
            for opt in words[1:]:
                key, _, value = opt.partition(":")
                if key == "ndots" and value.isdigit():
                    ndots = int(value)
                options.append(opt)
    return ndots, search, options


# --- the rules -----------------------------------------------------------------------------------------


def glibc_linked(summary: Mapping[str, Any]) -> Finding | None:
    """A dynamically linked cgo binary needs its libc's loader in the image (catalog 1)."""
    failed = [
        m
        for m in _modes(summary)
        if m.get("status") == "start_failure"
        and "no such file" in str(m.get("reason") or "").lower()
        and not _library_error(str(m.get("reason") or ""))  # a loader ran: not this rule's case
    ]
    linked = [
        m
        for m in _modes(summary)
        if _map(m.get("binary")).get("linkage") == "dynamic" and _libc(m) == "glibc"
    ]
    if failed:
        loader = next(
            (
                str(_map(m.get("binary")).get("interpreter"))
                for m in failed
                if _map(m.get("binary")).get("interpreter")
            ),
            "its loader",
        )
        return Finding(
            "glibc_linked",
            "critical",
            tuple(_name(m) for m in failed),
            f'{_names(failed)} did not start: "{str(failed[0].get("reason")).strip().splitlines()[0]}".',
            f"The binary is dynamically linked and asks the kernel for {loader}, which the image does not "
            "have; the kernel reports the missing loader as `no such file or directory` although the binary "
            "itself is there.",
            f"{NO_CGO_FIX} {CGO_FIX}",
        )
    if not linked:
        return None
    loader = _map(linked[0].get("binary")).get("interpreter") or "/lib64/ld-linux-x86-64.so.2"
    return Finding(
        "glibc_linked",
        "info",
        tuple(_name(m) for m in linked),
        f"{_names(linked)} {'is' if len(linked) == 1 else 'are'} glibc-linked (loader {loader}).",
        "This binary is glibc-linked: it will not start on plain alpine or scratch (`exec /app: no such "
        "file or directory`), only on an image with glibc such as distroless/base or debian-slim. Alpine "
        "with libc6-compat gives it glibc's loader name but musl behind it: it starts only if it needs no "
        "library or symbol musl lacks (libresolv.so.2 is the usual one).",
        f"{NO_CGO_FIX} {CGO_FIX}",
    )


# musl's loader: `Error loading shared library X: ...`;
# glibc's: `error while loading shared libraries: X: ...`
_LIBRARY_ERROR: Final = re.compile(
    r"error loading shared library (?P<musl>\S+?):|error while loading shared libraries: (?P<glibc>\S+?):",
    re.IGNORECASE,
)
LIBRESOLV: Final = "libresolv.so.2"


def _library_error(reason: str) -> str | None:
    """The library a dynamic loader could not find, from a start failure's message."""
    found = _LIBRARY_ERROR.search(reason)
    return (found["musl"] or found["glibc"]) if found else None


def libresolv_missing(summary: Mapping[str, Any]) -> Finding | None:
    """A Go 1.20+ cgo binary needs libresolv.so.2 and the root (Alpine with libc6-compat) lacks it
    (catalog 41)."""
    hits = [
        m
        for m in _modes(summary)
        if m.get("status") == "start_failure" and _library_error(str(m.get("reason") or "")) == LIBRESOLV
    ]
    if not hits:
        return None
    needed = [str(lib) for lib in _map(hits[0].get("binary")).get("needed") or ()]
    linked = f" (DT_NEEDED: {', '.join(needed)})" if needed else ""
    started = [
        m
        for m in _ran(summary)
        if _libc(m) == "glibc" and LIBRESOLV not in (_map(m.get("binary")).get("needed") or (LIBRESOLV,))
    ]
    contrast = f"; {_names(started)}, glibc-linked without it, started" if started else ""
    return Finding(
        "libresolv_missing",
        "critical",
        tuple(_name(m) for m in hits),
        f'{_names(hits)} did not start: "{str(hits[0].get("reason")).strip().splitlines()[0]}"{linked}'
        f"{contrast}.",
        "Since Go 1.20 package net's cgo resolver calls res_search and links -lresolv (Linux, any cgo build "
        "without -tags netgo). On a builder with glibc before 2.34 res_search lives only in libresolv, so "
        "the binary needs libresolv.so.2. The loader was found (on Alpine, libc6-compat makes glibc's loader "
        "and libc.so.6 symlinks to musl), but no such library is there, and the loader stops before main.",
        "If nothing needs cgo, build with CGO_ENABLED=0 (or -tags netgo) and run anywhere. If it needs cgo, "
        "build and run on the same libc: both stages on alpine (golang:1.x-alpine with build-base), or a "
        "glibc runtime (distroless/base, debian-slim), not alpine with libc6-compat. `dnsprobe inspect "
        "BINARY` lists DT_NEEDED and which bases lack a library.",
    )


def resolver_mismatch(summary: Mapping[str, Any]) -> Finding | None:
    """Go's trace names another resolver than the mode was built or configured for."""
    off = [
        m
        for m in _ran(summary)
        if m.get("resolver") and m.get("expected_resolver") and m["resolver"] != m["expected_resolver"]
    ]
    if not off:
        return None
    detail = "; ".join(f"{_name(m)}: {m['resolver']} (expected {m['expected_resolver']})" for m in off)
    return Finding(
        "resolver_mismatch",
        "warning",
        tuple(_name(m) for m in off),
        f"The resolver was not the expected one: {detail}.",
        "A cgo-capable Go binary picks its resolver at run time from GODEBUG, build tags, resolv.conf "
        "options, nsswitch.conf and environment variables; one of those differs from what the mode assumes, "
        "so latency and failure behaviour follow the other resolver.",
        "Pin the resolver: build with CGO_ENABLED=0 (or -tags netgo) for Go's resolver, or -tags netcgo / "
        f"GODEBUG=netdns=cgo for the C library's. {NO_CGO_FIX}",
    )


def nsswitch_forces_cgo(summary: Mapping[str, Any]) -> Finding | None:
    """nsswitch.conf sources, resolv.conf options or env vars Go cannot honour switch lookups to cgo."""
    pod = _map(summary.get("pod"))
    reasons: list[str] = []
    for line in str(pod.get("nsswitch") or "").splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "hosts:":
            extra = [w for w in words[1:] if w not in GO_NSS_SOURCES]
            if extra:
                reasons.append(f"nsswitch.conf `{' '.join(words)}` ({', '.join(extra)})")
    _, _, options = _resolv_facts(summary)
    unknown = [o for o in options if o.partition(":")[0] not in GO_RESOLV_OPTIONS]
    if unknown:
        reasons.append(f"resolv.conf options {', '.join(unknown)}")
    env = _map(pod.get("env"))
    reasons += [f"{k}={env[k]}" for k in CGO_ENV if k in env and (k == "LOCALDOMAIN" or env[k])]
    switched = [
        m
        for m in _ran(summary)
        if (m.get("resolver") in ("cgo", "mixed") and m.get("expected_resolver") != "cgo")
        or (_map(m.get("trace")).get("order_counts", {}).get("cgo") and m.get("expected_resolver") == "go")
    ]
    if not reasons or not switched:
        return None
    return Finding(
        "nsswitch_forces_cgo",
        "warning",
        tuple(_name(m) for m in switched),
        f"{_names(switched)} used the cgo resolver; the pod has {'; '.join(reasons)}.",
        "Go uses its own resolver only when it can honour the whole configuration: an nsswitch.conf `hosts:` "
        "source other than files and dns, an unknown resolv.conf option, LOCALDOMAIN, RES_OPTIONS or "
        "HOSTALIASES makes a cgo-capable binary hand the lookup to the C library (trace: "
        "`hostLookupOrder(...) = cgo`).",
        "Keep `hosts: files dns` and known resolv.conf options, or build without cgo so the setting cannot "
        f"switch resolvers. {NO_CGO_FIX} {CGO_FIX}",
    )


def _dots(name: str) -> int:
    return re.sub(r"\{\w+\}", "x", name).rstrip(".").count(".")


def ndots_expansion(summary: Mapping[str, Any]) -> Finding | None:
    """A relative name with fewer dots than ndots walks the search list first (catalog 4)."""
    ndots, search, _ = _resolv_facts(summary)
    if not search:
        return None
    hits: dict[str, list[tuple[str, float]]] = {}
    for m in _ran(summary):
        for w in m.get("workloads") or ():
            w = _map(w)
            name, per = str(w.get("name") or ""), _num(w.get("wire_queries_per_lookup"))
            if per is None or name.endswith(".") or _dots(name) >= ndots:
                continue
            if per >= 2 + EXPANSION_MARGIN:
                hits.setdefault(name, []).append((_name(m), per))
    if not hits:
        return None
    name, seen = max(hits.items(), key=lambda kv: max(p for _, p in kv[1]))
    low, high = min(p for _, p in seen), max(p for _, p in seen)
    figures = f"{low:.1f}" if abs(high - low) < 0.05 else f"{low:.1f} to {high:.1f}"
    hit_modes = {mode for entries in hits.values() for mode, _ in entries}
    modes = [_name(m) for m in _ran(summary) if _name(m) in hit_modes]
    return Finding(
        "ndots_expansion",
        "warning",
        tuple(modes),
        f"`{name}` ({_dots(name)} dots) cost {figures} wire queries per lookup instead of 2 "
        f"(ndots:{ndots}, {len(search)} search domains).",
        f"ndots:{ndots} sends {high - 2:.0f} extra queries per external name: a name with fewer than "
        f"{ndots} dots is tried with each search domain first, each try an A and an AAAA query answered "
        "NXDOMAIN, before the name itself is asked.",
        "Use a trailing dot for external names (`api.example.test.`), or lower ndots in the pod "
        '(Kubernetes: `dnsConfig.options: [{name: ndots, value: "2"}]`).',
    )


def timeout_fingerprint(summary: Mapping[str, Any]) -> Finding | None:
    """Lookups ending at k x the resolv.conf timeout waited for answers that never came."""
    hits = []
    for m in _ran(summary):
        peaks = [_map(p) for p in m.get("timeout_peaks") or ()]
        big = [
            p
            for p in peaks
            if (_num(p.get("share")) or 0) >= PEAK_SHARE and (_num(p.get("lookups")) or 0) >= PEAK_MIN_LOOKUPS
        ]
        if big:
            hits.append((m, big))
    if not hits:
        return None
    parts = []
    for m, big in hits:
        marks = ", ".join(f"{_pct(_num(p.get('share')) or 0)} at {_num(p.get('at_s')) or 0:g} s" for p in big)
        parts.append(f"{_name(m)}: {marks}")
    timeout = _timeout_s(hits[0][0])
    drops = sum(int(_num(_rcodes(m).get("drop")) or 0) for m, _ in hits)
    return Finding(
        "timeout_fingerprint",
        "critical" if any((_num(p.get("share")) or 0) >= 0.1 for _, big in hits for p in big) else "warning",
        tuple(_name(m) for m, _ in hits),
        f"Lookups ended at multiples of the {timeout:g} s resolver timeout ({'; '.join(parts)})"
        + (f"; the nameserver dropped {drops:,} queries." if drops else "."),
        "Timeouts at multiples of the resolv.conf timeout: the resolver sent a query, heard nothing, waited "
        "the full timeout, and retried (attempts x nameservers x search domains). The peaks' positions say "
        "how many waits each lookup sat through.",
        "Find the unanswered queries in the nameserver's view (rcode drop, a dead first nameserver, a "
        "conntrack race on a reused source port). `options timeout:1 attempts:2` bounds the wait; "
        "`single-request-reopen` helps glibc when A and AAAA from one socket get dropped.",
    )


def musl_refused_wait(summary: Mapping[str, Any]) -> Finding | None:
    """musl treats REFUSED as no answer and waits out its timeout (catalog 10)."""
    hits = []
    for m in _ran(summary):
        refused = _num(_rcodes(m).get("REFUSED")) or 0
        if _libc(m) != "musl" or m.get("resolver") == "go" or not refused:
            continue
        timeout = _timeout_s(m)
        p50 = _num(_map(m.get("latency_ms")).get("p50")) or 0
        waited = any((_num(_map(p).get("share")) or 0) >= PEAK_SHARE for p in m.get("timeout_peaks") or ())
        if waited or p50 >= 0.9 * timeout * 1000:
            hits.append((m, int(refused), p50))
    if not hits:
        return None
    m, refused, p50 = hits[0]
    return Finding(
        "musl_refused_wait",
        "critical",
        tuple(_name(h[0]) for h in hits),
        f"{_names([h[0] for h in hits])}: the nameserver answered REFUSED {refused:,} times and lookups "
        f"took p50 {p50:,.0f} ms (timeout {_timeout_s(m):g} s).",
        "musl waits for its timeout when the server answers REFUSED: it treats the answer as no answer and "
        "keeps waiting for another nameserver, where Go and glibc fail (or move on) at once.",
        "Make the nameserver answer (its ACL or recursion settings refuse this client). For the binary: "
        f"{NO_CGO_FIX} If it needs cgo, a glibc build (golang:1.x builder, distroless/base or debian-slim "
        "runtime) fails REFUSED at once instead of waiting.",
    )


def servfail_storm(summary: Mapping[str, Any]) -> Finding | None:
    """A large share of SERVFAIL answers: the upstream is failing, every resolver surfaces it differently."""
    hits = []
    for m in _ran(summary):
        wire = _map(m.get("wire"))
        queries = _num(wire.get("queries")) or 0
        servfail = _num(_rcodes(m).get("SERVFAIL")) or 0
        if queries and servfail >= SERVFAIL_MIN and servfail / queries >= SERVFAIL_SHARE:
            hits.append((m, servfail / queries))
    if not hits:
        return None
    parts = "; ".join(
        f"{_name(m)}: {_pct(share)} of queries, {int(_num(_map(m.get('failures')).get('temporary')) or 0):,} "
        "temporary failures"
        for m, share in hits
    )
    musl = [m for m, _ in hits if _libc(m) == "musl"]
    return Finding(
        "servfail_storm",
        "critical",
        tuple(_name(m) for m, _ in hits),
        f"SERVFAIL storm: {parts}.",
        "The nameserver answered SERVFAIL (its upstream failed). Go returns a temporary error at once, glibc "
        "EAI_AGAIN after retrying; musl retries after 1 s and, with SERVFAIL on AAAA only, fails the whole "
        "lookup where Go and glibc return the A answer."
        + (f" Affected musl modes: {_names(musl)}." if musl else ""),
        "Fix the upstream the nameserver forwards to; cache answers (and negative answers) close to the pod "
        "(NodeLocal DNSCache); let the service retry temporary errors with backoff.",
    )


# --- the catalog's second wave: names answered by the wrong suffix, and where musl parts ways -----------

# A workload "works" in a mode with this share of its lookups ok, and "fails" below the other.
WORKS_SHARE: Final = 0.9
FAILS_SHARE: Final = 0.5
# The longest resolv.conf line musl reads (its line buffer); a longer line is skipped as a whole.
MUSL_LINE_MAX: Final = 255
# glibc's MAXNS, musl's and Go's limit alike: nameserver lines after the third are ignored.
MAX_NAMESERVERS: Final = 3


def _nameservers(summary: Mapping[str, Any]) -> list[str]:
    resolv = str(_map(summary.get("pod")).get("resolv_conf") or "")
    lines = [line.split("#", 1)[0].split() for line in resolv.splitlines()]
    return [words[1] for words in lines if len(words) >= 2 and words[0] == "nameserver"]


def _is_musl(mode: Mapping[str, Any]) -> bool:
    return _libc(mode) == "musl" and mode.get("resolver") != "go"


def _workloads(mode: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found = {}
    for w in mode.get("workloads") or ():
        w = _map(w)
        if (_num(w.get("lookups")) or 0) > 0:
            found[str(w.get("workload") or w.get("name") or "?")] = w
    return found


def _ok_share(figures: Mapping[str, Any]) -> float:
    lookups = _num(figures.get("lookups")) or 0
    return (_num(figures.get("ok")) or 0) / lookups if lookups else 0.0


def _main_failure(figures: Mapping[str, Any]) -> str:
    failures = {str(k): _num(v) or 0 for k, v in _map(figures.get("failures")).items()}
    return max(failures, key=lambda k: failures[k]) if failures else "none"


@dataclass(frozen=True)
class _Split:
    """A workload that musl fails and another resolver resolves in the same run."""

    label: str
    name: str
    musl: Mapping[str, Any]
    musl_figures: Mapping[str, Any]
    working: tuple[Mapping[str, Any], ...]


def _musl_splits(summary: Mapping[str, Any]) -> list[_Split]:
    ran = _ran(summary)
    others = [m for m in ran if not _is_musl(m)]
    splits = []
    for musl in (m for m in ran if _is_musl(m)):
        for label, figures in _workloads(musl).items():
            if _ok_share(figures) >= FAILS_SHARE:
                continue
            working = tuple(
                m for m in others if label in _workloads(m) and _ok_share(_workloads(m)[label]) >= WORKS_SHARE
            )
            if working:
                splits.append(_Split(label, str(figures.get("name") or label), musl, figures, working))
    return splits


def _split_seen(split: _Split) -> str:
    figures = split.musl_figures
    p50 = _num(_map(figures.get("latency_ms")).get("p50")) or 0
    return (
        f"{_name(split.musl)} failed `{split.name}` ({_pct(1 - _ok_share(figures))} "
        f"{_main_failure(figures)}, p50 {p50:,.0f} ms) where {_names(split.working)} resolved it"
    )


def _musl_finding(rule: str, splits: Sequence[_Split], seen: str, why: str, fix: str) -> Finding:
    modes = tuple(dict.fromkeys(_name(s.musl) for s in splits))
    return Finding(rule, "critical", modes, "; ".join(_split_seen(s) for s in splits) + f". {seen}", why, fix)


MUSL_FIX: Final = (
    f"{NO_CGO_FIX} If it needs cgo, a glibc build (golang:1.x builder, distroless/base or debian-slim "
    "runtime) behaves like Go's resolver here."
)


def search_wildcard(summary: Mapping[str, Any]) -> Finding | None:
    """An external-looking name answered by a search suffix before the name itself (catalog 17)."""
    ndots, search, _ = _resolv_facts(summary)
    if not search:
        return None
    full_walk = 2 * (len(search) + 1)
    hits: dict[tuple[str, int], list[str]] = {}
    for m in _ran(summary):
        for figures in _workloads(m).values():
            name, per = str(figures.get("name") or ""), _num(figures.get("wire_queries_per_lookup"))
            if per is None or name.endswith(".") or _dots(name) < 2 or _dots(name) >= ndots:
                continue
            if _ok_share(figures) < WORKS_SHARE or not 2 + EXPANSION_MARGIN <= per <= full_walk - 1:
                continue
            if m.get("changes") or abs(per / 2 - round(per / 2)) > 0.1:
                continue  # not one walk that stopped at a suffix (a resolv.conf change mixes two walks)
            suffix = min(len(search), max(1, round(per / 2)))
            hits.setdefault((name, suffix), []).append(_name(m))
    if not hits:
        return None
    (name, suffix), modes = next(iter(hits.items()))
    domain = search[suffix - 1]
    return Finding(
        "search_wildcard",
        "critical",
        tuple(dict.fromkeys(mode for ms in hits.values() for mode in ms)),
        f"`{name}` ({_dots(name)} dots, ndots:{ndots}) was answered after {2 * suffix} wire queries in "
        f"{', '.join(modes)}: by the search suffix `{domain}` (search domain {suffix} of {len(search)}), "
        f"not as itself (that would take {full_walk}).",
        f"A name with fewer than ndots dots is tried with each search domain first; `{name}.{domain}` "
        "exists (a wildcard record in that zone answers any name below it), so the resolver stops there and "
        "returns the wildcard's address: the real name is never asked.",
        f"Remove the wildcard from `{domain}` or the domain from the search list; write external names with "
        "a trailing dot, or lower ndots so names with dots are asked as they are first.",
    )


def musl_aaaa_error(summary: Mapping[str, Any]) -> Finding | None:
    """musl fails a name whose A query succeeds when AAAA gets an error rcode (catalog 18)."""
    _, search, _ = _resolv_facts(summary)
    if len(_nameservers(summary)) > 1:
        return None  # several servers: musl_parallel_nameservers' case
    splits = []
    for split in _musl_splits(summary):
        rcodes = _rcodes(split.musl)
        errors = [r for r in ("NXDOMAIN", "SERVFAIL", "REFUSED") if _num(rcodes.get(r))]
        if (split.name.endswith(".") or not search) and _num(rcodes.get("NOERROR")) and errors:
            splits.append(split)
    if not splits:
        return None
    rcodes = _rcodes(splits[0].musl)
    listed = ", ".join(f"{r} {int(_num(rcodes.get(r)) or 0):,}" for r in ("NXDOMAIN", "SERVFAIL", "REFUSED"))
    return _musl_finding(
        "musl_aaaa_error",
        splits,
        f"musl's queries got NOERROR {int(_num(rcodes.get('NOERROR')) or 0):,} and {listed}.",
        "The name has an address (one of its A/AAAA queries is answered), but the other query type gets an "
        "error rcode. Go's resolver and glibc return the answer they got; musl fails the whole lookup when "
        "either query fails: NXDOMAIN makes the name not found, SERVFAIL or REFUSED make it wait out its "
        "timeout first.",
        "Make the server answer the missing type with NOERROR and no records (NODATA), not an error; "
        f'ask for the family you need (LookupIP(ctx, "ip4", name)). {MUSL_FIX}',
    )


def musl_search_stops(summary: Mapping[str, Any]) -> Finding | None:
    """musl stops the search walk at a SERVFAIL or REFUSED where Go and glibc go on (catalog 19)."""
    ndots, search, _ = _resolv_facts(summary)
    if not search:
        return None
    splits = [
        s
        for s in _musl_splits(summary)
        if not s.name.endswith(".")
        and _dots(s.name) < ndots
        and (_num(_rcodes(s.musl).get("SERVFAIL")) or _num(_rcodes(s.musl).get("REFUSED")))
    ]
    if not splits:
        return None
    rcodes = _rcodes(splits[0].musl)
    return _musl_finding(
        "musl_search_stops",
        splits,
        f"musl's queries got SERVFAIL {int(_num(rcodes.get('SERVFAIL')) or 0):,} and REFUSED "
        f"{int(_num(rcodes.get('REFUSED')) or 0):,} times while walking {len(search)} search domains.",
        "One search expansion of the name is answered with an error rcode. Go's resolver and glibc take it "
        'as "this expansion failed" and try the next suffix, which answers; musl ends the walk at '
        "the first error and fails the lookup with a temporary error.",
        "Fix the zone or forward that answers SERVFAIL/REFUSED for that suffix; use the fully qualified name "
        f"with a trailing dot. {MUSL_FIX}",
    )


def musl_ndots_no_search(summary: Mapping[str, Any]) -> Finding | None:
    """musl does not try the search list for a name with at least ndots dots (catalog 20)."""
    ndots, search, _ = _resolv_facts(summary)
    if not search:
        return None
    splits = [
        s
        for s in _musl_splits(summary)
        if not s.name.endswith(".")
        and _dots(s.name) >= ndots
        and _main_failure(s.musl_figures) == "not_found"
        and (_num(s.musl_figures.get("wire_queries_per_lookup")) or 0) <= 2 + EXPANSION_MARGIN
    ]
    if not splits:
        return None
    name = splits[0].name
    return _musl_finding(
        "musl_ndots_no_search",
        splits,
        f"`{name}` has {_dots(name)} dots with ndots:{ndots}: musl asked only the name as it is "
        f"({_num(splits[0].musl_figures.get('wire_queries_per_lookup')) or 0:g} queries per lookup).",
        "Go's resolver and glibc try the search list after the name as it is fails; musl uses the search "
        "list only for names with fewer dots than ndots, so a name like `web.ns2` with ndots:1 never "
        "becomes `web.ns2.svc.cluster.local`.",
        "Use the full name (`web.ns2.svc.cluster.local.`) in configuration, or keep ndots above the dots "
        f"of the names the service asks for. {MUSL_FIX}",
    )


def musl_parallel_nameservers(summary: Mapping[str, Any]) -> Finding | None:
    """musl asks every nameserver at once and takes the first reply, a wrong NXDOMAIN too (catalog 21)."""
    servers = _nameservers(summary)
    if len(servers) < 2:
        return None
    splits = [s for s in _musl_splits(summary) if _main_failure(s.musl_figures) == "not_found"]
    if not splits:
        return None
    return _musl_finding(
        "musl_parallel_nameservers",
        splits,
        f"resolv.conf lists {len(servers)} nameservers ({', '.join(servers)}).",
        "Go's resolver and glibc ask the nameservers in order and take the first server's answer; musl "
        "sends each query to all of them at once and takes the first reply. When the servers do not serve "
        'the same names (split horizon, a public "fallback"), a fast NXDOMAIN from the wrong one wins.',
        "List only nameservers that serve the same names; put split-horizon forwarding in one server "
        f"(CoreDNS forward/stub zones, a node-local cache). {MUSL_FIX}",
    )


def musl_long_search_line(summary: Mapping[str, Any]) -> Finding | None:
    """musl skips a resolv.conf line longer than its 256-byte buffer: no search list (catalog 23)."""
    resolv = str(_map(summary.get("pod")).get("resolv_conf") or "")
    long = [line for line in resolv.splitlines() if len(line) > MUSL_LINE_MAX]
    if not long:
        return None
    splits = [s for s in _musl_splits(summary) if not s.name.endswith(".")]
    if not splits:
        return None
    words = long[0].split()
    return _musl_finding(
        "musl_long_search_line",
        splits,
        f"The pod's resolv.conf `{words[0]}` line is {len(long[0])} bytes ({len(words) - 1} entries).",
        "musl reads resolv.conf in lines of at most 255 bytes and ignores a longer line as a whole, so the "
        "search list (or whatever the line held) is gone: short names are asked only as they are. Go's "
        "resolver and glibc read the whole line.",
        "Keep the search line short (at most six domains and 256 bytes), with the needed suffix first; "
        f"use fully qualified names. {MUSL_FIX}",
    )


def nameserver_limit(summary: Mapping[str, Any]) -> Finding | None:
    """More than three nameservers: the ones after the third are never asked (catalog 22)."""
    servers = _nameservers(summary)
    if len(servers) <= MAX_NAMESERVERS:
        return None
    failing = [m for m in _ran(summary) if _ok_share(m) < FAILS_SHARE]
    if not failing:
        return None
    return Finding(
        "nameserver_limit",
        "critical",
        tuple(_name(m) for m in failing),
        f"resolv.conf lists {len(servers)} nameservers and lookups failed ("
        + "; ".join(f"{_name(m)}: {_pct(1 - _ok_share(m))} {_main_failure(m)}" for m in failing)
        + ")"
        + f". {', '.join(servers[MAX_NAMESERVERS:])} is never asked.",
        "glibc, musl and Go's resolver read at most three nameserver lines and ignore the rest; when the "
        "first three do not answer, the working server listed after them does not help.",
        "List at most three nameservers with the working ones first (Kubernetes keeps the first three and "
        'warns "Nameserver limits were exceeded"); fix or remove the dead ones.',
    )


def _uses_go_resolver(mode: Mapping[str, Any]) -> bool:
    return mode.get("resolver") == "go" or (
        not mode.get("resolver") and mode.get("expected_resolver") == "go"
    )


def edns0_intolerant(summary: Mapping[str, Any]) -> Finding | None:
    """FORMERR (or silence) for Go's EDNS0 queries while the C resolvers, which send none, get answers
    (catalog 24)."""
    ran = _ran(summary)
    c_modes = [m for m in ran if not _uses_go_resolver(m)]
    hits: list[tuple[Mapping[str, Any], str]] = []
    for m in ran:
        if _ok_share(m) >= WORKS_SHARE:
            continue
        formerr = int(_num(_rcodes(m).get("FORMERR")) or 0)
        if formerr:
            hits.append((m, f"FORMERR {formerr:,}"))
            continue
        drops = int(_num(_rcodes(m).get("drop")) or 0)
        if not (_uses_go_resolver(m) and drops and c_modes):
            continue
        answered_c = all(_ok_share(c) >= WORKS_SHARE and not _num(_rcodes(c).get("drop")) for c in c_modes)
        if answered_c and _main_failure(m) == "timeout":
            hits.append((m, f"{drops:,} queries dropped"))
    if not hits:
        return None
    env = str(_map(_map(summary.get("pod")).get("env")).get("GODEBUG") or "")
    seen = "; ".join(
        f"{_name(m)}: {_pct(1 - _ok_share(m))} failed ({_main_failure(m)}), {how}" for m, how in hits
    )
    if c_modes and all(_ok_share(c) >= WORKS_SHARE for c in c_modes):
        seen += f"; {_names(c_modes)} (no OPT record in their queries) resolved every name"
    already = "netedns0=0" in env
    return Finding(
        "edns0_intolerant",
        "critical",
        tuple(_name(m) for m, _ in hits),
        seen + ".",
        "The nameserver (or a middlebox on the way) does not understand EDNS0: it answers a query that "
        "carries an OPT record with FORMERR, or drops it. Go's resolver sends OPT on every query and does "
        "not retry without it; glibc sends OPT only with `options edns0`, musl never."
        + (" GODEBUG=netedns0=0 is set, but this Go release still sent OPT." if already else ""),
        "Fix or replace the server or middlebox. For Go services behind it, set GODEBUG=netedns0=0 "
        "(queries without OPT); for glibc, drop `options edns0`.",
    )


def lame_nodata(summary: Mapping[str, Any]) -> Finding | None:
    """NOERROR answers that Go (and glibc) skip as lame referrals, waiting on the next server
    (catalog 26)."""
    servers = _nameservers(summary)
    if len(servers) < 2:
        return None
    hits = []
    for m in _ran(summary):
        queries = _num(_map(m.get("wire")).get("queries")) or 0
        noerror = _num(_rcodes(m).get("NOERROR")) or 0
        failure = _main_failure(m)
        p50 = _num(_map(m.get("latency_ms")).get("p50")) or 0
        if p50 < 0.9 * _timeout_s(m) * 1000:
            continue  # ended before the resolver's timeout: a caller's deadline, not the next server's wait
        if (
            queries
            and noerror / queries >= 0.25
            and _ok_share(m) < FAILS_SHARE
            and failure in ("timeout", "temporary")
        ):
            hits.append((m, int(noerror), failure))
    if not hits:
        return None
    return Finding(
        "lame_nodata",
        "critical",
        tuple(_name(m) for m, _, _ in hits),
        "; ".join(
            f"{_name(m)}: {_pct(1 - _ok_share(m))} {failure}, though {noerror:,} queries got NOERROR"
            for m, noerror, failure in hits
        )
        + f" ({len(servers)} nameservers).",
        "A NOERROR answer without records, without AA (authoritative) and RA (recursion available) and "
        "with no additional section looks like a lame referral: Go's resolver and glibc skip it and ask the "
        "next nameserver, so a dead or wrong server after it decides the lookup (here: its timeouts). musl "
        "takes the empty answer as NODATA.",
        "Make the first server authoritative for the zone or let it recurse (RA=1), and remove dead servers "
        "from resolv.conf.",
    )


def empty_noerror(summary: Mapping[str, Any]) -> Finding | None:
    """Names reported not found although the server answered NOERROR: answers without addresses, such as
    a CNAME whose target the server does not serve (catalog 31)."""
    hits = []
    for m in _ran(summary):
        queries = _num(_map(m.get("wire")).get("queries")) or 0
        noerror = _num(_rcodes(m).get("NOERROR")) or 0
        not_found = _num(_map(m.get("failures")).get("not_found")) or 0
        lookups = _num(m.get("lookups")) or 0
        if queries and noerror / queries >= WORKS_SHARE and lookups and not_found / lookups >= FAILS_SHARE:
            hits.append((m, int(noerror), not_found / lookups))
    if not hits or len(hits) < len(_ran(summary)):
        return None  # a resolver that found addresses in the same answers: another cause (TC, size)
    return Finding(
        "empty_noerror",
        "warning",
        tuple(_name(m) for m, _, _ in hits),
        "; ".join(
            f"{_name(m)}: {_pct(share)} not found, though {n:,} queries got NOERROR" for m, n, share in hits
        )
        + ".",
        "The server said NOERROR but the answers held no address: a CNAME whose target it neither serves nor "
        "chases (an alias into another zone on an authoritative-only server), or NODATA. No resolver follows "
        "the alias itself, so the name is not found although its target exists elsewhere.",
        "Check the answer with `dig NAME`: if it ends in a CNAME, let the server recurse or serve the "
        "target's zone, or point the alias at a name it serves.",
    )


def deadline_before_failover(summary: Mapping[str, Any]) -> Finding | None:
    """Lookups that time out before the resolver's own timeout: the caller's deadline ended them, before
    a later nameserver could be asked (catalog 32)."""
    servers = _nameservers(summary)
    hits = []
    for m in _ran(summary):
        lookups = _num(m.get("lookups")) or 0
        timeouts = _num(_map(m.get("failures")).get("timeout")) or 0
        p50 = _num(_map(m.get("latency_ms")).get("p50")) or 0
        limit = 0.95 * _timeout_s(m) * 1000
        if lookups and timeouts / lookups >= FAILS_SHARE and 50 <= p50 < limit:
            hits.append((m, p50))
    if not hits:
        return None
    timeout = _timeout_s(hits[0][0])
    later = (
        f"; resolv.conf lists {len(servers)} nameservers, and the next one is asked only after {timeout:g} s"
        if len(servers) > 1
        else ""
    )
    return Finding(
        "deadline_before_failover",
        "critical",
        tuple(_name(m) for m, _ in hits),
        ", ".join(f"{_name(m)}: lookups timed out at p50 {p50:,.0f} ms" for m, p50 in hits)
        + f", before the resolver's {timeout:g} s timeout{later}.",
        "A timeout shorter than the resolver's own is the caller's deadline (context.WithTimeout, an HTTP or "
        "gRPC client's timeout): the lookup is abandoned while the resolver still waits on an unanswering "
        "server, so the failover to the next nameserver (or the retry) that would have answered never "
        "happens. Go returns at the deadline for cgo lookups too.",
        "Give lookups a deadline above the resolver's failover time (timeout x attempts before the last "
        "server), or lower `options timeout:` below the deadline; remove the dead nameserver.",
    )


# A lookup this slow (p50) makes a workload "slow"; a fast workload queued behind it reaches this share of
# the slow one's p50 at p99, where Go's resolver keeps it under the other share.
SLOW_P50_MS: Final = 1000.0
QUEUED_SHARE: Final = 0.5
UNQUEUED_SHARE: Final = 0.25


def cgo_thread_cap(summary: Mapping[str, Any]) -> Finding | None:
    """Fast names that wait behind slow ones in cgo modes only: the cap on concurrent cgo lookups
    (catalog 33)."""
    ran = _ran(summary)
    go_modes = [m for m in ran if _uses_go_resolver(m)]
    hits = []
    for m in ran:
        if _uses_go_resolver(m):
            continue
        figures = {k: w for k, w in _workloads(m).items() if _ok_share(w) >= WORKS_SHARE}  # slow, not failing
        slow = [
            (label, p50)
            for label, w in figures.items()
            if (p50 := _num(_map(w.get("latency_ms")).get("p50")) or 0) >= SLOW_P50_MS
        ]
        if not slow:
            continue
        slow_label, slow_p50 = max(slow, key=lambda s: s[1])
        for label, w in figures.items():
            if label == slow_label:
                continue
            p99 = _num(_map(w.get("latency_ms")).get("p99")) or 0
            in_go = [
                _num(_map(_workloads(g)[label].get("latency_ms")).get("p99")) or 0
                for g in go_modes
                if label in _workloads(g)
            ]
            if p99 >= QUEUED_SHARE * slow_p50 and in_go and max(in_go) < UNQUEUED_SHARE * slow_p50:
                hits.append((m, label, p99, slow_label, slow_p50, max(in_go)))
    if not hits:
        return None
    seen = "; ".join(
        f"{_name(m)}: `{label}` p99 {p99:,.0f} ms beside `{slow}` (p50 {slow_p50:,.0f} ms), "
        f"Go's resolver {go_p99:,.0f} ms"
        for m, label, p99, slow, slow_p50, go_p99 in hits
    )
    return Finding(
        "cgo_thread_cap",
        "warning",
        tuple(dict.fromkeys(_name(h[0]) for h in hits)),
        seen + ".",
        "Each cgo lookup holds an OS thread in getaddrinfo until it returns, and Go runs at most 500 cgo "
        "resolver calls at once; the rest queue. Slow names fill the slots and fast names wait behind "
        "them. Go's resolver has no such cap.",
        "Use Go's resolver (CGO_ENABLED=0 or GODEBUG=netdns=go) so slow names cannot starve fast ones; "
        "cache close to the pod (NodeLocal DNSCache); bound the service's own lookup concurrency. "
        + NO_CGO_FIX,
    )


def nameserver_unreachable(summary: Mapping[str, Any]) -> Finding | None:
    """Lookups failed and the nameserver saw no query: nothing listens at the address resolv.conf names,
    such as a leaked 127.0.0.53 stub (catalog 34)."""
    servers = _nameservers(summary)
    hits = [
        m
        for m in _ran(summary)
        if _ok_share(m) < FAILS_SHARE and _map(m.get("wire")) and not _num(_map(m.get("wire")).get("queries"))
    ]
    if not servers or not hits or _resolv_conf_state(summary) != "present":  # never read: 42, 43
        return None
    loopback = [s for s in servers if s.startswith("127.") or s == "::1"]
    return Finding(
        "nameserver_unreachable",
        "critical",
        tuple(_name(m) for m in hits),
        "; ".join(f"{_name(m)}: {_pct(1 - _ok_share(m))} failed ({_main_failure(m)})" for m in hits)
        + f", and the nameserver received no query; resolv.conf names {', '.join(servers)}.",
        "The queries never reached a DNS server: the port at that address is closed (ICMP port unreachable), "
        "or the address is not this network namespace's. "
        + (
            f"{', '.join(loopback)} is the pod's own loopback: a stub resolver's address (127.0.0.53 of "
            "systemd-resolved) copied from the node has nothing behind it in the pod."
            if loopback
            else "Check that the address is reachable from the pod."
        ),
        "Point resolv.conf at the cluster DNS (dnsPolicy: ClusterFirst) or the node's upstream servers "
        "(the kubelet's --resolv-conf=/run/systemd/resolve/resolv.conf), not at a loopback stub.",
    )


# Go re-reads resolv.conf at most every 5 s: a search walk this long after a change is a pinned config.
GO_RELOAD_S: Final = 5.0
RELOAD_MARGIN_S: Final = 0.5


def no_reload_pins(summary: Mapping[str, Any]) -> Finding | None:
    """Modes that kept the old resolv.conf long after it changed: `options no-reload` (catalog 36)."""
    _, _, options = _resolv_facts(summary)
    hits = [
        (m, walk)
        for m in _ran(summary)
        if (walk := _num(m.get("search_walk_after_change_s"))) is not None
        and walk > GO_RELOAD_S + RELOAD_MARGIN_S
    ]
    if not hits:
        return None
    pinned = "no-reload" in options
    return Finding(
        "no_reload_pins",
        "warning",
        tuple(_name(m) for m, _ in hits),
        ", ".join(
            f"{_name(m)} kept the old search list {walk:g} s after resolv.conf changed" for m, walk in hits
        )
        + (" (the pod's resolv.conf has `options no-reload`)." if pinned else "."),
        "Go's resolver re-reads resolv.conf at most every 5 s and glibc on the next lookup after a change; a "
        "mode still using the old file after that has pinned it: `options no-reload` tells Go and glibc to "
        "keep what they read first for the life of the process (musl ignores the option).",
        "Drop `options no-reload` where resolv.conf can change, or restart the pods after a change.",
    )


# A share of failed lookups this large, with the nameserver's queries all accounted for by the lookups
# that succeeded (A + AAAA each, within this margin), is a port that was closed for part of the run.
GAP_FAILED_SHARE: Final = 0.05
QUERIES_PER_OK_MAX: Final = 2.2


def port_closed_for_a_while(summary: Mapping[str, Any]) -> Finding | None:
    """Fast failures for part of the run that left no trace at the nameserver, which answered every query
    it saw: its port was closed for a while, as while a node-local cache restarts (catalog 38)."""
    hits = []
    for m in _ran(summary):
        ok = _num(m.get("ok")) or 0
        queries = _num(_map(m.get("wire")).get("queries")) or 0
        rcodes = _rcodes(m)
        if (
            not ok
            or not queries
            or any(_num(rcodes.get(k)) for k in ("SERVFAIL", "REFUSED", "FORMERR", "drop"))
        ):
            continue
        failed = 1 - _ok_share(m)
        per_ok = queries / ok
        if (
            GAP_FAILED_SHARE <= failed < FAILS_SHARE
            and _main_failure(m) in ("other", "temporary")
            and per_ok <= QUERIES_PER_OK_MAX
        ):
            hits.append((m, failed, per_ok))
    if not hits:
        return None
    return Finding(
        "port_closed_for_a_while",
        "warning",
        tuple(_name(m) for m, _, _ in hits),
        "; ".join(
            f"{_name(m)}: {_pct(failed)} of lookups failed ({_main_failure(m)}), yet the nameserver saw only "
            f"the answered lookups' queries ({per_ok:.1f} per answered lookup) and answered all of them"
            for m, failed, per_ok in hits
        )
        + ".",
        "The failed lookups' queries never reached the server: for part of the run nothing listened on its "
        "port (a node-local cache restarting, a DNS pod replaced) and each query met ICMP port unreachable. "
        "Go's resolver and glibc fail such a lookup at once, so a busy service turns a short gap into many "
        "fast failures; musl ignores the ICMP error and retransmits, so its lookups wait out the gap.",
        "Keep the port served across restarts (a second replica on the same address, a handover with "
        "SO_REUSEPORT), list a fallback nameserver, and retry temporary errors with backoff.",
    )


# --- stale flows after a rollout (catalog 37), answers cut at 512 bytes (catalog 39) ---------------------

# Unanswered queries within this share of the run are a moment, not a lossy path; this share of them on
# client ports seen before the window, with this share of the window's answers on new ports, are stale flows.
STALE_WINDOW_SHARE: Final = 0.5
STALE_OLD_PORTS: Final = 0.9
STALE_NEW_ANSWERED: Final = 0.9
STALE_MIN_DROPS: Final = 3
STALE_MIN_ANSWERED: Final = 10


def stale_flows(summary: Mapping[str, Any]) -> Finding | None:
    """The nameserver left queries unanswered for a few seconds, only those on client ports it had seen
    before that moment, and answered new ports meanwhile: stale conntrack/IPVS entries after a DNS backend
    rollout (catalog 37). The evidence is the query log's `wire.drop_window` (analyse/flows.py)."""
    hits = []
    for m in _ran(summary):
        window = _map(_map(m.get("wire")).get("drop_window"))
        drops = _num(window.get("drops")) or 0
        share = _num(window.get("window_share_of_run"))
        old = _num(window.get("dropped_on_old_ports")) or 0
        new = _num(window.get("answered_on_new_ports")) or 0
        answered = _num(window.get("answered_in_window")) or 0
        if (
            drops >= STALE_MIN_DROPS
            and share is not None
            and share <= STALE_WINDOW_SHARE
            and old >= STALE_OLD_PORTS
            and answered >= STALE_MIN_ANSWERED
            and new >= STALE_NEW_ANSWERED
        ):
            hits.append((m, window))
    if not hits:
        return None

    def said(m: Mapping[str, Any], window: Mapping[str, Any]) -> str:
        start, end = (float(x) for x in window.get("window_s") or (0.0, 0.0))
        failed = 1 - _ok_share(m)
        waited = sum(_num(_map(p).get("lookups")) or 0 for p in m.get("timeout_peaks") or ())
        outcome = f"{_pct(failed)} of lookups failed" if failed else "no lookup failed"
        lookups = _num(m.get("lookups")) or 1
        return (
            f"{_name(m)}: {int(_num(window.get('drops')) or 0):,} queries unanswered between {start:g} and "
            f"{end:g} s, {_pct(_num(window.get('dropped_on_old_ports')) or 0)} of them on client ports seen "
            f"before {start:g} s, while {_pct(_num(window.get('answered_on_new_ports')) or 0)} of the "
            f"{int(_num(window.get('answered_in_window')) or 0):,} queries answered meanwhile came from new "
            f"ports; {outcome}, {_pct(waited / lookups)} waited out a timeout"
        )

    return Finding(
        "stale_flows",
        "warning",
        tuple(_name(m) for m, _ in hits),
        "; ".join(said(m, w) for m, w in hits) + ".",
        "For a few seconds the path to the DNS server lost only packets of flows that existed before: "
        "conntrack or IPVS entries still pointing at a backend that a rollout deleted, while new flows got "
        "new entries to a live one. A lookup is hit when its socket is such a flow (in flight at the "
        "moment, or a new socket on a reused source port). Go's resolver opens a new socket for every "
        "query and retry, so it recovers after one timeout; glibc and musl keep one socket for all of a "
        "lookup's queries and retries, so a hit lookup fails.",
        "Clear the DNS service's conntrack entries when its backends change (`conntrack -D -p udp --dport "
        "53`; kube-proxy does it for UDP services since 1.28), put NodeLocal DNSCache or TCP between the "
        "pods and the cluster DNS, and keep `options timeout:1 attempts:2` so a stale flow costs one "
        "short timeout.",
    )


def _answers(workload: Mapping[str, Any]) -> tuple[float, float] | None:
    answers = _map(workload.get("answers"))
    low, high = _num(answers.get("min")), _num(answers.get("max"))
    return None if low is None or high is None else (low, high)


def answer_cut_at_512(summary: Mapping[str, Any]) -> Finding | None:
    """A mode returned fewer addresses than another for the same names, at once, over UDP, with no TCP
    retry: it read only the first 512 bytes of an answer too large for them, such as an uncompressed one
    (catalog 39; musl keeps what fits and says nothing)."""
    ran = _ran(summary)
    hits = []
    for m in ran:
        protos = _map(_map(m.get("wire")).get("protos"))
        p50 = _num(_map(m.get("latency_ms")).get("p50"))
        if _num(protos.get("tcp")) or p50 is None or p50 >= 1000 * _timeout_s(m):
            continue
        for label, w in _workloads(m).items():
            mine = _answers(w)
            if mine is None or _ok_share(w) < WORKS_SHARE:
                continue
            others = [
                (o, _answers(_workloads(o)[label])) for o in ran if o is not m and label in _workloads(o)
            ]
            fuller = [(o, got) for o, got in others if got is not None and got[0] > mine[1]]
            if fuller:
                hits.append((m, label, mine[1], fuller))
    if not hits:
        return None
    seen = "; ".join(
        f"{_name(m)}: `{label}` at most {most:g} addresses per lookup where "
        + ", ".join(f"{_name(o)} got {got[0]:g}" for o, got in fuller)
        for m, label, most, fuller in hits
    )
    return Finding(
        "answer_cut_at_512",
        "warning",
        tuple(dict.fromkeys(_name(h[0]) for h in hits)),
        seen + "; every lookup answered at once over UDP, no query retried over TCP.",
        "The answer is larger than the 512 bytes a query without EDNS0 may get (a server that does not "
        "compress names makes a dozen addresses that large) and the server sent it anyway, without the TC "
        "bit. A resolver that reads only 512 bytes keeps the records that fit and returns them as a "
        "success: musl does; Go (which advertises 1,232 bytes) and glibc read the whole datagram. Nothing "
        "fails, the service just sees fewer addresses.",
        "Make the server compress names (or put a compressing cache such as CoreDNS or NodeLocal DNSCache in "
        "front), and have it set TC on answers over 512 bytes so clients retry over TCP; keep record sets "
        "small.",
    )


# Faults in the nameserver's own view that explain a timeout by themselves: an answer late or never sent.
LATE_OR_LOST: Final = ("drop", "delay", "outage", "ratelimit", "conntrack_race", "stale_flows")


def cross_wired_replies(summary: Mapping[str, Any]) -> Finding | None:
    """Lookups that wait out the resolver's timeout though the nameserver answered every query at once:
    the replies reached the client but did not match its queries, as when a server cross-wires parallel
    A and AAAA replies (each with the other's ID and port, golang/go#35521), so it ignored them
    (catalog 40)."""
    hits = []
    for m in _ran(summary):
        wire = _map(m.get("wire"))
        queries = _num(wire.get("queries")) or 0
        lookups = _num(m.get("lookups")) or 0
        rcodes, faults = _rcodes(m), _map(wire.get("faults"))
        if (
            not queries
            or _ok_share(m) >= FAILS_SHARE
            or _main_failure(m) not in ("timeout", "temporary")
            or (_num(rcodes.get("NOERROR")) or 0) < WORKS_SHARE * queries
            or _num(rcodes.get("drop"))
            or any(_num(faults.get(k)) for k in LATE_OR_LOST)
        ):
            continue
        peaks = [_map(p) for p in m.get("timeout_peaks") or ()]
        peak = max(peaks, key=lambda p: _num(p.get("share")) or 0, default=None)
        if peak is None or (_num(peak.get("share")) or 0) < FAILS_SHARE:
            continue
        hits.append((m, peak, queries / lookups))
    if not hits:
        return None
    by_id = [m for m in _ran(summary) if _is_musl(m) and _ok_share(m) >= WORKS_SHARE]
    swapped = sum(
        int(_num(_map(_map(m.get("wire")).get("faults")).get("swap_replies")) or 0) for m, _, _ in hits
    )
    seen = "; ".join(
        f"{_name(m)}: {_pct(1 - _ok_share(m))} {_main_failure(m)}, {_pct(_num(p.get('share')) or 0)} at "
        f"{_num(p.get('at_s')) or 0:g} s ({_num(p.get('k')) or 0:g} x the timeout), though the nameserver "
        f"answered every query with NOERROR at once ({per:.1f} per lookup)"
        for m, p, per in hits
    )
    if by_id:
        share = _pct(min(_ok_share(m) for m in by_id))
        seen += f"; {_names(by_id)} resolved {share} (musl matches a reply by its ID alone)"
    if swapped:
        seen += f"; the server cross-wired {swapped:,} replies (swap_replies)"
    return Finding(
        "cross_wired_replies",
        "critical",
        tuple(_name(m) for m, _, _ in hits),
        seen + ".",
        "The answers reached the client but did not match its queries, so the resolver ignored them and "
        "waited for its timeout, then retried into the same. A server or NAT that cross-wires parallel "
        "replies sends the A answer under the AAAA query's ID to the AAAA query's port and the reverse "
        "(golang/go#35521): Go's resolver and glibc check the question as well as the ID and drop both; "
        "musl checks the ID only and takes them. A wrong ID or question in every reply looks the same.",
        "Capture the traffic (`dnsprobe run --pcap`) and compare each reply's ID, port and question with its "
        "query; fix the server or the NAT in front of it. For cross-wired A/AAAA pairs, `options "
        "single-request` makes Go's resolver and glibc send A, then AAAA, so there is no pair to swap.",
        supersedes=("timeout_fingerprint",),  # its advice, to look for unanswered queries, misleads here
    )


# --- the pod's files: resolv.conf missing or unreadable, nsswitch.conf changed (catalog 42-44) -----------


def _resolv_conf_state(summary: Mapping[str, Any]) -> str:
    """`pod.resolv_conf_state` of the summary: "missing", "unreadable", or "present" (no key)."""
    return str(_map(summary.get("pod")).get("resolv_conf_state") or "present")


def _outcome_text(m: Mapping[str, Any]) -> str:
    """ "go: 49% failed (not_found: workload cluster)", or "go: all ok"."""
    if _ok_share(m) >= 1:
        return f"{_name(m)}: all ok"
    failing = [
        str(w.get("workload"))
        for w in m.get("workloads") or []
        if isinstance(w, Mapping) and _num(w.get("lookups")) and _ok_share(w) < FAILS_SHARE
    ]
    where = (
        f": workload {', '.join(failing)}" if failing and len(failing) < len(m.get("workloads") or []) else ""
    )
    return f"{_name(m)}: {_pct(1 - _ok_share(m))} failed ({_main_failure(m)}{where})"


def _stayed_on_go(ran: Sequence[Mapping[str, Any]]) -> list[str]:
    """Default cgo builds (cgo on, neither netgo nor netcgo) whose lookups all went to Go's resolver."""
    stayed = []
    for m in ran:
        binary = _map(m.get("binary"))
        tags = str(binary.get("tags") or "")
        if (
            binary.get("cgo_enabled")
            and "netgo" not in tags
            and "netcgo" not in tags
            and m.get("resolver") == "go"
        ):
            stayed.append(_name(m))
    return stayed


def _defaults_finding(
    summary: Mapping[str, Any], rule: str, state: str, why: str, fix: str
) -> Finding | None:
    ran = [m for m in _ran(summary) if _num(m.get("lookups"))]
    if _resolv_conf_state(summary) != state or not ran:
        return None
    stayed = _stayed_on_go(ran)
    failed = any(_ok_share(m) < 1 for m in ran)
    servers = _nameservers(summary)
    unasked = bool(servers) and all(
        _map(m.get("wire")) and not _num(_map(m.get("wire")).get("queries")) for m in ran
    )
    return Finding(
        rule,
        "critical" if failed else "warning",
        tuple(_name(m) for m in ran),
        f"The pod's /etc/resolv.conf was {state}: every resolver used its built-in defaults "
        "(127.0.0.1:53, Go also [::1]:53; ndots:1, timeout 5 s, no search list). "
        + "; ".join(_outcome_text(m) for m in ran)
        + "."
        + (f" Default cgo builds stayed on Go's resolver ({', '.join(stayed)})." if stayed else "")
        + (f" The servers the file names ({', '.join(servers)}) received no query." if unasked else ""),
        why,
        fix,
    )


def resolv_conf_missing(summary: Mapping[str, Any]) -> Finding | None:
    """The pod had no resolv.conf: the resolvers' defaults, whatever the file would have said (42)."""
    return _defaults_finding(
        summary,
        "resolv_conf_missing",
        "missing",
        "Without /etc/resolv.conf Go's resolver asks 127.0.0.1:53 and [::1]:53, glibc and musl 127.0.0.1:53, "
        "with ndots:1, a 5 s timeout and no search list (Go takes one from the hostname's domain, if it "
        "has one). Short cluster names are asked as they are and fail with NXDOMAIN; in a pod with "
        "nothing on its own loopback every lookup fails (musl only after its timeout). A missing file "
        "does not change Go's choice of resolver.",
        "Give the container its resolv.conf back: nothing (a volume over /etc, an image step, a chroot) "
        "may hide the file the kubelet or Docker writes; check with `cat /etc/resolv.conf` in the container.",
    )


def resolv_conf_unreadable(summary: Mapping[str, Any]) -> Finding | None:
    """The pod's resolv.conf could not be read (EACCES): the same defaults as without one (43)."""
    return _defaults_finding(
        summary,
        "resolv_conf_unreadable",
        "unreadable",
        "A resolv.conf the service's user cannot read (EACCES) counts as missing for glibc, musl and Go "
        "alike: the nameservers, search list and options in it are never used, and the lookups go to "
        "127.0.0.1:53 (Go also [::1]:53), the pod's own loopback. Go prefers cgo only for other read "
        "errors (EIO, a symlink loop), not for a permission error: a default cgo build stays on Go's "
        "resolver.",
        "Make /etc/resolv.conf readable by the service's user (mode 0644, as the kubelet and Docker "
        "write it); look for an image step or an init container that chmods or replaces it, or a "
        "runAsUser that cannot read a 0600 file mounted from the host.",
    )


def nsswitch_changed_resolver(summary: Mapping[str, Any]) -> Finding | None:
    """An nsswitch.conf change during the run moved a mode's lookups from Go's resolver to cgo or back:
    the trace shows both orders (44)."""
    changes = [c for c in _map(summary.get("pod")).get("nsswitch_changes") or [] if isinstance(c, Mapping)]
    if not changes:
        return None
    hits = []
    for m in _ran(summary):
        counts = {str(k): _num(v) or 0 for k, v in _map(_map(m.get("trace")).get("order_counts")).items()}
        cgo = counts.pop("cgo", 0)
        go = sum(counts.values())
        if cgo and go:
            hits.append((m, go, cgo))
    if not hits:
        return None
    first = changes[0]
    seen = []
    for m, go, cgo in hits:
        after = _num(m.get("go_queries_after_change_s"))
        when = (
            f", Go's resolver asked its last query {after:g} s after the change" if after is not None else ""
        )
        seen.append(f"{_name(m)}: {go:g} lookups by Go's resolver and {cgo:g} by cgo{when}")
    return Finding(
        "nsswitch_changed_resolver",
        "warning",
        tuple(_name(m) for m, _, _ in hits),
        f"nsswitch.conf's hosts line became `{first.get('hosts')}` {_num(first.get('at_s')) or 0:g} s into "
        "the load; " + "; ".join(seen) + ".",
        "Go re-reads nsswitch.conf (like resolv.conf) at most every 5 s; a default cgo build decides per "
        "lookup, so a hosts source Go does not implement (resolve, mdns, nis, an unusual [STATUS=action]) "
        "sends its lookups to libc from the next check on, and removing it sends them back. The same "
        "binary then has another resolver's timeouts, retries and concurrency limit mid-run.",
        "Do not change nsswitch.conf in running containers; pin the resolver where it matters "
        "(CGO_ENABLED=0 or -tags netgo for Go's own; -tags netcgo or GODEBUG=netdns=cgo for libc's).",
    )


Rule = Callable[[Mapping[str, Any]], Finding | None]
RULES: Final[tuple[Rule, ...]] = (
    glibc_linked,
    libresolv_missing,
    musl_refused_wait,
    servfail_storm,
    timeout_fingerprint,
    nsswitch_forces_cgo,
    resolver_mismatch,
    ndots_expansion,
    search_wildcard,
    musl_aaaa_error,
    musl_search_stops,
    musl_ndots_no_search,
    musl_parallel_nameservers,
    musl_long_search_line,
    nameserver_limit,
    edns0_intolerant,
    lame_nodata,
    empty_noerror,
    deadline_before_failover,
    cgo_thread_cap,
    nameserver_unreachable,
    no_reload_pins,
    port_closed_for_a_while,
    cross_wired_replies,
    resolv_conf_missing,
    resolv_conf_unreadable,
    nsswitch_changed_resolver,
    stale_flows,
    answer_cut_at_512,
)


def diagnose(summary: Mapping[str, Any], rules: Sequence[Rule] = RULES) -> list[dict[str, Any]]:
    """Every rule's finding but those another finding supersedes, most severe first (rule order within a
    severity)."""
    found = [f for rule in rules if (f := rule(summary)) is not None]
    superseded = {name for f in found for name in f.supersedes}
    found = [f for f in found if f.rule not in superseded]
    found.sort(key=lambda f: SEVERITY_ORDER.index(f.severity))
    return [f.to_json() for f in found]
