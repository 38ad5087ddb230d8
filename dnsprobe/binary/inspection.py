"""`dnsprobe inspect`: what a Go binary is and which base images it can run on, from the file alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnsprobe.binary.bases import BASES, Verdict, judge, resolver_kind
from dnsprobe.binary.buildinfo import GoBuildInfo, read_build_info
from dnsprobe.binary.elf import ELFError, ElfFacts, open_elf, read_elf_facts
from dnsprobe.errors import InspectError
from dnsprobe.files_io import check_regular, read_limited


@dataclass(frozen=True)
class Inspection:
    target: str
    elf: ElfFacts
    go: GoBuildInfo
    verdicts: tuple[Verdict, ...]
    image: str | None = None  # set when the binary came out of a container image

    @property
    def resolver(self) -> str:
        return resolver_kind(self.elf, self.go)

    def verdict(self, base: str) -> Verdict:
        return next(v for v in self.verdicts if v.base == base)

    def branch(self) -> str:
        """The branch of DESIGN.md's CGO_ENABLED decision tree this binary was built on."""
        if not self.go.cgo_enabled:
            return "2 (no cgo): a static binary that runs on any base; distroless/static is the default"
        if self.elf.linkage == "static":
            return f"3 (cgo, {self.elf.libc or 'libc'} linked statically): runs on any base"
        if self.elf.libc == "musl":
            return "3 (cgo, musl): both stages on alpine (golang:1.x-alpine + build-base, runtime alpine)"
        return "3 (cgo, glibc): run on distroless/base, debian-slim or ubuntu, never alpine or scratch"

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "image": self.image,
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
        check_regular(path, "binary")
        with path.open("rb") as fh:
            raw = read_limited(fh, "binary", regular=True)
            fh.seek(0)
            try:
                elf = open_elf(fh)
                facts = read_elf_facts(elf, raw)
                info = read_build_info(elf)
            except ELFError as exc:
                raise InspectError(
                    f"{shown}: not an ELF binary ({exc}); inspect reads Linux Go binaries"
                ) from None
    except FileNotFoundError:
        raise InspectError(f"{shown}: no such file (give a Go binary or a local Docker image)") from None
    except IsADirectoryError:
        raise InspectError(f"{shown}: is a directory, not a binary") from None
    except OSError as exc:
        raise InspectError(f"{shown}: cannot read: {exc.strerror}") from None
    if info is None:
        raise InspectError(
            f"{shown}: an ELF {facts.linkage} binary but not a Go program (no Go build information); "
            "inspect reads Go binaries"
        )
    if info.cgo_enabled is False:
        facts = ElfFacts(facts.machine, facts.linkage, facts.interpreter, None, facts.needed, None)
    verdicts = tuple(judge(facts, info, base) for base in BASES.values())
    return Inspection(shown, facts, info, verdicts)


_STATUS_WORDS = {"runs": "runs", "caveat": "runs, resolver caveat", "will_not_start": "WILL NOT START"}


def format_inspection(report: Inspection) -> str:
    elf, go = report.elf, report.go
    lines = [f"{report.target}" + (f"  (from image {report.image})" if report.image else "")]
    linkage = f"{elf.linkage}, {elf.machine}"
    if elf.interpreter:
        linkage += f", loader {elf.interpreter} ({elf.libc or 'unknown libc'})"
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
    netdns = [kv for kv in go.default_godebug.split(",") if kv.startswith("netdns")]
    godebug = f"{len(go.default_godebug.split(','))} settings" if go.default_godebug else "(none)"
    lines.append(f"  DefaultGODEBUG {godebug}{'; ' + ','.join(netdns) if netdns else ''}")
    lines.append(f"  resolver       {report.resolver}")
    lines.append(f"  decision tree  branch {report.branch()}")
    lines.append("  base images:")
    width = max(len(name) for name in BASES)
    for verdict in report.verdicts:
        lines.append(f"    {verdict.base:<{width}}  {_STATUS_WORDS[verdict.status]}: {verdict.why}")
        if verdict.notes:
            lines.append(f"    {'':<{width}}  ({'; '.join(verdict.notes)})")
    return "\n".join(lines)


def inspect_target(target: str) -> Inspection:
    """A path to a binary, or else the name of a local Docker image whose entrypoint is inspected."""
    path = Path(target)
    if path.exists() or not _looks_like_image(target):
        return inspect_binary(path)
    from dnsprobe.sandbox.docker import extract_entrypoint

    with extract_entrypoint(target) as (binary, inside):
        report = inspect_binary(binary, label=inside)
    return Inspection(report.target, report.elf, report.go, report.verdicts, image=target)


def _looks_like_image(target: str) -> bool:
    """`alpine:3.20`, `dnsprobe/probe:go`, `gcr.io/x/y@sha256:...`; not `./probe` or `/usr/bin/x`."""
    return not target.startswith((".", "/", "~")) and all(c.isalnum() or c in "._-/:@" for c in target)
