"""`dnsprobe run`: scenario -> build -> pod + nameserver -> load -> analysis -> report, one mode at a time.

Modes run one after another, not side by side, so that they do not compete for the machine's cores and
each mode's figures are its own.

Nothing measured is lost, however the run ends:

- A stop signal (Ctrl-C, SIGTERM, SIGHUP) at any stage (build, pod start, load, report) keeps every
  lookup recorded so far; each mode's figures are summarised from records.sqlite, the report is written
  marked `finished: false` and says which signal came during which stage. Later signals are deferred
  until summary and report are written (`dnsprobe.interrupts`), and a signal while the report is written
  marks the run unfinished and writes it again.
- A probe, nameserver or Locust that dies mid-load is a result: the mode's `incidents` say what died
  when, the batches in flight count as `lost` lookups, and a check fails. A pod or load that fails to
  start at all, or an error at any stage, still ends with a summary and report saying so.
- A full disk ends in one line that says so and where the records are; `dnsprobe report RUN_DIR`
  (`dnsprobe.rebuild`) rebuilds summary and report from what a run left on disk, even after SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from dnsprobe import modes
from dnsprobe.analyse.wire_rollup import WireCounter
from dnsprobe.binary.inspection import inspect_binary
from dnsprobe.build.probe import (
    build_probe,
    default_cache_dir,
    find_toolchain,
    missing_tool,
)
from dnsprobe.build.twin import TwinPlan, plan_twins
from dnsprobe.codec.names import workload_pattern
from dnsprobe.errors import BuildError, DiskFull, DnsProbeError, LoadError, is_disk_full
from dnsprobe.interrupts import Interrupts
from dnsprobe.load import records, storage, threads
from dnsprobe.load.live import LiveSnapshot
from dnsprobe.load.metrics import MetricsExporter, parse_address
from dnsprobe.load.runner import LoadRun, auto_processes, locust_argv, run_load
from dnsprobe.modes import Mode, resolve_mode
from dnsprobe.nameserver.goengine import go_engine_binary
from dnsprobe.nameserver.group import nameserver_engine, server_addresses, with_fault_seed
from dnsprobe.nameserver.logstore import LogCompactor
from dnsprobe.nameserver.pcap import PCAP_NAME, RAW_NAME, write_pcap
from dnsprobe.results import (
    evaluate_checks,
    mode_entry,
    note_incidents,
    summarise_entry,
    write_run_files,
)
from dnsprobe.sandbox import Pod, PodStartFailure, check_namespaces, render_pod_files
from dnsprobe.sandbox.changes import schedule_changes
from dnsprobe.sandbox.image_rootfs import ImageRoot, check_rootfs, read_image_file
from dnsprobe.scenario import Load, Scenario
from dnsprobe.summary import write_summary

__all__ = [  # evaluate_checks lives in dnsprobe.results; importable from here as before
    "DiskFull",
    "Progress",
    "QuietProgress",
    "RunFailed",
    "RunResult",
    "evaluate_checks",
    "run_scenario",
]


@dataclass(frozen=True)
class Stages:
    """What the pipeline drives, passed in so that a fast test can drive `run_scenario` with fakes (the
    real ones by default): the environment check, the toolchain, the probe build, the nameserver's Go
    engine, the local pod, the load generator and the report's renderers."""

    check_environment: Callable[[], None] = check_namespaces
    toolchain: Callable[[], Any] = find_toolchain
    build: Callable[..., Any] = build_probe
    nameserver_binary: Callable[[Path | None], Path] = go_engine_binary
    make_pod: Callable[..., Any] = Pod
    run_load: Callable[..., LoadRun] = run_load
    write_report: Callable[[Path, dict[str, Any]], object] | None = None  # None: report.write_report


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


class RunFailed(DnsProbeError):
    """A stage failed (the environment, not a measurement); the summary and report say what ran."""


