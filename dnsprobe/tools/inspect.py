"""`dnsprobe inspect` on what a user names: a Go binary on disk, or a local image (its entrypoint, and the
base image it is built on). The facts themselves come from `dnsprobe.binary`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dnsprobe.binary.bases import BASES
from dnsprobe.binary.inspection import Inspection, inspect_binary, looks_like_image
from dnsprobe.errors import DockerError, InspectError


def inspect_target(target: str) -> Inspection:
    """A path to a binary, or else the name of a local Docker image whose entrypoint is inspected."""
    path = Path(target)
    if path.exists() or not looks_like_image(target):
        return inspect_binary(path)
    from dnsprobe.dockerengine import extract_entrypoint

    try:
        with extract_entrypoint(target) as (binary, inside):
            report = inspect_binary(binary, label=inside)
    except DockerError as exc:
        if "/" in target or ":" in target or "@" in target:
            raise
        raise InspectError(
            f"{target}: neither a file here nor a local Docker image ({exc}); give a path to a Go binary "
            "or the name of an image in `docker images`"
        ) from None
    return dataclasses.replace(report, image=target, image_base=identify_base(target))


def identify_base(reference: str) -> str | None:
    """Which of BASES a local image is built on: a stand-in's label, else what its files say."""
    from dnsprobe.dockerengine import connect, get_image

    try:
        client = connect()
    except DockerError:
        return None
    try:
        image = get_image(client, reference)
        labels = (image.attrs.get("Config") or {}).get("Labels") or {}
        stands_in = labels.get("dnsprobe.standin")
        for base in BASES.values():
            if stands_in == base.reference:
                return base.name
        container = client.containers.create(image.id, entrypoint=["/nonexistent"], network_mode="none")
        try:
            return _base_from_files(lambda p: _exists(container, p))
        finally:
            container.remove(force=True)
    except Exception:  # telling the base is a courtesy; the verdicts stand without it
        return None
    finally:
        client.close()


def _exists(container: Any, path: str) -> bool:
    try:
        container.get_archive(path)
    except Exception:  # docker.errors.NotFound, or anything the engine says
        return False
    return True


def _base_from_files(exists: Callable[[str], bool]) -> str | None:
    if exists("/lib/ld-musl-x86_64.so.1") or exists("/lib/ld-musl-aarch64.so.1"):
        return "alpine"
    glibc = exists("/lib64/ld-linux-x86-64.so.2") or exists("/lib/ld-linux-aarch64.so.1")
    if glibc:
        return "debian-slim" if exists("/bin/sh") and exists("/var/lib/dpkg/status") else "distroless-base"
    if exists("/etc/ssl/certs/ca-certificates.crt") and exists("/etc/passwd"):
        return "distroless-static"
    if not exists("/etc/passwd") and not exists("/bin/sh"):
        return "scratch"
    return None
