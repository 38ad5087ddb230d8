"""However a run ends, nothing measured is lost and nothing it started keeps running.

Real runs of `dnsprobe run` (one go mode, real probe, pod, nameserver and Locust), stopped by SIGINT,
SIGTERM or SIGHUP at each stage (build, pod start, load, report), twice in a row, or hit by SIGKILL of the
probe, the nameserver, Locust or dnsprobe itself. Every time a summary and report are there and agree
with records.sqlite; a death is a result (counted, a check fails); after SIGKILL of dnsprobe no process
of the run is left and `dnsprobe report RUN_DIR` rebuilds the summary and report.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dnsprobe.cli import main
from tests.conftest import quickstart_pod

ROOT = Path(__file__).resolve().parent.parent
BATCH = 50
STOP_SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
# A zone the pod's nameserver takes a second or two to load: a window to hit the pod's start in.
BIG_ZONE = "".join(f"h{i}.big.cluster.local. 30 A 10.1.{i // 250}.{i % 250}\n" for i in range(6000))

pytestmark = pytest.mark.slow

ZONE = """
cluster.local.                   30 SOA ns.cluster.local. h.cluster.local. 1 7200 1800 86400 30
*.web.default.svc.cluster.local. 30 A    10.96.0.10
*.web.default.svc.cluster.local. 30 AAAA fd00:10:96::10
"""


def scenario_text(duration: int, zone_extra: str = "", modes: str = '["go"]') -> str:
    return f"""
name = "lifecycle"
modes = {modes}

[pod]
timeout = 1
attempts = 1

[load]
users = 2
duration = {duration}
batch = {BATCH}
concurrency = 4

[[load.workloads]]
label = "service"
query = "{{rand}}.web"

[expect]
max_error_rate = 0.01

[nameserver]
zone = '''{ZONE}{zone_extra}'''
"""


# --- watching a run from outside ------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            children.setdefault(st[0], []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] != "Z"


def find(run: subprocess.Popen[str], needle: str) -> list[int]:
    return [p for p in descendants(run.pid) if needle in cmdline(p)]


def recorded(run_dir: Path) -> dict[str, int]:
    path = run_dir / "records.sqlite"
    if not path.exists():
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return dict(db.execute("SELECT mode, count(*) FROM lookups GROUP BY mode").fetchall())
        finally:
            db.close()
    except sqlite3.OperationalError:
        return {}


def outcomes(run_dir: Path, mode: str) -> dict[str, int]:
    db = sqlite3.connect(run_dir / "records.sqlite")
    try:
        query = "SELECT outcome, count(*) FROM lookups WHERE mode = ? GROUP BY outcome"
        return dict(db.execute(query, (mode,)).fetchall())
    finally:
        db.close()


@contextmanager
def running(tmp_path: Path, text: str, cache: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    scenario = tmp_path / "lifecycle.toml"
    scenario.write_text(text)
    out = tmp_path / "runs"
    argv = [sys.executable, "-m", "dnsprobe", "run", str(scenario), "--out", str(out), "--cache", str(cache)]
    run = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield run, out
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()


def wait_for(
    what: str, condition: Callable[[], bool], run: subprocess.Popen[str], limit: float = 120
) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert run.poll() is None, (what, run.communicate())
        assert time.monotonic() < deadline, f"{what}: not within {limit:g} s"
        time.sleep(0.01)


def run_dir_of(out: Path) -> Path:
    (run_dir,) = out.iterdir()
    return run_dir


def loading(run: subprocess.Popen[str], out: Path, lookups: int = 200) -> Callable[[], bool]:
    def ready() -> bool:
        dirs = list(out.glob("*/records.sqlite")) if out.exists() else []
        return bool(dirs) and sum(recorded(dirs[0].parent).values()) >= lookups

    return ready


def consistent(run_dir: Path) -> dict[str, Any]:
    """summary.json, report.html and report.md are there, and the summary covers every recorded lookup."""
    for name in ("summary.json", "report.html", "report.md"):
        assert (run_dir / name).is_file(), name
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    per_mode = recorded(run_dir)
    by_mode = {m["mode"]: m for m in summary["modes"]}
    assert set(per_mode) <= set(by_mode), (per_mode, list(by_mode))
    for name, m in by_mode.items():
        assert m["lookups"] == per_mode.get(name, 0), (name, m["lookups"], per_mode)
        assert m["lookups"] == m["ok"] + sum(m["failures"].values()), m
    return summary


def interrupted(run: subprocess.Popen[str], out: Path, stage: str) -> dict[str, Any]:
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, (run.returncode, stdout, stderr)
    assert "interrupted" in stderr
    run_dir = run_dir_of(out)
    summary = consistent(run_dir)
    assert summary["finished"] is False and summary["interrupted"] is True
    assert summary["interruption"]["stage"] == stage, summary["interruption"]
    assert any(c["name"] == "run completed" and not c["passed"] for c in summary["checks"])
    assert "Interrupted" in (run_dir / "report.md").read_text()
    return summary


# --- stop signals at each stage -------------------------------------------------------------------------


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_during_build(tmp_path: Path, probe_cache: Path, signum: int) -> None:
    """A stop signal while `go build` runs: a fresh probe cache, Go's build cache shared."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for shared in ("gocache", "gopath"):
        if (probe_cache / shared).exists():
            (cache / shared).symlink_to(probe_cache / shared)
    with running(tmp_path, scenario_text(3), cache) as (run, out):
        wait_for("go build", lambda: bool(find(run, " build -trimpath")), run)
        run.send_signal(signum)
        summary = interrupted(run, out, "build")
    (entry,) = summary["modes"]
    assert entry["status"] == "pending" and entry["lookups"] == 0
    assert "interrupted while the probe was built" in entry["reason"]


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_during_pod_start(tmp_path: Path, probe_cache: Path, signum: int) -> None:
    """A stop signal while the pod's nameserver loads a large zone."""
    with running(tmp_path, scenario_text(3, BIG_ZONE), probe_cache) as (run, out):
        wait_for("pod init", lambda: bool(find(run, "dnsprobe.sandbox.init")), run)
        assert not find(run, "locust")
        run.send_signal(signum)
        summary = interrupted(run, out, "pod start")
        assert not find(run, "dnsprobe.sandbox.init")
    (entry,) = summary["modes"]
    assert entry["lookups"] == 0 and "interrupted while the pod started" in entry["reason"]


