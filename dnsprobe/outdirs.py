"""The directories a command writes to (`--out`, `--cache`), checked before any work, and a full disk
explained in one line that says where the records are."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dnsprobe.errors import DiskFull, DnsProbeError, is_disk_full

# A run adds <run-id>/pods/<mode>/... (about 200 bytes) below --out: keep the whole path within PATH_MAX.
_PATH_MAX = os.pathconf("/", "PC_PATH_MAX") if hasattr(os, "pathconf") else 4096
_RUN_PATH_ROOM = 300
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def writable_dir(path: Path, option: str) -> None:
    """Create `path` if needed and make sure files can be written in it; DnsProbeError in one line for a
    file, a device (/dev/null), a path under a file, a read-only place or a path too long."""
    text = str(path)
    shown = f"{option} {text if len(text) <= 100 else text[:60] + '...' + text[-20:]}"
    if len(os.fsencode(path.absolute())) + _RUN_PATH_ROOM > _PATH_MAX:
        raise DnsProbeError(f"{shown}: path too long (the run's files below it would pass {_PATH_MAX} bytes)")
    try:
        if path.exists() and not path.is_dir():
            raise DnsProbeError(f"{shown}: is not a directory; {option} takes a directory")
        # Nothing is created here: a run refused later leaves no directory behind. The nearest existing
        # directory on the path must take a new entry (the run creates the rest).
        existing = path
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise DnsProbeError(f"{shown}: a part of the path is a file, not a directory")
        with tempfile.TemporaryDirectory(dir=existing, prefix=".dnsprobe-write-check-"):
            pass
    except FileExistsError:
        raise DnsProbeError(f"{shown}: a part of the path is a file, not a directory") from None
    except OSError as exc:
        why = {
            errno.ENOTDIR: "a part of the path is a file, not a directory",
            errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied",
            errno.ENAMETOOLONG: "a name in the path is too long",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        if exc.errno in _DISK_FULL:
            why = "no space left on the device"
        raise DnsProbeError(f"{shown}: cannot write there: {why}; give a writable directory") from None


@contextlib.contextmanager
def disk_full_says_where(out_dir: Path, before: set[Path]) -> Iterator[None]:
    """Turn a full disk while a run writes under `out_dir` into DiskFull naming the run's records.
    `before`: what was in `out_dir` before the run, so the run's own directory can be told apart."""
    try:
        yield
    except DiskFull:
        raise
    except (OSError, sqlite3.Error, DnsProbeError) as exc:
        if not is_disk_full(exc) and not _nearly_full(out_dir):
            raise
        runs = (
            sorted(p for p in out_dir.iterdir() if p not in before and p.is_dir()) if out_dir.is_dir() else []
        )
        raise DiskFull(getattr(exc, "filename", None) or out_dir, runs[-1] if runs else None) from exc


def _nearly_full(path: Path) -> bool:
    """A load generator that died of a full disk reports its own error; the disk itself says why."""
    try:
        return shutil.disk_usage(path).free < 1 << 20
    except OSError:
        return False
