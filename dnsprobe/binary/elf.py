"""What the kernel and the dynamic loader need to start a binary, read from its ELF headers.

Static or dynamic (a PT_INTERP program header names the loader the kernel must find: a CGO_ENABLED=0
`-buildmode=pie` binary has one too), which C library (the loader's name says it for dynamic binaries;
for static cgo binaries a libc-specific string does), the shared libraries it needs (DT_NEEDED, read
from the PT_DYNAMIC segment, which is what the loader reads, so stripped section headers do not hide
it) and the newest glibc symbol version it asks for.

Any file may arrive here: the headers are checked against the file's size before pyelftools sees
them, so a cut file is "truncated" and a corrupt one is one `InspectError` line, never a traceback.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from dnsprobe.errors import InspectError

GLIBC_LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/ld-linux.so.2")
_MUSL_LOADER = re.compile(r"^/lib/ld-musl-[\w-]+\.so\.1$")
# Strings only one C library carries, for static binaries that name no loader.
_GLIBC_MARKS = (b"GLIBC_TUNABLES", b"Temporary failure in name resolution")
_MUSL_MARKS = (b"No error information",)
# glibc 2.34 moved the files and dns NSS modules into libc itself; a static link then carries them.
_GLIBC_BUILTIN_NSS = b"_nss_files_gethostbyname4_r"
# Go's cgo resolver (net/cgo_unix.go): the function names stay in .gopclntab even with -s -w.
_CGO_RESOLVER_MARKS = (b"net.cgoLookupHost", b"_C2func_getaddrinfo", b"_Cfunc_getaddrinfo")
_RUNTIME_CGO = b"runtime/cgo/"  # its source paths in .gopclntab; "runtime/cgo_mmap.go" is not it
_ABSURD = 1 << 32  # no Go binary is 4 GiB: an offset or size beyond it is damage, not truncation
_MAX_VERSION_ENTRIES = 4096  # glibc binaries need a few dozen; a corrupt count must not loop for ever
_MACHINES = {"EM_X86_64": "x86-64", "EM_AARCH64": "arm64", "EM_386": "386", "EM_ARM": "arm"}


@dataclass(frozen=True)
class ElfFacts:
    machine: str  # "x86-64", "arm64"
    linkage: str  # "static" | "dynamic"
    interpreter: str | None
    libc: str | None  # "glibc" | "musl" | None (no C library linked in, or unknown)
    needed: tuple[str, ...]
    glibc_version: tuple[int, ...] | None  # the newest GLIBC_x.y symbol version required
    pie: bool = False  # ET_DYN: position-independent
    cgo_resolver: bool = False  # Go's cgo resolver (getaddrinfo through cgo) is linked in
    links_c: bool = False  # any C code at all: runtime/cgo, a loader or a C library
    builtin_nss: bool | None = None  # static glibc: files and dns NSS built in (glibc >= 2.34)

    @property
    def platform(self) -> str:
        """The image platform a container must have to run it: linux/amd64, linux/arm64."""
        return "linux/" + {"x86-64": "amd64", "arm64": "arm64", "386": "386", "arm": "arm"}.get(
            self.machine, self.machine
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "platform": self.platform,
            "linkage": self.linkage,
            "pie": self.pie,
            "interpreter": self.interpreter,
            "libc": self.libc,
            "needed": list(self.needed),
            "glibc_version": ".".join(map(str, self.glibc_version)) if self.glibc_version else None,
            "links_c": self.links_c,
            "cgo_resolver": self.cgo_resolver,
            "builtin_nss": self.builtin_nss,
        }


def is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def open_elf(fh: BinaryIO) -> ELFFile:
    """ELFFile, or ELFError for a file that is not one."""
    return ELFFile(fh)


def check_headers(raw: bytes, shown: str) -> None:
    """InspectError when the ELF header or the program headers it points at lie beyond the file.

    Checked before pyelftools parses anything: the kernel refuses such a file, and pyelftools would
    fail on it in many different ways.
    """
    if raw[:4] != b"\x7fELF":
        raise InspectError(f"{shown}: not an ELF binary; inspect reads Linux Go binaries")
    if len(raw) < 16:
        raise InspectError(f"{shown}: truncated ELF file ({len(raw)} bytes: the magic and nothing more)")
    klass, data = raw[4], raw[5]
    if klass not in (1, 2) or data not in (1, 2):
        raise InspectError(f"{shown}: corrupt ELF header (class {klass}, data encoding {data})")
    order = "<" if data == 1 else ">"
    wide = klass == 2
    header_size = 64 if wide else 52
    if len(raw) < header_size:
        raise InspectError(
            f"{shown}: truncated ELF file ({len(raw)} bytes; the ELF header alone is {header_size})"
        )
    if wide:
        e_type, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, _ = struct.unpack_from(
            order + "HHIQQQIHHHHHH", raw, 16
        )
    else:
        e_type, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, _ = struct.unpack_from(
            order + "HHIIIIIHHHHHH", raw, 16
        )
    if e_type not in (2, 3):  # ET_EXEC, ET_DYN
        raise InspectError(f"{shown}: an ELF file but not an executable (e_type {e_type}); give a Go binary")
    want_ph = 56 if wide else 32
    if phnum and phentsize != want_ph:
        raise InspectError(f"{shown}: corrupt ELF header (program header size {phentsize}, not {want_ph})")
    end = phoff + phnum * phentsize
    if phoff > _ABSURD:
        raise InspectError(f"{shown}: corrupt ELF header (program headers at offset {phoff})")
    if end > len(raw):
        raise InspectError(
            f"{shown}: truncated ELF file ({len(raw)} bytes; its program headers end at byte {end})"
        )
    fmt = order + ("IIQQQQQQ" if wide else "IIIIIIII")
    for i in range(phnum):
        fields = struct.unpack_from(fmt, raw, phoff + i * phentsize)
        p_type, p_offset, p_filesz = (
            (fields[0], fields[2], fields[5]) if wide else (fields[0], fields[1], fields[4])
        )
        if p_type in (1, 2, 3) and p_offset + p_filesz > len(raw):  # PT_LOAD, PT_DYNAMIC, PT_INTERP
            if p_offset > _ABSURD or p_filesz > _ABSURD:
                raise InspectError(
                    f"{shown}: corrupt ELF program header {i} (offset {p_offset}, size {p_filesz})"
                )
            raise InspectError(
                f"{shown}: truncated ELF file ({len(raw)} bytes; segment {i} ends at byte "
                f"{p_offset + p_filesz}): copy it again"
            )
    want_sh = 64 if wide else 40
    if shnum and (shentsize != want_sh or shoff + shnum * shentsize > len(raw)):
        raise InspectError(
            f"{shown}: truncated or corrupt ELF file ({len(raw)} bytes; its section headers claim "
            f"{shnum} x {shentsize} bytes at offset {shoff})"
        )


def read_elf_facts(elf: ELFFile, raw: bytes) -> ElfFacts:
    interpreter = None
    needed: list[str] = []
    dynamic: dict[str, int] = {}
    for segment in elf.iter_segments():
        if segment["p_type"] == "PT_INTERP":
            interpreter = str(segment.get_interp_name())  # type: ignore[attr-defined]
        elif isinstance(segment, DynamicSegment):
            for tag in segment.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(str(tag.needed))  # type: ignore[attr-defined]
                elif tag.entry.d_tag in ("DT_VERNEED", "DT_VERNEEDNUM", "DT_STRTAB", "DT_STRSZ"):
                    dynamic[str(tag.entry.d_tag)] = int(tag.entry.d_val)
    glibc: tuple[int, ...] | None = None
    entries = 0
    if elf.num_sections() == 0:  # section headers stripped: the loader's own view, DT_VERNEED
        glibc = _glibc_from_verneed(elf, raw, dynamic)
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            for _, auxiliaries in section.iter_versions():
                for aux in auxiliaries:
                    entries += 1
                    if entries > _MAX_VERSION_ENTRIES:
                        raise ELFError(f"more than {_MAX_VERSION_ENTRIES} symbol version entries")
                    found = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)*)", str(aux.name))
                    if found:
                        version = tuple(int(p) for p in found[1].split("."))
                        glibc = max(glibc, version) if glibc else version
    libc = _libc(interpreter, needed, raw)
    return ElfFacts(
        machine=_machine(elf),
        linkage="dynamic" if interpreter else "static",
        interpreter=interpreter,
        libc=libc,
        needed=tuple(needed),
        glibc_version=glibc,
        pie=elf["e_type"] == "ET_DYN",
        cgo_resolver=any(mark in raw for mark in _CGO_RESOLVER_MARKS),
        links_c=bool(interpreter or needed or libc or _RUNTIME_CGO in raw),
        builtin_nss=(_GLIBC_BUILTIN_NSS in raw) if libc == "glibc" and not interpreter else None,
    )


def _glibc_from_verneed(elf: ELFFile, raw: bytes, dynamic: dict[str, int]) -> tuple[int, ...] | None:
    """The newest GLIBC_x.y in the version-needed table the dynamic segment points at."""
    if "DT_VERNEED" not in dynamic or "DT_STRTAB" not in dynamic:
        return None
    offset, strtab = _file_offset(elf, dynamic["DT_VERNEED"]), _file_offset(elf, dynamic["DT_STRTAB"])
    if offset is None or strtab is None:
        return None
    order = "<" if elf.little_endian else ">"
    newest: tuple[int, ...] | None = None
    for _ in range(min(dynamic.get("DT_VERNEEDNUM", 0), _MAX_VERSION_ENTRIES)):
        if offset + 16 > len(raw):
            break
        _, count, _, aux, following = struct.unpack_from(order + "HHIII", raw, offset)
        at = offset + aux
        for _ in range(min(count, _MAX_VERSION_ENTRIES)):
            if at + 16 > len(raw):
                break
            _, _, _, name, after = struct.unpack_from(order + "IHHII", raw, at)
            end = raw.find(b"\0", strtab + name, strtab + name + 64)
            text = raw[strtab + name : end].decode("ascii", "replace") if end > 0 else ""
            found = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)*)", text)
            if found:
                version = tuple(int(p) for p in found[1].split("."))
                newest = max(newest, version) if newest else version
            if not after:
                break
            at += after
        if not following:
            break
        offset += following
    return newest


def _file_offset(elf: ELFFile, address: int) -> int | None:
    for segment in elf.iter_segments():
        if segment["p_type"] == "PT_LOAD":
            start = segment["p_vaddr"]
            if start <= address < start + segment["p_filesz"]:
                return int(segment["p_offset"] + address - start)
    return None


def _machine(elf: ELFFile) -> str:
    machine = str(elf["e_machine"])
    return _MACHINES.get(machine, machine.removeprefix("EM_").lower())


def _libc(interpreter: str | None, needed: list[str], raw: bytes) -> str | None:
    if interpreter:
        if _MUSL_LOADER.match(interpreter) or "musl" in interpreter:
            return "musl"
        if not needed:
            return None  # a loader and no library: Go's own PIE (CGO_ENABLED=0 -buildmode=pie)
        if interpreter in GLIBC_LOADERS or "ld-linux" in interpreter:
            return "glibc"
    if any(lib.startswith("libc.musl") for lib in needed):
        return "musl"
    if "libc.so.6" in needed:
        return "glibc"
    if interpreter:
        return None
    if any(mark in raw for mark in _GLIBC_MARKS):
        return "glibc"
    if any(mark in raw for mark in _MUSL_MARKS):
        return "musl"
    return None


__all__ = ["GLIBC_LOADERS", "ELFError", "ElfFacts", "check_headers", "is_elf", "open_elf", "read_elf_facts"]
