"""Applying an image's layers to a directory, as a container runtime stacks them, with Python's tarfile.

- `.wh.NAME` deletes NAME from the layers below; `.wh..wh..opq` empties its directory of what the
  layers below put there (OCI image spec, "Whiteouts"); a layer's own entries are kept whatever the
  order of its tar members;
- every path is resolved inside the root, symlinks in its parents included (a layer cannot write
  through `lib -> /` or `../..`), hard links must point inside the root;
- device nodes and FIFOs are skipped, set-uid bits dropped, owners not kept;
- each uncompressed layer (plain or gzip; zstd is refused) is checked against its `diff_id`, and the
  whole root is capped in bytes and entries (`Limits`).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dnsprobe.errors import SandboxError

_MAX_SYMLINK_HOPS = 40  # as Linux's own limit (ELOOP)
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


class ImageError(SandboxError):
    """An image or tarball that cannot be used as a root file system (what, where, how to fix)."""


@dataclass(frozen=True)
class Limits:
    """Caps on what one image may unpack to; a bigger image is refused in one line."""

    max_bytes: int = 8 * 1024**3
    max_entries: int = 1_000_000


@dataclass(frozen=True)
class Layer:
    member: str  # the layer's path inside the outer tarball
    diff_id: str  # sha256:<hex> of the uncompressed layer, from the config
    media_type: str  # OCI media type, "" for docker save's layer.tar


def clean_name(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")).removeprefix("./")


class _HashingReader(io.RawIOBase):
    """A read-only stream that hashes what passes through it (the uncompressed layer)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        self.sha.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> str:
        while self.read(1 << 20):
            pass  # tarfile stops at the end-of-archive blocks; the padding after them counts too
        return "sha256:" + self.sha.hexdigest()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read() if size is None or size < 0 else self.raw.read(size)
        self.sha.update(data)
        return data


class Unpacker:
    def __init__(self, root: Path, limits: Limits, source: str) -> None:
        self.root = root
        self.limits = limits
        self.source = source
        self.bytes = 0
        self.entries = 0
        self.skipped: list[str] = []

    def apply(self, blob: IO[bytes], layer: Layer) -> None:
        head = blob.read(4)
        rest = io.BufferedReader(_Prefixed(head, blob))
        if "zstd" in layer.media_type or head == b"\x28\xb5\x2f\xfd":
            raise ImageError(
                f"{self.source}: layer {layer.diff_id[:19]} is zstd-compressed, which Python's tarfile "
                "cannot read; save the image with gzip or uncompressed layers"
            )
        stream: IO[bytes] = gzip.GzipFile(fileobj=rest) if head[:2] == b"\x1f\x8b" else rest  # type: ignore[assignment]
        hasher = _HashingReader(stream)
        created: set[str] = set()  # paths this layer wrote: its own opaque marker must not delete them
        try:
            with tarfile.open(fileobj=hasher, mode="r|") as tar:
                for member in tar:
                    self._entry(tar, member, created)
            digest = hasher.drain()
        except (tarfile.TarError, OSError, EOFError) as exc:
            if isinstance(exc, ImageError):
                raise
            raise ImageError(f"{self.source}: layer {layer.member} is damaged ({exc})") from None
        if digest != layer.diff_id:
            raise ImageError(
                f"{self.source}: layer {layer.member} is {digest[:19]}..., but the config says "
                f"{layer.diff_id[:19]}... (damaged or edited tarball)"
            )

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo, created: set[str]) -> None:
        name = clean_name(member.name)
        if name in (".", ""):
            return
        if name.startswith("../") or name == "..":
            raise ImageError(f"{self.source}: layer entry {member.name!r} points outside the root; refused")
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise ImageError(f"{self.source}: more than {self.limits.max_entries} entries; refused")
        parent, base = posixpath.split(name)
        if base == _OPAQUE:
            directory = self.resolve(parent, follow_last=True)
            if directory.is_dir() and not directory.is_symlink():
                for child in directory.iterdir():
                    if posixpath.join(parent, child.name) not in created:
                        remove_path(child)
            return
        if base.startswith(_WHITEOUT):
            remove_path(self.resolve(posixpath.join(parent, base[len(_WHITEOUT) :])))
            return
        target = self.resolve(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        created.add(name)
        if member.ischr() or member.isblk() or member.isfifo():
            kind = "character device" if member.ischr() else "block device" if member.isblk() else "FIFO"
            self.skipped.append(f"/{name} ({kind})")
            return
        if member.isdir():
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                remove_path(target)
            target.mkdir(exist_ok=True)
            target.chmod((member.mode & 0o1777) | 0o700)
            return
        if target.is_symlink() or target.exists():
            remove_path(target)
        if member.issym():
            target.symlink_to(member.linkname)
        elif member.islnk():
            source = self.resolve(clean_name(member.linkname))
            if not os.path.lexists(source) or (source.is_dir() and not source.is_symlink()):
                raise ImageError(f"{self.source}: hard link /{name} -> {member.linkname}: no such file")
            os.link(source, target, follow_symlinks=False)
        elif member.isreg():
            self.bytes += member.size
            if self.bytes > self.limits.max_bytes:
                raise ImageError(
                    f"{self.source}: unpacks to more than {self.limits.max_bytes} bytes; refused"
                )
            data = tar.extractfile(member)
            assert data is not None
            with target.open("wb") as out:
                shutil.copyfileobj(data, out, 1 << 20)
            target.chmod(member.mode & 0o777 | 0o600)
        else:
            self.skipped.append(f"/{name} (tar type {member.type!r})")

    def resolve(self, name: str, *, follow_last: bool = False) -> Path:
        """`name` inside the root, its parents' symlinks followed as the kernel would inside a chroot
        (absolute targets and `..` stay under the root). The last component is not followed."""
        parts = [p for p in name.split("/") if p not in ("", ".")]
        resolved: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = self.root.joinpath(*resolved, part)
            if (parts or follow_last) and candidate.is_symlink():
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise ImageError(f"{self.source}: /{name}: too many levels of symbolic links")
                link = str(candidate.readlink())
                if link.startswith("/"):
                    resolved = []
                parts = [p for p in link.split("/") if p not in ("", ".")] + parts
                continue
            resolved.append(part)
        return self.root.joinpath(*resolved)


class _Prefixed(io.RawIOBase):
    """The bytes already read to sniff the compression, then the rest of the stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        remove_tree(path)
    elif os.path.lexists(path):
        path.unlink()


def remove_tree(path: Path) -> None:
    """rmtree that first makes directories writable (an image may ship 0555 ones)."""
    for dirpath, _dirs, _files in os.walk(path):
        with contextlib.suppress(OSError):
            Path(dirpath).chmod(stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)


def iter_tree(root: Path) -> Iterator[str]:
    """Every path under `root`, relative and sorted (for tests and the report)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for entry in sorted(dirnames + filenames):
            yield entry if rel == "." else f"{rel}/{entry}"
