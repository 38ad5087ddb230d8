"""An image's own root file system: layers of `docker save` output and OCI layout tarballs unpacked
without a daemon (whiteouts, traversal, devices, limits), and probes run inside such roots on both
backends, with the image's nsswitch.conf and libc in effect."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dnsprobe.analyse.trace import parse_trace, trace_file_lines
from dnsprobe.binary.bases import BASES, MUSL_LOADER
from dnsprobe.build.probe import build_probe
from dnsprobe.cli import main
from dnsprobe.dockerengine import connect
from dnsprobe.errors import DockerError
from dnsprobe.modes import MODES
from dnsprobe.probe_client import ProbeClient
from dnsprobe.sandbox import Pod, PodStartFailure, render_pod_files
from dnsprobe.sandbox.image_rootfs import ImageError, Limits, iter_tree, parse_rootfs, prepare_image_root
from dnsprobe.sandbox.standins import assemble
from dnsprobe.scenario import Pod as PodSpec
from tests.conftest import need_tool

Entry = tuple[str, object]  # (path, bytes | "->link" | "dir" | "hard:target" | "chr" | "fifo")


def layer(entries: list[Entry]) -> bytes:
    """An uncompressed layer tarball, entries in the given order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in entries:
            info = tarfile.TarInfo(path)
            info.mode = 0o755
            if content == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif content in ("chr", "fifo"):
                info.type = tarfile.CHRTYPE if content == "chr" else tarfile.FIFOTYPE
                info.devmajor, info.devminor = (1, 3) if content == "chr" else (0, 0)
                tar.addfile(info)
            elif isinstance(content, str) and content.startswith("->"):
                info.type = tarfile.SYMTYPE
                info.linkname = content[2:]
                tar.addfile(info)
            elif isinstance(content, str) and content.startswith("hard:"):
                info.type = tarfile.LNKTYPE
                info.linkname = content[5:]
                tar.addfile(info)
            else:
                assert isinstance(content, bytes)
                info.size = len(content)
                info.mode = 0o4755 if path.endswith("suid") else 0o644
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _config(layers: list[bytes], *, entrypoint: list[str] | None = None) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin", "IMAGE_VAR=1"], "Entrypoint": entrypoint or ["/app"]},
            "rootfs": {"type": "layers", "diff_ids": [_sha(data) for data in layers]},
        }
    ).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def docker_save_tarball(path: Path, layers: list[bytes], **config: object) -> Path:
    """The legacy `docker save` format (Docker <= 24): manifest.json, <id>.json, <n>/layer.tar."""
    cfg = _config(layers, **config)  # type: ignore[arg-type]
    with tarfile.open(path, "w") as tar:
        names = []
        for number, data in enumerate(layers):
            names.append(f"{number:064x}/layer.tar")
            _add(tar, names[-1], data)
        config_name = hashlib.sha256(cfg).hexdigest() + ".json"
        _add(tar, config_name, cfg)
        manifest = [{"Config": config_name, "RepoTags": ["t:1"], "Layers": names}]
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    return path


def oci_layout_tarball(path: Path, layers: list[bytes], *, gzipped: bool = True, **config: object) -> Path:
    """An OCI image layout: oci-layout, index.json and blobs/sha256/ (layers gzip-compressed)."""
    cfg = _config(layers, **config)  # type: ignore[arg-type]
    blobs: dict[str, bytes] = {}

    def blob(data: bytes, media: str) -> dict[str, object]:
        blobs[_sha(data)] = data
        return {"mediaType": media, "digest": _sha(data), "size": len(data)}

    kind = "tar+gzip" if gzipped else "tar"
    descriptors = [
        blob(gzip.compress(data, mtime=0) if gzipped else data, f"application/vnd.oci.image.layer.v1.{kind}")
        for data in layers
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(cfg, "application/vnd.oci.image.config.v1+json"),
        "layers": descriptors,
    }
    top = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    index = {"schemaVersion": 2, "manifests": [top]}
    with tarfile.open(path, "w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", json.dumps(index).encode())
        for digest, data in blobs.items():
            _add(tar, f"blobs/sha256/{digest.split(':')[1]}", data)
    return path


