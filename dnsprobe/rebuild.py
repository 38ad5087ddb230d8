"""`dnsprobe report RUN_DIR`: summary.json and the report again, from what a run left on disk.

A run killed outright (SIGKILL, a power cut, a full disk) leaves records.sqlite (every lookup, appended as
the run went), pods/<mode>/ (the nameserver's query log, the probe's resolver trace, events.jsonl) and the
summary.json it wrote at its start and after each mode (the scenario it ran, the modes it reached). From
these every mode's figures are summarised again, the checks judged, and summary.json, junit.xml and the
report written. A run that did not finish stays `finished: false` and gets a failing "run completed"
check; the exit code is the run's (0 all checks passed, 1 otherwise).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dnsprobe.errors import DiskFull, DnsProbeError, is_disk_full
from dnsprobe.modes import pod_dir_of, resolve_mode
from dnsprobe.pipeline import RunResult
from dnsprobe.results import (
    mode_entry,
    note_incidents,
    summarise_entry,
    write_run_files,
)
from dnsprobe.scenario import Scenario, load_scenario
from dnsprobe.summary import validate_summary


class RebuildError(DnsProbeError):
    pass


def rebuild_report(run_dir: Path) -> RunResult:
    summary_path = run_dir / "summary.json"
    records_path = run_dir / "records.sqlite"
    if not summary_path.is_file():
        raise RebuildError(f"{run_dir}: no summary.json here; give a run directory (runs/<run-id>)")
    try:
        summary: dict[str, Any] = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RebuildError(f"{summary_path}: not readable as JSON ({exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("modes", []), list):
        raise RebuildError(f"{summary_path}: not a dnsprobe summary (no list of modes)")
    summary = validate_summary(summary, source=str(summary_path)).to_json()  # through the model
    scenario = _scenario(summary, summary_path)
    seen = {str(m.get("mode")) for m in summary.get("modes", []) if isinstance(m, dict)}
    modes = [m for m in summary.get("modes", []) if isinstance(m, dict) and m.get("mode")]
    for name in _recorded_modes(records_path):  # a mode the summary never reached, but records have
        if name not in seen:
            try:
                entry = mode_entry(resolve_mode(name.split("+", 1)[0]))
            except KeyError:
                continue
            entry.update(mode=name, status="ran")
            modes.append(entry)
    summary["modes"] = modes
    summary["rebuilt"] = True
    for entry in modes:
        if entry.get("status") in ("skipped", "start_failure"):
            continue
        pod_dir = pod_dir_of(run_dir, str(entry["mode"]))
        if not records_path.exists() or not (pod_dir / "resolv.conf").exists():
            continue
        incidents = entry.get("incidents")
        summarise_entry(entry, scenario, run_dir=run_dir, records_path=records_path)
        if incidents is None:  # cut off before the run noted them: the pod's own account
            started = _first_start(records_path, str(entry["mode"]))
            note_incidents(entry, _events(pod_dir / "events.jsonl"), started)
    try:
        write_run_files(scenario, summary, run_dir)
    except (OSError, sqlite3.Error) as exc:
        if is_disk_full(exc):
            raise DiskFull(getattr(exc, "filename", None) or run_dir, run_dir) from None
        raise
    failed = [c for c in summary["checks"] if not c["passed"]]
    return RunResult(run_dir, summary, 1 if failed else 0)


def _scenario(summary: dict[str, Any], summary_path: Path) -> Scenario:
    spec = summary.get("scenario_spec")
    if isinstance(spec, dict):
        try:
            return Scenario.model_validate({**spec, "source": str(summary.get("scenario_file") or "")})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "scenario"
            raise RebuildError(
                f"{summary_path}: scenario_spec is not a valid scenario ({where}: {first['msg']}); "
                "was it edited?"
            ) from None
    source = summary.get("scenario_file")
    if isinstance(source, str) and source and Path(source).is_file():
        return load_scenario(Path(source))  # a run from before scenario_spec was kept
    raise RebuildError(
        f"{summary_path}: says neither which scenario ran (scenario_spec) nor where its file is "
        "(scenario_file); it was not written by `dnsprobe run`"
    )


def _recorded_modes(path: Path) -> list[str]:
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return [
                row[0] for row in db.execute("SELECT mode FROM lookups GROUP BY mode ORDER BY min(rowid)")
            ]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise RebuildError(f"{path}: not readable as the run's records ({exc})") from None


def _first_start(path: Path, mode: str) -> float:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute("SELECT min(intended_ns) FROM lookups WHERE mode = ?", (mode,)).fetchone()
    finally:
        db.close()
    return (row[0] or 0) / 1e9


def _events(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("at"), int | float):
            found.append(event)
    return found
