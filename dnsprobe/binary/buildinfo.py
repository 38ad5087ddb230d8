"""Go's build information, read from the binary itself (what `go version -m` prints), without Go.

The linker leaves a blob in the `.go.buildinfo` section (or, without section headers, 16-byte aligned in
the first writable segment): the 14-byte magic `\\xff Go buildinf:`, the pointer size, a flags byte, then
either (Go 1.18+, flag bit 2) the Go version and the module information as uvarint-prefixed strings right
after the 32-byte header, or (older releases) two pointers to Go string headers elsewhere in the image.
The module information is framed by two 16-byte sentinels and holds `path`, `mod`, `dep`, `=>` and
(Go 1.18+) `build key=value` lines; values with spaces or quotes are Go-quoted (strconv.Quote).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from elftools.elf.elffile import ELFFile

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
_ALIGN = 16
_FLAG_BIG_ENDIAN = 1
_FLAG_INLINE_STRINGS = 2


@dataclass(frozen=True)
class GoBuildInfo:
    go_version: str  # "go1.27.3"
    path: str = ""  # the main package's import path
    main_module: str = ""
    settings: dict[str, str] = field(default_factory=dict)  # build key=value lines, in order
    deps: tuple[str, ...] = ()  # "module@version"

    @property
    def cgo_enabled(self) -> bool | None:
        value = self.settings.get("CGO_ENABLED")
        return None if value is None else value == "1"

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(t for t in self.settings.get("-tags", "").split(",") if t)

    @property
    def default_godebug(self) -> str:
        return self.settings.get("DefaultGODEBUG", "")

    @property
    def ldflags(self) -> str:
        return self.settings.get("-ldflags", "")

    def go_release(self) -> tuple[int, int] | None:
        """(1, 27) for go1.27.3; None for devel or odd versions."""
        found = re.match(r"go(\d+)\.(\d+)", self.go_version)
        return (int(found[1]), int(found[2])) if found else None

    def to_json(self) -> dict[str, Any]:
        return {
            "go_version": self.go_version,
            "path": self.path,
            "main_module": self.main_module,
            "cgo_enabled": self.cgo_enabled,
            "tags": list(self.tags),
            "ldflags": self.ldflags,
            "default_godebug": self.default_godebug,
            "settings": dict(self.settings),
            "deps": list(self.deps),
        }


class BuildInfoError(ValueError):
    """The build information is there (the magic was found) but does not read as Go writes it."""


_VERSION = re.compile(r"(?:go1(?:\.\d+){0,2}(?:(?:rc|beta)\d+)?|devel)(?:[ +-][\x21-\x7e ]*)?")
_KINDS = ("path", "mod", "dep", "=>", "build")


def read_build_info(elf: ELFFile) -> GoBuildInfo | None:
    """The build information of a Go ELF binary; None when the file carries none (not a Go program).

    BuildInfoError when the blob is there but damaged: a version that is not one, module lines that
    are not Go's, or settings with impossible values.
    """
    blob = _find_blob(elf)
    if blob is None:
        return None
    if len(blob) < HEADER_SIZE:
        raise BuildInfoError("the build information header is cut short")
    ptr_size, flags = blob[14], blob[15]
    if ptr_size not in (4, 8):
        raise BuildInfoError(f"pointer size {ptr_size} in the build information header (Go writes 4 or 8)")
    if flags & _FLAG_INLINE_STRINGS:
        version, rest = _uvarint_string(blob[HEADER_SIZE:])
        modinfo, _ = _uvarint_string(rest)
    else:
        order: Literal["little", "big"] = "big" if flags & _FLAG_BIG_ENDIAN else "little"
        version = _read_go_string(elf, int.from_bytes(blob[16 : 16 + ptr_size], order), ptr_size, order)
        modinfo = _read_go_string(
            elf, int.from_bytes(blob[16 + ptr_size : 16 + 2 * ptr_size], order), ptr_size, order
        )
    # cmd/go frames the module information with two 16-byte sentinels (not text).
    if modinfo and not (len(modinfo) >= 33 and modinfo[-17] == 0x0A):
        raise BuildInfoError("the module information is not framed the way cmd/go frames it")
    try:
        text_version = version.decode("utf-8")
        lines = modinfo[16:-16].decode("utf-8").splitlines() if modinfo else []
    except UnicodeDecodeError:
        raise BuildInfoError("the Go version or module information is not UTF-8 text") from None
    if not text_version:
        if flags & _FLAG_INLINE_STRINGS:
            raise BuildInfoError("the Go version string is empty")
        return None  # Go < 1.18 with pointers we could not follow
    if not _VERSION.fullmatch(text_version):
        raise BuildInfoError(f"the Go version reads {text_version[:40]!r}, not a Go release")
    for line in lines:
        if line and line.split("\t", 1)[0] not in _KINDS:  # empty lines follow local replacements
            raise BuildInfoError(f"a module information line reads {line[:40]!r}")
    info = parse_modinfo(text_version, lines)
    if info.settings.get("CGO_ENABLED", "0") not in ("0", "1"):
        raise BuildInfoError(f"CGO_ENABLED={info.settings['CGO_ENABLED'][:10]!r} in the build settings")
    return info


def parse_modinfo(go_version: str, lines: list[str]) -> GoBuildInfo:
    """Parse the module information lines (the text `go version -m` prints after the file name)."""
    path = main = ""
    settings: dict[str, str] = {}
    deps: list[str] = []
    for line in lines:
        kind, _, rest = line.partition("\t")
        if kind == "path":
            path = rest
        elif kind == "mod":
            main = rest.split("\t")[0]
        elif kind == "dep":
            parts = rest.split("\t")
            deps.append(f"{parts[0]}@{parts[1]}" if len(parts) > 1 else parts[0])
        elif kind == "build":
            key, value = _split_setting(rest)
            settings[key] = value
    return GoBuildInfo(go_version, path, main, settings, tuple(deps))


def _split_setting(text: str) -> tuple[str, str]:
    if text.startswith('"'):
        key, end = _go_unquote(text)
        text = text[end:]
        return key, (_go_unquote(text[1:])[0] if text[1:].startswith('"') else text[1:])
    key, _, value = text.partition("=")
    return key, (_go_unquote(value)[0] if value.startswith('"') else value)


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


def _go_unquote(text: str) -> tuple[str, int]:
    """Undo strconv.Quote on a prefix of text; return the string and where the quoted part ended."""
    out: list[str] = []
    i = 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\" and i + 1 < len(text):
            code = text[i + 1]
            width = {"x": 2, "u": 4, "U": 8}.get(code)
            if width:
                digits = text[i + 2 : i + 2 + width]
                try:
                    out.append(chr(int(digits, 16)))
                except (ValueError, OverflowError):
                    out.append("\ufffd")  # not Go's quoting: keep going, visibly
                i += 2 + width
                continue
            out.append(_ESCAPES.get(code, code))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out), len(text)  # unterminated: keep what there is


def _uvarint_string(data: bytes) -> tuple[bytes, bytes]:
    length = shift = 0
    for i, byte in enumerate(data[:10]):
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            start = i + 1
            return data[start : start + length], data[start + length :]
    return b"", b""


def _find_blob(elf: ELFFile) -> bytes | None:
    section = elf.get_section_by_name(".go.buildinfo")
    if section is not None and section["sh_type"] != "SHT_NOBITS":
        data: bytes = section.data()
        return data if data.startswith(MAGIC) else None
    # No section headers (stripped with sstrip, or a packer): look in the writable loaded segments.
    for segment in elf.iter_segments():
        if segment["p_type"] != "PT_LOAD" or not segment["p_flags"] & 2:
            continue
        data = segment.data()
        at = data.find(MAGIC)
        while at != -1:
            if at % _ALIGN == 0:
                return data[at : at + 64 * 1024]
            at = data.find(MAGIC, at + 1)
    return None


def _read_go_string(elf: ELFFile, address: int, ptr_size: int, order: Literal["little", "big"]) -> bytes:
    """Follow a pointer to a Go string header (data pointer, length) in the loaded image (Go < 1.18)."""
    header = _read_memory(elf, address, 2 * ptr_size)
    if len(header) < 2 * ptr_size:
        return b""
    data_ptr = int.from_bytes(header[:ptr_size], order)
    length = int.from_bytes(header[ptr_size:], order)
    if length > 1 << 20:
        return b""
    return _read_memory(elf, data_ptr, length)


def _read_memory(elf: ELFFile, address: int, size: int) -> bytes:
    for segment in elf.iter_segments():
        if segment["p_type"] != "PT_LOAD":
            continue
        start = segment["p_vaddr"]
        if start <= address and address + size <= start + segment["p_filesz"]:
            data: bytes = segment.data()
            return data[address - start : address - start + size]
    return b""
