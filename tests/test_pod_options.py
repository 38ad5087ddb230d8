"""Pod options that the failure-mode catalog needs: open-file limit, the local port range of the pod's
own network namespace, and resolv.conf edited under a running probe."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dnsprobe.build.probe import build_probe
from dnsprobe.modes import MODES
from dnsprobe.nameserver.querylog import read_querylog
from dnsprobe.probe_client import ProbeClient
from dnsprobe.sandbox import Pod, render_pod_files
from dnsprobe.scenario import Pod as PodSpec

ZONE = "*.example.test. 30 IN A 192.0.2.1\n*.example.test. 30 IN AAAA 2001:db8::1\n"


def make_pod(tmp_path: Path, probe_cache: Path, spec: PodSpec, mode: str = "go", zone: str = ZONE) -> Pod:
    """A pod of `mode`'s probe with the files `spec` renders, serving `zone`."""
    files = render_pod_files(spec, hostname="probe", nameservers=["127.0.0.1"])
    (tmp_path / "s").mkdir(exist_ok=True)
    return Pod(
        mode=mode,
        binary=build_probe(MODES[mode], cache_dir=probe_cache).path,
        files=files,
        zone_text=zone,
        workdir=tmp_path / "pod",
        socket_dir=tmp_path / "s",
        godebug=MODES[mode].godebug,
        nofile=spec.nofile,
        port_range=spec.port_range,
        rootfs=spec.rootfs,
    )


def test_open_file_limit_applies_to_the_probe(tmp_path: Path, probe_cache: Path) -> None:
    with make_pod(tmp_path, probe_cache, PodSpec(nofile=64)) as pod:
        limits = Path(f"/proc/{pod.info['pid']}/limits").read_text()
    line = next(ln for ln in limits.splitlines() if ln.startswith("Max open files"))
    assert line.split()[3:5] == ["64", "64"]


def test_source_ports_stay_in_the_pod_port_range(tmp_path: Path, probe_cache: Path) -> None:
    spec = PodSpec(port_range=[40000, 40063], search=[], ndots=1)
    with make_pod(tmp_path, probe_cache, spec) as pod:
        client = ProbeClient(pod.address)
        results = client.batch(
            kind="host", name="{rand}.example.test.", count=20, concurrency=4, timeout_ms=5000
        )
        client.close()
        querylog = pod.querylog_path
    assert all(r.outcome == "ok" for r in results), results[:3]
    with querylog.open() as fh:
        ports = {entry.port for entry in read_querylog(fh)}
    assert ports and all(40000 <= port <= 40063 for port in ports), sorted(ports)


@pytest.mark.parametrize("rootfs", ["host", "scratch", "musl"])
def test_resolv_conf_rewritten_under_a_running_probe(tmp_path: Path, probe_cache: Path, rootfs: str) -> None:
    """In place, as the probe sees it: through the host's /etc and through a scratch or Alpine-like root
    (whose /etc files are the pod's, mounted, so the rewrite reaches them too)."""
    spec = PodSpec(changes=[{"at_s": 1, "options": ["no-aaaa"]}], rootfs=rootfs)  # type: ignore[list-item]
    with make_pod(tmp_path, probe_cache, spec, mode="go" if rootfs != "musl" else "musl") as pod:
        seen = Path(f"/proc/{pod.info['pid']}/root/etc/resolv.conf")
        before = seen.read_text()
        new = render_pod_files(spec.changed(spec.changes[0]), hostname="probe", nameservers=["127.0.0.1"])
        pod.rewrite_resolv_conf(new.resolv_conf)
        time.sleep(0.05)
        after = seen.read_text()
    assert "no-aaaa" not in before
    assert after == new.resolv_conf and "options ndots:5 no-aaaa" in after


def test_the_pods_own_godebug_netdns_survives_the_trace_level(tmp_path: Path, probe_cache: Path) -> None:
    """`env = {GODEBUG = "netdns=cgo"}` on a default cgo build: the harness adds its trace level without
    undoing the choice (a bare `netdns=2` after it would put Go back on its own resolver)."""
    from dnsprobe.analyse.trace import parse_trace, trace_file_lines

    spec = PodSpec(search=[], ndots=1, env={"GODEBUG": "netdns=cgo"})
    files = render_pod_files(spec, hostname="probe", nameservers=["127.0.0.1"])
    (tmp_path / "s").mkdir()
    pod = Pod(
        mode="godebug-go",
        binary=build_probe(MODES["godebug-go"], cache_dir=probe_cache).path,
        files=files,
        zone_text=ZONE,
        workdir=tmp_path / "pod",
        socket_dir=tmp_path / "s",
        godebug="netdns=2",
        env=spec.env,
    )
    with pod:
        client = ProbeClient(pod.address)
        results = client.batch(
            kind="host", name="{rand}.example.test.", count=4, concurrency=2, timeout_ms=5000
        )
        client.close()
        trace = pod.trace_path
    assert all(r.outcome == "ok" for r in results), results[:3]
    report = parse_trace(trace_file_lines(trace.read_bytes()))
    assert report.resolver == "cgo", report
