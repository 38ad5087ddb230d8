"""Bounded storage: HdrHistogram rollups written with the records kept, and the analysis from them."""

from __future__ import annotations

import functools
import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from dnsprobe.analyse.figures import summarise_mode
from dnsprobe.load import records, rollups
from dnsprobe.scenario import Workload

OUTCOMES = ["ok"] * 90 + ["timeout"] * 6 + ["not_found"] * 3 + ["temporary"]


def synthetic_rows(n: int, seed: int, t0: int = 1_700_000_000 * 10**9) -> list[records.Row]:
    rng = random.Random(seed)
    rows: list[records.Row] = []
    for i in range(n):
        start = t0 + i * 100_000  # 10,000 lookups/s
        outcome = rng.choice(OUTCOMES)
        latency = int(rng.lognormvariate(14.0, 0.8)) if outcome != "timeout" else int(rng.gauss(5e9, 1e7))
        workload = "a" if i % 3 else "b"
        rows.append(("run", "go", workload, "host", f"n{i}", start - 1000, start, latency, outcome, "", 1))
    return rows


def test_bucket_indexes_are_hdrhistograms() -> None:
    values = np.concatenate(
        [np.arange(1, 5000), np.random.default_rng(1).integers(1, rollups.HIGHEST_NS, 20000), [10**13]]
    )
    h = rollups.new_histogram()
    for v in values:
        h.record_value(int(min(v, rollups.HIGHEST_NS)))
    ours = np.bincount(rollups.bucket_indexes(values), minlength=rollups.COUNTS_LEN)
    theirs = np.frombuffer(h.counts, dtype=np.uint64, count=rollups.COUNTS_LEN).astype(np.int64)
    assert np.array_equal(ours, theirs)
    blob = rollups.encode_counts(ours)
    decoded = HdrHistogram.decode(blob)  # the standard encoding: any HdrHistogram library reads it
    assert decoded.get_total_count() == values.size
    assert decoded.get_value_at_percentile(99) / 1e6 == pytest.approx(rollups.percentile_ms(ours, 99))


@pytest.mark.parametrize("keep", ["failures", "sample"])
def test_rollups_give_the_figures_of_all_records(tmp_path: Path, keep: str) -> None:
    rows = synthetic_rows(60_000, seed=7)
    full, bounded = tmp_path / "full.sqlite", tmp_path / "bounded.sqlite"
    now = [0.0]
    with (
        rollups.RollupWriter(full, keep="all", clock=lambda: now[0]) as a,
        rollups.RollupWriter(bounded, keep=keep, clock=lambda: now[0], rng=random.Random(3)) as b,  # type: ignore[arg-type]
    ):
        for i in range(0, len(rows), 500):  # batches, one simulated second apart every 20 batches
            a.append(rows[i : i + 500])
            b.append(rows[i : i + 500])
            now[0] += 0.05
    failures = sum(1 for r in rows if r[8] != "ok")
    kept = records.count(bounded, "go")
    assert records.count(full, "go") == len(rows)
    if keep == "failures":
        assert kept == failures
    else:
        sampled = kept - failures
        assert 0 < sampled <= rollups.SAMPLE_PER_SECOND * 3 + 20 * rollups.SAMPLE_PER_SECOND

    workloads = [Workload(label="a", query="{rand}.a.test"), Workload(label="b", query="{rand}.b.test")]
    summarise = functools.partial(
        summarise_mode, mode="go", workloads=workloads, search=[], querylog=None, trace=None
    )
    exact = summarise(records_path=full)
    rolled = summarise(records_path=bounded)
    assert "storage" not in exact and rolled["storage"]["figures_from"] == "rollups"
    assert rolled["lookups"] == exact["lookups"] == len(rows)
    assert rolled["ok"] == exact["ok"]
    assert rolled["failures"] == exact["failures"]
    assert rolled["lookups"] == rolled["ok"] + sum(rolled["failures"].values())
    for key in ("p50", "p90", "p99", "max"):
        assert rolled["latency_ms"][key] == pytest.approx(exact["latency_ms"][key], rel=0.01), key
    for mine, theirs in zip(rolled["workloads"], exact["workloads"], strict=True):
        assert mine["lookups"] == theirs["lookups"] and mine["failures"] == theirs["failures"]
        assert mine["latency_ms"]["p99"] == pytest.approx(theirs["latency_ms"]["p99"], rel=0.01)
    assert sum(rolled["timeline"]["lookups"]) == len(rows)
    assert (
        rolled["timeline"]["failures"]["timeout"]
        and sum(rolled["timeline"]["failures"]["timeout"]) == (exact["failures"]["timeout"])
    )
    # the lookups that waited out the (default 5 s) timeout, per bin: here exactly the timeouts
    assert sum(rolled["timeline"]["waited_timeout"]) == sum(exact["timeline"]["waited_timeout"])
    assert sum(exact["timeline"]["waited_timeout"]) == exact["failures"]["timeout"]
    for label in ("a", "b"):  # each workload's p99 per bin, from the histograms
        mine = [v for v in rolled["timeline"]["p99_by_workload"][label] if v is not None]
        assert len(mine) == len(rolled["timeline"]["start_s"])
        assert max(mine) == pytest.approx(max(exact["timeline"]["p99_by_workload"][label]), rel=0.05)
    assert [p["k"] for p in rolled["timeout_peaks"]] == [p["k"] for p in exact["timeout_peaks"]] == [1]
    assert rolled["timeout_peaks"][0]["lookups"] == pytest.approx(
        exact["timeout_peaks"][0]["lookups"], rel=0.01
    )
    assert rolled["latency_cdf"]["share"][-1] == 1.0


