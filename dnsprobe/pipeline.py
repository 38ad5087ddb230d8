"""`dnsprobe run`: scenario -> build -> pod + nameserver -> load -> analysis -> report, one mode at a time.

Modes run one after another, not side by side, so that they do not compete for the machine's cores and
each mode's figures are its own. An interrupted run (Ctrl-C, SIGTERM) keeps every lookup recorded so far,
summarises it, writes the report marked `finished: false` and says so.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from dnsprobe import analysis, records
from dnsprobe.build import build_probe, find_toolchain, missing_tool
from dnsprobe.errors import BuildError
from dnsprobe.expectations import behaviour_checks, declares, failure_mode_finding
from dnsprobe.junit import write_junit
from dnsprobe.load import storage
from dnsprobe.load.live import LiveSnapshot
from dnsprobe.load.metrics import MetricsExporter, parse_address
from dnsprobe.load.runner import auto_processes, locust_argv, run_load
from dnsprobe.modes import Mode, resolve_mode
from dnsprobe.nameserver.goengine import go_engine_binary
from dnsprobe.nameserver.group import nameserver_engine, server_addresses
from dnsprobe.nameserver.pcap import PCAP_NAME, RAW_NAME, write_pcap
from dnsprobe.rules import diagnose
from dnsprobe.sandbox import Pod, PodStartFailure, check_namespaces, render_pod_files
from dnsprobe.scenario import Scenario


class Progress(Protocol):
    """What the pipeline tells the person watching (the CLI draws it with rich)."""

    def stage(self, mode: str, text: str) -> None: ...
    def note(self, mode: str, text: str) -> None: ...
    def load_tick(self, mode: str, elapsed: float, total: float, live: LiveSnapshot) -> None: ...


class QuietProgress:
    def stage(self, mode: str, text: str) -> None:
        pass

    def note(self, mode: str, text: str) -> None:
        pass

    def load_tick(self, mode: str, elapsed: float, total: float, live: LiveSnapshot) -> None:
        pass


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    exit_code: int


def new_run_id(scenario: Scenario, now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{scenario.name}"


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def run_scenario(
    scenario: Scenario,
    *,
    out_dir: Path,
    quick: bool = False,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    cache_dir: Path | None = None,
    metrics: str | None = None,
    pcap: bool = False,
) -> RunResult:
    """`metrics`: a loopback HOST:PORT to serve Prometheus metrics on while the run goes (load/metrics.py).
    `pcap`: each local pod's DNS traffic, as its embedded nameserver saw it, to pods/<mode>/dns.pcap."""
    progress = progress or QuietProgress()
    if metrics is not None:
        parse_address(metrics)  # a bad address is refused before anything starts
    check_namespaces()
    toolchain = find_toolchain()
    started = clock()
    run_id = new_run_id(scenario, started)
    run_dir = out_dir / run_id
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = out_dir / f"{run_id}-{suffix}"
    run_dir.mkdir(parents=True)
    run_id = run_dir.name
    addresses = server_addresses(scenario.nameserver)
    files = render_pod_files(scenario.pod, hostname="probe", nameservers=addresses)
    seconds = scenario.load_seconds(quick)
    summary: dict[str, Any] = {
        "run_id": run_id,
        "scenario": scenario.name,
        "scenario_file": scenario.source,
        "description": scenario.description,
        "failure_mode": scenario.failure_mode.model_dump() if scenario.failure_mode else None,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": None,
        "finished": False,
        "interrupted": False,
        "quick": quick,
        "toolchain": toolchain.version,
        "pod": {**files.as_dict(), "env": dict(scenario.pod.env)},
        "nameserver": {
            "kind": scenario.nameserver.kind,
            "engine": nameserver_engine(scenario.nameserver),
            "endpoints": [f"{a}:53" for a in addresses],
        },
        "load": {
            "users": scenario.load.users,
            "duration_s": seconds,
            "batch": scenario.load.batch,
            "concurrency": scenario.load.concurrency,
            "shape": scenario.load.shape,
            "rate": scenario.load.rate,
            "processes": auto_processes(scenario.load),
            "keep_records": scenario.load.keep_records,
            "querylog": "zstd" if storage.compresses_querylog(scenario.load) else "tsv",
        },
        "backend": scenario.backend,
        "modes": [],
        "checks": [],
    }
    write_json(run_dir / "summary.json", summary)
    records_path = run_dir / "records.sqlite"
    records.connect(records_path).close()
    estimate = storage.estimate_text(scenario.load, seconds, len(_cells(scenario)))
    if estimate:
        progress.note("", estimate)
    exporter = None if metrics is None else MetricsExporter(records_path, metrics).start()
    socket_dir = Path(tempfile.mkdtemp(prefix="dnsprobe-"))  # unix socket paths must stay short
    try:
        for name, base in _cells(scenario):
            entry = _mode_entry(resolve_mode(name))
            if base is not None:
                entry["mode"] = f"{name}+{base}"
            summary["modes"].append(entry)
            try:
                _run_mode(
                    resolve_mode(name),
                    entry,
                    base=base,
                    scenario=scenario,
                    run_dir=run_dir,
                    run_id=run_id,
                    files=files,
                    seconds=seconds,
                    records_path=records_path,
                    socket_dir=socket_dir,
                    cache_dir=cache_dir,
                    progress=progress,
                    exporter=exporter,
                    pcap=pcap,
                )
            except KeyboardInterrupt:
                summary["interrupted"] = True
                progress.note(name, "interrupted: keeping what was measured")
                break
            finally:
                write_json(run_dir / "summary.json", summary)
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
        if exporter is not None:
            exporter.close()
    summary["finished"] = not summary["interrupted"]
    summary["finished_at"] = clock().isoformat(timespec="seconds")
    summary["checks"] = evaluate_checks(scenario, summary)
    catalog = failure_mode_finding(scenario, summary["checks"])
    summary["findings"] = ([catalog] if catalog else []) + diagnose(summary)
    write_json(run_dir / "summary.json", summary)
    write_junit(summary, run_dir / "junit.xml")
    progress.stage("", "writing the report")
    from dnsprobe.report import write_report

    write_report(run_dir, summary)
    failed = [c for c in summary["checks"] if not c["passed"]]
    return RunResult(run_dir, summary, 1 if failed else 0)