def new_run_id(scenario: Scenario, now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{scenario.name}"


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
    stages: Stages | None = None,
) -> RunResult:
    """Run every mode of the scenario and write runs/<id>/. Stop signals are handled inside (see the
    module's docstring); a stage that fails raises `RunFailed` after the summary and report are written.
    `metrics`: a loopback HOST:PORT to serve Prometheus metrics on while the run goes (load/metrics.py).
    `pcap`: each local pod's DNS traffic, as its embedded nameserver saw it, to pods/<mode>/dns.pcap."""
    if metrics is not None:
        parse_address(metrics)  # a bad address is refused before anything starts
    with Interrupts() as interrupts:
        return _run(
            scenario,
            out_dir=out_dir,
            quick=quick,
            progress=progress or QuietProgress(),
            clock=clock,
            cache_dir=cache_dir,
            interrupts=interrupts,
            metrics=metrics,
            pcap=pcap,
            stages=stages or Stages(),
        )


@dataclass
class _Stage:
    """Where the run is, for the summary of an interrupted or failed run."""

    mode: str = ""
    name: str = "setup"


def _run(
    scenario: Scenario,
    *,
    out_dir: Path,
    quick: bool,
    progress: Progress,
    clock: Callable[[], datetime],
    cache_dir: Path | None,
    interrupts: Interrupts,
    metrics: str | None,
    pcap: bool,
    stages: Stages,
) -> RunResult:
    stages.check_environment()
    scenario = with_fault_seed(scenario)
    image = check_rootfs(scenario.pod.rootfs, scenario.backend, cache_dir or default_cache_dir())
    toolchain = stages.toolchain()
    twins = plan_twins(scenario, cache_dir or default_cache_dir())  # bad targets: exit 2 here
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
    allow = scenario.nameserver.allow_non_loopback
    files = render_pod_files(scenario.pod, hostname="probe", nameservers=addresses, allow_non_loopback=allow)
    addresses = list(files.nameservers) or addresses  # a manifest's pod: the cluster DNS it names
    for change in scenario.pod.changes:  # every file a pod will see is checked before any pod starts
        render_pod_files(
            scenario.pod.changed(change), hostname="probe", nameservers=addresses, allow_non_loopback=allow
        )
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
        "pod": {**files.as_dict(), "env": dict(scenario.pod.env), **_nsswitch_changes(scenario)},
        **_image_facts(image, scenario),
        "nameserver": {
            "kind": scenario.nameserver.kind,
            "engine": nameserver_engine(scenario.nameserver),
            "endpoints": [f"{a}:53" for a in addresses],
            "fault_seed": scenario.nameserver.fault_seed,
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
        # the scenario as it was run, for `dnsprobe report` (fields the file set, so [expect] stays unset)
        "scenario_spec": scenario.model_dump(mode="json", exclude_unset=True),
        "modes": [],
        "checks": [],
    }
    if "nsswitch" in summary.get("image_rootfs", {}):
        summary["pod"].update(nsswitch=summary["image_rootfs"]["nsswitch"] or "", nsswitch_from="image")
    records_path = run_dir / "records.sqlite"
    stage = _Stage()
    interrupts.locate = lambda: (stage.name, stage.mode)
    summarised: set[str] = set()
    failure: BaseException | None = None
    try:
        write_summary(run_dir / "summary.json", summary)
        records.connect(records_path).close()
    except (OSError, sqlite3.Error) as exc:
        if is_disk_full(exc):
            raise DiskFull(getattr(exc, "filename", None) or run_dir, run_dir) from None
        raise
    estimate = storage.estimate_text(scenario.load, seconds, len(_cells(scenario, twins)))
    if estimate:
        progress.note("", estimate)
    exporter = None if metrics is None else MetricsExporter(records_path, metrics).start()
    socket_dir = _socket_dir()
    try:
        for name, base in _cells(scenario, twins):
            twin = twins.get(name)
            mode = twin.mode if twin else resolve_mode(name)
            entry = mode_entry(mode)
            if twin:
                entry["twin"] = twin.rows()
                entry["twin_of"] = {"target": twin.target.spelled, "image": twin.target.image}
                entry["rootfs"] = twin.mode.rootfs
            if base is not None:
                entry["mode"] = f"{name}+{base}"
            summary["modes"].append(entry)
            stage.mode = entry["mode"]
            write_summary(run_dir / "summary.json", summary)  # dnsprobe report finds the mode after a SIGKILL
            _run_mode(
                mode,
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
                interrupts=interrupts,
                stage=stage,
                summarised=summarised,
                save=lambda: write_summary(run_dir / "summary.json", summary),
                twin=twin,
                exporter=exporter,
                pcap=pcap,
                stages=stages,
            )
            write_summary(run_dir / "summary.json", summary)
            interrupts.stop_now()  # a signal deferred while the mode was summarised
    except KeyboardInterrupt:
        summary["interrupted"] = True
        progress.note(stage.mode, "interrupted: keeping what was measured")
    except Exception as exc:  # a failed stage still gets its summary and report; the error is raised after
        failure = exc
        summary["error"] = {"mode": stage.mode, "stage": stage.name, "text": str(exc)}
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
        if exporter is not None:
            exporter.close()
    try:
        return _finish(
            scenario,
            summary,
            run_dir=run_dir,
            records_path=records_path,
            files=files,
            clock=clock,
            progress=progress,
            interrupts=interrupts,
            stage=stage,
            summarised=summarised,
            failure=failure,
            write_report=stages.write_report,
        )
    except (OSError, sqlite3.Error) as exc:
        if is_disk_full(exc) or (failure is not None and is_disk_full(failure)):
            raise DiskFull(getattr(exc, "filename", None) or run_dir, run_dir) from None
        raise