def test_a_flush_is_one_transaction(tmp_path: Path) -> None:
    """Records and rollups of the same lookups land together; nothing before the first flush."""
    path = tmp_path / "r.sqlite"
    now = [0.0]
    writer = rollups.RollupWriter(path, keep="all", clock=lambda: now[0])
    rows = synthetic_rows(1000, seed=1)
    writer.append(rows[:500])
    assert records.count(path) == 0 and rollups.rollup_lookups(path, "go") == 0
    now[0] += 1.5
    writer.append(rows[500:])
    assert records.count(path) == 1000 == rollups.rollup_lookups(path, "go")
    writer.close()
    db = sqlite3.connect(path)
    second_rows = db.execute("SELECT COUNT(*) FROM rollups").fetchone()[0]
    assert second_rows >= 2  # one per (second, workload, outcome) at least


def test_keep_records_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep_records 'some'"):
        rollups.RollupWriter(tmp_path / "r.sqlite", keep="some")  # type: ignore[arg-type]


def test_live_stats_count_from_rollups_when_records_are_sampled(tmp_path: Path) -> None:
    from dnsprobe.load.live import LiveStats

    path = tmp_path / "records.sqlite"
    now = [0.0]
    live = LiveStats(path, "go", clock=lambda: now[0])
    rows = synthetic_rows(5000, seed=2)
    with rollups.RollupWriter(path, keep="failures", clock=lambda: now[0]) as writer:
        writer.append(rows)
        now[0] += 2
        writer.flush()
        snap = live.poll()
    failures = sum(1 for r in rows if r[8] != "ok")
    assert records.count(path) == failures < snap.lookups == 5000
    assert sum(snap.failures.values()) == failures
    exact = float(np.percentile([r[7] for r in rows], 99)) / 1e6
    assert snap.p99_ms == pytest.approx(exact, rel=0.01)
    assert snap.disk_bytes > 0
    assert live.poll().lookups == 5000  # nothing counted twice


def test_disk_estimate_for_long_runs() -> None:
    from dnsprobe.load import storage
    from dnsprobe.scenario import Load

    workloads = [Workload(label="a", query="{rand}.a.test")]
    short = Load(workloads=workloads)
    assert storage.estimate_text(short, 10, 3) == ""
    everything = Load(workloads=workloads, duration=3600)
    sampled = Load(workloads=workloads, duration=3600, keep_records="sample")
    assert storage.compresses_querylog(sampled) and not storage.compresses_querylog(everything)
    assert storage.estimate_bytes(sampled, 3600, 1) < 1e9 < storage.estimate_bytes(everything, 3600, 1)
    text = storage.estimate_text(everything, 3600, 2)
    assert text.startswith("disk estimate: about") and 'keep_records = "sample"' in text
