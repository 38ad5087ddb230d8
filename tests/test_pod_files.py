"""The pod's DNS files in the states catalog 42-44 need: no resolv.conf at all, one the probe cannot
read, and nsswitch.conf rewritten under a running probe. Real probes in real pods, each lookup's wire
queries read from the pod's own nameserver."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from dnsprobe.analyse.figures import go_queries_after
from dnsprobe.build.probe import build_probe
from dnsprobe.errors import ScenarioError
from dnsprobe.modes import MODES
from dnsprobe.nameserver.querylog import read_querylog
from dnsprobe.probe_client import ProbeClient
from dnsprobe.sandbox import Pod, render_pod_files
from dnsprobe.sandbox.base import PodBase
from dnsprobe.scenario import Pod as PodSpec
from dnsprobe.scenario import parse_scenario
from tests import test_pod_options as pod_options

ZONE = (
    "*.example.test. 30 IN A 192.0.2.1\n*.example.test. 30 IN AAAA 2001:db8::1\n"
    "web.default.svc.cluster.local. 30 IN A 10.96.1.1\n"
)
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def make_pod(tmp_path: Path, probe_cache: Path, spec: PodSpec, mode: str = "go") -> Pod:
    return pod_options.make_pod(tmp_path, probe_cache, spec, mode, zone=ZONE)


def lookups(pod: PodBase, name: str, count: int = 4) -> list[str]:
    client = ProbeClient(pod.address)
    try:
        results = client.batch(kind="host", name=name, count=count, concurrency=2, timeout_ms=15000)
    finally:
        client.close()
    return [r.outcome for r in results]


def queried_names(querylog: Path) -> set[str]:
    with querylog.open() as fh:
        return {entry.qname for entry in read_querylog(fh)}


def capability_bounding_set(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("CapBnd:")), 16)


def test_a_missing_resolv_conf_leaves_the_resolvers_their_defaults(tmp_path: Path, probe_cache: Path) -> None:
    """The rendered file (search list, ndots:5) is never seen: `web` goes out only as `web.`, to the
    default 127.0.0.1:53 of the pod's own network namespace; the host's file is untouched."""
    host_file = Path("/etc/resolv.conf").read_bytes()
    spec = PodSpec(resolv_conf="missing")
    with make_pod(tmp_path, probe_cache, spec) as pod:
        pid = pod.info["pid"]
        inside = Path(f"/proc/{pid}/root/etc")
        assert not os.path.lexists(inside / "resolv.conf")
        assert (inside / "hosts").read_text() == pod.files.hosts  # the pod's other files are still there
        assert Path(f"/proc/{pid}/ns/net").readlink() != Path("/proc/self/ns/net").readlink()
        short = lookups(pod, "web")
        full = lookups(pod, "{rand}.example.test.")
        querylog = pod.querylog_path
    assert short == ["not_found"] * 4
    assert full == ["ok"] * 4
    names = queried_names(querylog)
    assert "web." in names and not any(n.startswith("web.") and n != "web." for n in names), names
    assert Path("/etc/resolv.conf").read_bytes() == host_file


@pytest.mark.parametrize("mode", ["go", "cgo"])
def test_an_unreadable_resolv_conf_is_not_read(mode: str, tmp_path: Path, probe_cache: Path) -> None:
    """Mode 000 and no CAP_DAC_OVERRIDE: the probe's open() fails, so Go and glibc use their defaults
    (no search list) although the file says ndots:5 and the cluster's search list."""
    spec = PodSpec(resolv_conf="unreadable")
    with make_pod(tmp_path, probe_cache, spec, mode=mode) as pod:
        pid = pod.info["pid"]
        seen = Path(f"/proc/{pid}/root/etc/resolv.conf")
        assert seen.stat().st_mode & 0o777 == 0
        bounding = capability_bounding_set(pid)
        assert not bounding & (1 << CAP_DAC_OVERRIDE | 1 << CAP_DAC_READ_SEARCH)
        assert bounding & (1 << 12)  # CAP_NET_ADMIN: only the two file-reading capabilities are gone
        short = lookups(pod, "web")
        querylog = pod.querylog_path
    assert short == ["not_found"] * 4
    assert "web.default.svc.cluster.local." not in queried_names(querylog)


def test_a_readable_resolv_conf_is_walked_as_a_control(tmp_path: Path, probe_cache: Path) -> None:
    """The near miss of the two above: the same pod with its file walks the search list and finds web."""
    with make_pod(tmp_path, probe_cache, PodSpec()) as pod:
        assert capability_bounding_set(pod.info["pid"]) & (1 << CAP_DAC_OVERRIDE)
        short = lookups(pod, "web")
        querylog = pod.querylog_path
    assert short == ["ok"] * 4
    assert "web.default.svc.cluster.local." in queried_names(querylog)