def _finish(
    scenario: Scenario,
    summary: dict[str, Any],
    *,
    run_dir: Path,
    records_path: Path,
    files: Any,
    clock: Callable[[], datetime],
    progress: Progress,
    interrupts: Interrupts,
    stage: _Stage,
    summarised: set[str],
    failure: BaseException | None,
    write_report: Callable[[Path, dict[str, Any]], object] | None = None,
) -> RunResult:
    """Summary, JUnit and report, shielded from stop signals: one that comes while they are written marks
    the run unfinished and they are written again."""
    with interrupts.shielded(raise_after=False):
        before = len(interrupts.received)
        for entry in summary["modes"]:  # a signal may have cut a mode short before its figures were in
            if entry["mode"] not in summarised:
                summarise_entry(entry, scenario, run_dir=run_dir, records_path=records_path, files=files)
        if failure is not None and is_disk_full(failure):
            raise failure
        _mark_interruption(summary, interrupts, stage)
        summary["finished_at"] = clock().isoformat(timespec="seconds")
        stage.name, stage.mode = "report", ""
        progress.stage("", "writing the report")
        write_run_files(scenario, summary, run_dir, write_report)
        if len(interrupts.received) > before and summary["finished"]:
            _mark_interruption(summary, interrupts, stage)
            progress.note("", "interrupted while the report was written: writing it again, unfinished")
            write_run_files(scenario, summary, run_dir, write_report)
        elif (stop := summary.get("interruption")) and stop["signals"] != len(interrupts.received):
            stop["signals"] = len(interrupts.received)  # the impatient ones, too
            write_summary(run_dir / "summary.json", summary)
    if isinstance(failure, DnsProbeError):
        raise RunFailed(f"{failure} (the summary and report of what ran: {run_dir})") from failure
    if failure is not None:
        raise failure  # a bug: its traceback, after the summary and report of what ran
    failed = [c for c in summary["checks"] if not c["passed"]]
    return RunResult(run_dir, summary, 1 if failed else 0)


