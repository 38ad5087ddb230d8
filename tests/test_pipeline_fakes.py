"""`run_scenario` driven in-process with fakes for the outside world (no Go build, no namespaces, no
Locust): the pipeline's own logic — accounting, checks, interrupts, start failures, the files it writes —
in well under a second per case. The real components are driven end to end in test_run.py and friends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dnsprobe.load.records import RecordWriter
from dnsprobe.load.runner import LoadRun
from dnsprobe.nameserver.querylog import HEADER
from dnsprobe.pipeline import Stages, run_scenario
from dnsprobe.sandbox import PodStartFailure
from dnsprobe.scenario import parse_scenario

SCENARIO = {
    "name": "fakes",
    "modes": ["go", "cgo"],
    "pod": {"search": [], "ndots": 1},
    "nameserver": {"zone": "*.example.test. 30 IN A 192.0.2.1\n"},
    "load": {"users": 1, "duration": 1, "workloads": [{"label": "web", "query": "{rand}.example.test."}]},
}


@dataclass
class FakeBinary:
    path: Path
    toolchain: str = "go1.27.3"
    cached: bool = True
    linkage: str = "static"
    interpreter: str | None = None
    build: Any = None
    needed: tuple[str, ...] = ()


@dataclass
class FakePod:
    """Looks like sandbox.Pod to the pipeline: its files in its work directory, a Go trace, no process."""

    mode: str
    workdir: Path
    fail_start: str | None = None
    info: dict[str, Any] = field(default_factory=lambda: {"go_version": "go1.27.3"})
    address: str = "unix:/nonexistent.sock"
    stopped: bool = False

    @property
    def querylog_path(self) -> Path:
        return self.workdir / "queries.tsv"

    @property
    def trace_path(self) -> Path:
        return self.workdir / "probe.stderr"

    def start(self) -> None:
        if self.fail_start:
            raise PodStartFailure(self.mode, self.fail_start)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "resolv.conf").write_text("nameserver 127.0.0.1\noptions ndots:1\n")
        self.querylog_path.write_text(HEADER + "\n")
        resolver = "Go" if self.mode == "go" else "cgo"
        self.trace_path.write_text(f"go package net: using the {resolver} DNS resolver\n")

    def stop(self) -> None:
        self.stopped = True

    def events(self) -> list[dict[str, Any]]:
        return []

    def exited(self) -> int | None:
        return None


class Fakes:
    """The stages, recording what the pipeline asked of them."""

    def __init__(
        self,
        tmp: Path,
        *,
        outcomes: dict[str, list[str]],
        fail_start: Collection[str] = frozenset(),
        interrupt_in: str | None = None,
    ) -> None:
        self.tmp = tmp
        self.outcomes = outcomes
        self.fail_start = fail_start
        self.interrupt_in = interrupt_in
        self.pods: list[FakePod] = []

    def stages(self) -> Stages:
        return Stages(
            check_environment=lambda: None,
            toolchain=_Toolchain,  # only its .version is read
            build=self.build,
            nameserver_binary=lambda cache_dir: self.tmp / "goserver",
            make_pod=self.make_pod,
            run_load=self.run_load,
            write_report=self.write_report,  # the renderers have tests of their own (test_report.py)
        )

    def write_report(self, run_dir: Path, summary: dict[str, Any]) -> None:
        from dnsprobe.report.markdown import write_markdown

        write_markdown(summary, {}, run_dir / "report.md")  # the real Markdown, without the charts
        (run_dir / "report.html").write_text("<p>fake</p>")

    def build(self, mode: Any, *, cache_dir: Path | None) -> FakeBinary:
        return FakeBinary(self.tmp / f"probe-{mode.name}", build=mode.build)

    def make_pod(self, **kwargs: Any) -> FakePod:
        pod = FakePod(
            mode=kwargs["mode"],
            workdir=kwargs["workdir"],
            fail_start=f"exec /app: no such file ({kwargs['mode']})"
            if kwargs["mode"] in self.fail_start
            else None,
        )
        self.pods.append(pod)
        return pod

    def run_load(self, argv: Any, *, mode: str, records_path: Path, **_: Any) -> LoadRun:
        now = time.time_ns()
        rows = [
            ("run", mode, "web", "host", f"n{i}.example.test.", now + i, now + i, 1_000_000, outcome, "", 1)
            for i, outcome in enumerate(self.outcomes[mode])
        ]
        with RecordWriter(records_path) as writer:
            writer.append(rows)
        if mode == self.interrupt_in:
            raise KeyboardInterrupt
        return LoadRun(mode=mode, seconds=1.0, interrupted=False, returncode=0)


@dataclass
class _Toolchain:
    version: str = "go1.27.3"


def run(tmp_path: Path, fakes: Fakes, **changes: Any) -> tuple[Any, dict[str, Any]]:
    scenario = parse_scenario({**SCENARIO, **changes}, source="fakes.toml")
    result = run_scenario(scenario, out_dir=tmp_path / "runs", stages=fakes.stages())
    on_disk = json.loads((result.run_dir / "summary.json").read_text())
    assert on_disk["modes"] == result.summary["modes"]
    for m in on_disk["modes"]:
        assert m["lookups"] == m["ok"] + sum(m["failures"].values())
    assert (result.run_dir / "report.html").is_file() and (result.run_dir / "report.md").is_file()
    return result, on_disk


def test_a_clean_run_passes_and_counts_every_lookup(tmp_path: Path) -> None:
    fakes = Fakes(tmp_path, outcomes={"go": ["ok"] * 50, "cgo": ["ok"] * 40})
    result, summary = run(tmp_path, fakes)
    assert result.exit_code == 0, [c for c in summary["checks"] if not c["passed"]]
    assert [(m["mode"], m["lookups"], m["resolver"]) for m in summary["modes"]] == [
        ("go", 50, "go"),
        ("cgo", 40, "cgo"),
    ]
    assert summary["finished"] is True
    assert all(pod.stopped for pod in fakes.pods)


def test_a_failing_check_fails_the_run(tmp_path: Path) -> None:
    """No [expect]: the default gate (error rate at most 1%) judges a mode with 10% timeouts."""
    fakes = Fakes(tmp_path, outcomes={"go": ["ok"] * 45 + ["timeout"] * 5, "cgo": ["ok"] * 40})
    result, summary = run(tmp_path, fakes)
    assert result.exit_code == 1
    failed = [c for c in summary["checks"] if not c["passed"]]
    assert [c["mode"] for c in failed] == ["go"], failed
    assert "10.00% of 50 lookups failed" in failed[0]["detail"]
    assert summary["modes"][0]["failures"] == {"timeout": 5}


def test_a_start_failure_is_a_result(tmp_path: Path) -> None:
    fakes = Fakes(tmp_path, outcomes={"go": ["ok"] * 20}, fail_start={"cgo"})
    result, summary = run(tmp_path, fakes)
    cgo = summary["modes"][1]
    assert (cgo["status"], cgo["lookups"], cgo["failures"]) == ("start_failure", 1, {"start_failure": 1})
    assert "exec /app: no such file" in cgo["reason"]
    assert result.exit_code == 1
    assert any(c["mode"] == "cgo" and not c["passed"] for c in summary["checks"])


def test_an_interrupted_run_keeps_what_was_measured(tmp_path: Path) -> None:
    fakes = Fakes(tmp_path, outcomes={"go": ["ok"] * 30, "cgo": ["ok"] * 30}, interrupt_in="go")
    result, summary = run(tmp_path, fakes)
    assert summary["finished"] is False and summary["interrupted"] is True
    assert summary["modes"][0]["lookups"] == 30  # recorded before the stop, summarised all the same
    assert [m["mode"] for m in summary["modes"]] == ["go"]  # cgo never began
    assert result.exit_code == 1
    assert any(c["name"].startswith("run completed") and not c["passed"] for c in summary["checks"])
    assert all(pod.stopped for pod in fakes.pods)


@pytest.mark.parametrize("outcomes", [{"go": [], "cgo": []}])
def test_no_lookup_at_all_is_a_failing_check(tmp_path: Path, outcomes: dict[str, list[str]]) -> None:
    result, summary = run(tmp_path, Fakes(tmp_path, outcomes=outcomes))
    assert result.exit_code == 1
    assert any("lookups happened" in c["name"] and not c["passed"] for c in summary["checks"])
