"""Ctrl-C or SIGTERM in the middle of a long run: the records so far stay, the report is written and marked
interrupted, and every recorded lookup is in the summary (`lookups == ok + sum(failures)`, per mode)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = """
name = "interrupt"
modes = ["go", "godebug-go"]

[load]
users = 2
duration = 600
batch = 100
concurrency = 4

[[load.workloads]]
label = "service"
query = "{rand}.web"

[nameserver]
zone = '''
cluster.local.                   30 SOA ns.cluster.local. h.cluster.local. 1 7200 1800 86400 30
*.web.default.svc.cluster.local. 30 A    10.96.0.10
*.web.default.svc.cluster.local. 30 AAAA fd00:10:96::10
'''
"""


def recorded(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM lookups").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_keeps_every_lookup(tmp_path: Path, probe_cache: Path, signum: int) -> None:
    scenario = tmp_path / "interrupt.toml"
    scenario.write_text(SCENARIO)
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
    run = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            dbs = list(out.glob("*/records.sqlite"))
            if dbs and recorded(dbs[0]) >= 500:
                break
            time.sleep(0.2)
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "no lookups were recorded within 120 s"
        run.send_signal(signum)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 1, (run.returncode, stdout, stderr)
    assert "interrupted" in stderr
    (run_dir,) = out.iterdir()
    for name in ("report.html", "report.md", "summary.json"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is False and summary["interrupted"] is True
    assert any(c["name"] == "run completed" and not c["passed"] for c in summary["checks"])
    db = sqlite3.connect(run_dir / "records.sqlite")
    per_mode = dict(db.execute("SELECT mode, count(*) FROM lookups GROUP BY mode").fetchall())
    by_mode = {m["mode"]: m for m in summary["modes"]}
    assert per_mode.get("go", 0) >= 500, per_mode
    for name, m in by_mode.items():
        assert m["lookups"] == per_mode.get(name, 0), (name, m["lookups"], per_mode)
        assert m["lookups"] == m["ok"] + sum(m["failures"].values()), m
    # The go mode was cut short long before its 600 s: the second mode never started.
    assert by_mode["go"]["status"] == "ran"
    assert by_mode.get("godebug-go", {"lookups": 0})["lookups"] == 0
