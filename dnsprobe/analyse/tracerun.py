"""`dnsprobe trace`'s inputs: a log file, stdin or a run directory, and the pod's files to explain cgo.

A run directory is `runs/<id>` (every pod under `pods/`) or one pod's directory (`pods/<mode>`): each
pod's `probe.stderr` is its trace, its `resolv.conf` and `nsswitch.conf` are the files the probe saw,
and `pod.json` records the probe's environment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dnsprobe.analyse.trace import (
    TraceReport,
    add_reasons,
    analyse_log,
    check_text,
    parse_trace,
    trace_file_lines,
)
from dnsprobe.analyse.tracewhy import PodContext
from dnsprobe.errors import InspectError

MAX_LOG_BYTES = 2 << 30  # beyond any log a person pastes; a /dev/zero-like input stops here
_POD_TRACE = "probe.stderr"


def trace_command(
    target: str,
    *,
    resolv_conf: Path | None = None,
    nsswitch: Path | None = None,
    env: list[str] | None = None,
    hostname: str | None = None,
) -> TraceReport:
    context = _context(resolv_conf, nsswitch, env or [], hostname)
    if target == "-":
        return analyse_log(sys.stdin.buffer.read(MAX_LOG_BYTES), source="stdin", context=context)
    path = Path(target)
    if path.is_dir():
        return _run_directory(path, context)
    return analyse_log(_read(path, "log"), source=str(path), context=context)


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_LOG_BYTES + 1)
    except FileNotFoundError:
        raise InspectError(f"{path}: no such file (give the {what})") from None
    except OSError as exc:
        raise InspectError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_LOG_BYTES:
        raise InspectError(f"{path}: larger than {MAX_LOG_BYTES >> 30} GiB; split the log first")
    return data


def _text(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    data = _read(path, what)
    check_text(data, str(path))
    return data.decode("utf-8", errors="replace")


def _context(
    resolv_conf: Path | None, nsswitch: Path | None, env: list[str], hostname: str | None
) -> PodContext | None:
    pairs: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InspectError(f"--env {item!r}: give KEY=VALUE")
        pairs[key] = value
    if resolv_conf is None and nsswitch is None and not env and hostname is None:
        return None
    return PodContext(_text(resolv_conf, "resolv.conf"), _text(nsswitch, "nsswitch.conf"), pairs, hostname)


def _run_directory(path: Path, given: PodContext | None) -> TraceReport:
    pods = (
        [path]
        if (path / _POD_TRACE).is_file()
        else sorted(p.parent for p in path.glob(f"pods/*/{_POD_TRACE}"))
    )
    if not pods:
        raise InspectError(
            f"{path}: a directory without {_POD_TRACE} or pods/*/{_POD_TRACE}; give a log file or a run "
            "directory (runs/<id> or runs/<id>/pods/<mode>)"
        )
    all_lines: list[str] = []
    per_pod: dict[str, TraceReport] = {}
    for pod in pods:
        data = _read(pod / _POD_TRACE, "pod's trace")
        check_text(data, str(pod / _POD_TRACE))
        lines = list(trace_file_lines(data))
        all_lines += lines
        report = parse_trace(lines)
        context = given or PodContext(
            _optional(pod / "resolv.conf"), _optional(pod / "nsswitch.conf"), _pod_env(pod), None
        )
        add_reasons(report, context)
        per_pod[pod.name] = report
    if len(per_pod) == 1:
        return next(iter(per_pod.values()))
    overall = parse_trace(all_lines)
    overall.containers = per_pod
    return overall


def _pod_env(pod: Path) -> dict[str, str]:
    """The probe's environment as the run recorded it (pod.json: probe.env)."""
    try:
        data = json.loads((pod / "pod.json").read_text(encoding="utf-8"))
        env = data["probe"]["env"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def _optional(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
