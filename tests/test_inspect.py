"""`dnsprobe inspect` on the real probes (go, cgo, musl, musl-static), a non-Go ELF and a text file.

The Go build settings read in Python are checked against `go version -m` on the same file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dnsprobe import proc
from dnsprobe.binary import BASES, inspect_binary, parse_modinfo
from dnsprobe.binary.inspection import format_inspection
from dnsprobe.build.probe import build_probe, find_toolchain
from dnsprobe.cli import main
from dnsprobe.modes import MODES

STARTS = {"runs", "caveat"}


@pytest.fixture(scope="module")
def probes(probe_cache: Path) -> dict[str, Path]:
    if shutil.which("musl-gcc") is None:
        pytest.skip("musl-gcc not found (apt-get install musl-tools)")
    return {
        m: build_probe(MODES[m], cache_dir=probe_cache).path for m in ("go", "cgo", "musl", "musl-static")
    }


def go_version_m(path: Path) -> tuple[str, dict[str, str]]:
    """The toolchain's own reading of the build information, as ground truth."""
    toolchain = find_toolchain()
    text = proc.run([str(toolchain.go), "version", "-m", str(path)], env=toolchain.env(Path("/tmp"))).stdout
    first, *rest = text.splitlines()
    info = parse_modinfo(first.split(": ", 1)[1], [line.removeprefix("\t") for line in rest])
    return info.go_version, info.settings


@pytest.mark.musl
@pytest.mark.parametrize("mode", ["go", "cgo", "musl", "musl-static"])
def test_build_settings_match_go_version_m(probes: dict[str, Path], mode: str) -> None:
    report = inspect_binary(probes[mode])
    version, settings = go_version_m(probes[mode])
    assert report.go.go_version == version
    assert report.go.settings == settings
    assert report.go.cgo_enabled is MODES[mode].build.cgo
    assert report.go.tags == MODES[mode].build.tags
    assert report.go.path == "dnsprobe/probe"


@pytest.mark.musl
def test_pure_go_probe_runs_everywhere(probes: dict[str, Path]) -> None:
    report = inspect_binary(probes["go"])
    assert (report.elf.linkage, report.elf.interpreter, report.elf.libc) == ("static", None, None)
    assert report.resolver == "go"
    assert all(v.status in STARTS for v in report.verdicts)
    scratch = report.verdict("scratch")
    assert scratch.status == "caveat"
    assert "nsswitch.conf" in scratch.why
    assert report.verdict("distroless-static").status == "runs"
    assert report.branch().startswith("2")


@pytest.mark.musl
def test_glibc_cgo_probe_needs_a_glibc_base(probes: dict[str, Path]) -> None:
    report = inspect_binary(probes["cgo"])
    assert report.elf.linkage == "dynamic"
    assert report.elf.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert report.elf.libc == "glibc"
    assert "libc.so.6" in report.elf.needed
    assert report.elf.glibc_version is not None
    assert report.resolver == "cgo"
    starts = {v.base for v in report.verdicts if v.starts}
    assert starts == {"distroless-base", "debian-slim"}
    for base in ("scratch", "alpine", "distroless-static"):
        assert "/lib64/ld-linux-x86-64.so.2 is missing" in report.verdict(base).why
    assert report.branch().startswith("3 (cgo, glibc)")


@pytest.mark.musl
def test_musl_probes(probes: dict[str, Path]) -> None:
    dynamic = inspect_binary(probes["musl"])
    assert dynamic.elf.interpreter == "/lib/ld-musl-x86_64.so.1"
    assert dynamic.elf.libc == "musl"
    assert {v.base for v in dynamic.verdicts if v.starts} == {"alpine"}
    assert dynamic.verdict("alpine").status == "caveat"
    assert "musl" in dynamic.verdict("alpine").why

    static = inspect_binary(probes["musl-static"])
    assert (static.elf.linkage, static.elf.libc) == ("static", "musl")
    assert all(v.status == "caveat" for v in static.verdicts)


@pytest.mark.musl
def test_cli_inspect_text_and_json(probes: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(probes["cgo"])]) == 0
    text = capsys.readouterr().out
    assert "WILL NOT START" in text
    assert "ld-linux-x86-64.so.2" in text
    assert main(["inspect", str(probes["go"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["go"]["cgo_enabled"] is False
    assert [v["base"] for v in data["verdicts"]] == list(BASES)
    assert format_inspection(inspect_binary(probes["go"])).count("\n") > 5


def test_non_go_elf_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "/bin/true"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "not a Go program" in err


def test_text_file_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert main(["inspect", str(text)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "not an ELF binary" in err
    assert main(["inspect", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_modinfo_quoting() -> None:
    lines = [
        "path\texample.com/svc",
        "mod\texample.com/svc\t(devel)\t",
        "dep\tgithub.com/mattn/go-sqlite3\tv1.14.22\th1:abc=",
        'build\t-ldflags="-s -w -X \\"main.version=1.2 beta\\""',
        "build\t-tags=netgo,osusergo",
        'build\t"weird=key"=value',
        "build\tCGO_ENABLED=0",
    ]
    info = parse_modinfo("go1.22.10", lines)
    assert info.ldflags == '-s -w -X "main.version=1.2 beta"'
    assert info.tags == ("netgo", "osusergo")
    assert info.settings["weird=key"] == "value"
    assert info.deps == ("github.com/mattn/go-sqlite3@v1.14.22",)
    assert info.cgo_enabled is False
    assert info.go_release() == (1, 22)
