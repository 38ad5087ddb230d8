"""`dnsprobe cgo-deps` on tiny Go modules (tests/data/gomod/), with the real toolchain, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dnsprobe.cli import main
from dnsprobe.tools.cgodeps import CgoDeps, CgoPackage, find_cgo_packages

DATA = Path(__file__).parent / "data" / "gomod"


def test_module_with_import_c_needs_cgo() -> None:
    result = find_cgo_packages(DATA / "cgo")
    assert [p.import_path for p in result.needs_cgo] == ["example.test/cgofixture/internal/cdep"]
    assert not result.needs_cgo[0].builds_without_cgo
    assert all(p.standard for p in result.packages if "cgofixture" not in p.import_path)
    assert "branch 3" in result.conclusion()


def test_pure_module_can_turn_cgo_off(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cgo-deps", str(DATA / "pure"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["needs_cgo"] is False
    net = [p for p in data["packages"] if p["import_path"] == "net"]
    assert net and net[0]["standard"] and net[0]["builds_without_cgo"]
    assert "CGO_ENABLED=0" in data["conclusion"]


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cgo-deps", str(DATA / "cgo")]) == 0
    out = capsys.readouterr().out
    assert "internal/cdep" in out
    assert "needs cgo" in out
    assert out.rstrip().splitlines()[-1].startswith("conclusion: the build needs cgo")


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cgo-deps", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["cgo-deps", str(tmp_path)]) == 2
    assert "no go.mod" in capsys.readouterr().err
    (tmp_path / "go.mod").write_text(
        "module example.test/broken\n\ngo 1.21\n\nrequire example.test/absent v1.0.0\n"
    )
    (tmp_path / "main.go").write_text('package main\n\nimport _ "example.test/absent"\n\nfunc main() {}\n')
    assert main(["cgo-deps", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "module cache" in err


def _ours(result: object) -> dict[str, CgoPackage]:
    assert isinstance(result, CgoDeps)
    return {p.import_path.rsplit("/", 1)[-1]: p for p in result.needs_cgo}


def test_without_cgo_is_decided_by_compiling() -> None:
    packages = _ours(find_cgo_packages(DATA / "variants"))
    assert set(packages) == {"broken", "fallback", "stubbed"}  # tagged needs -tags seccomp
    broken, fallback, stubbed = packages["broken"], packages["fallback"], packages["stubbed"]
    # broken has a Go file left without cgo, but it does not compile: counting files would say yes.
    assert not broken.builds_without_cgo and "undefined: fromC" in (broken.compile_error or "")
    assert fallback.builds_without_cgo and fallback.stub is None and fallback.compile_error is None
    assert stubbed.builds_without_cgo and stubbed.stub is not None
    assert stubbed.stub.startswith("stubbed_nocgo.go:") and "this is a stub" in stubbed.stub


def test_tags_change_which_files_use_cgo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cgo-deps", str(DATA / "variants"), "--tags", "seccomp", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tags"] == ["seccomp"]
    tagged = [p for p in data["packages"] if p["import_path"].endswith("/tagged")]
    assert tagged and tagged[0]["builds_without_cgo"] is True
    assert "only as a stub" in data["conclusion"]
    assert main(["cgo-deps", str(DATA / "variants"), "--tags", "bad tag!"]) == 2
    assert "not a build tag" in capsys.readouterr().err
