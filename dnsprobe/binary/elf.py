"""What the kernel and the dynamic loader need to start a binary, read from its ELF headers.

Static or dynamic (a PT_INTERP program header names the loader the kernel must find), which C library
(the loader's name says it for dynamic binaries; for static cgo binaries a libc-specific string does),
the shared libraries it needs (DT_NEEDED) and the newest glibc symbol version it asks for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

GLIBC_LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/ld-linux.so.2")
_MUSL_LOADER = re.compile(r"^/lib/ld-musl-[\w-]+\.so\.1$")
# Strings only one C library carries, for static binaries that name no loader.
_GLIBC_MARKS = (b"GLIBC_TUNABLES", b"Temporary failure in name resolution")
_MUSL_MARKS = (b"No error information",)


@dataclass(frozen=True)
class ElfFacts:
    machine: str  # "x86-64"
    linkage: str  # "static" | "dynamic"
    interpreter: str | None
    libc: str | None  # "glibc" | "musl" | None (no C library linked in, or unknown)
    needed: tuple[str, ...]
    glibc_version: tuple[int, ...] | None  # the newest GLIBC_x.y symbol version required

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "linkage": self.linkage,
            "interpreter": self.interpreter,
            "libc": self.libc,
            "needed": list(self.needed),
            "glibc_version": ".".join(map(str, self.glibc_version)) if self.glibc_version else None,
        }


def is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def open_elf(fh: BinaryIO) -> ELFFile:
    """ELFFile, or ELFError for a file that is not one."""
    return ELFFile(fh)


def read_elf_facts(elf: ELFFile, raw: bytes) -> ElfFacts:
    interpreter = None
    for segment in elf.iter_segments():
        if segment["p_type"] == "PT_INTERP":
            interpreter = str(segment.get_interp_name())  # type: ignore[attr-defined]
    needed: list[str] = []
    glibc: tuple[int, ...] | None = None
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            needed += [str(tag.needed) for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]  # type: ignore[attr-defined]
        elif isinstance(section, GNUVerNeedSection):
            for _, auxiliaries in section.iter_versions():
                for aux in auxiliaries:
                    found = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)*)", aux.name)
                    if found:
                        version = tuple(int(p) for p in found[1].split("."))
                        glibc = max(glibc, version) if glibc else version
    return ElfFacts(
        machine=_machine(elf),
        linkage="dynamic" if interpreter else "static",
        interpreter=interpreter,
        libc=_libc(interpreter, needed, raw),
        needed=tuple(needed),
        glibc_version=glibc,
    )


def _machine(elf: ELFFile) -> str:
    names = {"EM_X86_64": "x86-64", "EM_AARCH64": "arm64", "EM_386": "386", "EM_ARM": "arm"}
    machine = str(elf["e_machine"])
    return names.get(machine, machine.removeprefix("EM_").lower())


def _libc(interpreter: str | None, needed: list[str], raw: bytes) -> str | None:
    if interpreter:
        if _MUSL_LOADER.match(interpreter) or "musl" in interpreter:
            return "musl"
        if interpreter in GLIBC_LOADERS or "ld-linux" in interpreter:
            return "glibc"
    if any(lib.startswith("libc.musl") for lib in needed):
        return "musl"
    if "libc.so.6" in needed:
        return "glibc"
    if any(mark in raw for mark in _GLIBC_MARKS):
        return "glibc"
    if any(mark in raw for mark in _MUSL_MARKS):
        return "musl"
    return None


__all__ = ["GLIBC_LOADERS", "ELFError", "ElfFacts", "is_elf", "open_elf", "read_elf_facts"]