LOWER = layer(
    [
        ("etc", "dir"),
        ("etc/nsswitch.conf", b"hosts: files dns\n"),
        ("etc/junk", b"gone in the next layer\n"),
        ("etc/old", "dir"),
        ("etc/old/a", b"a\n"),
        ("etc/old/b", b"b\n"),
        ("usr/lib", "dir"),
        ("lib", "->usr/lib"),
        ("usr/lib/libx.so", b"x"),
        ("bin/tool", b"#!/bin/sh\n"),
        ("bin/tool-link", "hard:bin/tool"),
        ("dev/null", "chr"),
        ("run/pipe", "fifo"),
        ("bin/suid", b"s"),
    ]
)
UPPER = layer(
    [
        ("etc/.wh.junk", b""),
        ("etc/old/c", b"c\n"),  # before the opaque marker in tar order: still this layer's own
        ("etc/old/.wh..wh..opq", b""),
        ("etc/nsswitch.conf", b"hosts: files resolve dns\n"),
        ("lib/liby.so", b"y"),  # written through the lower layer's symlink, inside the root
    ]
)


def docker25_save_tarball(path: Path, layers: list[bytes]) -> Path:
    """`docker save` of Docker 25+: an OCI layout whose manifest.json points at the blobs."""
    oci_layout_tarball(path, layers, gzipped=False)
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    index = json.loads(members["index.json"])
    manifest = json.loads(members["blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]])
    entry = {
        "Config": "blobs/sha256/" + manifest["config"]["digest"].split(":")[1],
        "RepoTags": ["t:25"],
        "Layers": ["blobs/sha256/" + d["digest"].split(":")[1] for d in manifest["layers"]],
    }
    with tarfile.open(path, "a") as tar:
        _add(tar, "manifest.json", json.dumps([entry]).encode())
    return path


@pytest.mark.parametrize("fmt", ["docker-save", "docker25-save", "oci-gzip", "oci-plain"])
def test_layers_unpack_with_whiteouts_links_and_no_devices(tmp_path: Path, fmt: str) -> None:
    if fmt == "docker-save":
        tarball = docker_save_tarball(tmp_path / "img.tar", [LOWER, UPPER])
    elif fmt == "docker25-save":
        tarball = docker25_save_tarball(tmp_path / "img.tar", [LOWER, UPPER])
    else:
        tarball = oci_layout_tarball(tmp_path / "img.tar", [LOWER, UPPER], gzipped=fmt == "oci-gzip")
    root = prepare_image_root(f"oci:{tarball}", tmp_path / "cache")
    tree = set(iter_tree(root.path))
    assert (root.path / "etc/nsswitch.conf").read_text() == "hosts: files resolve dns\n"
    assert "etc/junk" not in tree
    assert {p for p in tree if p.startswith("etc/old/")} == {"etc/old/c"}
    assert (root.path / "lib").is_symlink()
    assert (root.path / "usr/lib/liby.so").read_bytes() == b"y"
    assert (root.path / "bin/tool-link").stat().st_ino == (root.path / "bin/tool").stat().st_ino
    assert "dev/null" not in tree and "run/pipe" not in tree
    assert sorted(root.skipped) == ["/dev/null (character device)", "/run/pipe (FIFO)"]
    assert not (root.path / "bin/suid").stat().st_mode & 0o4000
    assert root.env["IMAGE_VAR"] == "1" and root.argv == ["/app"]
    assert len(root.layers) == 2
    # cached: the same image is not unpacked again, whatever the tarball's name
    (root.path / "etc/marker").write_text("kept")
    copy = shutil.copy(tarball, tmp_path / "again.tar")
    assert prepare_image_root(f"oci:{copy}", tmp_path / "cache").path == root.path
    assert (root.path / "etc/marker").exists()


def test_docker_save_layers_shared_through_symlinks(tmp_path: Path) -> None:
    """Docker <= 24 saves a layer two images share once; the other `<id>/layer.tar` is a symlink."""
    first, second = layer([("a", b"1")]), layer([("b", b"2")])
    tarball = docker_save_tarball(tmp_path / "img.tar", [first, second])
    with tarfile.open(tarball) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    shared = f"{9:064x}/layer.tar"
    manifest = json.loads(members["manifest.json"])
    moved = manifest[0]["Layers"][1]
    manifest[0]["Layers"][1] = f"{8:064x}/layer.tar"
    members[shared] = members.pop(moved)
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(tarball, "w") as tar:
        for name, data in members.items():
            _add(tar, name, data)
        info = tarfile.TarInfo(f"{8:064x}/layer.tar")
        info.type = tarfile.SYMTYPE
        info.linkname = f"../{shared}"
        tar.addfile(info)
    root = prepare_image_root(f"oci:{tarball}", tmp_path / "cache")
    assert (root.path / "a").read_bytes() == b"1" and (root.path / "b").read_bytes() == b"2"


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        ([("../escape", b"x")], "points outside the root"),
        ([("etc/../../escape", b"x")], "points outside the root"),
    ],
)
def test_traversal_is_refused(tmp_path: Path, entries: list[Entry], words: str) -> None:
    tarball = docker_save_tarball(tmp_path / "bad.tar", [layer(entries)])
    with pytest.raises(ImageError, match=words):
        prepare_image_root(f"oci:{tarball}", tmp_path / "cache")
    assert not (tmp_path / "escape").exists()


