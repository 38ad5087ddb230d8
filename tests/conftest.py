"""Shared fixtures. Tests needing a missing tool skip with a reason locally; with DNSPROBE_NO_SKIP=1
(set by .ci/run) every skip becomes a failure, so CI really runs every test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_SKIP = os.environ.get("DNSPROBE_NO_SKIP") == "1"


def need_tool(name: str, install: str) -> None:
    if shutil.which(name) is None:
        pytest.skip(f"{name} not found ({install})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
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
