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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnsprobe.analyse.observation import MODE, OK_OUTCOMES, analyse, explain
from dnsprobe.errors import InspectError, SandboxError
from dnsprobe.scenario import Scenario

if TYPE_CHECKING:
    from dnsprobe.sandbox.pod import Pod

DEFAULT_SECONDS = 30.0


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
    from dnsprobe.build.probe import default_cache_dir
    from dnsprobe.judge.rules import diagnose
    from dnsprobe.nameserver.group import nameserver_engine, server_addresses
    from dnsprobe.sandbox import Pod, check_namespaces, render_pod_files
    from dnsprobe.sandbox.image_rootfs import check_rootfs, read_image_file
    from dnsprobe.summary import write_summary

    if seconds <= 0:
        raise ProgramError(f"--seconds {seconds:g}: give a positive number of seconds")
    cache = cache_dir or default_cache_dir()
    rootfs = scenario.pod.rootfs
    if image:  # a local image, or a tarball with oci:PATH.tar
        rootfs = image if image.startswith(("image:", "oci:")) else f"image:{image}"
    docker = scenario.backend == "docker"
    image_root = check_rootfs(rootfs, scenario.backend, cache)
    program = resolve_program(argv, image_root)
    if docker and scenario.pod.changes:
        raise ProgramError(
            'observe on the docker backend does not apply [[pod.changes]]: use backend = "local" (the '
            "default), or drop the changes"
        )
    if docker and (image_root is None or not program.in_root):
        raise ProgramError(
            "observe on the docker backend runs a program of an image: pass --image REF (the program a "
            'path in it), or use backend = "local" for a program of this host'
        )
    if not docker:
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
    files = render_pod_files(
        scenario.pod,
        hostname="observed",
        nameservers=addresses,
        allow_non_loopback=scenario.nameserver.allow_non_loopback,
    )
    pod_files = files.as_dict()
    if image_root is not None and scenario.pod.nsswitch_hosts == "files dns":
        pod_files["nsswitch"] = read_image_file(image_root, "/etc/nsswitch.conf") or ""
    socket_dir = Path(tempfile.mkdtemp(prefix="dnsprobe-"))
    workdir = run_dir / "pods" / MODE
    mount_nsswitch = scenario.pod.nsswitch_hosts != "files dns" or any(
        c.touches_nsswitch for c in scenario.pod.changes
    )
    changes: list[dict[str, Any]] = []  # [[pod.changes]] as they happened to the program
    try:
        if docker:
            from dnsprobe.sandbox.docker_program import run_program_container

            assert image_root is not None
            ran = run_program_container(
                reference=image_root.source.removeprefix("image:"),
                argv=program.argv,
                files=files,
                zone_text=scenario.nameserver.zone,
                workdir=workdir,
                socket_dir=socket_dir,
                env=env,
                godebug=godebug,
                nameserver=scenario.nameserver,
                cache_dir=cache,
                mount_nsswitch=mount_nsswitch,
                seconds=seconds,
            )
            status, trace_path, querylog_path = ran.status, ran.trace_path, ran.querylog_path
            interrupted = ran_out = ran.interrupted
        else:
            status, trace_path, querylog_path, interrupted, ran_out = _run_local(
                Pod(
                    mode=MODE,
                    binary=Path(program.argv[0]),
                    files=files,
                    zone_text=scenario.nameserver.zone,
                    workdir=workdir,
                    socket_dir=socket_dir,
                    godebug=godebug,
                    env=env,
                    nofile=scenario.pod.nofile,
                    port_range=scenario.pod.port_range,
                    rootfs=rootfs,
                    nameserver=scenario.nameserver,
                    cache_dir=cache,
                    mount_nsswitch=mount_nsswitch,
                    program=program.argv,
                    program_in_root=program.in_root,
                ),
                program,
                seconds,
                scenario,
                changes,
            )
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
    timeout_s = float(scenario.pod.timeout or 5)
    querylog = (
        querylog_path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        if querylog_path.exists()
        else []
    )
    observed = analyse(
        stderr=trace_path.read_bytes() if trace_path.exists() else b"",
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
    if changes:
        observed["changes"] = changes
    failed = [v for v in observed["names"] if v["outcome"] not in OK_OUTCOMES]
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
    if scenario.pod.changes:
        missed = [c for c in changes if "failed" in c]
        late = len(scenario.pod.changes) - len(changes)  # the program ended before their time
        checks.append(
            {
                "name": "observed: every [[pod.changes]] was applied while the program ran",
                "passed": not missed and not late,
                "detail": "; ".join(c["failed"] for c in missed)
                or (f"{late} change(s) came after the program ended" if late else f"{len(changes)} applied"),
            }
        )
    summary: dict[str, Any] = {
        "run_id": run_dir.name,
        "scenario": scenario.name,
        "scenario_file": scenario.source,
        "description": scenario.description,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": clock().isoformat(timespec="seconds"),
        "finished": True,
        "interrupted": interrupted,
        "kind": "observe",
        "pod": {**pod_files, "env": dict(scenario.pod.env)},
        "nameserver": {
            "kind": scenario.nameserver.kind,
            "engine": nameserver_engine(scenario.nameserver),
            "endpoints": [f"{a}:53" for a in addresses],
        },
        "backend": scenario.backend,
        "modes": [],
        "checks": checks,
        "observed": observed,
    }
    pseudo = {**summary, "modes": [_as_mode(observed, facts)]}
    summary["findings"] = explain(observed, timeout_s=timeout_s, servers=len(addresses)) + [
        f for f in diagnose(pseudo) if f["rule"] not in ("resolver_mismatch", "servfail_storm")
    ]
    write_summary(run_dir / "summary.json", summary)
    from dnsprobe.report.observed import write_observed_report

    write_observed_report(run_dir, summary)
    return ObserveResult(run_dir, summary, 0 if all(c["passed"] for c in checks) else 1)


def _run_local(
    pod: Pod, program: Program, seconds: float, scenario: Scenario, changes: list[dict[str, Any]]
) -> tuple[dict[str, Any], Path, Path, bool, bool]:
    """The program in a local pod: (status, its stderr, the query log, interrupted, ran out of time).
    The scenario's [[pod.changes]] are written at their times from the program's start; `changes` gets
    each one as it happened ({"at_s", "files"} or {"at_s", "failed"})."""
    from dnsprobe.sandbox.changes import schedule_changes

    interrupted = ran_out = False
    timers = []
    try:
        pod.launch()
        timers = schedule_changes(
            pod,
            scenario.pod,
            allow_non_loopback=scenario.nameserver.allow_non_loopback,
            applied=lambda at, what: changes.append({"at_s": at, "files": what}),
            failed=lambda at, why: changes.append({"at_s": at, "failed": why}),
        )
        try:
            ran_out = not pod.wait(seconds)
        except KeyboardInterrupt:  # Ctrl-C: stop the program and report what it did so far
            ran_out = interrupted = True
    finally:
        for timer in timers:
            timer.cancel()
        pod.stop()
    status: dict[str, Any] = pod.status()
    if "exec_error" in status or not status:
        text = status.get("exec_error") or _last_line(pod.log_path) or "the pod did not start"
        raise ProgramError(f"{program.argv[0]}: cannot be executed in the pod: {text}")
    return status, pod.trace_path, pod.querylog_path, interrupted, ran_out


def _as_mode(observed: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    """The observed program as a mode entry, so the run's rules (nsswitch, libc...) can read it."""
    outcomes = Counter(v["outcome"] for v in observed["names"])
    ok = outcomes.pop("ok", 0) + outcomes.pop("local", 0)
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