def test_symlinks_cannot_lead_a_layer_outside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = layer(
        [("up", f"->{outside}"), ("rel", "->../../../../.."), ("up/owned", b"x"), ("rel/owned2", b"y")]
    )
    tarball = docker_save_tarball(tmp_path / "evil.tar", [evil])
    root = prepare_image_root(f"oci:{tarball}", tmp_path / "cache")
    assert list(outside.iterdir()) == []
    # both links resolve inside the root, as they would inside the container
    assert (root.path / outside.relative_to("/") / "owned").read_bytes() == b"x"
    assert (root.path / "owned2").read_bytes() == b"y"


def test_size_limit_and_damaged_layers(tmp_path: Path) -> None:
    big = docker_save_tarball(tmp_path / "big.tar", [layer([("f", b"x" * 5000)])])
    with pytest.raises(ImageError, match="more than 4096 bytes"):
        prepare_image_root(f"oci:{big}", tmp_path / "cache", Limits(max_bytes=4096))
    assert [p.name for p in (tmp_path / "cache" / "rootfs").iterdir()] == []  # nothing half-unpacked kept
    # a layer that is not the one the config names
    good, other = layer([("f", b"1")]), layer([("f", b"2")])
    tarball = tmp_path / "edited.tar"
    docker_save_tarball(tarball, [good])
    with tarfile.open(tarball) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    members[next(n for n in members if n.endswith("layer.tar"))] = other
    with tarfile.open(tarball, "w") as tar:
        for name, data in members.items():
            _add(tar, name, data)
    with pytest.raises(ImageError, match="damaged or edited"):
        prepare_image_root(f"oci:{tarball}", tmp_path / "cache")


def test_bad_sources_are_one_line(tmp_path: Path) -> None:
    assert parse_rootfs("musl") is None
    with pytest.raises(ValueError, match="image:REF"):
        parse_rootfs("alpine")
    with pytest.raises(ImageError, match=r"no such file.*docker save"):
        prepare_image_root(f"oci:{tmp_path / 'nope.tar'}", tmp_path / "cache")
    (tmp_path / "x.tar").write_bytes(b"not a tar")
    with pytest.raises(ImageError, match="not a tar archive"):
        prepare_image_root(f"oci:{tmp_path / 'x.tar'}", tmp_path / "cache")


# --- probes inside image roots -----------------------------------------------------------------------

ZONE = "*.example.test. 30 IN A 192.0.2.1\n"
# Go's resolver cannot follow `resolve` or a [!UNAVAIL=return] action, so a default cgo build hands every
# name to glibc; with the pod's own "files dns" it would use its own resolver.
CGO_NSSWITCH = b"passwd: files\ngroup: files\nhosts: files resolve [!UNAVAIL=return] dns\n"
GAI_CONF = b"precedence ::ffff:0:0/96  100\n"  # prefer IPv4 answers, as many images configure


def glibc_layers() -> list[bytes]:
    """A distroless/base-like root (the host's glibc), then a layer that replaces its nsswitch.conf and
    deletes a file of the first one (a whiteout)."""
    base, _missing = assemble(BASES["distroless-base"])
    with tarfile.open(fileobj=io.BytesIO(base)) as tar:
        assert "etc/nsswitch.conf" in tar.getnames()
    return [
        base,
        layer([("etc/nsswitch.conf", CGO_NSSWITCH), ("etc/gai.conf", GAI_CONF), ("etc/.wh.group", b"")]),
    ]