def _mark_interruption(summary: dict[str, Any], interrupts: Interrupts, stage: _Stage) -> None:
    first = interrupts.first
    if first is not None:
        summary["interrupted"] = True
        where, mode = first.where if first.where[0] else (stage.name, stage.mode)
        summary["interruption"] = {
            "signal": first.name,
            "at": datetime.fromtimestamp(first.at, UTC).isoformat(timespec="seconds"),
            "stage": where,
            "mode": mode or None,
            "signals": len(interrupts.received),
        }
    summary["finished"] = not summary["interrupted"] and "error" not in summary


_SOCKET_PREFIX = "dnsprobe-"
_OWNER = "owner.pid"


def _socket_dir() -> Path:
    """A new temporary directory for the pods' unix sockets (their paths must stay short), marked with
    this process's pid; the directories of runs whose process is gone (killed) are removed first."""
    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{_SOCKET_PREFIX}*/{_OWNER}"):
        try:
            pid = int(old.read_text().strip())
        except (OSError, ValueError):
            continue
        if not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old.parent, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=_SOCKET_PREFIX))
    (path / _OWNER).write_text(f"{os.getpid()}\n")
    return path


def _image_facts(image: ImageRoot | None, scenario: Scenario) -> dict[str, Any]:
    """With an image root the image's own nsswitch.conf is in effect (unless the scenario sets one):
    the summary's pod section says so, so the rules read the file the program read."""
    if image is None:
        return {}
    facts: dict[str, Any] = {"image_rootfs": image.to_json()}
    if scenario.pod.nsswitch_hosts == "files dns":
        facts["image_rootfs"]["nsswitch"] = read_image_file(image, "/etc/nsswitch.conf")
    return facts


