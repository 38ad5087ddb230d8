"""The five runtime base images and whether a given binary runs on each (the CGO_ENABLED decision tree).

Each base is described by what matters to a Go binary's start and its resolver, per architecture: the
dynamic loaders and shared libraries (by soname) present, the C library and its release,
/etc/nsswitch.conf, CA certificates, tzdata, a shell and the default user. The facts live in
`bases.json` next to this module, each with its source (Debian's package data for debian-slim and
distroless/base, re-derived by `python -m dnsprobe.binary.derive_bases --check`; distroless's build
files; the official alpine image's package list). The offline stand-in images
(dnsprobe.sandbox.standins) are built from the x86-64 facts, so `inspect`'s verdict and a container run
can be compared cell by cell.

A binary is judged against the base's variant for its own architecture (an arm64 binary against
linux/arm64 images): its loader must be there (PT_INTERP), every DT_NEEDED library, and a glibc at
least as new as the newest GLIBC_x.y symbol version it asks for. Every failing verdict carries a fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from dnsprobe.binary.buildinfo import GoBuildInfo
from dnsprobe.binary.elf import ElfFacts

GLIBC_LOADER = "/lib64/ld-linux-x86-64.so.2"
MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"
# musl's loader is the C library: it answers for these names itself (ARCH: x86_64, aarch64).
_MUSL_BUILTIN = ("libc.so", "libc.musl-{arch}.so.1", "libpthread.so", "libm.so", "libdl.so", "librt.so")
_MUSL_ARCH = {"x86-64": "x86_64", "arm64": "aarch64"}
_GLIBC_BASES = "gcr.io/distroless/base-debian12:nonroot or debian:12-slim"
# Alpine's libc6-compat (`apk add libc6-compat`, the subpackage `compat()` of alpinelinux/aports
# main/musl/APKBUILD): glibc's loader name, /lib64 -> lib, and these glibc sonames, every one a symlink to
# musl (/lib/libc.musl-x86_64.so.1). No libresolv.so.2 among them, nor libdl.so.2 in that revision.
LIBC6_COMPAT_LOADER = "/lib/ld-linux-x86-64.so.2"
LIBC6_COMPAT_LIBS = (
    "libc.so.6",
    "libcrypt.so.1",
    "libm.so.6",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
)
_STATIC_PIE = "-ldflags '-linkmode external -extldflags -static-pie' (needs cgo and a C compiler)"

Status = Literal["runs", "caveat", "will_not_start"]


@dataclass(frozen=True)
class ArchContents:
    loaders: tuple[str, ...]  # absolute paths, as PT_INTERP names them
    libs: tuple[str, ...]  # sonames, as DT_NEEDED names them


@dataclass(frozen=True)
class BaseImage:
    name: str
    reference: str  # the real image a Dockerfile would name
    libc_name: str | None  # "glibc", "musl" or None
    libc_version: str | None  # "2.36", "1.2.5"
    packages: tuple[str, ...]
    arches: dict[str, ArchContents]  # "x86-64", "arm64"
    nsswitch: bool
    ca_certificates: bool
    tzdata: bool
    shell: bool
    default_user: str
    can_add_user: bool  # the image has a way to create a non-root user (adduser, useradd)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def loaders(self) -> tuple[str, ...]:
        """The x86-64 loaders (the stand-in images are x86-64)."""
        return self.arches["x86-64"].loaders

    @property
    def libs(self) -> tuple[str, ...]:
        """The x86-64 shared libraries other than the loaders themselves."""
        loaders = {path.rsplit("/", 1)[-1] for path in self.loaders}
        return tuple(lib for lib in self.arches["x86-64"].libs if lib not in loaders)

    @property
    def glibc(self) -> tuple[int, int] | None:
        if self.libc_name != "glibc" or not self.libc_version:
            return None
        major, minor = self.libc_version.split(".")[:2]
        return int(major), int(minor)

    @property
    def libc(self) -> str | None:
        return self.libc_name

    def has_library(self, machine: str, soname: str) -> bool:
        contents = self.arches.get(machine)
        if contents is None:
            return False
        if soname in contents.libs:
            return True
        builtin = {name.format(arch=_MUSL_ARCH.get(machine, machine)) for name in _MUSL_BUILTIN}
        return self.libc_name == "musl" and soname in builtin


_DATA = json.loads(resources.files("dnsprobe.binary").joinpath("bases.json").read_text(encoding="utf-8"))
# soname -> the package that ships it, per distribution (from the same package data as the bases).
LIBRARY_PACKAGES: dict[str, dict[str, str]] = {
    "glibc": dict(_DATA["debian_library_packages"]),
    "musl": dict(_DATA["alpine_library_packages"]),
}


def _load_bases() -> dict[str, BaseImage]:
    data = _DATA
    bases = {}
    for name, facts in data["bases"].items():
        bases[name] = BaseImage(
            name=name,
            reference=facts["reference"],
            libc_name=facts["libc"],
            libc_version=facts["libc_version"],
            packages=tuple(facts["packages"]),
            arches={
                arch: ArchContents(tuple(c["loaders"]), tuple(c["libs"]))
                for arch, c in facts["arches"].items()
            },
            nsswitch=facts["nsswitch"],
            ca_certificates=facts["ca_certificates"],
            tzdata=facts["tzdata"],
            shell=facts["shell"],
            default_user=facts["default_user"],
            can_add_user=facts["can_add_user"],
            sources=dict(facts["sources"]),
        )
    return bases


BASES: dict[str, BaseImage] = _load_bases()


@dataclass(frozen=True)
class Verdict:
    base: str
    status: Status
    why: str  # one line: what fails, or the resolver caveat, or what the binary uses
    notes: tuple[str, ...] = ()  # not about starting or DNS: CA bundle, tzdata, user
    fix: str | None = None  # for will_not_start: what to change
    platform: str = "linux/amd64"  # the image variant judged

    @property
    def starts(self) -> bool:
        return self.status != "will_not_start"

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "platform": self.platform,
            "status": self.status,
            "why": self.why,
            "fix": self.fix,
            "notes": list(self.notes),
        }


def judge(elf: ElfFacts, info: GoBuildInfo | None, base: BaseImage) -> Verdict:
    """Will this binary start on this base's variant for its architecture, and with which caveat?"""
    notes = _notes(base)
    platform = elf.platform
    contents = base.arches.get(elf.machine)

    def fail(why: str, fix: str) -> Verdict:
        return Verdict(base.name, "will_not_start", why, notes, fix, platform)

    if contents is None:
        known = ", ".join(sorted(base.arches))
        return fail(
            f"{base.reference} is modelled for {known} only; this binary is {elf.machine} "
            "(`exec format error` on another architecture)",
            "build for the image's architecture (GOARCH=amd64 or GOARCH=arm64)",
        )
    if elf.interpreter:
        if elf.interpreter not in contents.loaders:
            return fail(
                f"the loader {elf.interpreter} is missing from the {platform} image (`exec /app: no such "
                f"file or directory`, though the file is there){_libc6_compat_note(elf, base)}",
                _loader_fix(elf),
            )
        missing = [lib for lib in elf.needed if not base.has_library(elf.machine, lib)]
        if missing:
            lib = missing[0]
            others = [b.reference for b in BASES.values() if b.has_library(elf.machine, lib)]
            also = f"; bases that have it: {', '.join(others)}" if others else ""
            more = f" (and {len(missing) - 1} more: {', '.join(missing[1:4])})" if len(missing) > 1 else ""
            return fail(
                f"shared library {lib} is missing{more} (error while loading shared libraries)",
                _library_fix(base, lib) + also,
            )
        if elf.glibc_version and base.glibc and elf.glibc_version[:2] > base.glibc:
            wanted = ".".join(map(str, elf.glibc_version))
            have = ".".join(map(str, base.glibc))
            return fail(
                f"needs GLIBC_{wanted}, the base has glibc {have} (version `GLIBC_{wanted}' not found)",
                f"build on an image with glibc {have} or older (golang:1.x-bookworm has 2.36), or run on "
                f"a base with glibc {wanted} or newer",
            )
    caveat = _resolver_caveat(elf, info, base)
    if caveat:
        return Verdict(base.name, "caveat", caveat, notes, None, platform)
    return Verdict(base.name, "runs", _resolver_used(elf, info), notes, None, platform)