def alpine_layers() -> list[bytes]:
    base, _missing = assemble(BASES["alpine"])
    return [base]


def image_pod(tmp_path: Path, mode: str, rootfs: str, cache: Path) -> Pod:
    socket_dir = Path(tempfile.mkdtemp(prefix="dp-img-"))  # unix socket paths must stay short
    return Pod(
        mode=mode,
        binary=build_probe(MODES[mode], cache_dir=cache).path,
        files=render_pod_files(PodSpec(), hostname="probe", nameservers=["127.0.0.1"]),
        zone_text=ZONE,
        workdir=tmp_path / f"pod-{mode}",
        socket_dir=socket_dir,
        godebug="netdns=2",
        rootfs=rootfs,
        cache_dir=cache,
    )


def lookups_in(pod: Pod) -> tuple[list[str], dict[str, object]]:
    """Three lookups; their outcomes and what the trace says."""
    try:
        return _lookups_in(pod)
    finally:
        shutil.rmtree(pod.socket_dir, ignore_errors=True)


def _lookups_in(pod: Pod) -> tuple[list[str], dict[str, object]]:
    with pod:
        client = ProbeClient(pod.address, timeout=20)
        try:
            results = client.batch(
                kind="host", name="{rand}.example.test.", count=3, concurrency=1, timeout_ms=5000
            )
        finally:
            client.close()
        pid = pod.info["pid"]
        root = Path(f"/proc/{pid}/root")
        seen: dict[str, object] = {
            "nsswitch": (root / "etc/nsswitch.conf").read_text()
            if (root / "etc/nsswitch.conf").exists()
            else None,
            "resolv": (root / "etc/resolv.conf").read_text() if (root / "etc/resolv.conf").exists() else None,
            "maps": [
                line.split()[-1]
                for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                if ".so" in line
            ],
            "group": (root / "etc/group").exists(),
            "gai": (root / "etc/gai.conf").read_bytes() if (root / "etc/gai.conf").exists() else None,
        }
    report = parse_trace(trace_file_lines(pod.trace_path.read_bytes()))
    seen["resolver"] = report.resolver
    seen["orders"] = report.order_counts
    return [r.outcome for r in results], seen


def test_image_nsswitch_makes_go_choose_cgo_from_an_oci_layout(tmp_path: Path, probe_cache: Path) -> None:
    tarball = oci_layout_tarball(tmp_path / "api.tar", glibc_layers())
    outcomes, seen = lookups_in(image_pod(tmp_path, "cgo-dynamic", f"oci:{tarball}", probe_cache))
    assert outcomes == ["ok", "ok", "ok"]
    assert seen["nsswitch"] == CGO_NSSWITCH.decode()  # the image's, not the pod's
    assert "nameserver 127.0.0.1" in str(seen["resolv"])  # the pod's, as the kubelet writes it
    assert seen["group"] is False  # the second layer's whiteout
    assert seen["gai"] == GAI_CONF  # the image's gai.conf, which glibc's getaddrinfo reads
    assert seen["resolver"] == "cgo" and seen["orders"] == {"cgo": 3}
    maps = seen["maps"]
    assert isinstance(maps, list) and any(m.endswith("/rootfs/lib/x86_64-linux-gnu/libc.so.6") for m in maps)
    # the same binary with the pod's own files on the host's root: Go's resolver
    outcomes, seen = lookups_in(image_pod(tmp_path / "host", "cgo-dynamic", "host", probe_cache))
    assert outcomes == ["ok", "ok", "ok"] and seen["resolver"] == "go"


@pytest.mark.musl
def test_musl_binary_runs_on_an_alpine_like_image(tmp_path: Path, probe_cache: Path) -> None:
    need_tool("musl-gcc", "apt-get install musl-tools")
    tarball = oci_layout_tarball(tmp_path / "alpine.tar", alpine_layers(), gzipped=False)
    outcomes, seen = lookups_in(image_pod(tmp_path, "musl", f"oci:{tarball}", probe_cache))
    assert outcomes == ["ok", "ok", "ok"]
    assert seen["resolver"] == "cgo"
    maps = seen["maps"]
    assert isinstance(maps, list) and any(
        m.endswith("/rootfs" + MUSL_LOADER) or "/rootfs/lib/" in m for m in maps
    )


