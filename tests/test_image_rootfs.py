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
from pathlib import Path

import pytest

from dnsprobe.sandbox.image_rootfs import ImageError, Limits, iter_tree, parse_rootfs, prepare_image_root

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


@pytest.mark.parametrize("fmt", ["docker-save", "oci-gzip", "oci-plain"])
def test_layers_unpack_with_whiteouts_links_and_no_devices(tmp_path: Path, fmt: str) -> None:
    if fmt == "docker-save":
        tarball = docker_save_tarball(tmp_path / "img.tar", [LOWER, UPPER])
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
