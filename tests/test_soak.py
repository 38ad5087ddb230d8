"""Soak-shaped runs with a real probe: rollups against the full records of the same run, the accounting
identity, the Prometheus endpoint scraped while the run goes, and Ctrl-C with bounded storage."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dnsprobe.analyse import rollup_summary
from dnsprobe.load import records, rollups
from dnsprobe.load.metrics import MetricsError, parse_address
from dnsprobe.nameserver import logstore
from dnsprobe.nameserver.querylog import read_querylog

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = """
name = "soak"
modes = ["go"]

[load]
users = 2
duration = {duration}
batch = 200
concurrency = 8
keep_records = "{keep}"

[[load.workloads]]
label = "service"
query = "{{rand}}.web"

[nameserver]
zone = '''
cluster.local.                   30 SOA ns.cluster.local. h.cluster.local. 1 7200 1800 86400 30
*.web.default.svc.cluster.local. 30 A    10.96.0.10
*.web.default.svc.cluster.local. 30 AAAA fd00:10:96::10
'''
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_run(
    tmp_path: Path, probe_cache: Path, *, duration: int, keep: str, extra: list[str]
) -> tuple[subprocess.Popen[str], Path]:
    scenario = tmp_path / "soak.toml"
    scenario.write_text(SCENARIO.format(duration=duration, keep=keep))
    out = tmp_path / "runs"
    argv = [
        sys.executable,
        "-m",
        "dnsprobe",
        "run",
        str(scenario),
        "--out",
        str(out),
        "--cache",
        str(probe_cache),
    ]
    run = subprocess.Popen(
        [*argv, *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return run, out


def wait_for_rollups(out: Path, run: subprocess.Popen[str], at_least: int, timeout: float = 180) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.poll() is None:
        dbs = list(out.glob("*/records.sqlite"))
        if dbs and rollups.rollup_lookups(dbs[0], "go") >= at_least:
            return dbs[0]
        time.sleep(0.5)
    raise AssertionError(f"no {at_least} lookups within {timeout} s: {run.poll()}")


def scrape(port: int) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


@pytest.mark.slow
def test_soak_run_rollups_match_the_records_and_metrics_are_served(tmp_path: Path, probe_cache: Path) -> None:
    port = free_port()
    run, out = start_run(
        tmp_path, probe_cache, duration=45, keep="all", extra=["--metrics", f"127.0.0.1:{port}"]
    )
    try:
        wait_for_rollups(out, run, 2000)
        time.sleep(3)  # the compactor's and the exporter's next rounds
        metrics = scrape(port)
    finally:
        _, stderr = run.communicate(timeout=400)
    assert run.returncode in (0, 1), stderr
    lookups = [
        v for name, labels, v in metrics["dns_lookups"] if labels == {"mode": "go", "workload": "service"}
    ]
    assert lookups and lookups[0] >= 2000
    assert "dns_timeouts" in metrics and "dns_errors" in metrics
    buckets = [
        (labels["le"], v)
        for name, labels, v in metrics["dns_lookup_latency_seconds"]
        if name.endswith("_bucket")
    ]
    assert buckets[-1] == ("+Inf", lookups[0])
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    qtypes = {labels["qtype"] for _, labels, v in metrics["dns_server_queries"] if v > 0}
    assert {"A", "AAAA"} <= qtypes

    run_dir = next(out.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    mode = summary["modes"][0]
    db = run_dir / "records.sqlite"
    n = records.count(db, "go")
    assert mode["lookups"] == n == rollups.rollup_lookups(db, "go") > 10_000
    assert mode["lookups"] == mode["ok"] + sum(mode["failures"].values())
    # The same run's figures from its rollups, as a run that did not keep every record reports them.
    rolled = rollup_summary.rollup_figures(
        db, "go", workloads=["service"], timeout_s=5.0, open_loop=False, records_count=0
    )
    assert rolled is not None
    assert (rolled["lookups"], rolled["ok"], rolled["failures"]) == (
        mode["lookups"],
        mode["ok"],
        mode["failures"],
    )
    for key in ("p50", "p90", "p99"):
        assert rolled["latency_ms"][key] == pytest.approx(mode["latency_ms"][key], rel=0.01), key


@pytest.mark.slow
def test_ctrl_c_keeps_a_consistent_bounded_store(tmp_path: Path, probe_cache: Path) -> None:
    run, out = start_run(tmp_path, probe_cache, duration=600, keep="sample", extra=[])
    try:
        wait_for_rollups(out, run, 20_000)
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, stderr
    run_dir = next(out.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is True
    mode = summary["modes"][0]
    db = run_dir / "records.sqlite"
    assert mode["storage"]["figures_from"] == "rollups"
    assert mode["lookups"] == rollups.rollup_lookups(db, "go") >= 20_000
    assert mode["lookups"] == mode["ok"] + sum(mode["failures"].values())
    kept = records.count(db, "go")
    assert 0 < kept < mode["lookups"] / 5  # a bounded sample
    failed_records = (
        sqlite3.connect(db).execute("SELECT COUNT(*) FROM lookups WHERE outcome != 'ok'").fetchone()[0]
    )
    assert failed_records == sum(mode["failures"].values())  # every failure keeps its record
    querylog = run_dir / "pods" / "go" / "queries.tsv"
    assert logstore.compressed_path(querylog).exists() and not querylog.exists()
    entries = sum(1 for _ in read_querylog(logstore.querylog_lines(querylog)))
    assert entries == mode["wire_queries"] >= 2 * mode["lookups"] * 0.9


def test_metrics_address_must_be_loopback() -> None:
    assert parse_address("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_address("[::1]:9464") == ("::1", 9464)
    for bad in ("0.0.0.0:9464", "10.1.2.3:80", "localhost:9464", "127.0.0.1", "127.0.0.1:0"):
        with pytest.raises(MetricsError, match="--metrics"):
            parse_address(bad)