# --- images in the local Docker engine ---------------------------------------------------------------

TEST_IMAGE = "dnsprobe-test/glibc-nss:1"


@pytest.fixture(scope="module")
def engine_image() -> Iterator[str]:
    """A two-layer image built FROM scratch in the local engine from the glibc stand-in (no registry)."""
    try:
        client = connect(timeout=60)
    except DockerError as exc:
        pytest.skip(str(exc))
    layers = glibc_layers()
    layers[1] = layer([("etc/nsswitch.conf", CGO_NSSWITCH)])  # docker's ADD would not read a whiteout
    dockerfile = b"FROM scratch\nADD base.tar /\nADD nss.tar /\nENV IMAGE_VAR=1\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("base.tar", layers[0]), ("nss.tar", layers[1])):
            _add(tar, name, data)
    context.seek(0)
    try:
        client.images.build(fileobj=context, custom_context=True, tag=TEST_IMAGE, rm=True, pull=False)
        yield TEST_IMAGE
    finally:
        client.close()


ALPINE_IMAGE = "dnsprobe-test/alpine-like:1"


@pytest.fixture(scope="module")
def alpine_image() -> Iterator[str]:
    """The alpine stand-in's root as a local image (musl's loader, busybox), built FROM scratch."""
    try:
        client = connect(timeout=60)
    except DockerError as exc:
        pytest.skip(str(exc))
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        _add(tar, "Dockerfile", b"FROM scratch\nADD root.tar /\n")
        _add(tar, "root.tar", alpine_layers()[0])
    context.seek(0)
    try:
        client.images.build(fileobj=context, custom_context=True, tag=ALPINE_IMAGE, rm=True, pull=False)
        yield ALPINE_IMAGE
    finally:
        client.close()


SCENARIO = """\
name = "image-root"
modes = ["{mode}"]
backend = "{backend}"
[pod]
rootfs = "{rootfs}"
[load]
users = 1
duration = 2
quick_duration = 1
batch = 4
concurrency = 2
[[load.workloads]]
label = "svc"
query = "{{rand}}.api.example.test."
[nameserver]
zone = \"\"\"
$TTL 30
example.test.         SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 30
*.api.example.test.   A     192.0.2.10
\"\"\"
"""


def run_scenario_file(
    tmp_path: Path, cache: Path, backend: str, rootfs: str, mode: str = "cgo-dynamic"
) -> tuple[int, dict[str, Any] | None]:
    path = tmp_path / f"{backend}.toml"
    path.write_text(SCENARIO.format(backend=backend, rootfs=rootfs, mode=mode))
    out = tmp_path / f"runs-{backend}"
    code = main(["run", str(path), "--quick", "--out", str(out), "--cache", str(cache)])
    runs = list(out.iterdir()) if out.exists() else []
    summary = json.loads((runs[0] / "summary.json").read_text()) if runs else None
    return code, summary


