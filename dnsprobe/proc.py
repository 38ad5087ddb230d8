"""The one place that runs subprocesses.

- `run`: a command that must succeed (go build, pip, docker): the command line is logged and a failure
  raises with the command and the tail of its stderr. Tests can swap the runner (`set_runner`).
- `run_plain`: a short command whose exit status the caller judges (mount, ip addr, docker rm).
- `spawn`: a long-running child (a pod, Locust, a nameserver, a watchdog), logged, and dying with this
  process (`die_with_parent`) unless it must outlive it; stopped with `terminate`.

So a dnsprobe killed by SIGKILL or SIGHUP leaves no process behind. The one child started elsewhere is the
probe inside a pod: the pod's own init starts it with asyncio, with `die_with_parent` as its preexec.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from dnsprobe.errors import DnsProbeError

log = logging.getLogger(__name__)

Runner = Callable[..., subprocess.CompletedProcess[str]]

_PR_SET_PDEATHSIG = 1
try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # no C library to ask (not Linux): children then outlive a killed parent
    _libc = None


def die_with_parent(signum: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn`: the child gets `signum` when its parent dies (PR_SET_PDEATHSIG), however the parent
    died (SIGKILL, SIGHUP, a crash). Kept across exec (not for set-user-ID programs).

    The kernel sends it when the *thread* that forked the child ends, not the process: start long-lived
    children from the main thread (or from a thread that lives as long as they do). A parent already gone
    by the time the child runs this means the child exits at once."""
    parent = os.getpid()

    def setup() -> None:
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)

    return setup


def _default_runner(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    cwd: Path | None,
    timeout: float | None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=die_with_parent(),  # a dnsprobe killed mid-build takes `go build` along
    )


_runner: Runner = _default_runner


def set_runner(runner: Runner | None) -> None:
    """Replace the runner (tests); None restores the real one."""
    global _runner
    _runner = runner or _default_runner


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    error: type[DnsProbeError] = DnsProbeError,
    what: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run argv; raise `error` with the command line and stderr's last lines when it fails."""
    cmdline = shlex.join(argv)
    log.debug("run: %s", cmdline)
    try:
        done = _runner(argv, env=env, cwd=cwd, timeout=timeout)
    except FileNotFoundError as exc:
        raise error(f"{what or argv[0]}: {argv[0]} not found on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise error(f"{what or argv[0]}: `{cmdline}` did not finish within {timeout:g} s") from exc
    if done.returncode != 0:
        tail = " | ".join(line for line in (done.stderr or done.stdout or "").strip().splitlines()[-3:])
        log.debug("failed (%d): %s\n%s", done.returncode, cmdline, done.stderr)
        raise error(f"{what or argv[0]} failed (exit {done.returncode}): `{cmdline}`: {tail}")
    return done


def spawn(
    argv: Sequence[str],
    *,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    pass_fds: Sequence[int] = (),
    new_session: bool = False,
    dies_with_parent: bool = True,
) -> subprocess.Popen[bytes]:
    """Start a long-running child (a pod, Locust, a nameserver, a watchdog): the command line is logged,
    and the child dies with this process (PR_SET_PDEATHSIG) unless `dies_with_parent` is False (a
    watchdog that must outlive it). `new_session`: its own process group, to be signalled as one."""
    cmdline = shlex.join(str(a) for a in argv)
    log.debug("spawn: %s", cmdline)
    return subprocess.Popen(
        [str(a) for a in argv],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        pass_fds=tuple(pass_fds),
        start_new_session=new_session,
        preexec_fn=die_with_parent() if dies_with_parent else None,
    )


def run_plain(argv: Sequence[str], *, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """A short command whose exit status the caller judges itself (mount, ip, docker rm): logged, never
    raising for a non-zero exit; a missing program or a timeout is a returncode of 127 or 124."""
    log.debug("run: %s", shlex.join(argv))
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: {exc.strerror}")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"did not finish within {timeout:g} s")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: PATH and HOME from ours, nothing that could steer a resolver."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    if extra:
        env.update(extra)
    return env


def terminate(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Stop a child: SIGTERM, then SIGKILL if it is still running after `timeout` seconds; always reaped."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
