"""The load stage with real Locust against a real probe in a real pod: plain `locust -f` headless, several
Locust processes into one records store, open loop with intended starts, and the shapes."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dnsprobe.bench.fidelity import ZONE
from dnsprobe.load.runner import LOCUSTFILE, SHAPES, auto_processes, locust_argv
from dnsprobe.load.users import users_at
from dnsprobe.sandbox import Pod
from dnsprobe.scenario import Load, Workload
from tests.conftest import quickstart_pod

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = '[{"label": "svc", "query": "{rand}.web", "kind": "host"}]'


@pytest.fixture(scope="module")
def pod(probe_cache: Path) -> Iterator[Pod]:
    with quickstart_pod(probe_cache, "dp-load-") as the_pod:
        yield the_pod


def locust(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "locust", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def rows(db_path: Path, query: str = "SELECT count(*) FROM lookups") -> list[tuple[object, ...]]:
    db = sqlite3.connect(db_path)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def lookups(db_path: Path) -> int:
    """How many lookups the records database holds."""
    ((count,),) = rows(db_path)
    assert isinstance(count, int), count
    return count


def locust_requests(json_file: Path) -> dict[str, tuple[int, int]]:
    """{name: (requests, failures)} from Locust's final stats (--json-file, written after the users stopped;
    the CSV lags by up to a second), aggregated over every Locust process."""
    stats = json.loads(json_file.read_text())
    return {e["name"]: (e["num_requests"], e["num_failures"]) for e in stats}


@pytest.mark.slow
def test_plain_locust_headless_reports_every_lookup(pod: Pod, tmp_path: Path) -> None:
    """What a Locust user would type: `locust -f dnsprobe/load/locustfile.py --host unix://...`."""
    db = tmp_path / "records.sqlite"
    locust(
        "-f",
        "dnsprobe/load/locustfile.py",
        "--headless",
        "--host",
        pod.address,
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "3s",
        "--json-file",
        str(tmp_path / "l"),
        "--dns-workloads",
        WORKLOADS,
        "--dns-batch",
        "50",
        "--dns-records",
        str(db),
        "--dns-run",
        "plain",
    )
    stats = locust_requests(tmp_path / "l.json")
    recorded = lookups(db)
    assert stats["svc"][0] == recorded > 0, (stats, recorded)
    assert stats["svc"][1] == 0
    names = rows(db, "SELECT count(DISTINCT name), min(latency_ns), min(answers) FROM lookups")[0]
    assert names[0] == recorded, "every lookup asks a fresh name"
    assert int(str(names[1])) > 0 and names[2] == 2  # A and AAAA of *.web.default.svc.cluster.local
    assert rows(db, "SELECT DISTINCT run, mode, workload, kind, outcome FROM lookups") == [
        ("plain", "probe", "svc", "host", "ok")
    ]


@pytest.mark.slow
def test_several_processes_write_one_store(pod: Pod, tmp_path: Path) -> None:
    load = Load(
        users=2,
        batch=50,
        concurrency=4,
        timeout_ms=5000,
        workloads=[Workload(label="svc", query="{rand}.web")],
    )
    db = tmp_path / "records.sqlite"
    argv = locust_argv(
        address=pod.address,
        load=load,
        seconds=3,
        mode="go",
        run_id="procs",
        records_path=db,
        csv_prefix=tmp_path / "l",
        processes=2,
    )
    assert argv[argv.index("--processes") + 1] == "2"
    locust(*argv[3:], "--json-file", str(tmp_path / "l"))
    recorded = lookups(db)
    assert locust_requests(tmp_path / "l.json")["svc"][0] == recorded > 0


def test_auto_processes_leave_cores_to_the_probe() -> None:
    load = Load(users=4, workloads=[Workload(label="svc", query="{rand}.web")])
    assert auto_processes(load, cpus=2) == 1
    assert auto_processes(load, cpus=16) == 4
    assert auto_processes(load.model_copy(update={"users": 2}), cpus=64) == 2  # one user per process at most
    assert auto_processes(load.model_copy(update={"processes": 3}), cpus=2) == 3


@pytest.mark.slow
def test_open_loop_keeps_the_timetable(pod: Pod, tmp_path: Path) -> None:
    """200 lookups/s in batches of 40: intended starts 5 ms apart with no gaps between batches, so a stall
    of the generator would show up as lateness (start_ns - intended_ns) instead of vanishing."""
    db = tmp_path / "records.sqlite"
    locust(
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        pod.address,
        "-u",
        "1",
        "-t",
        "3s",
        "--dns-workloads",
        WORKLOADS,
        "--dns-batch",
        "40",
        "--dns-concurrency",
        "8",
        "--dns-user-rate",
        "200",
        "--dns-records",
        str(db),
    )
    data = rows(db, "SELECT intended_ns, start_ns, latency_ns FROM lookups ORDER BY intended_ns")
    intended = [int(str(r[0])) for r in data]
    assert 300 <= len(intended) <= 800, len(intended)  # ~3 s at 200/s; Locust's start and stop are loose
    gaps = {round((b - a) / 1e6, 1) for a, b in itertools.pairwise(intended)}
    assert gaps == {5.0}, gaps
    late = sorted(int(str(r[1])) - int(str(r[0])) for r in data)
    assert late[0] >= 0, "a lookup started before its intended time"
    assert late[len(late) // 2] < 50e6, "the median lookup started more than 50 ms late at 200/s"


def test_shapes() -> None:
    def at(shape: str, t: float) -> int:
        return users_at(shape, t, users=8, run_time=30, ramp_seconds=0, spike_users=40)

    assert [at("ramp", t) for t in (0, 3.75, 15, 29.9)] == [1, 1, 4, 8]
    assert [at("spike", t) for t in (0, 9.9, 10, 19.9, 20, 29)] == [8, 8, 40, 40, 8, 8]
    assert [at("steady", t) for t in (0, 15, 29)] == [8, 8, 8]
    assert users_at("ramp", 5, users=8, run_time=30, ramp_seconds=10, spike_users=0) == 4


@pytest.mark.slow
def test_ramp_shape_runs_under_locust(pod: Pod, tmp_path: Path) -> None:
    load = Load(
        users=4,
        batch=20,
        concurrency=2,
        timeout_ms=5000,
        shape="ramp",
        workloads=[Workload(label="svc", query="{rand}.web")],
    )
    db = tmp_path / "records.sqlite"
    argv = locust_argv(
        address=pod.address,
        load=load,
        seconds=4,
        mode="go",
        run_id="ramp",
        records_path=db,
        csv_prefix=tmp_path / "l",
        processes=1,
    )
    assert str(SHAPES) in argv[argv.index("-f") + 1]
    done = locust(*argv[3:], "--json-file", str(tmp_path / "l"))
    assert "ignored" not in done.stderr  # the shape reads --users and --run-time itself
    recorded = lookups(db)
    assert locust_requests(tmp_path / "l.json")["svc"][0] == recorded > 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"shape": "open"}, "needs rate"),
        ({"rate": 100.0}, "needs rate"),
        ({"shape": "steady", "ramp_seconds": 5.0}, "ramp_seconds only applies"),
        ({"shape": "ramp", "spike_users": 5}, "spike_users only applies"),
    ],
)
def test_load_shape_fields_are_checked(fields: dict[str, object], message: str) -> None:
    from dnsprobe.errors import ScenarioError
    from dnsprobe.scenario import parse_scenario

    data = {
        "name": "x",
        "modes": ["go"],
        "nameserver": {"zone": ZONE},
        "load": {"workloads": [{"label": "svc", "query": "{rand}.web"}], **fields},
    }
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data)


def test_open_loop_argv_shares_the_rate_among_users() -> None:
    load = Load(users=4, shape="open", rate=1000.0, workloads=[Workload(label="svc", query="{rand}.web")])
    argv = locust_argv(
        address="unix:///x.sock",
        load=load,
        seconds=3,
        mode="go",
        run_id="r",
        records_path=Path("r.sqlite"),
        csv_prefix=Path("l"),
        processes=1,
    )
    assert float(argv[argv.index("--dns-user-rate") + 1]) == 250.0
    assert "--processes" not in argv and str(SHAPES) not in argv[argv.index("-f") + 1]


def test_the_harness_does_not_import_locust() -> None:
    """import locust monkey-patches the standard library (gevent): only Locust's own processes may do it."""
    code = (
        "import sys, dnsprobe.pipeline, dnsprobe.load.runner, dnsprobe.load.users, dnsprobe.bench.fidelity, "
        "dnsprobe.cli; print(sorted(m for m in ('locust', 'gevent') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
