"""The local Docker engine, reached through the Docker SDK: a client that answered a ping, an image by
reference (never pulled: no registry is reachable here), and an image's entrypoint binary copied out.
What the sandbox, the twin and `inspect` share; each failure is one DockerError line."""

from __future__ import annotations

import io
import os
import posixpath
import socket
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dnsprobe.errors import DockerError

_SOCKET_HINT = "start it (dockerd &, or systemctl start docker) or set DOCKER_HOST"


def connect(timeout: float = 60) -> Any:
    """A docker.DockerClient that answered a ping; DockerError in one line otherwise."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise DockerError("the Docker SDK for Python is not installed (pip install docker)") from None
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if where.startswith("unix://"):
        _probe_unix_socket(where)
    client = None
    try:
        # A fixed API version: "auto" would query the engine inside the constructor and leak the
        # client's socket when no engine answers. 1.41 is Docker 20.10's; later engines accept it.
        client = docker.from_env(timeout=timeout, version="1.41")
        client.ping()
    except DockerException as exc:
        if client is not None:
            client.close()
        text = str(exc)
        reason = next(
            (r for r in ("No such file", "Connection refused", "Permission denied") if r in text), ""
        )
        detail = f" ({reason.lower()})" if reason else ""
        raise DockerError(f"no Docker engine answers at {where}{detail}; {_SOCKET_HINT}") from None
    return client


def _probe_unix_socket(where: str) -> None:
    """Fail before docker-py does: its unix transport leaks the socket when the connect fails."""
    path = where.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(path)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise DockerError(f"no Docker engine answers at {where} ({reason}); {_SOCKET_HINT}") from None


def get_image(client: Any, reference: str) -> Any:
    from docker.errors import APIError, ImageNotFound

    try:
        return client.images.get(reference)
    except ImageNotFound:
        raise DockerError(
            f"{reference}: no such local image (no registry is reachable here, so nothing is pulled; "
            "`docker images` lists what there is)"
        ) from None
    except APIError as exc:
        raise DockerError(f"{reference}: the engine refused: {exc.explanation or exc}") from None


@contextmanager
def extract_entrypoint(reference: str) -> Iterator[tuple[Path, str]]:
    """Copy the image's entrypoint binary to a temporary file: yields (local path, path in the image)."""
    client = connect()
    try:
        image = get_image(client, reference)
        config = image.attrs.get("Config") or {}
        argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
        if not argv:
            raise DockerError(f"{reference}: the image has no ENTRYPOINT or CMD to inspect")
        program = argv[0]
        container = client.containers.create(image.id, entrypoint=[program], command=[], network_mode="none")
        try:
            inside = program if program.startswith("/") else _search_path(container, program, config)
            data = _read_file(container, inside)
        finally:
            container.remove(force=True)
    finally:
        client.close()
    with tempfile.TemporaryDirectory(prefix="dnsprobe-inspect-") as tmp:
        path = Path(tmp) / posixpath.basename(inside)
        path.write_bytes(data)
        yield path, f"{reference}:{inside}"


def _search_path(container: Any, program: str, config: dict[str, Any]) -> str:
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    for directory in env.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":"):
        candidate = posixpath.join(directory, program)
        try:
            container.get_archive(candidate)
            return candidate
        except Exception:  # noqa: S112 - not in this directory; try the next one
            continue
    raise DockerError(f"{program}: not found on the image's PATH")


def _read_file(container: Any, path: str, hops: int = 8) -> bytes:
    """The bytes of a file in the container, following symlinks (get_archive returns the link)."""
    from docker.errors import NotFound

    try:
        stream, _ = container.get_archive(path)
    except NotFound:
        raise DockerError(f"{path}: the image's entrypoint is not in the image") from None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        if member is None:
            raise DockerError(f"{path}: empty archive from the engine")
        if member.issym() and hops:
            return _read_file(container, posixpath.join(posixpath.dirname(path), member.linkname), hops - 1)
        extracted = tar.extractfile(member)
        if extracted is None:
            raise DockerError(f"{path}: not a regular file in the image")
        return extracted.read()