def test_nsswitch_rewritten_under_a_running_probe(tmp_path: Path, probe_cache: Path) -> None:
    """A default cgo build moves from Go's resolver to cgo once Go re-reads the changed file (at most
    every 5 s); its trace says so per lookup."""
    change = {"at_s": 1, "nsswitch_hosts": "files resolve [!UNAVAIL=return] dns"}
    spec = PodSpec(search=[], ndots=1, changes=[change])  # type: ignore[list-item]
    new = render_pod_files(spec.changed(spec.changes[0]), hostname="probe", nameservers=["127.0.0.1"])
    with make_pod(tmp_path, probe_cache, spec, mode="cgo-dynamic") as pod:
        seen = Path(f"/proc/{pod.info['pid']}/root/etc/nsswitch.conf")
        assert "hosts:          files dns\n" in seen.read_text()
        assert lookups(pod, "{rand}.example.test.") == ["ok"] * 4
        pod.rewrite_nsswitch_conf(new.nsswitch_conf)
        assert seen.read_text() == new.nsswitch_conf
        deadline = time.monotonic() + 15
        while "= cgo" not in pod.trace_path.read_text() and time.monotonic() < deadline:
            assert lookups(pod, "{rand}.example.test.", count=2) == ["ok"] * 2
            time.sleep(0.2)
        trace = pod.trace_path.read_text()
    assert "= files,dns" in trace and "= cgo" in trace
    assert trace.index("= files,dns") < trace.index("= cgo")


def test_go_queries_after_reads_the_edns_column() -> None:
    header = "time\tproto\tclient\tport\tid\tqname\tqtype\tedns\tfault\trcode\n"
    rows = [
        "100.0\tudp\t127.0.0.1\t1\t1\ta.example.test.\tA\t1232\t-\tNOERROR\n",
        "103.5\tudp\t127.0.0.1\t2\t2\tb.example.test.\tA\t1232\t-\tNOERROR\n",
        "104.0\tudp\t127.0.0.1\t3\t3\tc.example.test.\tA\t-\t-\tNOERROR\n",
    ]
    assert go_queries_after([header, *rows], [101.0, 110.0]) == [2.5, 0.0]
    assert go_queries_after([header, rows[2]], [101.0]) == [0.0]


ZONE_TEXT = "example.test. 30 IN A 192.0.2.1\n"


def scenario(**over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "t",
        "nameserver": {"zone": ZONE_TEXT},
        "load": {"workloads": [{"label": "a", "query": "{rand}.example.test"}]},
    }
    data.update(over)
    return data


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (scenario(pod={"resolv_conf": "absent"}), "pod.resolv_conf"),
        (
            scenario(pod={"resolv_conf": "missing", "changes": [{"at_s": 1, "ndots": 1}]}),
            "edits resolv.conf, which is missing",
        ),
        (scenario(pod={"resolv_conf": "missing"}, backend="docker"), "needs backend = 'local'"),
        (
            scenario(pod={"resolv_conf": "missing"}, nameserver={"kind": "external", "address": "127.0.0.1"}),
            "the pod's own loopback",
        ),
        (scenario(pod={"changes": [{"at_s": 1, "nsswitch_hosts": "[NOTFOUND=return] dns"}]}), "starts with"),
    ],
)
def test_bad_pod_file_states_say_what_to_change(data: dict[str, object], words: str) -> None:
    with pytest.raises(ScenarioError, match=words):
        parse_scenario(data)


def test_an_nsswitch_change_is_allowed_without_a_resolv_conf() -> None:
    parsed = parse_scenario(
        scenario(
            pod={"resolv_conf": "missing", "changes": [{"at_s": 2, "nsswitch_hosts": "files resolve dns"}]}
        )
    )
    change = parsed.pod.changes[0]
    assert change.touches_nsswitch and not change.touches_resolv_conf
    assert parsed.pod.changed(change).nsswitch_hosts == "files resolve dns"


def test_a_missing_resolv_conf_is_missing_in_an_image_root_too(tmp_path: Path, probe_cache: Path) -> None:
    """An image that ships its own /etc/resolv.conf: `missing` deletes it in the pod's upper layer."""
    from tests.test_image_rootfs import alpine_layers, layer, oci_layout_tarball

    own = b"search default.svc.cluster.local\nnameserver 127.0.0.1\noptions ndots:5\n"
    tarball = oci_layout_tarball(tmp_path / "img.tar", [*alpine_layers(), layer([("etc/resolv.conf", own)])])
    spec = PodSpec(resolv_conf="missing")
    socket_dir = Path(tempfile.mkdtemp(prefix="dp-pf-"))  # unix socket paths must stay short
    pod = Pod(
        mode="go",
        binary=build_probe(MODES["go"], cache_dir=probe_cache).path,
        files=render_pod_files(spec, hostname="probe", nameservers=["127.0.0.1"]),
        zone_text=ZONE,
        workdir=tmp_path / "pod",
        socket_dir=socket_dir,
        godebug=MODES["go"].godebug,
        rootfs=f"oci:{tarball}",
        cache_dir=probe_cache,
    )
    try:
        with pod:
            root = Path(f"/proc/{pod.info['pid']}/root")
            assert (root / "etc/hosts").read_text() == pod.files.hosts
            assert not os.path.lexists(root / "etc/resolv.conf")
            short = lookups(pod, "web")
            querylog = pod.querylog_path
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
    assert short == ["not_found"] * 4
    assert "web.default.svc.cluster.local." not in queried_names(querylog)