def libc6_compat_missing(elf: ElfFacts) -> list[str]:
    """The glibc libraries this binary needs that Alpine's libc6-compat does not provide."""
    return [lib for lib in elf.needed if lib not in LIBC6_COMPAT_LIBS]


def _libc6_compat_note(elf: ElfFacts, base: BaseImage) -> str:
    """On a musl base, what `apk add libc6-compat` would change for a glibc binary: it gets the loader,
    and then fails on the first library the package does not fake (Go 1.20+ cgo: libresolv.so.2)."""
    if base.libc_name != "musl" or elf.libc != "glibc" or elf.machine != "x86-64":
        return ""
    missing = libc6_compat_missing(elf)
    if not missing:
        return (
            "; with libc6-compat the loader is found and every library it needs is a musl symlink: it "
            "starts unless it uses a glibc-only symbol (`Error relocating ...: symbol not found`), and "
            "resolves with musl's getaddrinfo"
        )
    return (
        f"; with libc6-compat it still does not start: `Error loading shared library {missing[0]}: No such "
        f"file or directory` (libc6-compat fakes {', '.join(LIBC6_COMPAT_LIBS)} only)"
    )


def _library_fix(base: BaseImage, lib: str) -> str:
    package = LIBRARY_PACKAGES.get(base.libc_name or "", {}).get(lib)
    if base.name == "debian-slim" and package:
        return f"add `RUN apt-get install -y --no-install-recommends {package}` to the runtime stage"
    if base.name == "alpine" and package:
        return f"add `RUN apk add --no-cache {package}` to the runtime stage"
    if base.name == "distroless-base" and package:
        return (
            f"distroless has no package manager: COPY {lib} from a debian:12 stage that installed "
            f"{package}, or use a base that ships it"
        )
    which = f" (Debian: {package})" if package else ""
    return (
        f"install the package that ships {lib}{which} in the runtime stage (`dpkg -S {lib}` or "
        "`apk info --who-owns` in the builder names it)"
    )


