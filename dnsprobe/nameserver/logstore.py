"""The query log kept small while a long run goes: `queries.tsv` compressed into `queries.tsv.zst`.

Either engine appends text lines to `queries.tsv` (see querylog.py). A `LogCompactor` in the harness
takes, every few seconds, the whole lines appended since its last step, appends them to `queries.tsv.zst`
as one zstd frame, and then frees the disk blocks they took in `queries.tsv` (a punched hole: the
engines keep appending at their offset, unaware). At the end of the mode the rest is compressed and the
TSV removed. The disk holds the compressed log plus a few seconds of text.

Readers use `querylog_lines(path)`: the frames of `.zst` and then the TSV from the byte the frames
reach, so a run that the harness left half-way (crash, kill) reads complete, each line once. A frame cut
by a crash counts only the bytes it decompresses to, and the TSV is read on from there (holes are only
punched below what complete frames hold).

Measured on a synthetic query log (`dnsprobe bench soak`): about 4.6 bytes per line of about 113 (4%).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import zstandard

ZST_SUFFIX: Final = ".zst"
# zstd level 1 with the lazy2 strategy: 4.6 bytes per synthetic query-log line at about 100 MB/s
# (level 3: 6.2 at 300 MB/s; level 19: 4.6 at 1 MB/s); see README "Soak runs" for the formats compared.
PARAMETERS: Final = zstandard.ZstdCompressionParameters.from_level(1, strategy=zstandard.STRATEGY_LAZY2)
_FALLOC_FL_KEEP_SIZE: Final = 0x01
_FALLOC_FL_PUNCH_HOLE: Final = 0x02
_BLOCK: Final = 4096
_CHUNK: Final = 1 << 20


def compressed_path(path: Path) -> Path:
    return path.with_name(path.name + ZST_SUFFIX)


def querylog_exists(path: Path) -> bool:
    return path.exists() or compressed_path(path).exists()


def disk_bytes(path: Path) -> int:
    """Bytes on disk for the log (allocated blocks: punched holes do not count)."""
    total = 0
    for p in (path, compressed_path(path)):
        with contextlib.suppress(FileNotFoundError):
            total += p.stat().st_blocks * 512
    return total


def _punch_hole(fd: int, offset: int, length: int) -> bool:
    libc_name = ctypes.util.find_library("c")
    if length <= 0 or libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fallocate = libc.fallocate
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    return bool(fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0)


class LogCompactor:
    """Compresses a growing query log step by step (`step`, or a thread with `start`/`finish`).

    `on_lines(chunk)`: called with each chunk of whole lines as they are taken (bytes), e.g. to count them
    for live metrics; `on_step(chunk, covered, zst_size)` also gets the log bytes taken so far and the
    size of the .zst then (a frame boundary), for totals that a reader continues from there.
    `compress=False` only tails the log for `on_lines` and leaves it as it is."""

    def __init__(
        self,
        path: Path,
        *,
        compress: bool = True,
        on_lines: Callable[[bytes], None] | None = None,
        on_step: Callable[[bytes, int, int], None] | None = None,
        interval_s: float = 2.0,
    ) -> None:
        self.path = path
        self.compress = compress
        self.on_lines = on_lines
        self.on_step = on_step
        self.interval_s = interval_s
        self.offset = 0  # bytes of the TSV taken so far
        self._punched = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._compressor = zstandard.ZstdCompressor(compression_params=PARAMETERS)
        zst = compressed_path(path)
        if compress and zst.exists():  # resumed: the frames already hold this much
            self.offset = sum(len(chunk) for chunk in _frames_text(zst))

    def step(self) -> int:
        """Take the whole lines appended since the last step; returns their byte count."""
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDWR if self.compress else os.O_RDONLY)
            except FileNotFoundError:
                return 0
            try:
                size = os.fstat(fd).st_size
                if size <= self.offset:
                    return 0
                data = os.pread(fd, size - self.offset, self.offset)
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    return 0
                chunk = data[:cut]
                zst_size = 0
                if self.compress:
                    with compressed_path(self.path).open("ab") as out:
                        out.write(self._compressor.compress(chunk))
                        out.flush()
                        os.fsync(out.fileno())
                        zst_size = out.tell()
                self.offset += cut
                if self.compress:
                    upto = self.offset // _BLOCK * _BLOCK
                    if upto > self._punched and _punch_hole(fd, self._punched, upto - self._punched):
                        self._punched = upto
            finally:
                os.close(fd)
            if self.on_step is not None:  # under the lock: totals and position stay together
                self.on_step(chunk, self.offset, zst_size)
        if self.on_lines is not None:
            self.on_lines(chunk)
        return cut

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.step()

    def start(self) -> LogCompactor:
        self._thread = threading.Thread(target=self._run, name="querylog-compactor", daemon=True)
        self._thread.start()
        return self

    def finish(self) -> None:
        """Stop the thread, take what is left and (compressing) remove the TSV: the .zst holds it all."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.step()
        if self.compress and compressed_path(self.path).exists():
            with contextlib.suppress(FileNotFoundError):
                if self.path.stat().st_size == self.offset:
                    self.path.unlink()


def _frames_text(zst: Path, offset: int = 0) -> Iterator[bytes]:
    """The decompressed bytes of a .zst log from a frame boundary, a cut last frame giving what it holds."""
    with zst.open("rb") as raw:
        raw.seek(offset)
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        while True:
            try:
                chunk = reader.read(_CHUNK)
            except zstandard.ZstdError:
                return
            if not chunk:
                return
            yield chunk


def querylog_lines(path: Path, *, start: int = 0, zst_offset: int = 0) -> Iterator[str]:
    """Every line of the query log, from `.zst` and then from the TSV's part not compressed yet.

    `start`, `zst_offset`: begin at log byte `start`, whose frames begin at `zst_offset` in the .zst
    (a position a compactor step reported); the default reads it all."""
    zst = compressed_path(path)
    taken = start
    pending = b""
    if zst.exists():
        for chunk in _frames_text(zst, zst_offset):
            taken += len(chunk)
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line.decode("utf-8", "replace") + "\n"
    if path.exists():
        with path.open("rb") as tsv:
            tsv.seek(taken)
            first = True
            for raw in tsv:
                if first and pending:
                    raw, pending = pending + raw, b""
                first = False
                yield raw.decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")  # a line without its newline: readers drop it if cut
