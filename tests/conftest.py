"""Shared fixtures. Tests needing a missing tool skip with a reason locally; with DNSPROBE_NO_SKIP=1
(set by .ci/run) every skip becomes a failure, so CI really runs every test."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path

import pluggy
import pytest

from dnsprobe.bench.fidelity import ZONE
from dnsprobe.build.probe import build_probe
from dnsprobe.modes import MODES
from dnsprobe.sandbox import Pod, render_pod_files
from dnsprobe.scenario import Pod as PodSpec

ROOT = Path(__file__).resolve().parent.parent
NO_SKIP = os.environ.get("DNSPROBE_NO_SKIP") == "1"


def need_tool(name: str, install: str) -> None:
    if shutil.which(name) is None:
        pytest.skip(f"{name} not found ({install})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if NO_SKIP and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped, but DNSPROBE_NO_SKIP=1 forbids skips here: {reason}"


@pytest.fixture(scope="session")
def probe_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built probes are shared by the whole session (and across sessions via the user cache)."""
    return Path(os.environ.get("DNSPROBE_TEST_CACHE", str(Path.home() / ".cache" / "dnsprobe")))


@contextlib.contextmanager
def quickstart_pod(probe_cache: Path, prefix: str) -> Iterator[Pod]:
    """A go-mode probe in a pod serving the quickstart's names (`{rand}.web` and friends), for load tests.
    `prefix` names its temporary directory: keep it short, unix socket paths are limited."""
    binary = build_probe(MODES["go"], cache_dir=probe_cache).path
    work = Path(tempfile.mkdtemp(prefix=prefix))
    pod = Pod(
        mode="go",
        binary=binary,
        files=render_pod_files(PodSpec(), hostname="probe", nameservers=["127.0.0.1"]),
        zone_text=ZONE,
        workdir=work / "pod",
        socket_dir=work,
        godebug="netdns=2",
    )
    try:
        with pod:
            yield pod
    finally:
        shutil.rmtree(work, ignore_errors=True)