def _cells(scenario: Scenario, twins: Mapping[str, TwinPlan] | None = None) -> list[tuple[str, str | None]]:
    """(mode, base image) in run order; the local backend has no base image. On the docker backend an
    image root (the scenario's, or the image a twin stands for) is the runtime stage itself."""
    if scenario.backend == "local":
        return [(name, None) for name in scenario.modes]
    cells: list[tuple[str, str | None]] = []
    for name in scenario.modes:
        twin = (twins or {}).get(name)
        if scenario.pod.rootfs.startswith(("image:", "oci:")) or (twin and twin.mode.rootfs):
            cells.append((name, "image"))
        else:
            cells += [(name, base) for base in scenario.base_images]
    return cells


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
    interrupts: Interrupts,
    stage: _Stage,
    summarised: set[str],
    save: Callable[[], object],
    twin: TwinPlan | None = None,
    exporter: MetricsExporter | None = None,
    pcap: bool = False,
    stages: Stages | None = None,
) -> None:
    stages = stages or Stages()
    reason = missing_tool(mode.build)
    if reason:
        entry.update(status="skipped", reason=reason)
        progress.note(mode.name, f"skipped: {reason}")
        summarised.add(entry["mode"])
        return
    stage.name = "build"
    progress.stage(mode.name, "building the probe")
    try:
        binary = stages.build(mode, cache_dir=cache_dir)
        if nameserver_engine(scenario.nameserver) == "go":
            progress.stage(mode.name, "building the nameserver")
            stages.nameserver_binary(
                cache_dir
            )  # cached after the first mode; the pod would build it otherwise
    except BuildError as exc:
        entry.update(status="skipped", reason=f"build failed: {exc}")
        progress.note(mode.name, f"skipped: build failed: {exc}")
        summarised.add(entry["mode"])
        return
    except KeyboardInterrupt:
        entry["reason"] = "interrupted while the probe was built"
        raise
    entry["binary"] = {
        "path": str(binary.path),
        "toolchain": binary.toolchain,
        "cgo_enabled": binary.build.cgo,
        "tags": ",".join(binary.build.tags),
        "libc": binary.build.libc,
        "linkage": binary.linkage,
        "interpreter": binary.interpreter,
        "needed": list(binary.needed),
    }
    if twin is not None:
        entry["twin"] = twin.rows(inspect_binary(binary.path))
        entry["binary"]["pie"] = mode.build.pie
    pod_dir = modes.pod_dir_of(run_dir, entry["mode"])
    pod: Any
    if base is not None:
        from dnsprobe.sandbox.docker import docker_cell

        progress.stage(entry["mode"], "building the image")
        pod, cell = docker_cell(
            modes.file_name(mode.name),
            base,
            binary.path,
            files=files,
            zone_text=scenario.nameserver.zone,
            workdir=pod_dir,
            socket_dir=socket_dir,
            godebug=mode.godebug,
            env=scenario.pod.env,
            nameserver=scenario.nameserver,
            mount_nsswitch=_mounts_nsswitch(scenario),
            cache_dir=cache_dir,
            rootfs=mode.rootfs or scenario.pod.rootfs,  # a twin of an image runs on that image
        )
        entry.update(cell)
        on = "in the image" if "image_rootfs" in cell else "on a stand-in for"
        entry["description"] = f"{mode.summary}, {on} {cell['stands_in_for']}"
        mode = replace(mode, name=entry["mode"])
    else:
        pod = stages.make_pod(
            mode=modes.file_name(mode.name),
            binary=binary.path,
            files=files,
            zone_text=scenario.nameserver.zone,
            workdir=pod_dir,
            socket_dir=socket_dir,
            godebug=mode.godebug,
            env=scenario.pod.env,
            nofile=scenario.pod.nofile,
            port_range=scenario.pod.port_range,
            rootfs=mode.rootfs or scenario.pod.rootfs,  # a twin of an image runs in that image's root
            nameserver=scenario.nameserver,
            cache_dir=cache_dir,
            mount_nsswitch=_mounts_nsswitch(scenario),  # image roots keep their own
            pcap=pcap,
        )
    stage.name = "pod start"
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
        summarised.add(entry["mode"])
        return
    except BaseException as exc:  # Ctrl-C while the pod starts: do not leave its processes behind
        with interrupts.shielded(raise_after=False):
            pod.stop()
        if isinstance(exc, KeyboardInterrupt):
            entry["reason"] = "interrupted while the pod started"
        raise
    applied: list[float] = []  # when each resolv.conf change was written (unix time)
    changes: list[threading.Timer] = []
    compactor: LogCompactor | None = None
    sampler: threads.ThreadSampler | None = None
    incidents: list[dict[str, Any]] = []
    load_started = time.time()
    try:  # from here on the pod runs: whatever happens, it is stopped and the mode summarised
        entry["binary"]["go_version"] = pod.info.get("go_version")
        if isinstance(image_root := getattr(pod, "image", None), ImageRoot):
            entry["image_rootfs"] = image_root.to_json()  # the local backend's unpacked image
        entry["status"] = "ran"
        save()
        argv = locust_argv(
            address=pod.address,
            load=scenario.load,
            seconds=seconds,
            mode=mode.name,
            run_id=run_id,
            records_path=records_path,
            csv_prefix=pod_dir / "locust",
        )
        changes = _schedule_resolv_changes(pod, scenario, progress, applied, incidents)
        compactor = _start_compactor(
            pod.querylog_path,
            scenario.load,
            mode.name,
            exporter,
            records_path=records_path,
            search=scenario.pod.search,
        )
        load_started = time.time()
        stage.name = "load"
        progress.stage(mode.name, "load")
        if (probe_pid := threads.probe_host_pid(pod.info)) is not None:
            sampler = threads.ThreadSampler(records_path, run=run_id, mode=mode.name, pid=probe_pid).start()
        try:
            load = stages.run_load(
                argv,
                mode=mode.name,
                seconds=seconds,
                records_path=records_path,
                log_path=pod_dir / "locust.log",
                on_tick=lambda elapsed, live: progress.load_tick(mode.name, elapsed, seconds, live),
                open_loop=scenario.load.shape == "open",
            )
            if load.died:
                incidents.append({"at": load_started + load.seconds, "what": "locust", "text": load.died})
        except LoadError as exc:  # Locust failed: a result of this mode, the run goes on
            incidents.append({"at": time.time(), "what": "locust", "text": str(exc)})
    finally:
        with interrupts.shielded():  # an impatient Ctrl-C cannot drop this mode's figures
            stage.name = "analysis"
            for timer in changes:
                timer.cancel()
            if sampler is not None:
                sampler.stop()  # its last sample before the pod stops
            incidents += pod.events()  # before stop(): what stopping does is no incident
            ended_early = pod.exited()
            pod.stop()
            if compactor is not None:
                compactor.finish()
            if pcap and base is None:
                write_pcap(pod_dir / RAW_NAME, pod_dir / PCAP_NAME)
                (pod_dir / RAW_NAME).unlink(missing_ok=True)
            if ended_early is not None and not any(i["what"] == "probe" for i in incidents):
                text = f"the pod ended by itself before the load was over (status {ended_early})"
                incidents.append({"at": time.time(), "what": "pod", "text": text})
            summarise_entry(
                entry,
                scenario,
                run_dir=run_dir,
                records_path=records_path,
                files=files,
                changes=applied,
            )
            note_incidents(entry, incidents, load_started)
            summarised.add(entry["mode"])
            for incident in entry.get("incidents", []):
                progress.note(mode.name, f"{incident['what']} died at {incident['at_s']:g} s")


