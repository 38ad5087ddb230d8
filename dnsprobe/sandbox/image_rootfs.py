"""An image's own root file system for the local backend, unpacked from its layers without a daemon.

`[pod] rootfs = "image:REF"` takes the image from the local Docker engine (`image.save()`, nothing is
pulled); `rootfs = "oci:PATH.tar"` takes a tarball: `docker save` output (any Docker release; 25+
writes an OCI layout too) or an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`).
The layers are applied in order, the way a container runtime stacks them (whiteouts, paths kept
inside the root, no device nodes, each layer checked against its diff_id: dnsprobe/sandbox/layers.py).

The result is cached under `<cache>/rootfs/<image id>/` and never written to again: the pod mounts it
as the lower layer of an overlay, so what a program writes stays in its own pod.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnsprobe.errors import DockerError
from dnsprobe.sandbox.layers import (
    ImageError,
    Layer,
    Limits,
    Unpacker,
    clean_name,
    iter_tree,
    remove_path,
    remove_tree,
)
from dnsprobe.scenario import ImageSource, parse_rootfs

__all__ = [
    "ImageError",
    "ImageRoot",
    "ImageSource",
    "Limits",
    "iter_tree",
    "parse_rootfs",
    "prepare_image_root",
]

LAYOUT_VERSION = "1"  # bump when the unpacking rules change: old cached roots are not reused
_JSON_LIMIT = 16 * 1024 * 1024  # bytes of a manifest or config


@dataclass(frozen=True)
class ImageRoot:
    """An unpacked image: its root directory (read-only by convention) and the config that matters."""

    path: Path
    source: str
    image_id: str  # sha256:<hex> of the image's config
    layers: tuple[str, ...]  # diff_ids, bottom first
    config: dict[str, Any] = field(default_factory=dict)  # the config's "config": Env, Entrypoint, ...
    skipped: tuple[str, ...] = ()  # entries not unpacked (device nodes, FIFOs), as "path (why)"

    @property
    def env(self) -> dict[str, str]:
        items = self.config.get("Env") or []
        return dict(str(item).split("=", 1) for item in items if "=" in str(item))

    @property
    def argv(self) -> list[str]:
        return [str(a) for a in (self.config.get("Entrypoint") or [])] + [
            str(a) for a in (self.config.get("Cmd") or [])
        ]

    @property
    def workdir(self) -> str:
        return str(self.config.get("WorkingDir") or "/")

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "image_id": self.image_id,
            "layers": list(self.layers),
            "path": str(self.path),
            "entrypoint": self.argv,
            "skipped": list(self.skipped),
        }


def prepare_image_root(value: str, cache_dir: Path, limits: Limits | None = None) -> ImageRoot:
    """The cached root of `image:REF` or `oci:PATH.tar`, unpacked on first use."""
    source = parse_rootfs(value)
    if source is None:
        raise ValueError(f"{value!r} is not an image root")
    limits = limits or Limits()
    store = cache_dir / "rootfs"
    store.mkdir(parents=True, exist_ok=True)
    if source.kind == "oci":
        path = Path(source.ref).expanduser()
        if not path.is_file():
            raise ImageError(
                f"rootfs = {source.text!r}: no such file; write it with `docker save REF -o {path.name}` "
                "(or any OCI image layout tarball), or use image:REF for an image in the local engine"
            )
        return _root_from_tarball(path, source.text, store, limits)
    return _root_from_engine(source.ref, store, limits)


def missing_image_message(ref: str) -> str:
    return (
        f"{ref}: no such image in the local Docker engine, and nothing is pulled: load it into the "
        f'engine (`docker load -i FILE.tar`, or build it), or pass rootfs = "oci:PATH.tar" '
        f"(`docker save {ref} -o PATH.tar` on a machine that has it)"
    )


def _root_from_engine(ref: str, store: Path, limits: Limits) -> ImageRoot:
    from dnsprobe.dockerengine import connect

    try:
        client = connect(timeout=120)
    except DockerError as exc:
        raise DockerError(f"image:{ref} needs the local Docker engine: {exc}; or pass oci:PATH.tar") from None
    try:
        from docker.errors import APIError, ImageNotFound

        try:
            image = client.images.get(ref)
        except ImageNotFound:
            raise DockerError(missing_image_message(ref)) from None
        except APIError as exc:
            raise DockerError(f"{ref}: the engine refused: {exc.explanation or exc}") from None
        cached = _cached(store, str(image.id), f"image:{ref}")
        if cached is not None:
            return cached
        with tempfile.NamedTemporaryFile(dir=store, prefix=".save-", suffix=".tar") as saved:
            try:
                for chunk in image.save(named=False):
                    saved.write(chunk)
            except APIError as exc:
                raise DockerError(f"{ref}: `docker save` failed: {exc.explanation or exc}") from None
            saved.flush()
            return _root_from_tarball(Path(saved.name), f"image:{ref}", store, limits)
    finally:
        client.close()


def _cached(store: Path, image_id: str, source: str) -> ImageRoot | None:
    key = _key(image_id)
    meta = store / f"{key}.json"
    if not meta.exists() or not (store / key).is_dir():
        return None
    data = json.loads(meta.read_text(encoding="utf-8"))
    return ImageRoot(
        path=store / key,
        source=source,
        image_id=data["image_id"],
        layers=tuple(data["layers"]),
        config=data["config"],
        skipped=tuple(data["skipped"]),
    )


def _key(image_id: str) -> str:
    return f"{LAYOUT_VERSION}-{image_id.removeprefix('sha256:')[:32]}"


# --- reading the archive ---------------------------------------------------------------------------


def _root_from_tarball(path: Path, source: str, store: Path, limits: Limits) -> ImageRoot:
    try:
        outer = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by the with block below
    except (OSError, tarfile.TarError) as exc:
        raise ImageError(f"{source}: not a tar archive ({exc})") from None
    with outer:
        members = _file_members(outer)
        config_bytes, layers = _read_manifest(outer, members, source)
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        cached = _cached(store, image_id, source)
        if cached is not None:
            return cached
        config = _load_json(config_bytes, source, "the image config")
        key = _key(image_id)
        staging = Path(tempfile.mkdtemp(dir=store, prefix=f".{key}."))
        try:
            unpacker = Unpacker(staging, limits, source)
            for layer in layers:
                member = members.get(layer.member)
                if member is None:
                    raise ImageError(f"{source}: layer {layer.member} is listed but not in the tarball")
                blob = outer.extractfile(member)
                if blob is None:
                    raise ImageError(f"{source}: layer {layer.member} is not a file")
                unpacker.apply(blob, layer)
            meta: dict[str, Any] = {
                "image_id": image_id,
                "layers": [layer.diff_id for layer in layers],
                "config": config.get("config") or {},
                "skipped": unpacker.skipped,
            }
            target = store / key
            try:
                staging.rename(target)
            except OSError:  # another pod unpacked the same image meanwhile: theirs is as good
                if not target.is_dir():
                    raise
            else:
                staging = target
            meta_tmp = store / f".{key}.json.{os.getpid()}"
            meta_tmp.write_text(json.dumps(meta), encoding="utf-8")
            meta_tmp.replace(store / f"{key}.json")
        finally:
            if staging != store / key:
                remove_tree(staging)
    return ImageRoot(
        path=store / key,
        source=source,
        image_id=image_id,
        layers=tuple(meta["layers"]),
        config=meta["config"],
        skipped=tuple(meta["skipped"]),
    )


def _file_members(outer: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """The tarball's files by clean path. `docker save` (before 25) stores a layer shared by two images
    once and links the other `<id>/layer.tar` to it with a symlink: those resolve to the file."""
    members = {clean_name(m.name): m for m in outer.getmembers() if m.isfile()}
    for link in outer.getmembers():
        target = link
        for _ in range(8):
            if not target.issym():
                break
            name = clean_name(posixpath.join(posixpath.dirname(clean_name(target.name)), target.linkname))
            found = members.get(name) or next(
                (m for m in outer.getmembers() if clean_name(m.name) == name), None
            )
            if found is None:
                break
            target = found
        if link.issym() and target.isfile():
            members[clean_name(link.name)] = target
    return members


def _read_manifest(
    outer: tarfile.TarFile, members: dict[str, tarfile.TarInfo], source: str
) -> tuple[bytes, list[Layer]]:
    """The config's bytes and the layers, bottom first, from `manifest.json` (docker save) or
    `index.json` (OCI layout)."""
    if "manifest.json" in members:
        manifest = _load_json(_read(outer, members, "manifest.json", source), source, "manifest.json")
        if not isinstance(manifest, list) or not manifest:
            raise ImageError(f"{source}: manifest.json lists no image")
        if len(manifest) > 1:
            tags = ", ".join(",".join(m.get("RepoTags") or ["<untagged>"]) for m in manifest)
            raise ImageError(f"{source}: the tarball holds {len(manifest)} images ({tags}); save one only")
        entry = manifest[0]
        config_bytes = _read(outer, members, clean_name(str(entry["Config"])), source)
        diff_ids = _diff_ids(config_bytes, source)
        paths = [clean_name(str(p)) for p in entry.get("Layers") or []]
        if len(paths) != len(diff_ids):
            raise ImageError(f"{source}: {len(paths)} layers but the config lists {len(diff_ids)}")
        return config_bytes, [Layer(p, d, "") for p, d in zip(paths, diff_ids, strict=True)]
    if "index.json" in members:
        return _read_oci(outer, members, source)
    raise ImageError(
        f"{source}: neither manifest.json (docker save) nor index.json (OCI image layout) is in the tarball"
    )


def _read_oci(
    outer: tarfile.TarFile, members: dict[str, tarfile.TarInfo], source: str
) -> tuple[bytes, list[Layer]]:
    index = _load_json(_read(outer, members, "index.json", source), source, "index.json")
    manifests: dict[str, dict[str, Any]] = {}
    pending = list(index.get("manifests") or [])
    for _ in range(64):  # an index may point at nested indexes (multi-platform images)
        if not pending:
            break
        descriptor = pending.pop(0)
        media = str(descriptor.get("mediaType", ""))
        platform = descriptor.get("platform") or {}
        if platform.get("architecture", "amd64") != "amd64" or platform.get("os", "linux") != "linux":
            continue
        if media.endswith("index.v1+json") or media.endswith("manifest.list.v2+json"):
            nested = _load_json(_blob(outer, members, descriptor, source), source, "an image index")
            pending += list(nested.get("manifests") or [])
        elif media.endswith("manifest.v1+json") or media.endswith("manifest.v2+json"):
            manifests[str(descriptor.get("digest"))] = descriptor
    if not manifests:
        raise ImageError(f"{source}: index.json names no linux/amd64 image manifest")
    if len(manifests) > 1:
        raise ImageError(f"{source}: index.json lists {len(manifests)} images; the tarball must hold one")
    (descriptor,) = manifests.values()
    manifest = _load_json(_blob(outer, members, descriptor, source), source, "the image manifest")
    config_bytes = _blob(outer, members, manifest["config"], source)
    diff_ids = _diff_ids(config_bytes, source)
    layers = list(manifest.get("layers") or [])
    if len(layers) != len(diff_ids):
        raise ImageError(f"{source}: {len(layers)} layers but the config lists {len(diff_ids)}")
    return config_bytes, [
        Layer(_blob_path(d, source), diff, str(d.get("mediaType", "")))
        for d, diff in zip(layers, diff_ids, strict=True)
    ]


def _diff_ids(config_bytes: bytes, source: str) -> list[str]:
    config = _load_json(config_bytes, source, "the image config")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(diff_ids, list):
        raise ImageError(f"{source}: the image config has no rootfs.diff_ids")
    return [str(d) for d in diff_ids]


def _blob_path(descriptor: dict[str, Any], source: str) -> str:
    algorithm, _, digest = str(descriptor.get("digest", "")).partition(":")
    if algorithm != "sha256" or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise ImageError(f"{source}: {descriptor.get('digest')!r} is not a sha256 digest")
    return f"blobs/sha256/{digest}"


def _blob(
    outer: tarfile.TarFile, members: dict[str, tarfile.TarInfo], descriptor: dict[str, Any], source: str
) -> bytes:
    data = _read(outer, members, _blob_path(descriptor, source), source)
    if "sha256:" + hashlib.sha256(data).hexdigest() != descriptor["digest"]:
        raise ImageError(
            f"{source}: blob {descriptor['digest']} does not match its digest (damaged tarball?)"
        )
    return data


def _read(outer: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str, source: str) -> bytes:
    member = members.get(name)
    if member is None:
        raise ImageError(f"{source}: {name} is missing from the tarball")
    if member.size > _JSON_LIMIT:
        raise ImageError(f"{source}: {name} is {member.size} bytes, more than a manifest or config has")
    handle = outer.extractfile(member)
    assert handle is not None  # members holds regular files only
    return handle.read()


def _load_json(data: bytes, source: str, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ImageError(f"{source}: {what} is not JSON ({exc})") from None


# --- inside the pod --------------------------------------------------------------------------------

PROGRAM_DIR = "/.dnsprobe"  # where a host program (the probe) is copied inside an image root
_DEVICES = ("null", "zero", "random", "urandom")


def mount_image_root(image: dict[str, Any], merged: Path, program: str, socket_dir: str) -> str:
    """Run by the pod's init, as root of its user and mount namespaces: mount the cached root as the
    lower layer of an overlay at `merged` (writes go to the pod's own upper layer), bind the pod's
    resolv.conf and hosts over the image's, the host's /dev/null & co., and the socket directory.
    Returns the program's path inside the root (a host program is copied to /.dnsprobe/)."""
    for key in ("upper", "work"):
        Path(image[key]).mkdir(parents=True, exist_ok=True)
    merged.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={image['lower']},upperdir={image['upper']},workdir={image['work']}"
    _mount(["-t", "overlay", "overlay", "-o", options, str(merged)], "the image root (overlayfs)")
    for target, source in image["etc"].items():  # e.g. resolv.conf -> /run/systemd/resolve/...: replaced
        _mount(["--bind", source, str(_place(merged, target, directory=False))], target)
    for name in _DEVICES:
        node = _place(merged, f"/dev/{name}", directory=False)
        _mount(["--bind", f"/dev/{name}", str(node)], f"/dev/{name}")
    _mount(["--bind", socket_dir, str(_place(merged, socket_dir, directory=True))], "the socket directory")
    if image.get("program_in_root"):
        return program
    inside = f"{PROGRAM_DIR}/{Path(program).name}"
    try:
        shutil.copy2(program, _place(merged, inside, directory=False))
    except OSError as exc:
        raise SystemExit(f"exec {program}: {(exc.strerror or str(exc)).lower()}") from None
    return inside


def remove_in_root(merged: Path, path: str) -> None:
    """Delete `path` of the mounted image root (in the pod's upper layer), its parents' symlinks
    resolved inside the root; SystemExit when it is still there."""
    where = Unpacker(merged, Limits(), "the image root").resolve(path)
    if os.path.lexists(where):
        remove_path(where)
    if os.path.lexists(where):
        raise SystemExit(f"dnsprobe-pod: {path} is still in the image root after deleting it; not starting")


def _place(merged: Path, path: str, *, directory: bool) -> Path:
    """A mount point (or file) at `path` of the image root, created in the pod's upper layer. Symlinks
    in its parents resolve inside the root, as they would for the program: an image whose /etc points
    at `/` or `../..` cannot make the pod's init write on the host. A symlink or wrong type at `path`
    itself is replaced."""
    where = Unpacker(merged, Limits(), "the image root").resolve(path)
    if where.is_symlink() or (os.path.lexists(where) and where.is_dir() != directory):
        remove_path(where)
    if directory:
        where.mkdir(parents=True, exist_ok=True)
    else:
        where.parent.mkdir(parents=True, exist_ok=True)
        where.touch()
    return where


def _mount(args: list[str], what: str) -> None:
    from dnsprobe import proc

    done = proc.run_plain(["mount", *args])
    if done.returncode != 0:
        raise SystemExit(f"dnsprobe-pod: cannot mount {what}: {done.stderr.strip()}")


def check_rootfs(rootfs: str, backend: str, cache_dir: Path) -> ImageRoot | None:
    """Fail early, in one line, when a scenario's image root cannot be had: before any build or pod.
    The image is unpacked now (cached for the pods): its files are facts for the report on either
    backend. The docker backend needs it in the engine, since it runs the image itself."""
    source = parse_rootfs(rootfs)
    if source is None:
        return None
    if backend != "local" and source.kind == "oci":
        raise DockerError(
            f"rootfs = {rootfs!r}: the docker backend runs images from the local engine; load the "
            f'tarball (docker load -i {source.ref}) and use image:REF, or use backend = "local"'
        )
    return prepare_image_root(rootfs, cache_dir)


def read_image_path(root: ImageRoot, path: str) -> Path | None:
    """Where `path` of the image is in its unpacked root (symlinks followed inside the root)."""
    try:
        return Unpacker(root.path, Limits(), root.source).resolve(path, follow_last=True)
    except ImageError:
        return None


def read_image_file(root: ImageRoot, path: str, limit: int = 1 << 20) -> str | None:
    """A text file of the image (symlinks followed inside its root), or None when it has none."""
    resolved = read_image_path(root, path)
    if resolved is None:
        return None
    try:
        with resolved.open("rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return None
