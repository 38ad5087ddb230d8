"""Pods: the probe sees the pod's DNS files, has no network but its own loopback, and a probe that dies at
start is reported in one line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dnsprobe.build.probe import build_probe
from dnsprobe.modes import MODES
from dnsprobe.sandbox import Pod, PodStartFailure, check_namespaces, render_pod_files
from dnsprobe.scenario import Pod as PodSpec

ZONE = "*.example.test. 30 IN A 192.0.2.1\n"


def make_pod(tmp_path: Path, binary: Path, **spec: object) -> Pod:
    files = render_pod_files(PodSpec.model_validate(spec), hostname="probe", nameservers=["127.0.0.1"])
    socket_dir = tmp_path / "s"
    socket_dir.mkdir(exist_ok=True)
    return Pod(
        mode="go",
        binary=binary,
        files=files,
        zone_text=ZONE,
        workdir=tmp_path / "pod",
        socket_dir=socket_dir,
        godebug="netdns=2",
    )


def test_namespaces_available() -> None:
    check_namespaces()


def test_resolv_conf_renders_like_the_kubelet() -> None:
    files = render_pod_files(
        PodSpec(timeout=1, attempts=2, options=["single-request-reopen"]),
        hostname="p",
        nameservers=["127.0.0.1"],
    )
    assert files.resolv_conf == (
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 127.0.0.1\n"
        "options ndots:5 timeout:1 attempts:2 single-request-reopen\n"
    )
    assert "hosts:          files dns\n" in files.nsswitch_conf


def test_probe_sees_pod_files_and_only_loopback(tmp_path: Path, probe_cache: Path) -> None:
    binary = build_probe(MODES["go"], cache_dir=probe_cache).path
    with make_pod(tmp_path, binary, ndots=2, hosts=["192.0.2.99 pinned.example.test"]) as pod:
        pid = pod.info["pid"]
        resolv = Path(f"/proc/{pid}/root/etc/resolv.conf").read_text()
        assert resolv == pod.files.resolv_conf
        assert "nameserver 127.0.0.1" in resolv and "ndots:2" in resolv
        assert "pinned.example.test" in Path(f"/proc/{pid}/root/etc/hosts").read_text()
        net_dev = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
        interfaces = [line.split(":")[0].strip() for line in net_dev]
        assert interfaces == ["lo"], interfaces
        # the host's own files are untouched
        assert Path("/etc/resolv.conf").read_text() != resolv


def test_probe_that_dies_at_start_is_one_clear_line(tmp_path: Path) -> None:
    fake = tmp_path / "probe"
    fake.write_text("#!/bin/sh\necho 'exec /app: no such file or directory' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(PodStartFailure) as caught, make_pod(tmp_path, fake):
        pass
    assert caught.value.text == "exec /app: no such file or directory"
    assert "\n" not in str(caught.value)


def test_missing_binary_is_a_start_failure(tmp_path: Path) -> None:
    with pytest.raises(PodStartFailure), make_pod(tmp_path, tmp_path / "nope"):
        pass
