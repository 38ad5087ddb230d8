"""The run summary: one typed model for `summary.json`, its only writer and reader.

The contract others build on (extend it, never break it):

    {"schema_version", "run_id", "scenario", "started_at", "finished",
     "modes": [{"mode", "resolver": "go" | "cgo" | null, "lookups", "ok", "failures": {class: count},
                "lookups_per_s", "latency_ms": {"p50", "p90", "p99", "max"}, "wire_queries_per_lookup", ...}],
     "checks": [{"name", "passed", "detail", "mode"}], "findings": [...], ...}

with `lookups == ok + sum(failures)` for every mode, always (the model refuses anything else), and
`finished: false` for an interrupted run. Every model keeps keys it does not know (`extra="allow"`), so a
summary written by a newer dnsprobe, or by an older one with keys since dropped, still loads; a summary
from before `schema_version` existed is version 1. `dnsprobe schema summary` prints the JSON Schema.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dnsprobe.errors import DnsProbeError

SCHEMA_VERSION = 2  # 1: the first wave's layout, without schema_version; 2: checks name their mode


class SummaryError(DnsProbeError):
    """A summary.json that cannot be read as one."""


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Latency(_Open):
    """Milliseconds, measured inside Go (or from each lookup's intended start in an open-loop run)."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


class WorkloadResult(_Open):
    workload: str
    kind: str = "host"
    name: str = ""
    lookups: int = 0
    ok: int = 0
    failures: dict[str, int] = Field(default_factory=dict)
    latency_ms: Latency = Field(default_factory=Latency)
    wire_queries_per_lookup: float | None = None


class Threads(_Open):
    """The probe's OS threads during the load, sampled once a second from the host's /proc/PID/status
    (dnsprobe/load/threads.py); seconds count from the mode's first lookup, as the timeline's."""

    peak: int = Field(ge=0, description="the most OS threads any sample saw")
    at_s: list[float] = Field(default_factory=list)
    count: list[int] = Field(default_factory=list)
    source: str = ""


class ModeResult(_Open):
    """One mode's figures (one cell, `mode+base`, on the docker backend)."""

    mode: str
    description: str = ""
    status: str = Field(default="pending", description="pending, skipped, ran or start_failure")
    reason: str | None = None
    resolver: Literal["go", "cgo", "mixed", "unknown"] | None = None
    expected_resolver: str | None = None
    lookups: int = Field(default=0, ge=0)
    ok: int = Field(default=0, ge=0)
    failures: dict[str, int] = Field(default_factory=dict, description="outcome class -> lookups")
    lookups_per_s: float = 0.0
    latency_ms: Latency = Field(default_factory=Latency)
    wire_queries: int | None = None
    wire_queries_per_lookup: float | None = None
    workloads: list[WorkloadResult] = Field(default_factory=list)
    trace: dict[str, Any] = Field(default_factory=dict, description="what Go's resolver trace showed")
    binary: dict[str, Any] = Field(default_factory=dict, description="the probe binary's facts")
    threads: Threads | None = Field(default=None, description="the probe's OS threads over the load")

    @model_validator(mode="after")
    def _accounting(self) -> ModeResult:
        if self.lookups != self.ok + sum(self.failures.values()):
            raise ValueError(
                f"mode {self.mode}: lookups ({self.lookups}) != ok ({self.ok}) + failures "
                f"({sum(self.failures.values())}): the accounting identity is broken"
            )
        return self

    @property
    def error_rate(self) -> float | None:
        return 1 - self.ok / self.lookups if self.lookups else None


class Check(_Open):
    name: str
    passed: bool
    detail: str = ""
    mode: str | None = Field(default=None, description="the mode (or cell) the check is about; null: the run")


class Finding(_Open):
    """A likely cause: what was seen, why it happens, what to change."""

    rule: str
    severity: str = Field(description="critical, warning or info")
    modes: list[str] = Field(default_factory=list)
    seen: str = ""
    why: str = ""
    fix: str = ""


class RunSummary(_Open):
    """What `dnsprobe run` writes (and `report`, `observe`, the benches). dnsprobe always writes the keys
    of the contract (`WRITTEN`); a reader takes older or hand-made summaries without some of them."""

    schema_version: int = 1
    run_id: str = ""
    scenario: str = ""
    scenario_file: str | None = None
    description: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    finished: bool | None = Field(default=None, description="false for an interrupted run")
    interrupted: bool = False
    quick: bool = False
    modes: list[ModeResult] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)

    def mode(self, name: str) -> ModeResult | None:
        return next((m for m in self.modes if m.mode == name), None)

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def validate_summary(data: Any, *, source: str = "summary.json") -> RunSummary:
    """A summary from its JSON data; SummaryError names the field that is wrong."""
    if not isinstance(data, dict):
        raise SummaryError(f"{source}: not a run summary (expected a JSON object)")
    try:
        return RunSummary.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        raise SummaryError(f"{source}: {where}: {error['msg']}") from None


def read_summary(path: Path) -> RunSummary:
    """Read `runs/<id>/summary.json` (or a run directory): any layout since the first wave."""
    if path.is_dir():
        path = path / "summary.json"
    try:
        with path.open("rb") as fh:
            text = fh.read(64 * 1024 * 1024 + 1)
    except FileNotFoundError:
        raise SummaryError(f"{path}: no such file (give a run directory or its summary.json)") from None
    except OSError as exc:
        raise SummaryError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(text) > 64 * 1024 * 1024:
        raise SummaryError(f"{path}: larger than 64 MiB; not a summary.json")
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SummaryError(f"{path}: not JSON ({exc})") from None
    return validate_summary(data, source=str(path))


WRITTEN = ("run_id", "scenario", "started_at", "finished", "modes", "checks")


def write_summary(path: Path, summary: RunSummary | dict[str, Any]) -> RunSummary:
    """Validate and write atomically (a temp file, then rename): a reader never sees half a summary."""
    model = summary if isinstance(summary, RunSummary) else validate_summary(summary, source=str(path))
    missing = [key for key in WRITTEN if key not in model.model_fields_set]
    if missing or model.finished is None:
        raise ValueError(f"{path}: a summary without {', '.join(missing or ['finished'])}: a dnsprobe bug")
    model.schema_version = SCHEMA_VERSION
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(model.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return model


def json_schema() -> dict[str, Any]:
    """The schema of summary.json as dnsprobe writes it: the contract's keys are always there."""
    schema = RunSummary.model_json_schema(mode="serialization")
    schema["required"] = sorted(set(schema.get("required", [])) | set(WRITTEN))
    return schema