def _mode_entry(mode: Mode) -> dict[str, Any]:
    return {
        "mode": mode.name,
        "description": mode.summary,
        "status": "pending",
        "reason": None,
        "resolver": None,
        "expected_resolver": mode.expected_resolver,
        "lookups": 0,
        "ok": 0,
        "failures": {},
        "lookups_per_s": 0.0,
        "latency_ms": analysis.latency_summary([]),
        "wire_queries": 0,
        "wire_queries_per_lookup": None,
        "workloads": [],
        "trace": {},
        "binary": {},
    }


def _cells(scenario: Scenario) -> list[tuple[str, str | None]]:
    """(mode, base image) in run order; the local backend has no base image."""
    if scenario.backend == "local":
        return [(name, None) for name in scenario.modes]
    return [(name, base) for name in scenario.modes for base in scenario.base_images]


def _run_mode(
    mode: Mode,
    entry: dict[str, Any],
    *,
    base: str | None = None,
    scenario: Scenario,
    run_dir: Path,
    run_id: str,
    files: Any,
    seconds: float,
    records_path: Path,
    socket_dir: Path,
    cache_dir: Path | None,
    progress: Progress,
    exporter: MetricsExporter | None = None,
    pcap: bool = False,
) -> None:
    reason = missing_tool(mode.build)
    if reason:
        entry.update(status="skipped", reason=reason)
        progress.note(mode.name, f"skipped: {reason}")
        return
    progress.stage(mode.name, "building the probe")
    try:
        binary = build_probe(mode, cache_dir=cache_dir)
        if nameserver_engine(scenario.nameserver) == "go":
            progress.stage(mode.name, "building the nameserver")
            go_engine_binary(cache_dir)  # cached after the first mode; the pod would build it otherwise
    except BuildError as exc:
        entry.update(status="skipped", reason=f"build failed: {exc}")
        progress.note(mode.name, f"skipped: build failed: {exc}")
        return
    entry["binary"] = {
        "path": str(binary.path),
        "toolchain": binary.toolchain,
        "cgo_enabled": binary.build.cgo,
        "tags": ",".join(binary.build.tags),
        "libc": binary.build.libc,
        "linkage": binary.linkage,
        "interpreter": binary.interpreter,
    }
    pod_dir = run_dir / "pods" / entry["mode"]
    pod: Any
    if base is not None:
        from dnsprobe.sandbox.docker import docker_cell

        progress.stage(entry["mode"], "building the image")
        pod, cell = docker_cell(
            mode.name,
            base,
            binary.path,
            files=files,
            zone_text=scenario.nameserver.zone,
            workdir=pod_dir,
            socket_dir=socket_dir,
            godebug=mode.godebug,
            env=scenario.pod.env,
            nameserver=scenario.nameserver,
            mount_nsswitch=scenario.pod.nsswitch_hosts != "files dns",
            cache_dir=cache_dir,
        )
        entry.update(cell)
        entry["description"] = f"{mode.summary}, on a stand-in for {cell['stands_in_for']}"
        mode = replace(mode, name=entry["mode"])
    else:
        pod = Pod(
            mode=mode.name,
            binary=binary.path,
            files=files,
            zone_text=scenario.nameserver.zone,
            workdir=pod_dir,
            socket_dir=socket_dir,
            godebug=mode.godebug,
            env=scenario.pod.env,
            nofile=scenario.pod.nofile,
            port_range=scenario.pod.port_range,
            rootfs=scenario.pod.rootfs,
            nameserver=scenario.nameserver,
            cache_dir=cache_dir,
            pcap=pcap,
        )
    progress.stage(mode.name, "starting the pod")
    try:
        pod.start()
    except PodStartFailure as exc:
        entry.update(status="start_failure", reason=exc.text)
        progress.note(mode.name, f"did not start: {exc.text}")
        now = time.time_ns()
        with records.RecordWriter(records_path) as writer:
            writer.append([(run_id, mode.name, "-", "-", "-", now, now, 0, "start_failure", exc.text, 0)])
        entry.update(lookups=1, failures={"start_failure": 1})
        return
    except BaseException:  # Ctrl-C while the pod starts: do not leave its processes behind
        pod.stop()
        raise
    entry["binary"]["go_version"] = pod.info.get("go_version")
    entry["status"] = "ran"
    argv = locust_argv(
        address=pod.address,
        load=scenario.load,
        seconds=seconds,
        mode=mode.name,
        run_id=run_id,
        records_path=records_path,
        csv_prefix=pod_dir / "locust",
    )
    applied: list[float] = []  # when each resolv.conf change was written (unix time)
    changes = _schedule_resolv_changes(pod, scenario, progress, applied)
    compactor = storage.start_compactor(
        pod.querylog_path,
        scenario.load,
        mode.name,
        exporter,
        records_path=records_path,
        search=scenario.pod.search,
    )
    try:
        progress.stage(mode.name, "load")
        run_load(
            argv,
            mode=mode.name,
            seconds=seconds,
            records_path=records_path,
            log_path=pod_dir / "locust.log",
            on_tick=lambda elapsed, live: progress.load_tick(mode.name, elapsed, seconds, live),
            open_loop=scenario.load.shape == "open",
        )
    finally:
        for timer in changes:
            timer.cancel()
        pod.stop()
        if compactor is not None:
            compactor.finish()
        if pcap and base is None:
            write_pcap(pod_dir / RAW_NAME, pod_dir / PCAP_NAME)
            (pod_dir / RAW_NAME).unlink(missing_ok=True)
        entry.update(
            analysis.summarise_mode(
                records_path=records_path,
                mode=mode.name,
                workloads=scenario.load.workloads,
                search=scenario.pod.search,
                querylog=pod.querylog_path,
                trace=pod.trace_path,
                resolv_conf=files.resolv_conf,
                open_loop=scenario.load.shape == "open",
                changes=applied,
            )
        )


