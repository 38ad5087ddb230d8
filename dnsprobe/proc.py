"""The one place that runs subprocesses.

Every external command goes through `run`, which logs the command line and, on failure, raises with the
command and the tail of its stderr. Tests can swap the runner (`set_runner`) to record command lines.
Long-running children (servers) are stopped with `terminate`.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from dnsprobe.errors import DnsProbeError

log = logging.getLogger(__name__)

Runner = Callable[..., subprocess.CompletedProcess[str]]


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
