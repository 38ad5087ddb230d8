"""`dnsprobe inspect`: what a Go binary is and which base images it can run on, from the file alone."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnsprobe.binary.bases import BASES, Verdict, judge, resolver_kind
from dnsprobe.binary.buildinfo import BuildInfoError, GoBuildInfo, read_build_info
from dnsprobe.binary.elf import ELFError, ElfFacts, check_headers, open_elf, read_elf_facts
from dnsprobe.errors import InspectError
from dnsprobe.files_io import check_regular

# Bigger than any Go binary anyone ships (kubelet is ~100 MB); a /dev/zero-like input stops here.
MAX_BINARY_BYTES = 1 << 30


@dataclass(frozen=True)
class Inspection:
    target: str
    elf: ElfFacts
    go: GoBuildInfo
    verdicts: tuple[Verdict, ...]
    image: str | None = None  # set when the binary came out of a container image
    image_base: str | None = None  # which of BASES that image is built on, when it can be told

    @property
    def resolver(self) -> str:
        return resolver_kind(self.elf, self.go)

    def verdict(self, base: str) -> Verdict:
        return next(v for v in self.verdicts if v.base == base)

    def branch(self) -> str:
        """The branch of the CGO_ENABLED decision tree this binary is on (it agrees with the verdicts)."""
        elf = self.elf
        if elf.interpreter and elf.libc is None:
            return (
                f"2 (no cgo), but -buildmode=pie made it dynamic: it needs the loader {elf.interpreter}, so "
                "it will not start on scratch, distroless/static or alpine; drop -buildmode=pie, or link "
                "static-pie (-ldflags '-linkmode external -extldflags -static-pie')"
            )
        if not self.go.cgo_enabled:
            return "2 (no cgo): a static binary that runs on any base; distroless/static is the default"
        if not elf.links_c:
            return (
                "2 in effect: CGO_ENABLED=1, but no package linked C code, so the binary is static pure Go "
                "and runs on any base; build with CGO_ENABLED=0 to keep it that way"
            )
        if elf.linkage == "static":
            nss = ""
            if elf.libc == "glibc":
                nss = (
                    "; glibc's files and dns NSS modules are built in (2.34+), other sources are dlopened"
                    if elf.builtin_nss
                    else "; glibc before 2.34: NSS modules are dlopened from the runtime image"
                )
            return f"3 (cgo, {elf.libc or 'libc'} linked statically): starts on any base{nss}"
        starts = [v.base for v in self.verdicts if v.starts]
        where = (
            f"; of the bases here it starts on {', '.join(starts)}"
            if starts
            else "; it starts on none of the bases here (a library is missing: see below)"
        )
        if elf.libc == "musl":
            return (
                "3 (cgo, musl): both stages on alpine (golang:1.x-alpine + build-base, runtime alpine)"
                + where
            )
        return (
            "3 (cgo, glibc): run on distroless/base, debian-slim or ubuntu, never alpine or scratch" + where
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "image": self.image,
            "image_base": self.image_base,
            **self.elf.to_json(),
            "go": self.go.to_json(),
            "resolver": self.resolver,
            "decision_tree": self.branch(),
            "verdicts": [v.to_json() for v in self.verdicts],
        }


def inspect_binary(path: Path, *, label: str | None = None) -> Inspection:
    """Read a Go ELF binary; InspectError (one line) for anything else."""
    shown = label or str(path)
    try:
        check_regular(path, "binary")  # a pipe nobody writes to would block open(); /dev/zero reads 1 GiB
        with path.open("rb") as fh:
            raw = fh.read(MAX_BINARY_BYTES + 1)
    except FileNotFoundError:
        raise InspectError(f"{shown}: no such file (give a Go binary or a local Docker image)") from None
    except IsADirectoryError:
        raise InspectError(f"{shown}: is a directory, not a binary") from None
    except OSError as exc:
        raise InspectError(f"{shown}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_BINARY_BYTES:
        raise InspectError(f"{shown}: larger than {MAX_BINARY_BYTES >> 20} MiB; not a Go binary")
    if raw[:4] != b"\x7fELF":
        raise InspectError(f"{shown}: not an ELF binary; inspect reads Linux Go binaries")
    check_headers(raw, shown)
    try:
        elf = open_elf(io.BytesIO(raw))
        facts = read_elf_facts(elf, raw)
        info = read_build_info(elf)
    except BuildInfoError as exc:
        raise InspectError(
            f"{shown}: corrupt Go build information ({exc}); rebuild or copy it again"
        ) from None
    except ELFError as exc:
        raise InspectError(f"{shown}: corrupt ELF file ({exc})") from None
    except Exception as exc:  # pyelftools fails on crafted headers in many ways
        raise InspectError(
            f"{shown}: corrupt ELF file ({type(exc).__name__} while reading its headers)"
        ) from None
    if info is None:
        raise InspectError(
            f"{shown}: an ELF {facts.linkage} binary but not a Go program (no Go build information); "
            "inspect reads Go binaries"
        )
    if info.cgo_enabled is False:
        facts = dataclasses.replace(facts, glibc_version=None)
    verdicts = tuple(judge(facts, info, base) for base in BASES.values())
    return Inspection(shown, facts, info, verdicts)


_STATUS_WORDS = {"runs": "runs", "caveat": "runs, resolver caveat", "will_not_start": "WILL NOT START"}


def format_inspection(report: Inspection) -> str:
    elf, go = report.elf, report.go
    lines = [f"{report.target}" + (f"  (from image {report.image})" if report.image else "")]
    if report.image:
        base = report.image_base
        lines.append(
            f"  image base     {BASES[base].reference} ({base})"
            if base
            else "  image base     not recognised"
        )
    linkage = f"{elf.linkage}{' PIE' if elf.pie else ''}, {elf.machine} ({elf.platform})"
    if elf.interpreter:
        linkage += f", loader {elf.interpreter} ({elf.libc or 'no C library: Go linked it as PIE'})"
    elif elf.libc:
        linkage += f", {elf.libc} linked in"
    lines.append(f"  linkage        {linkage}")
    if elf.needed:
        lines.append(f"  needs          {', '.join(elf.needed)}")
    if elf.glibc_version:
        lines.append(f"  glibc symbols  up to GLIBC_{'.'.join(map(str, elf.glibc_version))}")
    lines.append(f"  go             {go.go_version}  {go.path}")
    cgo = {True: "1", False: "0", None: "(not recorded)"}[go.cgo_enabled]
    lines.append(f"  CGO_ENABLED    {cgo}")
    lines.append(f"  -tags          {','.join(go.tags) or '(none)'}")
    if go.ldflags:
        lines.append(f"  -ldflags       {go.ldflags}")
    if go.settings.get("-buildmode"):
        lines.append(f"  -buildmode     {go.settings['-buildmode']}")
    netdns = [kv for kv in go.default_godebug.split(",") if kv.startswith("netdns")]
    godebug = f"{len(go.default_godebug.split(','))} settings" if go.default_godebug else "(none)"
    lines.append(f"  DefaultGODEBUG {godebug}{'; ' + ','.join(netdns) if netdns else ''}")
    lines.append(f"  resolver       {report.resolver}")
    lines.append(f"  decision tree  branch {report.branch()}")
    lines.append(f"  base images ({elf.platform} variants):")
    width = max(len(name) for name in BASES)
    for verdict in report.verdicts:
        mark = "  <- the image's base" if verdict.base == report.image_base else ""
        lines.append(f"    {verdict.base:<{width}}  {_STATUS_WORDS[verdict.status]}: {verdict.why}{mark}")
        if verdict.fix:
            lines.append(f"    {'':<{width}}  fix: {verdict.fix}")
        if verdict.notes:
            lines.append(f"    {'':<{width}}  ({'; '.join(verdict.notes)})")
    return "\n".join(lines)


def looks_like_image(target: str) -> bool:
    """`alpine:3.20`, `dnsprobe/probe:go`, `gcr.io/x/y@sha256:...`; not `./probe` or `/usr/bin/x`."""
    return not target.startswith((".", "/", "~")) and all(c.isalnum() or c in "._-/:@" for c in target)
