"""Nothing a scenario contains can write a line of its own into a pod's files or send load off loopback,
and no listener dnsprobe starts is reachable from outside the machine."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import socket
import sqlite3
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import pytest

from dnsprobe.cli import main
from dnsprobe.codec.zone import Zone
from dnsprobe.errors import SandboxError, ScenarioError
from dnsprobe.load.runner import locust_argv, run_load
from dnsprobe.nameserver.server import NameserverThread
from dnsprobe.sandbox import Pod, render_pod_files
from dnsprobe.sandbox.files import PodFiles, check_pod_files
from dnsprobe.scenario import Load, Workload, load_scenario, parse_scenario
from dnsprobe.scenario import Pod as PodSpec
from tests.conftest import quickstart_pod

ZONE = "example.test. 30 IN A 192.0.2.1\n"
EVIL = "nameserver 192.0.2.53"  # what an injected line would add: a server off loopback


def toml_value(value: Any) -> str:
    """TOML for a value: JSON strings and numbers are TOML too; tables are written inline."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_scenario(tmp_path: Path, pod: dict[str, Any], nameserver: dict[str, Any] | None = None) -> Path:
    """A scenario file with this [pod] (and [nameserver]); the file itself is valid TOML."""
    data = {
        "name": "t",
        "pod": pod,
        "nameserver": nameserver or {"zone": ZONE},
        "load": {"workloads": [{"label": "a", "query": "{rand}.example.test"}]},
    }
    path = tmp_path / "evil.toml"
    path.write_text("".join(f"{key} = {toml_value(v)}\n" for key, v in data.items()), encoding="utf-8")
    tomllib.loads(path.read_text(encoding="utf-8"))  # the refusal is dnsprobe's, not the TOML parser's
    return path


