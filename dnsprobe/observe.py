"""`dnsprobe observe`: the user's own program in the pod, and every bit of DNS it did.

    dnsprobe observe [SCENARIO] [--seconds N] [--image REF] -- ./bin/api ARGS

The program runs in the same sandbox as the probe (the scenario's resolv.conf, hosts, nameserver and
fault rules; the image's root with `--image`) until it exits or for N seconds. Its GODEBUG gets
`netdns=+2` (keeping any resolver choice it makes itself, in its environment or compiled in with
`//go:debug`), so Go prints which resolver it chose for each name; the nameserver logs every query.
The two are joined per name: the resolver and why, the wire queries, rcodes, retries, timeouts, the
delay each injected fault added, and the program's own stderr lines around each failure. This is the
incident-reproduction path: the real binary against the nameserver behaviour of the incident.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dnsprobe.errors import InspectError, SandboxError
from dnsprobe.nameserver.querylog import QueryLogEntry, read_querylog
from dnsprobe.scenario import Scenario
from dnsprobe.trace import MARKER, parse_trace, trace_file_lines

MODE = "observed"
DEFAULT_SECONDS = 30.0
_CONTEXT_LINES = 1  # program stderr lines kept before and after each line that names a failed lookup
_MAX_STDERR_LINES = 12  # per name


class ProgramError(SandboxError):
    """The command given to observe cannot be run (what, where, how to fix)."""


@dataclass(frozen=True)
class ObserveResult:
    run_dir: Path
    summary: dict[str, Any]
    exit_code: int


@dataclass(frozen=True)
class Program:
    """What the pod runs: argv (argv[0] a host file, or a path inside the image root), and the file to
    read Go build facts from."""

    argv: list[str]
    in_root: bool
    file: Path


# --- GODEBUG ---------------------------------------------------------------------------------------


def observed_godebug(own: str, compiled_in: str = "") -> str:
    """The program's GODEBUG with netdns debug level 2 added. Its resolver choice survives: a netdns
    setting of its own environment, else the binary's DefaultGODEBUG (`//go:debug netdns=cgo`), which an
    environment GODEBUG with a bare `netdns=+2` would silently override."""
    settings = [s for s in own.split(",") if s.strip()]
    chosen = _netdns_mode([s for s in settings if s.startswith("netdns=")])
    if chosen is None:
        chosen = _netdns_mode([s for s in compiled_in.split(",") if s.startswith("netdns=")]) or ""
    kept = [s for s in settings if not s.startswith("netdns=")]
    return ",".join([*kept, f"netdns={chosen}+2"])


def _netdns_mode(settings: list[str]) -> str | None:
    """The resolver half of the last netdns setting (go, cgo or ""); None without one."""
    if not settings:
        return None
    value = settings[-1].split("=", 1)[1]
    parts = [p for p in value.split("+") if p and not p.isdigit()]
    return parts[0] if parts else ""


# --- the command -------------------------------------------------------------------------------------


def resolve_program(argv: Sequence[str], image: Any = None) -> Program:
    """Check the command can be executed where it will run; ProgramError in one line otherwise.
    `image` (an ImageRoot) means it runs inside that root: no argv takes the image's entrypoint."""
    if image is None:
        if not argv:
            raise ProgramError("observe: no command: give it after --, e.g. dnsprobe observe -- ./bin/api")
        found = argv[0] if "/" in argv[0] else shutil.which(argv[0])
        if found is None:
            raise ProgramError(f"{argv[0]}: command not found on PATH; give its path (./bin/api)")
        path = Path(found)
        _check_executable(path, argv[0], "")
        return Program([str(path.resolve()), *argv[1:]], in_root=False, file=path.resolve())
    from dnsprobe.sandbox.image_rootfs import read_image_path

    args = list(argv) or image.argv
    if not args:
        raise ProgramError(f"{image.source}: the image has no ENTRYPOINT or CMD; give the command after --")
    program = args[0]
    inside: Path | None = None
    if "/" not in program:
        for directory in image.env.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":"):
            candidate = read_image_path(image, f"{directory}/{program}")
            if candidate is not None and candidate.is_file():
                program, inside = f"{directory}/{program}", candidate
                break
    else:
        inside = read_image_path(image, program if program.startswith("/") else f"{image.workdir}/{program}")
    if inside is None or not inside.exists():
        if argv and Path(argv[0]).is_file():  # a program of this host, run in the image's root
            host = resolve_program(argv)
            return Program(host.argv, in_root=False, file=host.file)
        raise ProgramError(f"{args[0]}: no such file in {image.source} (nor on this host)")
    _check_executable(inside, program, f" in {image.source}")
    return Program([program, *args[1:]], in_root=True, file=inside)


