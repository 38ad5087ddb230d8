"""The docker backend for real: stand-in base images, the mode x base matrix, and inspect's verdicts.

Needs a running Docker engine (.ci/run installs docker.io and starts dockerd). No registry is used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dnsprobe.binary import BASES, inspect_binary
from dnsprobe.build.probe import build_probe
from dnsprobe.cli import main
from dnsprobe.errors import DockerError
from dnsprobe.modes import MODES
from dnsprobe.probe_client import ProbeClient
from dnsprobe.sandbox.files import render_pod_files
from dnsprobe.sandbox.pod import PodStartFailure
from dnsprobe.scenario import Pod as PodSpec

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ZONE = """$TTL 30
example.test. SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 30
*.api.example.test. A 192.0.2.10
*.api.example.test. AAAA 2001:db8::10
"""
MATRIX_MODES = ("go", "cgo", "musl", "musl-static")


@pytest.fixture(scope="module")
def engine() -> Iterator[object]:
    from dnsprobe.dockerengine import connect

    try:
        client = connect(timeout=30)
    except DockerError as exc:
        pytest.skip(str(exc))
    yield client
    client.close()


@pytest.fixture(scope="module")
def matrix(engine: object, probe_cache: Path) -> dict[tuple[str, str], tuple[bool, str, int]]:
    """Run every mode on every stand-in: (started, start-failure text, ok lookups of 10)."""
    from dnsprobe.sandbox.docker import DockerPod, build_probe_image
    from dnsprobe.sandbox.standins import ensure_standins

    if shutil.which("musl-gcc") is None:
        pytest.skip("musl-gcc not found (apt-get install musl-tools)")
    standins = ensure_standins(engine, list(BASES))
    files = render_pod_files(PodSpec(), hostname="probe", nameservers=["127.0.0.1"])
    socket_dir = Path(tempfile.mkdtemp(prefix="dp-"))
    work = Path(tempfile.mkdtemp(prefix="dnsprobe-docker-test-"))
    results: dict[tuple[str, str], tuple[bool, str, int]] = {}
    try:
        for mode in MATRIX_MODES:
            binary = build_probe(MODES[mode], cache_dir=probe_cache).path
            for base in BASES:
                tag = build_probe_image(
                    engine, binary=binary, base_tag=standins[base].tag, mode=mode, base=base
                )
                pod = DockerPod(
                    mode=mode,
                    image=tag,
                    files=files,
                    zone_text=ZONE,
                    workdir=work / f"{mode}-{base}",
                    socket_dir=socket_dir,
                    godebug=MODES[mode].godebug,
                )
                try:
                    pod.start()
                except PodStartFailure as exc:
                    results[(mode, base)] = (False, exc.text, 0)
                    continue
                client = ProbeClient(pod.address, timeout=30)
                try:
                    got = client.batch(
                        kind="host",
                        name="{rand}.api.example.test",
                        count=10,
                        concurrency=2,
                        timeout_ms=10_000,
                    )
                finally:
                    client.close()
                    pod.stop()
                results[(mode, base)] = (True, "", sum(r.outcome == "ok" for r in got))
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return results


def test_glibc_cgo_probe_fails_on_scratch_and_alpine(
    matrix: dict[tuple[str, str], tuple[bool, str, int]],
) -> None:
    for base in ("scratch", "alpine", "distroless-static"):
        started, text, _ = matrix[("cgo", base)]
        assert not started
        assert text == "exec /app: no such file or directory"
    for base in ("distroless-base", "debian-slim"):
        assert matrix[("cgo", base)][0]


def test_started_cells_resolve_through_their_own_nameserver(
    matrix: dict[tuple[str, str], tuple[bool, str, int]],
) -> None:
    started = [cell for cell, (ok, _, _) in matrix.items() if ok]
    assert len(started) >= 10
    for cell in started:
        assert matrix[cell][2] == 10, cell


def test_inspect_agrees_with_the_run_in_every_cell(
    matrix: dict[tuple[str, str], tuple[bool, str, int]], probe_cache: Path
) -> None:
    for mode in MATRIX_MODES:
        report = inspect_binary(build_probe(MODES[mode], cache_dir=probe_cache).path)
        for verdict in report.verdicts:
            started, text, _ = matrix[(mode, verdict.base)]
            assert verdict.starts == started, (mode, verdict.base, verdict.why, text)


def test_inspect_an_image(engine: object, probe_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dnsprobe.sandbox.docker import build_probe_image
    from dnsprobe.sandbox.standins import ensure_standins

    standins = ensure_standins(engine, ["distroless-base"])
    binary = build_probe(MODES["cgo"], cache_dir=probe_cache).path
    tag = build_probe_image(
        engine, binary=binary, base_tag=standins["distroless-base"].tag, mode="cgo", base="distroless-base"
    )
    assert main(["inspect", tag]) == 0
    out = capsys.readouterr().out
    assert f"from image {tag}" in out
    assert "/lib64/ld-linux-x86-64.so.2" in out


def test_missing_image_and_no_engine(engine: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "dnsprobe-no-such-image:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no such local image" in err
    old = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    try:
        assert main(["inspect", "alpine:3.20"]) == 2
    finally:
        if old is None:
            del os.environ["DOCKER_HOST"]
        else:
            os.environ["DOCKER_HOST"] = old
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no Docker engine answers at unix:///nonexistent/docker.sock" in err
