"""Start Locust headless against one probe, for one mode, and wait for it while reporting progress."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dnsprobe import proc
from dnsprobe.errors import LoadError
from dnsprobe.load.live import LiveSnapshot, LiveStats
from dnsprobe.scenario import Load

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SHAPES = Path(__file__).with_name("shapes.py")


@dataclass(frozen=True)
class LoadRun:
    mode: str
    seconds: float
    interrupted: bool
    returncode: int | None
    died: str | None = None  # Locust was killed mid-run: what happened, when


def auto_processes(load: Load, cpus: int | None = None) -> int:
    """Locust processes for `processes = 0`: a quarter of the cores, at least one and at most one per user.
    The probe and its nameserver share the machine and need the rest: one Locust process drives several
    thousand lookups/s on well under a core (`dnsprobe bench fidelity` shows the cost)."""
    if load.processes:
        return min(load.processes, load.users)
    return max(1, min(load.users, (cpus or os.cpu_count() or 1) // 4))


def locust_argv(
    *,
    address: str,
    load: Load,
    seconds: float,
    mode: str,
    run_id: str,
    records_path: Path,
    csv_prefix: Path,
    processes: int | None = None,
) -> list[str]:
    workloads = [w.model_dump() for w in load.workloads]
    files = [LOCUSTFILE] + ([SHAPES] if load.shape in ("ramp", "spike") else [])
    argv = [
        sys.executable,
        "-m",
        "dnsprobe.load.locust_main",  # Locust's command line; its forked workers die with it
        "-f",
        ",".join(str(f) for f in files),
        "--headless",
        "--only-summary",
        "--host",
        address,
        "--users",
        str(load.users),
        "--spawn-rate",
        str(load.users),
        "--run-time",
        f"{max(1, round(seconds))}s",
        "--stop-timeout",
        str(max(5, load.timeout_ms // 1000 + 1)),
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
        "--csv",
        str(csv_prefix),
        "--dns-workloads",
        json.dumps(workloads),
        "--dns-batch",
        str(load.batch),
        "--dns-concurrency",
        str(load.concurrency),
        "--dns-timeout-ms",
        str(load.timeout_ms),
        "--dns-records",
        str(records_path),
        "--dns-mode",
        mode,
        "--dns-run",
        run_id,
        "--dns-keep-records",
        load.keep_records,
    ]
    if load.shape in ("ramp", "spike"):
        argv += ["--dns-shape", load.shape]
        argv += [
            "--dns-ramp-seconds",
            str(load.ramp_seconds or 0),
            "--dns-spike-users",
            str(load.spike_users or 0),
        ]
    if load.shape == "open" and load.rate:
        argv += ["--dns-user-rate", repr(load.rate / load.users)]
    n = auto_processes(load) if processes is None else processes
    if n > 1:
        argv += ["--processes", str(n), *master_on_loopback()]
    return argv


def master_on_loopback() -> list[str]:
    """Locust's options for a master its forked workers reach on 127.0.0.1, on a port free now.

    With `--processes` Locust forks workers that connect to `--master-host:--master-port` (default
    127.0.0.1:5557) while the master binds `--master-bind-host:--master-bind-port` (default *:5557): every
    interface, on a fixed port, so reachable from the network and taken by a second run at the same
    time. The port is one the kernel just handed out on loopback, so two runs get two ports."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    return [
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        port,
        "--master-host",
        "127.0.0.1",
        "--master-port",
        port,
    ]


def run_load(
    argv: Sequence[str],
    *,
    mode: str,
    seconds: float,
    records_path: Path,
    log_path: Path,
    on_tick: Callable[[float, LiveSnapshot], None] | None = None,
    open_loop: bool = False,
) -> LoadRun:
    """Run Locust; `on_tick(elapsed, live figures of this mode)` about twice a second, read from the
    records as they are appended. Ctrl-C stops Locust cleanly (it finishes the batches in flight, which
    get recorded) and re-raises KeyboardInterrupt.

    Locust killed by a signal mid-run is a result, not an error: the LoadRun says so (`died`) and the
    records it wrote stay. Locust dies with this process (PR_SET_PDEATHSIG), its workers with it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        locust = proc.spawn(argv, stdout=log, stderr=subprocess.STDOUT, env=env, new_session=True)
    started = time.monotonic()
    limit = seconds + 120
    live = LiveStats(records_path, mode, open_loop=open_loop)
    try:
        while locust.poll() is None:
            elapsed = time.monotonic() - started
            if on_tick:
                on_tick(elapsed, live.poll())
            if elapsed > limit:
                _stop(locust)
                raise LoadError(f"Locust did not finish within {limit:.0f} s; see {log_path}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        _stop(locust)
        raise
    elapsed = time.monotonic() - started
    if locust.returncode is not None and locust.returncode < 0:
        name = _signal_name(-locust.returncode)
        died = f"Locust (pid {locust.pid}) was killed by {name} {elapsed:.1f} s into the load"
        return LoadRun(mode, elapsed, False, locust.returncode, died=died)
    if locust.returncode not in (0, None):
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise LoadError(
            f"Locust exited with status {locust.returncode}: {' | '.join(tail)} (log: {log_path})"
        )
    return LoadRun(mode, elapsed, False, locust.returncode)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _stop(locust: subprocess.Popen[bytes]) -> None:
    """SIGINT first: Locust stops its users and the records written so far stay."""
    for signum, wait in ((signal.SIGINT, 15.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if locust.poll() is not None:
            return
        try:
            os.killpg(locust.pid, signum)
        except ProcessLookupError:
            return
        try:
            locust.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