# SIGINT and SIGTERM mid-load: tests/test_interrupt.py
@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT], ids=["SIGHUP", "SIGINT-twice"])
def test_signal_during_load(tmp_path: Path, probe_cache: Path, signum: int) -> None:
    """SIGHUP mid-load; and an impatient double Ctrl-C, which must not drop the mode's figures."""
    with running(tmp_path, scenario_text(600), probe_cache) as (run, out):
        wait_for("lookups", loading(run, out), run)
        run.send_signal(signum)
        if signum == signal.SIGINT:
            time.sleep(0.05)
            run.send_signal(signal.SIGINT)
        summary = interrupted(run, out, "load")
    (entry,) = summary["modes"]
    assert entry["status"] == "ran" and entry["lookups"] >= 200
    if signum == signal.SIGINT:
        assert summary["interruption"]["signals"] == 2


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_while_the_report_is_written(tmp_path: Path, probe_cache: Path, signum: int) -> None:
    """The load is over, junit.xml is written and the charts are being drawn: the report is still
    written, and says the run did not finish."""
    with running(tmp_path, scenario_text(2), probe_cache) as (run, out):
        wait_for("junit.xml", lambda: bool(list(out.glob("*/junit.xml"))) if out.exists() else False, run)
        run.send_signal(signum)
        summary = interrupted(run, out, "report")
    (entry,) = summary["modes"]
    assert entry["status"] == "ran" and entry["lookups"] > 0


# --- deaths mid-load are results ------------------------------------------------------------------------