def _start_compactor(
    querylog: Path,
    load: Load,
    mode: str,
    exporter: MetricsExporter | None,
    *,
    records_path: Path,
    search: Sequence[str],
) -> LogCompactor | None:
    """The compactor for one mode's query log, started, when the log is compressed or metrics are served;
    it also keeps the nameserver's totals for the report (wire_rollup.py)."""
    compress = storage.compresses_querylog(load)
    if not compress and exporter is None:
        return None
    counter = WireCounter(
        records_path, mode, [(w.label, workload_pattern(w.query, search)) for w in load.workloads]
    )

    def on_step(chunk: bytes, covered: int, zst_size: int) -> None:
        counter.count(chunk)
        counter.save(covered, zst_size)

    on_lines = None if exporter is None else (lambda chunk: exporter.count_querylog(mode, chunk))
    return LogCompactor(querylog, compress=compress, on_lines=on_lines, on_step=on_step).start()


def _schedule_resolv_changes(
    pod: Pod,
    scenario: Scenario,
    progress: Progress,
    applied: list[float],
    incidents: list[dict[str, Any]],
) -> list[threading.Timer]:
    """`[[pod.changes]]`: rewrite the running pod's files at each change's time into the load; `applied`
    gets the moment each change was written, `incidents` a change that could not be (the mode's check
    that the pod stayed up then fails and says why)."""

    def on_applied(at: float, what: str) -> None:
        applied.append(time.time())
        progress.note(pod.mode, f"{what} changed at {at:g} s")

    def on_failed(at: float, why: str) -> None:
        incidents.append({"at": time.time(), "what": "pod", "text": why})
        progress.note(pod.mode, why)

    return schedule_changes(
        pod,
        scenario.pod,
        allow_non_loopback=scenario.nameserver.allow_non_loopback,
        applied=on_applied,
        failed=on_failed,
    )


def _nsswitch_changes(scenario: Scenario) -> dict[str, Any]:
    """summary.json's `pod.nsswitch_changes`: each [[pod.changes]] nsswitch_hosts, with its at_s."""
    changes = [
        {"at_s": c.at_s, "hosts": c.nsswitch_hosts} for c in scenario.pod.changes if c.touches_nsswitch
    ]
    return {"nsswitch_changes": changes} if changes else {}


def _mounts_nsswitch(scenario: Scenario) -> bool:
    """Whether an image root gets the pod's nsswitch.conf: when the scenario sets or changes it."""
    return scenario.pod.nsswitch_hosts != "files dns" or any(c.touches_nsswitch for c in scenario.pod.changes)