def _schedule_resolv_changes(
    pod: Pod, scenario: Scenario, progress: Progress, applied: list[float]
) -> list[threading.Timer]:
    """`[[pod.changes]]`: rewrite the running pod's resolv.conf at each change's time into the load;
    `applied` gets the moment each change was written."""
    timers = []
    for change in scenario.pod.changes:
        spec = scenario.pod.changed(change)
        text = render_pod_files(spec, hostname="probe", nameservers=_nameserver_addresses(pod)).resolv_conf

        def apply(text: str = text, at: float = change.at_s) -> None:
            pod.rewrite_resolv_conf(text)
            applied.append(time.time())
            progress.note(pod.mode, f"resolv.conf changed at {at:g} s")

        timer = threading.Timer(change.at_s, apply)
        timer.daemon = True
        timer.start()
        timers.append(timer)
    return timers


def _nameserver_addresses(pod: Pod) -> list[str]:
    """The nameserver lines of the pod's current resolv.conf (a change keeps the servers)."""
    return [line.split()[1] for line in pod.files.resolv_conf.splitlines() if line.startswith("nameserver ")]


def evaluate_checks(scenario: Scenario, summary: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []

    def check(name: str, passed: bool, detail: str) -> None:
        checks.append({"name": name, "passed": bool(passed), "detail": detail})

    if summary["interrupted"]:
        done = sum(m["lookups"] for m in summary["modes"])
        check(
            "run completed", False, f"interrupted after {done} lookups; the figures cover what was measured"
        )
    expect = scenario.expect
    for m in summary["modes"]:
        name = m["mode"]
        predicted = m.get("inspect")  # docker cells: inspect's verdict for this base image
        if m["status"] == "start_failure":
            if predicted is not None:
                reason = m["reason"] or ""
                check(f"{name}: fails to start, as inspect predicted", not predicted["starts"], reason)
            elif not declares(scenario, name, "status"):
                check(f"{name}: probe started", False, m["reason"] or "")
            continue
        if predicted is not None and m["status"] == "ran":
            check(f"{name}: starts, as inspect predicted", predicted["starts"], predicted["why"])
        if m["status"] != "ran":
            continue
        orders = (
            ", ".join(f"{k} ×{v}" for k, v in m["trace"].get("order_counts", {}).items()) or "no order lines"
        )
        if not declares(scenario, name, "resolver"):
            check(
                f"{name}: resolver is {m['expected_resolver']}",
                m["resolver"] == m["expected_resolver"],
                f"the trace shows {m['resolver'] or 'nothing'} ({orders})",
            )
        if not m["lookups"]:
            check(f"{name}: lookups happened", False, "no lookup was recorded")
            continue
        error_rate = 1 - m["ok"] / m["lookups"]
        gates = expect.gates(name)  # [expect.modes.<mode>] overrides the run-wide gates
        if gates.max_error_rate is not None:
            check(
                f"{name}: error rate <= {gates.max_error_rate:.2%}",
                error_rate <= gates.max_error_rate,
                f"{error_rate:.2%} of {m['lookups']} lookups failed",
            )
        p99 = m["latency_ms"]["p99"]
        if gates.max_p99_ms is not None:
            check(
                f"{name}: p99 <= {gates.max_p99_ms:g} ms",
                p99 is not None and p99 <= gates.max_p99_ms,
                f"p99 was {p99:g} ms",
            )
    return checks + behaviour_checks(scenario, summary)
