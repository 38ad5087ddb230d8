"""The five runtime base images and whether a given binary runs on each (DESIGN.md, decision tree).

Each base is described by what matters to a Go binary's start and its resolver: the dynamic loaders and
shared libraries present, the glibc release, /etc/nsswitch.conf, CA certificates, tzdata, a shell and the
default user. The offline stand-in images (dnsprobe.sandbox.standins) are built from these same facts, so
`inspect`'s verdict and a container run can be compared cell by cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dnsprobe.binary.buildinfo import GoBuildInfo
from dnsprobe.binary.elf import ElfFacts

GLIBC_LOADER = "/lib64/ld-linux-x86-64.so.2"
MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"
_GLIBC_LIBS = (
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libresolv.so.2",
    "libutil.so.1",
    "libanl.so.1",
)
# musl's loader is the C library: it answers for these names itself.
_MUSL_BUILTIN = ("libc.so", "libc.musl-x86_64.so.1", "libpthread.so", "libm.so", "libdl.so", "librt.so")

Status = Literal["runs", "caveat", "will_not_start"]


@dataclass(frozen=True)
class BaseImage:
    name: str
    reference: str  # the real image a Dockerfile would name
    loaders: tuple[str, ...]
    libs: tuple[str, ...]  # shared libraries by soname
    glibc: tuple[int, int] | None
    nsswitch: bool
    ca_certificates: bool
    tzdata: bool
    shell: bool
    default_user: str

    @property
    def libc(self) -> str | None:
        if GLIBC_LOADER in self.loaders:
            return "glibc"
        return "musl" if MUSL_LOADER in self.loaders else None


BASES: dict[str, BaseImage] = {
    base.name: base
    for base in (
        BaseImage("scratch", "scratch", (), (), None, False, False, False, False, "root (no /etc/passwd)"),
        BaseImage(
            "distroless-static",
            "gcr.io/distroless/static-debian12:nonroot",
            (),
            (),
            None,
            True,
            True,
            True,
            False,
            "nonroot (65532)",
        ),
        BaseImage(
            "distroless-base",
            "gcr.io/distroless/base-debian12:nonroot",
            (GLIBC_LOADER,),
            (*_GLIBC_LIBS, "libssl.so.3", "libcrypto.so.3"),
            (2, 36),
            True,
            True,
            True,
            False,
            "nonroot (65532)",
        ),
        BaseImage(
            "alpine",
            "alpine:3.20",
            (MUSL_LOADER,),
            (*_MUSL_BUILTIN, "libz.so.1", "libssl.so.3", "libcrypto.so.3"),
            None,
            True,  # alpine-baselayout ships "hosts: files dns" since 3.16; musl itself ignores the file
            False,  # the ca-certificates package is not in the base image (only a bundle for apk)
            False,
            True,
            "root",
        ),
        BaseImage(
            "debian-slim",
            "debian:12-slim",
            (GLIBC_LOADER,),
            (*_GLIBC_LIBS, "libgcc_s.so.1", "libstdc++.so.6", "libz.so.1"),
            (2, 36),
            True,
            False,  # debian:*-slim has no ca-certificates package
            True,
            True,
            "root",
        ),
    )
}


@dataclass(frozen=True)
class Verdict:
    base: str
    status: Status
    why: str  # one line: what fails, or the resolver caveat, or what the binary uses
    notes: tuple[str, ...] = ()  # not about starting or DNS: CA bundle, tzdata, user

    @property
    def starts(self) -> bool:
        return self.status != "will_not_start"

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "status": self.status, "why": self.why, "notes": list(self.notes)}


def judge(elf: ElfFacts, info: GoBuildInfo | None, base: BaseImage) -> Verdict:
    """Will this binary start on this base, and which resolver caveat applies there?"""
    notes = _notes(base)
    if elf.interpreter:
        if elf.interpreter not in base.loaders:
            return Verdict(
                base.name,
                "will_not_start",
                f"the loader {elf.interpreter} is missing (`exec /app: no such file or directory`, "
                "though the file is there)",
                notes,
            )
        missing = [lib for lib in elf.needed if lib not in base.libs]
        if missing:
            return Verdict(
                base.name,
                "will_not_start",
                f"shared library {missing[0]} is missing (error while loading shared libraries)",
                notes,
            )
        if elf.glibc_version and base.glibc and elf.glibc_version[:2] > base.glibc:
            wanted = ".".join(map(str, elf.glibc_version))
            have = ".".join(map(str, base.glibc))
            return Verdict(
                base.name,
                "will_not_start",
                f"needs GLIBC_{wanted}, the base has glibc {have} (version `GLIBC_{wanted}' not found)",
                notes,
            )
    caveat = _resolver_caveat(elf, info, base)
    if caveat:
        return Verdict(base.name, "caveat", caveat, notes)
    return Verdict(base.name, "runs", _resolver_used(elf, info), notes)


def resolver_kind(elf: ElfFacts, info: GoBuildInfo | None) -> str:
    """ "go" (always the Go resolver), "cgo" (always libc's) or "dynamic" (Go decides at start-up)."""
    if info is None:
        return "go" if elf.libc is None else "dynamic"
    if info.cgo_enabled is False or "netgo" in info.tags:
        return "go"
    if "netdns=go" in info.default_godebug:
        return "go"
    if "netcgo" in info.tags or "netdns=cgo" in info.default_godebug:
        return "cgo"
    return "dynamic" if info.cgo_enabled else "go"


def _resolver_used(elf: ElfFacts, info: GoBuildInfo | None) -> str:
    kind = resolver_kind(elf, info)
    if kind == "go":
        return "the Go resolver (no C library involved)"
    if kind == "cgo":
        return f"{elf.libc or 'libc'} getaddrinfo (-tags netcgo)"
    return (
        "the Go resolver unless the pod's resolv.conf, nsswitch.conf or environment switch it to "
        f"{elf.libc or 'libc'} getaddrinfo (GODEBUG=netdns=go pins it)"
    )


def _resolver_caveat(elf: ElfFacts, info: GoBuildInfo | None, base: BaseImage) -> str | None:
    kind = resolver_kind(elf, info)
    if kind != "go" and elf.libc == "musl":
        which = "" if kind == "cgo" else "when cgo is selected, "
        return (
            f"{which}musl's getaddrinfo: asks every nameserver in parallel, no TCP fallback before "
            "musl 1.2.4 (a truncated answer fails), SERVFAIL on AAAA fails the whole lookup, "
            "errors read `Try again`"
        )
    if kind != "go" and elf.libc == "glibc" and elf.linkage == "static":
        return (
            "glibc linked statically: getaddrinfo still loads NSS modules (libnss_dns) of the "
            "runtime image's glibc at run time, which "
            + ("this base does not have" if base.libc != "glibc" else "must match the build's glibc")
        )
    if not base.nsswitch:
        release = info.go_release() if info else None
        if release and release < (1, 16):
            return "no /etc/nsswitch.conf: Go before 1.16 then asks DNS before /etc/hosts (dns,files)"
        if kind != "go":
            return (
                "no /etc/nsswitch.conf: the Go resolver uses files,dns, glibc's getaddrinfo uses "
                "dns before files: /etc/hosts entries may lose to DNS when cgo is selected"
            )
        return "no /etc/nsswitch.conf: Go uses its default order (files, then DNS)"
    return None


def _notes(base: BaseImage) -> tuple[str, ...]:
    notes = []
    if not base.ca_certificates:
        notes.append("no CA certificates")
    if not base.tzdata:
        notes.append("no tzdata")
    if base.default_user.startswith("root"):
        notes.append(f"user {base.default_user} unless USER is set")
    return tuple(notes)
