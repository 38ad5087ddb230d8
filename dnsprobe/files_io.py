"""Reading the files a user names, with a size limit.

A scenario, summary.json or Dockerfile can be `/dev/zero`, a pipe that never ends or simply huge;
`read_limited` stops one byte past the limit and raises `TooLarge`, an OSError (EFBIG) whose `strerror`
says what the limit is, so every reader's existing `cannot read: {strerror}` line covers it. Trace logs
and binaries are read by their own modules (`tracerun`, `binary.inspection`) with their own limits;
`check_regular` refuses a pipe or device where only a regular file makes sense, before opening it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

MiB = 1 << 20
LIMITS = {  # bytes; generous for the real thing, small enough to refuse /dev/zero quickly
    "scenario": 64 * MiB,  # a zone of a million records fits
    "summary.json": 64 * MiB,
    "Dockerfile": 4 * MiB,
    "binary": 1024 * MiB,  # only named in check_regular's message: inspect reads binaries itself
}
_CHUNK = MiB


class TooLarge(OSError):
    """More bytes than the limit for that kind of file (or not a regular file where one is needed)."""

    def __init__(self, what: str, limit: int, detail: str = "") -> None:
        text = detail or f"larger than {limit // MiB} MiB, the limit for a {what} (is it really one?)"
        super().__init__(errno.EFBIG, text)


def read_limited(source: Path | BinaryIO, what: str, *, regular: bool = False) -> bytes:
    """All of `source` (a path or an open binary file), at most LIMITS[what] bytes; TooLarge beyond.
    With `regular`, a device, pipe or socket is refused at once (a binary is never one)."""
    limit = LIMITS[what]
    if isinstance(source, Path):
        with source.open("rb") as fh:
            return read_limited(fh, what, regular=regular)
    if regular:
        mode = os.fstat(source.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise TooLarge(what, limit, f"not a regular file; a {what} is one")
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = source.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise TooLarge(what, limit)


def check_regular(path: Path, what: str) -> None:
    """TooLarge ("not a regular file") for a device, pipe or socket at `path`, before opening it: opening
    a pipe nobody writes to would wait forever. A missing path is left to the caller's open()."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise TooLarge(what, LIMITS[what], f"not a regular file; a {what} is one")


def read_text_limited(path: Path, what: str) -> str:
    """As `read_limited`, decoded as UTF-8 (UnicodeDecodeError for anything else)."""
    return read_limited(path, what).decode("utf-8")