INJECTIONS = [
    ({"options": [f"edns0\n{EVIL}"]}, None, "pod.options"),
    ({"options": ["edns0\rx"]}, None, "pod.options"),
    ({"options": ["ndots:2 rotate"]}, None, "pod.options"),
    ({"changes": [{"at_s": 1.0, "options": [f"edns0\n{EVIL}"]}]}, None, "pod.changes[0].options"),
    ({"changes": [{"at_s": 1.0, "search": [f"a.test\n{EVIL}"]}]}, None, "pod.changes[0].search"),
    ({"changes": [{"at_s": 1.0, "search": ["a.test\n"]}]}, None, "pod.changes[0].search"),
    ({"search": ["cluster.local\n"]}, None, "pod.search"),
    ({"search": [f"cluster.local\n{EVIL}"]}, None, "pod.search"),
    ({"hosts": [f"192.0.2.9 api.test\n{EVIL}"]}, None, "pod.hosts"),
    ({"hosts": ["192.0.2.9 api.test\n"]}, None, "pod.hosts"),
    ({"hosts": ["api.test"]}, None, "pod.hosts"),
    ({"nsswitch_hosts": "files dns\nhosts: dns"}, None, "pod.nsswitch_hosts"),
    ({"nsswitch_hosts": "files [NOTFOUND=explode] dns"}, None, "pod.nsswitch_hosts"),
    ({"env": {"A\nB": "x"}}, None, "pod.env"),
    ({"env": {"A=B": "x"}}, None, "pod.env"),
    ({"env": {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libc.so.6"}}, None, "pod.env"),
    ({"env": {"GODEBUG": "netdns=go\x00x"}}, None, "pod.env"),
    ({}, {"kind": "external", "address": f"::1%lo\n{EVIL}"}, "nameserver"),
    ({"options": [f"edns0\n{EVIL}"]}, {"kind": "external", "address": "127.0.0.53"}, "pod.options"),
]


@pytest.mark.parametrize(("pod", "nameserver", "field"), INJECTIONS)
def test_each_injected_line_is_refused_with_file_and_field(
    tmp_path: Path, pod: dict[str, Any], nameserver: dict[str, Any] | None, field: str
) -> None:
    path = write_scenario(tmp_path, pod, nameserver)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{path}: {field}: ")
    assert "\n" not in str(caught.value).split(": ", 2)[2].replace("\\n", "")  # one line


def test_the_cli_refuses_an_injected_scenario_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, {"options": [f"edns0\n{EVIL}"]})
    assert main(["run", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: pod.options:" in err
    assert not (tmp_path / "runs").exists()  # refused before anything was made


@pytest.mark.parametrize(
    "pod",
    [
        {"options": ["edns0", "ndots:2", "single-request-reopen", "no-aaaa", "trust-ad"]},
        {"hosts": ["192.0.2.9 api.test api", "2001:db8::1\tv6.test # the v6 one", "# a comment"]},
        {"nsswitch_hosts": "files [!UNAVAIL=return NOTFOUND=continue] dns myhostname"},
        {"env": {"GODEBUG": "netdns=go,http2client=0", "_X1": "a b\nc"}},
        {"search": ["ns1.svc.cluster.local.", "example_test.local"]},
    ],
)
def test_what_belongs_in_the_files_is_still_accepted(tmp_path: Path, pod: dict[str, Any]) -> None:
    scenario = load_scenario(write_scenario(tmp_path, pod))
    files = render_pod_files(scenario.pod, hostname="probe", nameservers=["127.0.0.1"])
    for value in pod.get("options", []) + pod.get("hosts", []):
        assert value in files.resolv_conf + files.hosts


def test_the_rendered_files_are_checked_even_when_validation_was_bypassed() -> None:
    """A pod model built without validation (model_construct) still cannot get a line in."""
    bypass = PodSpec.model_construct(**{**PodSpec().model_dump(), "options": [f"edns0\n{EVIL}"]})
    with pytest.raises(SandboxError, match=r"resolv.conf, line 4 .*192\.0\.2\.53 is not on loopback"):
        render_pod_files(bypass, hostname="probe", nameservers=["127.0.0.1"])
    hosts = PodSpec.model_construct(**{**PodSpec().model_dump(), "hosts": ["192.0.2.1 a\nnot a line"]})
    with pytest.raises(SandboxError, match="the pod's hosts, line 6"):
        render_pod_files(hosts, hostname="probe", nameservers=["127.0.0.1"])
    nsswitch = PodSpec.model_construct(**{**PodSpec().model_dump(), "nsswitch_hosts": "files\nevil: x"})
    with pytest.raises(SandboxError, match=r"nsswitch\.conf, line 4"):
        render_pod_files(nsswitch, hostname="probe", nameservers=["127.0.0.1"])


def test_the_loopback_rule_holds_for_the_rendered_resolv_conf() -> None:
    good = render_pod_files(PodSpec(), hostname="probe", nameservers=["127.0.0.1", "127.0.0.2"])
    check_pod_files(good, nameservers=["127.0.0.1", "127.0.0.2"])
    with pytest.raises(SandboxError, match="not on loopback; set allow_non_loopback = true"):
        render_pod_files(PodSpec(), hostname="probe", nameservers=["192.0.2.53"])
    allowed = render_pod_files(
        PodSpec(), hostname="probe", nameservers=["192.0.2.53"], allow_non_loopback=True
    )
    extra = PodFiles(allowed.resolv_conf + "nameserver 127.0.0.9\n", allowed.hosts, allowed.nsswitch_conf)
    with pytest.raises(SandboxError, match="not the run's own"):  # allowed: the named server only
        check_pod_files(extra, nameservers=["192.0.2.53"], allow_non_loopback=True)
    with pytest.raises(SandboxError, match="not a line dnsprobe writes"):
        check_pod_files(PodFiles(good.resolv_conf + "domain evil.test\n", good.hosts, good.nsswitch_conf))


def test_a_pod_with_a_forged_resolv_conf_never_starts(tmp_path: Path) -> None:
    files = render_pod_files(PodSpec(), hostname="probe", nameservers=["127.0.0.1"])
    forged = PodFiles(files.resolv_conf + f"{EVIL}\n", files.hosts, files.nsswitch_conf)
    external = parse_scenario(
        {
            "name": "t",
            "nameserver": {"kind": "external", "address": "127.0.0.53"},
            "load": {"workloads": [{"label": "a", "query": "{rand}.example.test"}]},
        }
    ).nameserver
    pod = Pod(
        mode="go",
        binary=Path("/bin/true"),
        files=forged,
        zone_text=ZONE,
        workdir=tmp_path / "pod",
        socket_dir=tmp_path,
        godebug="netdns=go",
        nameserver=external,  # the pod would share the host's network
    )
    with pytest.raises(SandboxError, match=r"192\.0\.2\.53 is not on loopback"):
        pod.start()
    assert pod._process is None and not (tmp_path / "pod" / "pod.json").exists()
    with pytest.raises(SandboxError, match="not on loopback"):
        pod.rewrite_resolv_conf(forged.resolv_conf)


def test_dnsmasq_gets_no_txt_string_that_would_be_a_line_of_its_config() -> None:
    data = {
        "name": "t",
        "nameserver": {"kind": "dnsmasq", "zone": 'x.example.test. 30 IN TXT "a\\010server=192.0.2.53"\n'},
        "load": {"workloads": [{"label": "a", "query": "{rand}.example.test"}]},
    }
    with pytest.raises(ScenarioError, match=r"nameserver\.zone: TXT of x\.example\.test\."):
        parse_scenario(data)
    data["nameserver"] = {"kind": "dnsmasq", "zone": 'x.example.test. 30 IN TXT "plain text"\n'}
    assert parse_scenario(data).nameserver.kind == "dnsmasq"
    data["nameserver"] = {"kind": "embedded", "zone": 'x.example.test. 30 IN TXT "a\\010b"\n'}
    assert parse_scenario(data).nameserver.kind == "embedded"  # the embedded servers send bytes, no config


# -- Locust's master ----------------------------------------------------------------------------------


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*") if Path(f"/proc/{pid}/fd").exists() else []:
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def listeners_of(root: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by a descendant of `root`, from
    /proc/net/tcp and tcp6 (this network namespace: the one Locust runs in)."""
    inodes = _socket_inodes(_descendants(root))
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: TCP_LISTEN
                continue
            hex_address, hex_port = local.split(":")
            raw = bytes.fromhex(hex_address)
            # the kernel prints each 32-bit word in host (little-endian) order
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((str(ipaddress.ip_address(words)), int(hex_port, 16)))
    return found


@pytest.fixture(scope="module")
def load_pod(probe_cache: Path) -> Iterator[Pod]:
    with quickstart_pod(probe_cache, "dp-sec-") as the_pod:
        yield the_pod


def two_process_argv(pod: Pod, tmp_path: Path, name: str) -> list[str]:
    load = Load(users=2, batch=20, concurrency=2, workloads=[Workload(label="svc", query="{rand}.web")])
    return locust_argv(
        address=pod.address,
        load=load,
        seconds=4,
        mode="go",
        run_id=name,
        records_path=tmp_path / f"{name}.sqlite",
        csv_prefix=tmp_path / name,
        processes=2,
    )


def recorded(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return int(connection.execute("SELECT count(*) FROM lookups").fetchone()[0])


@pytest.mark.slow
def test_no_listener_outside_loopback_while_a_multi_process_run_goes(load_pod: Pod, tmp_path: Path) -> None:
    argv = two_process_argv(load_pod, tmp_path, "listen")
    seen: list[tuple[str, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            seen.extend(listeners_of(os.getpid()))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run_load(
            argv, mode="go", seconds=4, records_path=tmp_path / "listen.sqlite", log_path=tmp_path / "l.log"
        )
    finally:
        stop.set()
        sampler.join()
    port = int(argv[argv.index("--master-bind-port") + 1])
    assert ("127.0.0.1", port) in seen, f"the sampler never saw the master's socket: {set(seen)}"
    assert {address for address, _ in seen} == {"127.0.0.1"}, set(seen)
    assert recorded(tmp_path / "listen.sqlite") > 0


@pytest.mark.slow
def test_two_multi_process_runs_at_once_both_succeed(load_pod: Pod, tmp_path: Path) -> None:
    argvs = [two_process_argv(load_pod, tmp_path, name) for name in ("first", "second")]
    assert (
        argvs[0][argvs[0].index("--master-bind-port") + 1]
        != argvs[1][argvs[1].index("--master-bind-port") + 1]
    )
    errors: list[BaseException] = []

    def go(argv: list[str], name: str) -> None:
        try:
            run_load(
                argv,
                mode="go",
                seconds=4,
                records_path=tmp_path / f"{name}.sqlite",
                log_path=tmp_path / f"{name}.log",
            )
        except BaseException as exc:  # reported below, with the log
            errors.append(exc)

    names = ("first", "second")
    threads = [threading.Thread(target=go, args=pair) for pair in zip(argvs, names, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for name in ("first", "second"):
        assert recorded(tmp_path / f"{name}.sqlite") > 0, (tmp_path / f"{name}.log").read_text()


# -- the python engine's TCP deadline -------------------------------------------------------------------


def test_a_byte_every_half_second_does_not_hold_a_tcp_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """One deadline per message, as the Go engine has: trickling a message's bytes does not extend it."""
    deadline = 2.0
    monkeypatch.setattr("dnsprobe.nameserver.server.TCP_IDLE", deadline)
    query = dns.message.make_query("a.example.test.", "A").to_wire()
    framed = len(query).to_bytes(2, "big") + query  # at 0.5 s a byte: about 15 s to send it all
    with (
        NameserverThread(Zone.from_text(ZONE)) as ns,
        socket.create_connection(ns.endpoints[0], timeout=5) as trickle,
    ):
        # a whole message first: it is answered and starts the next message's deadline
        trickle.sendall(framed)
        assert len(trickle.recv(4096)) > 2
        started = time.monotonic()
        closed_after = None
        for byte in framed:
            try:
                trickle.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            readable, _, _ = select.select([trickle], [], [], 0.5)
            if readable:
                with contextlib.suppress(ConnectionResetError):
                    assert trickle.recv(10) == b""  # closed, no answer to a message never finished
                closed_after = time.monotonic() - started
                break
        assert closed_after is not None, "the connection stayed open while bytes trickled in"
        assert deadline - 0.5 <= closed_after <= deadline + 5


def test_a_run_checks_every_resolv_conf_change_before_any_pod_starts(tmp_path: Path) -> None:
    from dnsprobe.pipeline import run_scenario
    from dnsprobe.scenario import ResolvChange

    scenario = parse_scenario(
        {
            "name": "t",
            "modes": ["go"],
            "nameserver": {"zone": ZONE},
            "load": {"workloads": [{"label": "a", "query": "{rand}.example.test"}]},
        }
    )
    forged = ResolvChange.model_construct(
        at_s=1.0, options=[f"edns0\n{EVIL}"], search=None, ndots=None, timeout=None, attempts=None
    )
    scenario = scenario.model_copy(update={"pod": scenario.pod.model_copy(update={"changes": [forged]})})
    with pytest.raises(SandboxError, match=r"192\.0\.2\.53 is not on loopback"):
        run_scenario(scenario, out_dir=tmp_path)
    assert not list(tmp_path.glob("*/pods"))  # no pod was set up


def test_fault_globs_are_one_name_pattern() -> None:
    data = {
        "name": "t",
        "nameserver": {"zone": ZONE, "faults": [{"action": "drop", "name": "a.test\n"}]},
        "load": {"workloads": [{"label": "a", "query": "{rand}.example.test"}]},
    }
    with pytest.raises(ScenarioError, match=r"nameserver\.faults\[0\]\.name"):
        parse_scenario(data)
