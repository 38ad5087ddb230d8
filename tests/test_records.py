"""The records store: the documented columns, appends from several writers, incremental reads for the
live display, and the live figures computed from them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dnsprobe.load import records
from dnsprobe.load.live import LiveStats

MS = 1_000_000


def row(mode: str, latency_ms: float, outcome: str = "ok", intended: int = 0, start: int = 0) -> records.Row:
    return ("run", mode, "svc", "host", "x.web", intended, start, int(latency_ms * MS), outcome, "", 2)


def test_schema_has_the_documented_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    records.connect(path).close()
    db = sqlite3.connect(path)
    columns = [r[1] for r in db.execute("PRAGMA table_info(lookups)")]
    assert tuple(columns) == records.COLUMNS
    for column in columns:
        assert f"    {column} " in records.__doc__, f"{column} is not documented in records.py"


def test_writers_append_and_tail_reads_only_new_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    tail = records.Tail(path)
    assert tail.read() == []  # no file yet
    with records.RecordWriter(path) as a, records.RecordWriter(path) as b:
        a.append([row("go", 1), row("go", 2)])
        b.append([row("cgo", 3, "timeout")])
        first = tail.read()
        assert [(r[0], r[3], r[4]) for r in first] == [
            ("go", MS, "ok"),
            ("go", 2 * MS, "ok"),
            ("cgo", 3 * MS, "timeout"),
        ]
        assert tail.read() == []
        a.append([row("go", 4)])
        assert [r[3] for r in tail.read()] == [4 * MS]
    assert records.count(path) == 4 and records.count(path, "go") == 3
    records.add_index(path)
    assert [lk.latency_ns for lk in records.read_mode(path, "cgo")] == [3 * MS]


def test_live_stats_per_mode(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    now = [100.0]
    live = LiveStats(path, "go", clock=lambda: now[0])
    assert live.poll().lookups == 0
    with records.RecordWriter(path) as w:
        w.append(
            [row("go", ms) for ms in range(1, 101)] + [row("go", 500, "timeout"), row("cgo", 9000, "other")]
        )
        snap = live.poll()
        assert snap.lookups == 101
        assert snap.failures == {"timeout": 1}  # the cgo row belongs to another mode
        assert snap.p99_ms is not None and 99 <= snap.p99_ms <= 500
        assert snap.lookups_per_s > 0
        assert "101 lookups" in snap.describe() and "timeout 1" in snap.describe()
        now[0] += 10  # the window has passed: no rate, no p99, totals stay
        later = live.poll()
        assert (later.lookups, later.lookups_per_s, later.p99_ms) == (101, 0.0, None)


def test_live_stats_open_loop_counts_lateness(tmp_path: Path) -> None:
    """Open loop: the live p99 runs from the intended start, so a lookup that started 50 ms late shows."""
    path = tmp_path / "r.sqlite"
    with records.RecordWriter(path) as w:
        w.append([row("go", 1, intended=1_000 * MS, start=1_050 * MS)])
    assert LiveStats(path, "go", open_loop=True).poll().p99_ms == 51
    assert LiveStats(path, "go").poll().p99_ms == 1


def test_append_rate_is_measured(tmp_path: Path) -> None:
    """The bench measures the append rate; here only that it measures something and leaves nothing."""
    from dnsprobe.bench.fidelity import measure_record_rate

    assert measure_record_rate(tmp_path, rows=2000, batch=500) > 0
    assert list(tmp_path.iterdir()) == []
