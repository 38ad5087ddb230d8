"""The compressed query log: steps while a writer appends, crash-safe reading, bounded disk."""

from __future__ import annotations

from pathlib import Path

from dnsprobe.nameserver import logstore
from dnsprobe.nameserver.querylog import QueryLog, read_querylog


def write_lines(log: QueryLog, start: int, n: int) -> None:
    for i in range(start, start + n):
        log.record(
            "udp",
            ("127.0.0.1", 40000 + i % 1000),
            i % 65536,
            b"\x10" + b"%016x" % i + b"\x03abc\x04test\x00",
            1,
            1232,
            None,
            "NOERROR",
        )
    log.flush()


def test_compaction_keeps_every_line_once(tmp_path: Path) -> None:
    path = tmp_path / "queries.tsv"
    seen: list[bytes] = []
    log = QueryLog(path)
    compactor = logstore.LogCompactor(path, on_lines=seen.append)
    for step in range(5):
        write_lines(log, step * 20_000, 20_000)
        compactor.step()
        log._file.write("1.0\tudp\t127.0.0.1\t1\t")  # a line half-written when the step runs
        log._file.flush()
        compactor.step()
        log._file.write("2\tabc.test.\tA\t-\t-\tNOERROR\n")
        log._file.flush()
    assert path.stat().st_blocks * 512 < path.stat().st_size / 4  # compressed parts are holes now
    # a crash here: the reader sees the frames, then the TSV from where they end
    mid = list(read_querylog(logstore.querylog_lines(path)))
    assert len(mid) == 5 * 20_001
    log.close()
    compactor.finish()
    assert not path.exists() and logstore.compressed_path(path).exists()
    final = list(read_querylog(logstore.querylog_lines(path)))
    assert final == mid
    assert [e.id for e in final[:3]] == [0, 1, 2]
    assert sum(chunk.count(b"\n") for chunk in seen) == 5 * 20_001 + 1  # with the header
    assert logstore.disk_bytes(path) < 5 * 20_001 * 50 / 5


def test_a_cut_frame_reads_on_from_the_tsv(tmp_path: Path) -> None:
    path = tmp_path / "queries.tsv"
    with QueryLog(path) as log:
        write_lines(log, 0, 1000)
    text = path.read_bytes()
    zst = logstore.compressed_path(path)
    import zstandard

    frame = zstandard.ZstdCompressor().compress(text[: len(text) // 2])
    zst.write_bytes(frame[: len(frame) - 7])  # the harness died while writing the frame
    lines = list(read_querylog(logstore.querylog_lines(path)))
    assert [e.id for e in lines] == list(range(1000))


def test_wire_totals_kept_while_compacting_equal_reading_the_whole_log(tmp_path: Path) -> None:
    from dnsprobe.analyse import timeline
    from dnsprobe.analyse.wire_rollup import WireCounter, read_wire_view
    from dnsprobe.codec.names import workload_pattern
    from dnsprobe.load import records

    path, db = tmp_path / "queries.tsv", tmp_path / "records.sqlite"
    records.connect(db).close()
    patterns = [("svc", workload_pattern("{rand}.abc", ["test"])), ("none", workload_pattern("x.y", []))]
    counter = WireCounter(db, "go", patterns)

    def on_step(chunk: bytes, covered: int, zst_size: int) -> None:
        counter.count(chunk)
        counter.save(covered, zst_size)

    log = QueryLog(path)
    compactor = logstore.LogCompactor(path, on_step=on_step)
    for step in range(3):
        write_lines(log, step * 5000, 5000)
        log.record("tcp", ("127.0.0.1", 53000 + step), 7, b"\x01x\x01y\x00", 28, None, "drop_aaaa", "drop")
        log.flush()
        compactor.step()
    write_lines(log, 99_000, 777)  # after the last step: the reader adds these from the log
    log.close()
    whole = timeline.read_wire_view(logstore.querylog_lines(path), patterns)
    resumed = read_wire_view(db, "go", path, patterns)
    assert resumed == whole
    assert whole.queries == 3 * 5001 + 777 and whole.faults == {"drop_aaaa": 3}
    compactor.finish()
    assert read_wire_view(db, "go", path, patterns) == whole