@pytest.mark.parametrize(
    ("rule", "words"), [("resolv_conf_missing", "Not in the pod"), ("resolv_conf_unreadable", "EACCES")]
)
def test_the_report_says_the_pod_never_read_the_file_shown(rule: str, words: str) -> None:
    import json

    from dnsprobe.report.markdown import render_markdown

    summary = json.loads((Path(__file__).parent / "data" / "rules" / f"{rule}.json").read_text())["fires"][
        "summary"
    ]
    text = render_markdown(summary, {})
    assert words in text
    del summary["pod"]["resolv_conf_state"]
    assert words not in render_markdown(summary, {})


@pytest.mark.docker
@pytest.mark.slow
def test_an_unreadable_resolv_conf_in_a_docker_container(tmp_path: Path, probe_cache: Path) -> None:
    """The docker backend: the same mode-000 file, the container without the two capabilities; Go's
    resolver in a distroless/static stand-in never reads it."""
    from dnsprobe.binary import BASES
    from dnsprobe.dockerengine import connect
    from dnsprobe.errors import DockerError
    from dnsprobe.sandbox.docker import DockerPod, build_probe_image
    from dnsprobe.sandbox.standins import ensure_standins

    try:
        engine = connect(timeout=30)
    except DockerError as exc:
        pytest.skip(str(exc))
    try:
        standins = ensure_standins(engine, ["distroless-static"])
        binary = build_probe(MODES["go"], cache_dir=probe_cache).path
        tag = build_probe_image(
            engine,
            binary=binary,
            base_tag=standins["distroless-static"].tag,
            mode="go",
            base="distroless-static",
        )
    finally:
        engine.close()
    assert "distroless-static" in BASES
    socket_dir = Path(tempfile.mkdtemp(prefix="dp-pf-"))
    results: dict[str, tuple[list[str], set[str]]] = {}
    try:
        for state in ("unreadable", "present"):
            spec = PodSpec(resolv_conf=state)
            pod = DockerPod(
                mode=f"go-{state}",
                image=tag,
                files=render_pod_files(spec, hostname="probe", nameservers=["127.0.0.1"]),
                zone_text=ZONE,
                workdir=tmp_path / state,
                socket_dir=socket_dir,
                godebug=MODES["go"].godebug,
            )
            with pod:
                outcomes = lookups(pod, "web")
            results[state] = (outcomes, queried_names(pod.querylog_path))
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
    assert results["unreadable"][0] == ["not_found"] * 4
    assert "web.default.svc.cluster.local." not in results["unreadable"][1]
    assert results["present"][0] == ["ok"] * 4  # the control: the same container reads a 0644 file
    assert "web.default.svc.cluster.local." in results["present"][1]


@pytest.mark.parametrize("state", ["missing", "unreadable"])
def test_a_scratch_root_gets_the_same_states(state: str, tmp_path: Path, probe_cache: Path) -> None:
    """`rootfs = "scratch"` copies the pod's files into an empty root: none, or one with mode 000."""
    spec = PodSpec(resolv_conf=state)  # type: ignore[arg-type]
    files = render_pod_files(spec, hostname="probe", nameservers=["127.0.0.1"])
    socket_dir = Path(tempfile.mkdtemp(prefix="dp-pf-"))
    pod = Pod(
        mode="go",
        binary=build_probe(MODES["go"], cache_dir=probe_cache).path,
        files=files,
        zone_text=ZONE,
        workdir=tmp_path / "pod",
        socket_dir=socket_dir,
        godebug=MODES["go"].godebug,
        rootfs="scratch",
    )
    try:
        with pod:
            seen = Path(f"/proc/{pod.info['pid']}/root/etc/resolv.conf")
            present = os.path.lexists(seen)
            mode = seen.stat().st_mode & 0o777 if present else None
            short = lookups(pod, "web")
            querylog = pod.querylog_path
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
    assert (present, mode) == ((False, None) if state == "missing" else (True, 0))
    assert short == ["not_found"] * 4
    assert "web.default.svc.cluster.local." not in queried_names(querylog)
