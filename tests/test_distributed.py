"""Locust's own distributed mode on this machine: a master and two workers on 127.0.0.1, driving one probe;
the master's totals are the sum of both workers' lookups, and every lookup is in the one records store."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dnsprobe.sandbox import Pod
from tests.conftest import quickstart_pod

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = '[{"label": "svc", "query": "{rand}.web", "kind": "host"}]'

pytestmark = pytest.mark.slow


@pytest.fixture
def pod(probe_cache: Path) -> Iterator[Pod]:
    with quickstart_pod(probe_cache, "dp-dist-") as the_pod:
        yield the_pod


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_master_and_two_workers(pod: Pod, tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "records.sqlite"
    locust = [sys.executable, "-m", "locust", "-f", "dnsprobe/load/locustfile.py"]
    master = subprocess.Popen(
        [
            *locust,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            "2",
            "--expect-workers-max-wait",
            "60",
            "--headless",
            "--host",
            pod.address,
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "4s",
            "--json-file",
            str(tmp_path / "stats"),
            "--dns-workloads",
            WORKLOADS,
            "--dns-batch",
            "50",
            "--dns-records",
            str(db),
            "--dns-run",
            "dist",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Workers get --host and the --dns-* options from the master, as Locust sends custom arguments along.
    workers = [
        subprocess.Popen(
            [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        master_out, _ = master.communicate(timeout=120)
        worker_outs = [w.communicate(timeout=60)[0] for w in workers]
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
                p.communicate()
    workers_said = "\n--- workers ---\n" + "\n".join(o[-3000:] for o in worker_outs)
    assert master.returncode == 0, master_out[-3000:] + workers_said
    assert all(w.returncode == 0 for w in workers), [o[-1000:] for o in worker_outs]
    assert "2 workers connected" in master_out or "(2 total)" in master_out, master_out[-3000:]
    stats = {e["name"]: e for e in json.loads((tmp_path / "stats.json").read_text())}
    con = sqlite3.connect(db)
    recorded, names, runs = con.execute(
        "SELECT count(*), count(DISTINCT name), count(DISTINCT run) FROM lookups"
    ).fetchone()
    con.close()
    # Every lookup Locust counted is recorded. The master can count fewer: with -t it writes its stats when
    # the time is up, and a worker's last report (every 3 s) may arrive after that; the records are whole.
    assert 0 < stats["svc"]["num_requests"] <= recorded
    assert stats["svc"]["num_failures"] == 0
    assert names == recorded  # each worker's probe names are fresh: no lookup was merged
    assert runs == 1