def _loader_fix(elf: ElfFacts) -> str:
    empty = ArchContents((), ())
    have = [
        b.reference for b in BASES.values() if elf.interpreter in b.arches.get(elf.machine, empty).loaders
    ]
    where = f"; or run it on {' or '.join(have)}" if have else ""
    if elf.libc is None:
        return (
            "drop -buildmode=pie (CGO_ENABLED=0 alone links statically), or link static-pie with "
            f"{_STATIC_PIE}{where}"
        )
    if elf.libc == "musl":
        return (
            "run it on alpine (both stages on alpine), or link it statically "
            "(-ldflags '-linkmode external -extldflags -static'), or rebuild with CGO_ENABLED=0 if "
            "nothing needs cgo (dnsprobe cgo-deps)"
        )
    return (
        "rebuild with CGO_ENABLED=0 if nothing needs cgo (dnsprobe cgo-deps says), or run it on a glibc "
        f"base: {_GLIBC_BASES}"
    )


def resolver_kind(elf: ElfFacts, info: GoBuildInfo | None) -> str:
    """ "go" (always the Go resolver), "cgo" (always libc's) or "dynamic" (Go decides at start-up)."""
    if info is None:
        return "go" if elf.libc is None else "dynamic"
    if info.cgo_enabled is False or "netgo" in info.tags:
        return "go"
    if not elf.links_c or not elf.cgo_resolver:
        return "go"  # cgo on, but no C code, or none of it is Go's cgo resolver
    if "netdns=go" in info.default_godebug:
        return "go"
    if "netcgo" in info.tags or "netdns=cgo" in info.default_godebug:
        return "cgo"
    return "dynamic" if info.cgo_enabled else "go"


def _resolver_used(elf: ElfFacts, info: GoBuildInfo | None) -> str:
    kind = resolver_kind(elf, info)
    if kind == "go":
        if info is not None and info.cgo_enabled and not elf.links_c:
            return (
                "the Go resolver: CGO_ENABLED=1, but no C code is linked (no package in the build "
                "uses cgo), so the binary is static and pure Go"
            )
        if info is not None and info.cgo_enabled and not elf.cgo_resolver and "netgo" not in info.tags:
            return "the Go resolver (cgo is linked for other packages, but not Go's cgo resolver)"
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
        if elf.linkage == "dynamic" and base.libc_name == "musl" and base.libc_version:
            tcp = (
                f"this base's musl {base.libc_version} retries a truncated answer over TCP"
                if _version(base.libc_version) >= (1, 2, 4)
                else f"this base's musl {base.libc_version} has no TCP fallback (a truncated answer fails)"
            )
        else:
            tcp = (
                "no TCP fallback before musl 1.2.4, and a static binary does not record its musl release "
                "(Debian's musl-tools is 1.2.3: a truncated answer fails)"
            )
        return (
            f"{which}musl's getaddrinfo: asks every nameserver in parallel, SERVFAIL on AAAA fails the "
            f"whole lookup, errors read `Try again`; {tcp}"
        )
    if kind != "go" and elf.libc == "glibc" and elf.linkage == "static":
        has_glibc = base.libc_name == "glibc"
        if elf.builtin_nss:
            there = (
                f"this base's glibc {base.libc_version} must be the build's release"
                if has_glibc
                else "this base has no glibc, so such a source fails"
            )
            return (
                "glibc (2.34 or later) linked statically: the files and dns NSS modules are built in, so "
                "`hosts: files dns` works on any base; any other nsswitch.conf source (mdns4_minimal, "
                f"resolve, myhostname, systemd...) is dlopened as libnss_<source>.so.2 at run time: {there}"
            )
        there = (
            f"this base's glibc {base.libc_version} must be the build's release"
            if has_glibc
            else "this base has none, so every lookup through cgo fails"
        )
        return (
            "glibc before 2.34 linked statically: every NSS module, files and dns included, is dlopened "
            f"(libnss_files.so.2, libnss_dns.so.2) from the runtime image: {there}"
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


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def _notes(base: BaseImage) -> tuple[str, ...]:
    notes = []
    if not base.ca_certificates:
        notes.append("no CA certificates")
    if not base.tzdata:
        notes.append("no tzdata")
    if base.default_user.startswith("root"):
        notes.append(f"user {base.default_user} unless USER is set")
    return tuple(notes)