def _check_executable(path: Path, shown: str, where: str) -> None:
    if not path.exists():
        raise ProgramError(f"{shown}: no such file{where}")
    if not path.is_file():
        raise ProgramError(f"{shown}: not a file{where}; give the program to run")
    if not os.access(path, os.X_OK):
        raise ProgramError(f"{shown}: not executable{where} (chmod +x {shown})")
    with path.open("rb") as fh:
        head = fh.read(4)
    if head != b"\x7fELF" and not head.startswith(b"#!"):
        raise ProgramError(f"{shown}: neither an ELF binary nor a #! script{where}; it cannot be executed")


def go_facts(path: Path) -> dict[str, Any]:
    """The Go facts that decide DNS behaviour, read from the file; {} for a program that is not Go."""
    from dnsprobe.binary import inspect_binary

    try:
        facts = inspect_binary(path).to_json()
    except InspectError:
        return {}
    go = facts.get("go") or {}
    return {
        "go_version": go.get("go_version"),
        "cgo_enabled": go.get("cgo_enabled"),
        "tags": go.get("tags"),
        "default_godebug": go.get("default_godebug") or "",
        "linkage": facts.get("linkage"),
        "interpreter": facts.get("interpreter"),
        "libc": facts.get("libc"),
        "resolver": facts.get("resolver"),
    }


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
    for name in trace.names:
        for variant in _wire_names(name, search):
            by_wire.setdefault(variant, name)
    grouped: dict[str, list[QueryLogEntry]] = {name: [] for name in trace.names}
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
        return "a cgo build, but nothing in the pod needs the C library (dynamic selection)"
    if resolver in ("cgo", "mixed"):
        if "netcgo" in (go.get("tags") or []):
            return "built with -tags netcgo"
        reasons = cgo_reasons(config)
        return "; ".join(reasons) if reasons else "dynamic selection (see the startup lines)"
    return ""


def cgo_reasons(config: Mapping[str, Any]) -> list[str]:
    """The settings in the pod Go's resolver cannot honour (each makes a cgo-capable build use cgo)."""
    from dnsprobe.rules import CGO_ENV, GO_NSS_SOURCES, GO_RESOLV_OPTIONS

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
    """The query names a lookup of `name` can send: as is, and with each search domain (any order)."""
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
    outcome = _outcome(queries, orders)
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
        "stderr": _stderr_around(name, program_lines) if outcome not in ("ok", "hosts") else [],
    }
    return view


def _outcome(queries: list[QueryLogEntry], orders: list[str]) -> str:
    """ok, hosts (answered from /etc/hosts: no query), not_found, temporary, refused, timeout, other."""
    rcodes = {e.rcode for e in queries}
    if not queries:
        return "hosts" if orders and orders[0].startswith("files") else "no_queries"
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


# --- the command -------------------------------------------------------------------------------------