def test_probe_killed_mid_load(tmp_path: Path, probe_cache: Path) -> None:
    with running(tmp_path, scenario_text(3), probe_cache) as (run, out):
        wait_for("lookups", loading(run, out), run)
        (probe,) = find(run, "-listen unix:")
        os.kill(probe, signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, (stdout, stderr)
    run_dir = run_dir_of(out)
    summary = consistent(run_dir)
    (entry,) = summary["modes"]
    lost = entry["failures"].get("lost", 0)
    assert lost > 0 and lost % BATCH == 0, entry["failures"]
    assert outcomes(run_dir, "go")["lost"] == lost
    assert [i["what"] for i in entry["incidents"]] == ["probe"]
    assert "SIGKILL" in entry["incidents"][0]["text"]
    check = next(c for c in summary["checks"] if c["name"] == "go: probe, nameserver and load stayed up")
    assert not check["passed"] and "lost" in check["detail"]
    assert "was killed by SIGKILL" in (run_dir / "report.md").read_text()


def test_nameserver_killed_mid_load(tmp_path: Path, probe_cache: Path) -> None:
    with running(tmp_path, scenario_text(3), probe_cache) as (run, out):
        wait_for("lookups", loading(run, out), run)
        (server,) = find(run, "goserver")
        os.kill(server, signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, (stdout, stderr)
    summary = consistent(run_dir_of(out))
    (entry,) = summary["modes"]
    assert [i["what"] for i in entry["incidents"]] == ["nameserver"], entry.get("incidents")
    assert "Go nameserver engine" in entry["reason"] and "signal 9" in entry["reason"]
    failed = {c["name"] for c in summary["checks"] if not c["passed"]}
    assert "go: probe, nameserver and load stayed up" in failed


def test_locust_killed_mid_load(tmp_path: Path, probe_cache: Path) -> None:
    with running(tmp_path, scenario_text(4), probe_cache) as (run, out):
        wait_for("lookups", loading(run, out), run)
        (locust,) = find(run, "dnsprobe.load.locust_main")
        os.kill(locust, signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, (stdout, stderr)
    summary = consistent(run_dir_of(out))
    (entry,) = summary["modes"]
    assert [i["what"] for i in entry["incidents"]] == ["locust"]
    assert "Locust" in entry["reason"] and "SIGKILL" in entry["reason"]
    assert summary["finished"] is True  # the run went on to the end; the mode says what happened


# --- SIGKILL of dnsprobe: nothing left behind, and the report rebuilt -------------------------------


def test_dnsprobe_killed_leaves_nothing_and_report_rebuilds(tmp_path: Path, probe_cache: Path) -> None:
    with running(tmp_path, scenario_text(600), probe_cache) as (run, out):
        wait_for("lookups", loading(run, out), run)
        family = descendants(run.pid)
        sockets = {d for p in family for d in re.findall(r"/(dnsprobe-[a-z0-9_]+)/", cmdline(p))}
        assert sockets and find(run, "goserver") and find(run, "locust_main")
        run.kill()
        run.communicate()
    deadline = time.monotonic() + 10
    while (left := {p for p in family if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, {p: cmdline(p) for p in left}
    strays = [
        p.name
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and alive(int(p.name)) and any(s in cmdline(int(p.name)) for s in sockets)
    ]
    assert not strays, strays
    run_dir = run_dir_of(out)
    before = json.loads((run_dir / "summary.json").read_text())
    assert before["finished"] is False and not (run_dir / "report.html").exists()
    assert main(["report", str(run_dir)]) == 1
    summary = consistent(run_dir)
    assert summary["finished"] is False and summary["rebuilt"] is True
    (entry,) = summary["modes"]
    assert entry["status"] == "ran" and entry["lookups"] >= 200
    check = next(c for c in summary["checks"] if c["name"] == "run completed")
    assert not check["passed"] and "dnsprobe report" in check["detail"]


def test_report_of_a_finished_run_keeps_its_verdict(tmp_path: Path, probe_cache: Path) -> None:
    with running(tmp_path, scenario_text(2), probe_cache) as (run, out):
        run.communicate(timeout=120)
    assert run.returncode == 0
    run_dir = run_dir_of(out)
    first = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    summary = consistent(run_dir)
    assert summary["finished"] is True
    assert [c["name"] for c in summary["checks"]] == [c["name"] for c in first["checks"]]
    assert summary["modes"][0]["lookups"] == first["modes"][0]["lookups"]


def test_report_of_something_else_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no summary.json" in err and "Traceback" not in err


DOCKER_POD = """
import sys, time
from pathlib import Path
from dnsprobe.build.probe import build_probe
from dnsprobe.modes import MODES
from dnsprobe.sandbox.docker import docker_cell
from dnsprobe.sandbox.files import render_pod_files
from dnsprobe.scenario import Pod as PodSpec

cache, work = Path(sys.argv[1]), Path(sys.argv[2])
binary = build_probe(MODES["go"], cache_dir=cache).path
files = render_pod_files(PodSpec(), hostname="probe", nameservers=["127.0.0.1"])
pod, _ = docker_cell(
    "go", "distroless-static", binary, files=files, zone_text=sys.argv[3], workdir=work,
    socket_dir=Path(sys.argv[4]), godebug="netdns=2", env={}, nameserver=None,
    mount_nsswitch=False, cache_dir=cache,
)
pod.start()
print(pod._container.id, flush=True)
time.sleep(600)
"""


@pytest.mark.docker
def test_docker_pod_of_a_killed_dnsprobe_is_removed(tmp_path: Path, probe_cache: Path) -> None:
    """A docker pod's container, and the nameserver in its network namespace, go when dnsprobe is
    SIGKILLed (a watchdog on a pipe removes the container)."""
    from dnsprobe.dockerengine import connect
    from dnsprobe.errors import DockerError

    try:
        client = connect(timeout=30)
    except DockerError as exc:
        pytest.skip(str(exc))
    (tmp_path / "s").mkdir()
    argv = [
        sys.executable,
        "-c",
        DOCKER_POD,
        str(probe_cache),
        str(tmp_path / "pod"),
        ZONE,
        str(tmp_path / "s"),
    ]
    holder = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        container_id = holder.stdout.readline().strip()
        assert container_id, holder.communicate()
        assert client.containers.get(container_id).status == "running"
        family = descendants(holder.pid)
        assert any("netns_server" in cmdline(p) for p in family)
        holder.kill()
        holder.communicate()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()
    from docker.errors import NotFound

    deadline = time.monotonic() + 30
    gone = False
    while not gone and time.monotonic() < deadline:
        try:
            client.containers.get(container_id)
            time.sleep(0.2)
        except NotFound:
            gone = True
    client.close()
    assert gone, f"container {container_id} still there 30 s after its dnsprobe was killed"
    left = [p for p in family if alive(p) and "netns_server" in cmdline(p)]
    assert not left, left


def test_a_full_disk_is_one_line(tmp_path: Path, probe_cache: Path) -> None:
    """--out on a 300 KiB tmpfs (mounted in a user and mount namespace of the test's own): the records
    fill it mid-load; the run ends in one line that says so and where the records are."""
    scenario = tmp_path / "lifecycle.toml"
    scenario.write_text(scenario_text(3))
    full = tmp_path / "full"
    full.mkdir()
    script = (
        f"mount -t tmpfs -o size=300k tmpfs {full} && exec {sys.executable} -m dnsprobe run {scenario} "
        f"--out {full} --cache {probe_cache}"
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("dnsprobe: error:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "no space left" in lines[0] and "records.sqlite" in lines[0] and "dnsprobe report" in lines[0]


def test_pod_init_killed_mid_load_takes_its_probe(tmp_path: Path, probe_cache: Path) -> None:
    """SIGKILL of the pod's init: its probe dies too (not orphaned), and the run says the pod ended."""
    with running(tmp_path, scenario_text(3), probe_cache) as (run, out):
        wait_for("lookups", loading(run, out), run)
        (probe,) = find(run, "-listen unix:")
        init = _stat(probe)[0]  # type: ignore[index]
        assert "dnsprobe.sandbox.init" in cmdline(init)
        os.kill(init, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while alive(probe) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(probe), "the probe outlived its pod's init"
        stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, (stdout, stderr)
    summary = consistent(run_dir_of(out))
    (entry,) = summary["modes"]
    assert entry["incidents"] and entry["failures"].get("lost", 0) > 0, entry


def test_pod_stop_kills_the_group_after_unshare_is_gone(probe_cache: Path) -> None:
    """unshare gone, its pod frozen (so nothing in it reacts to that): stop() still ends every process."""
    with quickstart_pod(probe_cache, "lc-") as pod:
        pgid = pod._pgid
        assert pgid is not None
        members = [p for p in descendants(pgid) if alive(p)]
        assert len(members) >= 3  # supervisor, init, probe (and the Go engine)
        for member in members:
            os.kill(member, signal.SIGSTOP)
        os.kill(pgid, signal.SIGKILL)  # unshare itself
        pod.stop()
        assert not [p for p in members if alive(p)], {p: cmdline(p) for p in members if alive(p)}


def test_dnsprobe_killed_while_the_pod_starts_leaves_nothing(tmp_path: Path, probe_cache: Path) -> None:
    """SIGKILL the moment unshare is there, before the pod's PID 1 can hear a signal: the pod still
    notices and ends before it starts anything."""
    with running(tmp_path, scenario_text(3, BIG_ZONE), probe_cache) as (run, out):
        wait_for("unshare", lambda: bool(find(run, "dnsprobe.sandbox.init")), run)
        family = descendants(run.pid)
        run.kill()
        run.communicate()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = {p for p in family if alive(p)}
        strays = [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and str(out) in cmdline(int(p.name)) and alive(int(p.name))
        ]
        if not left and not strays:
            break
        time.sleep(0.1)
    assert not left and not strays, {p: cmdline(p) for p in left | set(strays)}


def test_report_of_damaged_files_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    from dnsprobe.scenario import parse_scenario

    scenario = parse_scenario(tomllib.loads(scenario_text(2)), source="x.toml")
    spec = scenario.model_dump(mode="json", exclude_unset=True)
    (tmp_path / "records.sqlite").write_bytes(b"not a database, " * 400)
    cases = {
        '{"modes": 3': "not readable as JSON",
        "[]": "not a dnsprobe summary",
        json.dumps({"modes": [], "scenario_spec": {**spec, "name": 5}}): "scenario_spec is not a valid",
        json.dumps({"modes": [], "scenario_spec": spec}): "not readable as the run's records",
    }
    for text, said in cases.items():
        (tmp_path / "summary.json").write_text(text)
        assert main(["report", str(tmp_path)]) == 2, text
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1, err
