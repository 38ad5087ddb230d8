"""Offline stand-ins for the five runtime base images, assembled from this host's own files.

No registry is reachable here, so `alpine:3.20` or `gcr.io/distroless/base-debian12` cannot be pulled.
Each stand-in is a `docker import` of a tarball built from the same facts `inspect` judges by
(dnsprobe.binary.bases): nothing for scratch; passwd, CA certificates, tzdata and nsswitch.conf for
distroless/static; plus the host's glibc for distroless/base; musl's loader and a static busybox shell
for alpine; the host's glibc, libgcc/libstdc++ and dash for debian-slim. They are named
`dnsprobe-standin/<base>` and labelled `dnsprobe.standin=<real image>`, and the report says they were used.
What the host cannot supply (e.g. musl builds of libssl) is listed in the label `dnsprobe.standin.missing`.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnsprobe.binary.bases import BASES, GLIBC_LOADER, MUSL_LOADER, BaseImage
from dnsprobe.errors import DockerError

REPOSITORY = "dnsprobe-standin"
LAYOUT_VERSION = "1"  # bump when the assembled contents change
_LIB_DIRS = (Path("/lib/x86_64-linux-gnu"), Path("/usr/lib/x86_64-linux-gnu"))
_MULTIARCH = "/lib/x86_64-linux-gnu"
_PASSWD = {
    "scratch": "",
    "distroless": "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    "alpine": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
    "debian": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
}


@dataclass(frozen=True)
class StandIn:
    base: str
    tag: str  # dnsprobe-standin/alpine:1-<digest>
    real: str  # the image it stands in for
    missing: tuple[str, ...]  # what the model lists but this host could not supply

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "image": self.tag,
            "stands_in_for": self.real,
            "missing": list(self.missing),
        }


def assemble(base: BaseImage) -> tuple[bytes, tuple[str, ...]]:
    """The root file system of a stand-in as an uncompressed tarball, and what could not be found."""
    files: dict[str, bytes | str] = {}  # path in the image -> contents, or "->target" for a symlink
    missing: list[str] = []
    family = {"distroless-static": "distroless", "distroless-base": "distroless"}.get(base.name, "")
    family = family or {"alpine": "alpine", "debian-slim": "debian"}.get(base.name, "scratch")
    if family != "scratch":
        files["etc/passwd"] = _PASSWD[family].encode()
        files["etc/group"] = b"root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
        files["tmp/"] = b""
    if family == "distroless":
        files["home/nonroot/"] = b""
    if base.nsswitch:
        files["etc/nsswitch.conf"] = b"hosts: files dns\n"
    if base.ca_certificates:
        _add_host(
            files, missing, Path("/etc/ssl/certs/ca-certificates.crt"), "etc/ssl/certs/ca-certificates.crt"
        )
    if base.tzdata:
        zoneinfo = Path("/usr/share/zoneinfo")
        for name in ("UTC", "Etc/UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"):
            _add_host(files, missing, zoneinfo / name, f"usr/share/zoneinfo/{name}")
    if GLIBC_LOADER in base.loaders:
        _add_host(files, missing, Path(GLIBC_LOADER), f"{_MULTIARCH[1:]}/ld-linux-x86-64.so.2")
        files[GLIBC_LOADER[1:]] = f"->{_MULTIARCH}/ld-linux-x86-64.so.2"
        for lib in base.libs:
            found = next((d / lib for d in _LIB_DIRS if (d / lib).exists()), None)
            if found is None:
                missing.append(lib)
            else:
                _add_host(files, missing, found, f"{_MULTIARCH[1:]}/{lib}")
    if MUSL_LOADER in base.loaders:
        _add_host(files, missing, Path(MUSL_LOADER), MUSL_LOADER[1:])
        files["lib/libc.musl-x86_64.so.1"] = "->ld-musl-x86_64.so.1"
        missing += [
            lib for lib in base.libs if not lib.startswith(("libc.", "libpthread", "libm.", "libdl", "librt"))
        ]
    if base.shell:
        if family == "alpine":
            busybox = shutil.which("busybox")
            if busybox is None:
                missing.append("busybox (apt-get install busybox-static)")
            else:
                _add_host(files, missing, Path(busybox), "bin/busybox")
                files["bin/sh"] = "->busybox"
        else:
            _add_host(files, missing, Path("/bin/dash"), "bin/dash")
            files["bin/sh"] = "->dash"
    return _tarball(files), tuple(missing)


def _add_host(files: dict[str, bytes | str], missing: list[str], source: Path, target: str) -> None:
    try:
        files[target] = source.resolve().read_bytes()
    except OSError:
        missing.append(str(source))


def _tarball(files: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        directories: set[str] = set()
        for path in sorted(files):
            parts = path.rstrip("/").split("/")
            for depth in range(1, len(parts) if not path.endswith("/") else len(parts) + 1):
                directory = "/".join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o1777 if directory == "tmp" else 0o755
                    info.uid = info.gid = 65532 if directory == "home/nonroot" else 0
                    tar.addfile(info)
            content = files[path]
            if path.endswith("/"):
                continue
            info = tarfile.TarInfo(path)
            if isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content.removeprefix("->")
                tar.addfile(info)
                continue
            info.size = len(content)
            info.mode = 0o755 if path.startswith(("bin/", "lib", "usr/lib")) else 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def ensure_standins(client: Any, names: list[str]) -> dict[str, StandIn]:
    """Import (once; reused while the contents are unchanged) a stand-in image per base name."""
    from docker.errors import APIError, ImageNotFound

    made: dict[str, StandIn] = {}
    for name in names:
        base = BASES[name]
        data, missing = assemble(base)
        digest = hashlib.sha256(data).hexdigest()[:12]
        tag = f"{REPOSITORY}/{name}:{LAYOUT_VERSION}-{digest}"
        try:
            client.images.get(tag)
        except ImageNotFound:
            labels = {"dnsprobe.standin": base.reference, "dnsprobe.standin.missing": ",".join(missing)}
            try:
                client.api.import_image_from_data(
                    data,
                    repository=f"{REPOSITORY}/{name}",
                    tag=f"{LAYOUT_VERSION}-{digest}",
                    changes=[f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()],
                )
            except APIError as exc:
                raise DockerError(f"importing the {name} stand-in failed: {exc.explanation or exc}") from None
        made[name] = StandIn(name, tag, base.reference, missing)
    return made