def observe(
    scenario: Scenario,
    argv: Sequence[str],
    *,
    out_dir: Path,
    seconds: float = DEFAULT_SECONDS,
    image: str | None = None,
    cache_dir: Path | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ObserveResult:
    """Run the program in the scenario's pod and write the report; exit code 1 when a lookup failed
    or the program exited non-zero, 0 otherwise."""
    from dnsprobe.build import default_cache_dir
    from dnsprobe.nameserver.group import nameserver_engine, server_addresses
    from dnsprobe.pipeline import write_json
    from dnsprobe.rules import diagnose
    from dnsprobe.sandbox import Pod, check_namespaces, render_pod_files
    from dnsprobe.sandbox.image_rootfs import check_rootfs, read_image_file

    if seconds <= 0:
        raise ProgramError(f"--seconds {seconds:g}: give a positive number of seconds")
    cache = cache_dir or default_cache_dir()
    rootfs = f"image:{image}" if image else scenario.pod.rootfs
    image_root = check_rootfs(rootfs, "local", cache)
    program = resolve_program(argv, image_root)
    check_namespaces()
    facts = go_facts(program.file)
    env = dict(image_root.env if image_root else {}) | dict(scenario.pod.env)
    godebug = observed_godebug(env.pop("GODEBUG", ""), facts.get("default_godebug", ""))
    started = clock()
    run_dir = out_dir / f"{started:%Y%m%d-%H%M%S}-{scenario.name}-observe"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = run_dir.with_name(f"{started:%Y%m%d-%H%M%S}-{scenario.name}-observe-{suffix}")
    run_dir.mkdir(parents=True)
    addresses = server_addresses(scenario.nameserver)
    files = render_pod_files(scenario.pod, hostname="observed", nameservers=addresses)
    pod_files = files.as_dict()
    if image_root is not None and scenario.pod.nsswitch_hosts == "files dns":
        pod_files["nsswitch"] = read_image_file(image_root, "/etc/nsswitch.conf") or ""
    socket_dir = Path(tempfile.mkdtemp(prefix="dnsprobe-"))
    pod = Pod(
        mode=MODE,
        binary=Path(program.argv[0]),
        files=files,
        zone_text=scenario.nameserver.zone,
        workdir=run_dir / "pods" / MODE,
        socket_dir=socket_dir,
        godebug=godebug,
        env=env,
        nofile=scenario.pod.nofile,
        port_range=scenario.pod.port_range,
        rootfs=rootfs,
        nameserver=scenario.nameserver,
        cache_dir=cache,
        mount_nsswitch=scenario.pod.nsswitch_hosts != "files dns",
        program=program.argv,
        program_in_root=program.in_root,
    )
    try:
        pod.launch()
        ran_out = not pod.wait(seconds)
    finally:
        pod.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
    status = pod.status()
    if "exec_error" in status or not status:
        text = status.get("exec_error") or _last_line(pod.log_path) or "the pod did not start"
        raise ProgramError(f"{' '.join(program.argv[:1])}: cannot be executed in the pod: {text}")
    timeout_s = float(scenario.pod.timeout or 5)
    querylog = (
        pod.querylog_path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        if pod.querylog_path.exists()
        else []
    )
    observed = analyse(
        stderr=pod.trace_path.read_bytes() if pod.trace_path.exists() else b"",
        querylog_lines=querylog,
        search=scenario.pod.search,
        started=float(status["started"]),
        timeout_s=timeout_s,
        config={**pod_files, "env": env, "go": facts, "godebug": godebug},
    )
    ended = status.get("ended", status["started"])
    observed.update(
        argv=list(program.argv),
        image=image_root.source if image_root else None,
        godebug=godebug,
        go=facts,
        seconds_limit=seconds,
        ran_s=round(float(ended) - float(status["started"]), 3),
        exit={k: status[k] for k in ("exit", "signal") if k in status},
        stopped=bool(status.get("stopped")) or ran_out,
    )
    failed = [v for v in observed["names"] if v["outcome"] not in ("ok", "hosts")]
    checks = [
        {
            "name": "observed: every name resolved",
            "passed": not failed,
            "detail": ", ".join(f"{v['name']} ({v['outcome']})" for v in failed)
            or f"{len(observed['names'])} name(s) resolved",
        },
        {
            "name": "observed: the program exited 0 or ran until stopped",
            "passed": observed["stopped"] or observed["exit"].get("exit") == 0,
            "detail": _exit_text(observed),
        },
    ]
    summary: dict[str, Any] = {
        "run_id": run_dir.name,
        "scenario": scenario.name,
        "scenario_file": scenario.source,
        "description": scenario.description,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": clock().isoformat(timespec="seconds"),
        "finished": True,
        "interrupted": False,
        "kind": "observe",
        "pod": {**pod_files, "env": dict(scenario.pod.env)},
        "nameserver": {
            "kind": scenario.nameserver.kind,
            "engine": nameserver_engine(scenario.nameserver),
            "endpoints": [f"{a}:53" for a in addresses],
        },
        "backend": "local",
        "modes": [],
        "checks": checks,
        "observed": observed,
    }
    pseudo = {**summary, "modes": [_as_mode(observed, facts)]}
    summary["findings"] = explain(observed, timeout_s=timeout_s, servers=len(addresses)) + [
        f for f in diagnose(pseudo) if f["rule"] not in ("resolver_mismatch", "servfail_storm")
    ]
    write_json(run_dir / "summary.json", summary)
    from dnsprobe.report.observed import write_observed_report

    write_observed_report(run_dir, summary)
    return ObserveResult(run_dir, summary, 0 if all(c["passed"] for c in checks) else 1)


def _as_mode(observed: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    """The observed program as a mode entry, so the run's rules (nsswitch, libc...) can read it."""
    outcomes = Counter(v["outcome"] for v in observed["names"])
    ok = outcomes.pop("ok", 0) + outcomes.pop("hosts", 0)
    return {
        "mode": MODE,
        "status": "ran",
        "resolver": observed["resolver"] if observed["resolver"] != "unknown" else None,
        "expected_resolver": None,
        "lookups": ok + sum(outcomes.values()),
        "ok": ok,
        "failures": dict(outcomes),
        "trace": {"order_counts": Counter(o for v in observed["names"] for o in v["orders"])},
        "wire": {"queries": observed["wire_queries"], "rcodes": observed["rcodes"]},
        "binary": {"libc": facts.get("libc"), "interpreter": facts.get("interpreter")},
        "workloads": [],
    }


def _exit_text(observed: Mapping[str, Any]) -> str:
    code = observed["exit"]
    if observed["stopped"]:
        return f"still running after {observed['seconds_limit']:g} s: stopped (that is not a failure)"
    if "signal" in code:
        return f"killed by signal {code['signal']} after {observed['ran_s']:g} s"
    return f"exited with status {code.get('exit')} after {observed['ran_s']:g} s"


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""