@pytest.mark.docker
def test_engine_image_and_its_docker_save_share_one_root(
    tmp_path: Path, probe_cache: Path, engine_image: str
) -> None:
    cache = tmp_path / "cache"
    from_engine = prepare_image_root(f"image:{engine_image}", cache)
    saved = tmp_path / "saved.tar"
    client = connect()
    try:
        with saved.open("wb") as fh:
            for chunk in client.images.get(engine_image).save(named=True):
                fh.write(chunk)
    finally:
        client.close()
    from_tarball = prepare_image_root(f"oci:{saved}", cache)
    assert from_tarball.path == from_engine.path and from_tarball.image_id == from_engine.image_id
    assert len(from_engine.layers) == 2 and from_engine.env["IMAGE_VAR"] == "1"
    assert (from_engine.path / "etc/nsswitch.conf").read_bytes() == CGO_NSSWITCH


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "docker"])
def test_run_inside_the_image_on_both_backends(
    tmp_path: Path, probe_cache: Path, engine_image: str, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, summary = run_scenario_file(tmp_path, probe_cache, backend, f"image:{engine_image}")
    assert summary is not None, capsys.readouterr().err
    (entry,) = summary["modes"]
    # cgo-dynamic expects Go's resolver on the pod's own files: the image's nsswitch.conf overrules it
    assert entry["status"] == "ran", entry["reason"]
    assert entry["resolver"] == "cgo", entry["trace"]
    assert entry["ok"] > 0 and entry["lookups"] == entry["ok"] + sum(entry["failures"].values())
    assert entry["image_rootfs"]["source"] == f"image:{engine_image}"
    assert entry["mode"] == ("cgo-dynamic" if backend == "local" else "cgo-dynamic+image")
    # the mode's own expectation (Go's resolver, on the pod's files) fails, and the rules say why
    assert code == 1
    assert summary["pod"]["nsswitch"] == CGO_NSSWITCH.decode() and summary["pod"]["nsswitch_from"] == "image"
    (finding,) = [f for f in summary["findings"] if f["rule"] == "nsswitch_forces_cgo"]
    assert "resolve" in finding["seen"] and entry["mode"] in finding["modes"]
    run_dir = tmp_path / f"runs-{backend}" / summary["run_id"]
    report = (run_dir / "report.md").read_text()
    assert f"Root file system: image:{engine_image}" in report and "is the image's own" in report
    assert "hosts: files resolve [!UNAVAIL=return] dns" in report  # in the pod files' fenced block


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.musl
@pytest.mark.parametrize("backend", ["local", "docker"])
def test_musl_probe_in_an_alpine_like_image_on_both_backends(
    tmp_path: Path, probe_cache: Path, alpine_image: str, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    need_tool("musl-gcc", "apt-get install musl-tools")
    code, summary = run_scenario_file(tmp_path, probe_cache, backend, f"image:{alpine_image}", mode="musl")
    assert summary is not None, capsys.readouterr().err
    (entry,) = summary["modes"]
    assert entry["status"] == "ran", entry["reason"]
    assert entry["resolver"] == "cgo" and entry["ok"] > 0
    assert entry["binary"]["libc"] == "musl"
    assert code == 0, summary["checks"]
    # the alpine stand-in ships `hosts: files dns`: nothing in it switches the resolver
    assert summary["pod"]["nsswitch"] == "hosts: files dns\n"


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_missing_image_is_one_line(
    tmp_path: Path, probe_cache: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        connect(timeout=30).close()
    except DockerError as exc:
        pytest.skip(str(exc))
    code, _summary = run_scenario_file(tmp_path, probe_cache, backend, "image:dnsprobe-test/absent:0")
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert "dnsprobe-test/absent:0: no such image" in err and "docker load" in err and "oci:PATH.tar" in err


def test_glibc_probe_on_an_alpine_like_image_does_not_start(tmp_path: Path, probe_cache: Path) -> None:
    """Catalog 1 in the image's own root: the loader the binary names is not in the image."""
    tarball = oci_layout_tarball(tmp_path / "alpine.tar", alpine_layers())
    pod = image_pod(tmp_path, "cgo", f"oci:{tarball}", probe_cache)
    with pytest.raises(PodStartFailure) as caught, pod:
        pass
    shutil.rmtree(pod.socket_dir, ignore_errors=True)
    assert caught.value.text == "exec /.dnsprobe/probe: no such file or directory"


def test_an_image_cannot_point_the_pods_files_at_the_host(tmp_path: Path, probe_cache: Path) -> None:
    """/etc and /tmp of the image are symlinks to host directories: the pod's files and sockets still
    land inside the image's root, where the probe (reading through the same links) finds them."""
    outside = tmp_path / "host-dir"
    outside.mkdir()
    evil = layer([("etc", f"->{outside}"), ("tmp", "->/"), ("dev", f"->{outside}")])
    tarball = oci_layout_tarball(tmp_path / "evil.tar", [evil])
    pod = image_pod(tmp_path, "go", f"oci:{tarball}", probe_cache)
    outcomes, _seen = lookups_in(pod)
    assert outcomes == ["ok", "ok", "ok"]  # the probe read the pod's resolv.conf through the image's link
    assert list(outside.iterdir()) == []
    # inside the root, /etc -> OUTSIDE, and OUTSIDE's own /tmp/... prefix goes through /tmp -> /
    upper = pod.workdir / "rootfs-upper" / outside.relative_to("/tmp")
    assert (upper / "resolv.conf").is_file() and (upper / "null").is_file()  # the pod's mount points
