"""`inspect` on binaries built here for each class of build (go 1.22 and 1.27, amd64 and arm64).

Ground truth is read in the test with pyelftools (PT_INTERP, DT_NEEDED from the dynamic segment,
e_machine) and checked against each base's contents in bases.json: the binary starts on a base's
variant for its architecture exactly when that variant has its loader and every library it needs.
The binaries are never run (they are built for the network rule's sake only to be read).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from elftools.elf.segments import InterpSegment

from dnsprobe import proc
from dnsprobe.binary import BASES, inspect_binary
from dnsprobe.build.probe import Toolchain, find_toolchain, pinned_toolchain
from dnsprobe.cli import main

NET_MAIN = (
    'package main\n\nimport (\n\t"fmt"\n\t"net"\n)\n\nfunc main() { fmt.Println(net.LookupHost("x")) }\n'
)
PLAIN_MAIN = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("no network here") }\n'


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    env: dict[str, str]
    flags: tuple[str, ...] = ()


CASES = [
    Case("nocgo", NET_MAIN, {"CGO_ENABLED": "0"}),
    Case("nocgo-arm64", NET_MAIN, {"CGO_ENABLED": "0", "GOARCH": "arm64"}),
    # -buildmode=pie without cgo: Go's internal linker still names the loader (PT_INTERP).
    Case("nocgo-pie", NET_MAIN, {"CGO_ENABLED": "0"}, ("-buildmode=pie",)),
    Case("nocgo-pie-arm64", NET_MAIN, {"CGO_ENABLED": "0", "GOARCH": "arm64"}, ("-buildmode=pie",)),
    Case("cgo", NET_MAIN, {"CGO_ENABLED": "1"}),
    Case("cgo-netcgo", NET_MAIN, {"CGO_ENABLED": "1"}, ("-tags", "netcgo")),
    Case(
        "cgo-static",
        NET_MAIN,
        {"CGO_ENABLED": "1"},
        ("-ldflags", "-linkmode external -extldflags -static"),
    ),
    # cgo on, but nothing in the build uses it: a static pure-Go binary.
    Case("cgo-no-c", PLAIN_MAIN, {"CGO_ENABLED": "1"}),
    # musl: external linking, or Go's internal linker would name glibc's loader.
    Case("cgo-musl", NET_MAIN, {"CGO_ENABLED": "1", "CC": "musl-gcc"}, ("-ldflags", "-linkmode external")),
]


def elf_truth(path: Path) -> tuple[str, str | None, tuple[str, ...]]:
    """(e_machine, PT_INTERP, DT_NEEDED) the way readelf -l / -d read them."""
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        interp = None
        needed: list[str] = []
        for segment in elf.iter_segments():
            if segment["p_type"] == "PT_INTERP":
                assert isinstance(segment, InterpSegment), segment
                interp = segment.get_interp_name()
            if isinstance(segment, DynamicSegment):
                tags = [t for t in segment.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
                needed += [t.needed for t in tags]  # type: ignore[attr-defined]  # pyelftools setattr()s .needed
        return str(elf["e_machine"]), interp, tuple(needed)


def toolchains(cache: Path) -> dict[str, Toolchain]:
    return {"1.27": find_toolchain(), "1.22": pinned_toolchain("1.22.10", cache)}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path) -> dict[tuple[str, str], Path]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found (apt-get install gcc): the cgo cases need it")
    root = tmp_path_factory.mktemp("matrix")
    out: dict[tuple[str, str], Path] = {}
    for release, toolchain in toolchains(probe_cache).items():
        for case in CASES:
            if case.env.get("CC") and shutil.which(case.env["CC"]) is None:
                continue  # musl-tools missing: the test for this case skips
            src = root / f"src-{case.name}"
            if not src.exists():
                src.mkdir()
                (src / "go.mod").write_text("module example.test/m\n\ngo 1.21\n")
                (src / "main.go").write_text(case.source)
            binary = root / f"{case.name}-go{release}"
            env = toolchain.env(probe_cache) | case.env
            argv = [
                str(toolchain.go),
                "build",
                "-trimpath",
                "-buildvcs=false",
                *case.flags,
                "-o",
                str(binary),
            ]
            proc.run([*argv, "."], env=env, cwd=src, timeout=600)
            out[(case.name, release)] = binary
    return out


def expected_starts(machine: str, interp: str | None, needed: tuple[str, ...]) -> set[str]:
    arch = {"EM_X86_64": "x86-64", "EM_AARCH64": "arm64"}[machine]
    starts = set()
    for name, base in BASES.items():
        if interp is None or (
            interp in base.arches[arch].loaders and all(base.has_library(arch, lib) for lib in needed)
        ):
            starts.add(name)
    return starts


@pytest.mark.parametrize("release", ["1.27", "1.22"])
@pytest.mark.parametrize("case", [c.name for c in CASES])
def test_verdicts_match_the_elf_and_the_base_contents(
    built: dict[tuple[str, str], Path], case: str, release: str
) -> None:
    if (case, release) not in built:
        pytest.skip("musl-gcc not found (apt-get install musl-tools)")
    path = built[(case, release)]
    machine, interp, needed = elf_truth(path)
    report = inspect_binary(path)
    assert report.elf.interpreter == interp
    assert report.elf.needed == needed
    assert report.go.go_version.startswith(f"go{release}")
    assert {v.base for v in report.verdicts if v.starts} == expected_starts(machine, interp, needed)
    for verdict in report.verdicts:
        assert verdict.platform == report.elf.platform
        assert (verdict.fix is not None) == (not verdict.starts)
    # The decision-tree line agrees with the verdicts: "any base" only when every base starts it.
    runs_everywhere = all(v.starts for v in report.verdicts)
    assert ("any base" in report.branch()) == runs_everywhere


def test_pie_without_cgo_is_dynamic_and_says_how_to_fix(built: dict[tuple[str, str], Path]) -> None:
    report = inspect_binary(built[("nocgo-pie", "1.27")])
    assert report.elf.linkage == "dynamic" and report.elf.pie and report.elf.libc is None
    assert report.resolver == "go"
    assert report.branch().startswith("2 (no cgo), but -buildmode=pie")
    scratch = report.verdict("scratch")
    assert not scratch.starts
    assert scratch.fix is not None and "drop -buildmode=pie" in scratch.fix and "static-pie" in scratch.fix


def test_arm64_is_judged_against_arm64_loaders(built: dict[tuple[str, str], Path]) -> None:
    report = inspect_binary(built[("nocgo-pie-arm64", "1.27")])
    assert report.elf.machine == "arm64"
    assert report.elf.interpreter == "/lib/ld-linux-aarch64.so.1"
    assert report.verdict("debian-slim").starts  # its arm64 variant has that loader
    assert report.verdict("alpine").platform == "linux/arm64"
    assert "linux/arm64" in report.verdict("alpine").why


def test_cgo_without_c_code_uses_go_resolver(built: dict[tuple[str, str], Path]) -> None:
    for release in ("1.27", "1.22"):
        report = inspect_binary(built[("cgo-no-c", release)])
        assert report.go.cgo_enabled is True
        assert report.elf.interpreter is None and not report.elf.links_c
        assert report.resolver == "go"
        assert "no C code is linked" in report.verdict("distroless-static").why


def test_static_glibc_caveat_names_the_builtin_modules(built: dict[tuple[str, str], Path]) -> None:
    report = inspect_binary(built[("cgo-static", "1.27")])
    assert report.elf.linkage == "static" and report.elf.libc == "glibc"
    assert report.elf.builtin_nss is True  # this host's glibc is 2.36
    why = report.verdict("scratch").why
    assert "files and dns NSS modules are built in" in why and "dlopened" in why


def test_stripped_section_headers_still_give_dt_needed(
    built: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    source = built[("cgo", "1.22")]
    _, interp, needed = elf_truth(source)
    data = bytearray(source.read_bytes())
    data[0x28:0x30] = bytes(8)  # e_shoff
    data[0x3C:0x40] = bytes(4)  # e_shnum, e_shstrndx
    stripped = tmp_path / "sstripped"
    stripped.write_bytes(bytes(data))
    report = inspect_binary(stripped)
    assert report.elf.needed == needed and needed
    assert report.elf.interpreter == interp
    assert report.go.cgo_enabled is True
    # The newest GLIBC_ version comes from DT_VERNEED then; pyelftools' .gnu.version_r is the truth.
    with source.open("rb") as fh:
        versions = [
            tuple(int(p) for p in aux.name.removeprefix("GLIBC_").split("."))
            for section in ELFFile(fh).iter_sections()
            if isinstance(section, GNUVerNeedSection)
            for _, auxiliaries in section.iter_versions()
            for aux in auxiliaries
            if aux.name.startswith("GLIBC_2")
        ]
    assert versions and report.elf.glibc_version == max(versions)


def test_truncated_and_corrupt_files_are_one_line(
    built: dict[tuple[str, str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = built[("cgo", "1.27")].read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data[: len(data) // 3])
    assert main(["inspect", str(cut)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "truncated" in err
    at = data.index(b"\xff Go buildinf:")
    garbled = bytearray(data)
    garbled[at + 33 : at + 40] = b"\x80\x81zz!!\xfe"  # inside the Go version string
    bad = tmp_path / "badinfo"
    bad.write_bytes(bytes(garbled))
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "corrupt Go build information" in err


def test_bare_word_says_both(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["inspect", "nosuchthing"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "neither a file here nor a local Docker image" in err


def test_libresolv_is_judged_from_dt_needed() -> None:
    """Go >= 1.20 cgo builds against glibc < 2.34 need libresolv.so.2 (on 2.34+ it is folded into libc
    and --as-needed drops it, as this host's builds show); a base without it does not start them."""
    import dataclasses

    from dnsprobe.binary.bases import ArchContents, judge
    from dnsprobe.binary.buildinfo import parse_modinfo
    from dnsprobe.binary.elf import ElfFacts

    elf = ElfFacts(
        "x86-64",
        "dynamic",
        "/lib64/ld-linux-x86-64.so.2",
        "glibc",
        ("libresolv.so.2", "libc.so.6"),
        (2, 17),
        cgo_resolver=True,
        links_c=True,
    )
    info = parse_modinfo("go1.22.10", ["build\tCGO_ENABLED=1"])
    for name in ("debian-slim", "distroless-base"):
        assert "libresolv.so.2" in BASES[name].arches["x86-64"].libs
        assert judge(elf, info, BASES[name]).starts
    base = BASES["distroless-base"]
    libs = tuple(lib for lib in base.arches["x86-64"].libs if lib != "libresolv.so.2")
    compat = dataclasses.replace(base, name="compat", arches={"x86-64": ArchContents(base.loaders, libs)})
    verdict = judge(elf, info, compat)
    assert not verdict.starts
    assert "libresolv.so.2 is missing" in verdict.why
    assert verdict.fix is not None and "debian:12-slim" in verdict.fix


def test_missing_library_fix_names_the_package() -> None:
    """libssl.so.3 (a cgo binary linking OpenSSL) is in distroless/base but not in debian-slim's
    minbase: the fix names Debian's package, taken from the same package data as the bases."""
    from dnsprobe.binary.bases import LIBRARY_PACKAGES, judge
    from dnsprobe.binary.buildinfo import parse_modinfo
    from dnsprobe.binary.elf import ElfFacts

    elf = ElfFacts(
        "x86-64",
        "dynamic",
        "/lib64/ld-linux-x86-64.so.2",
        "glibc",
        ("libssl.so.3", "libc.so.6"),
        (2, 34),
        cgo_resolver=True,
        links_c=True,
    )
    info = parse_modinfo("go1.27.3", ["build\tCGO_ENABLED=1"])
    assert judge(elf, info, BASES["distroless-base"]).starts
    slim = judge(elf, info, BASES["debian-slim"])
    assert not slim.starts
    package = LIBRARY_PACKAGES["glibc"]["libssl.so.3"]
    assert package == "libssl3"
    assert slim.fix is not None and f"apt-get install -y --no-install-recommends {package}" in slim.fix


def test_local_replacements_in_build_info(tmp_path: Path, probe_cache: Path) -> None:
    """kubectl's build information has `=>` lines for local replacements followed by an empty line:
    real build information, not damage (gcloud's kubectl binaries were refused before)."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "go.mod").write_text("module example.test/lib\n\ngo 1.21\n")
    (tmp_path / "lib" / "lib.go").write_text("package lib\n\n// N is a number.\nconst N = 1\n")
    (tmp_path / "go.mod").write_text(
        "module example.test/app\n\ngo 1.21\n\nrequire example.test/lib v0.0.0\n\n"
        "replace example.test/lib => ./lib\n"
    )
    (tmp_path / "main.go").write_text(
        'package main\n\nimport (\n\t"fmt"\n\n\t"example.test/lib"\n)\n\nfunc main() { fmt.Println(lib.N) }\n'
    )
    toolchain = find_toolchain()
    env = toolchain.env(probe_cache) | {"CGO_ENABLED": "0"}
    proc.run([str(toolchain.go), "build", "-o", str(tmp_path / "app"), "."], env=env, cwd=tmp_path)
    shown = proc.run([str(toolchain.go), "version", "-m", str(tmp_path / "app")], env=env).stdout
    assert "=>\t./lib" in shown
    report = inspect_binary(tmp_path / "app")
    assert report.go.path == "example.test/app"
    assert report.go.cgo_enabled is False
