"""The docker backend's engine access: connecting, images, and getting a binary out of an image.

Only this module and the docker pod import the Docker SDK. Every engine problem becomes a one-line
DockerError: no engine, an image that does not exist, a build that fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dnsprobe import godebug, proc
from dnsprobe.dockerengine import connect, get_image
from dnsprobe.errors import DockerError, SandboxError
from dnsprobe.nameserver.group import group_spec
from dnsprobe.probe_client import ProbeClient, ProbeUnavailable
from dnsprobe.sandbox.base import PodBase
from dnsprobe.sandbox.files import PodFiles, check_pod_files
from dnsprobe.sandbox.pod import PodStartFailure
from dnsprobe.scenario import Nameserver as NameserverSpec

RUNTIME_USER = "65532:65532"  # distroless's nonroot; the runtime stage never runs as root
_DOCKERFILE = """\
# The runtime stage of the usual multi-stage Go Dockerfile. The probe was built beforehand by dnsprobe
# (no golang image can be pulled here), so the build stage is replaced by copying its output.
FROM {base}
COPY app /app
USER {user}
ENTRYPOINT ["/app"]
"""


def build_probe_image(client: Any, *, binary: Path, base_tag: str, mode: str, base: str) -> str:
    """An image of the probe on a base (cached by the binary's and the base's identity); its tag."""
    from docker.errors import ImageNotFound

    digest = hashlib.sha256(binary.read_bytes()).hexdigest()[:12]
    base_id = get_image(client, base_tag).id.split(":")[-1][:12]
    tag = f"dnsprobe-probe/{mode}:{base}-{digest}-{base_id}"
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    _build_with_binary(
        client,
        _DOCKERFILE.format(base=base_tag, user=RUNTIME_USER),
        binary,
        tag,
        labels={"dnsprobe.mode": mode, "dnsprobe.base": base},
        what=tag,
    )
    return tag


def _build_with_binary(
    client: Any, dockerfile: str, binary: Path, tag: str, *, labels: dict[str, str], what: str
) -> None:
    """Build `tag` from `dockerfile` with `binary` as the context's `app` (nothing is pulled)."""
    from docker.errors import APIError, BuildError

    data = dockerfile.encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        tar.add(str(binary), arcname="app")
    context.seek(0)
    try:
        client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, pull=False, labels=labels)
    except (BuildError, APIError) as exc:
        raise DockerError(f"building {what} failed: {exc}") from None


_IMAGE_DOCKERFILE = """\
# The user's own image as the runtime stage: its files, libc, USER and environment stay; only the
# probe is added, under a path no image uses.
FROM {base}
COPY app /.dnsprobe/probe
ENTRYPOINT ["/.dnsprobe/probe"]
"""


def build_probe_on_image(client: Any, *, binary: Path, reference: str, mode: str) -> tuple[str, str]:
    """An image of the probe on top of the user's image `reference` (cached); its tag and the image id.
    A missing image is one line naming both ways to provide it (nothing is pulled)."""
    from docker.errors import APIError, ImageNotFound

    from dnsprobe.sandbox.image_rootfs import missing_image_message

    try:
        base = client.images.get(reference)
    except ImageNotFound:
        raise DockerError(missing_image_message(reference)) from None
    except APIError as exc:
        raise DockerError(f"{reference}: the engine refused: {exc.explanation or exc}") from None
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()[:12]
    image_id = str(base.id)
    tag = f"dnsprobe-probe/{mode}:image-{digest}-{image_id.split(':')[-1][:12]}"
    try:
        client.images.get(tag)
        return tag, image_id
    except ImageNotFound:
        pass
    _build_with_binary(
        client,
        _IMAGE_DOCKERFILE.format(base=image_id),
        binary,
        tag,
        labels={"dnsprobe.mode": mode, "dnsprobe.image": reference},
        what=f"{tag} on {reference}",
    )
    return tag, image_id


# `[pod] resolv_conf = "unreadable"`: what lets a container's root read a mode-000 file anyway.
_UNREADABLE_CAPS = ["DAC_OVERRIDE", "DAC_READ_SEARCH"]


@dataclass
class DockerPod(PodBase):
    """A pod on the docker backend: the probe's image run with --network none, the pod's resolv.conf and
    hosts bind-mounted, and its nameserver started inside the container's network namespace."""

    mode: str
    image: str
    files: PodFiles
    zone_text: str
    workdir: Path
    socket_dir: Path
    godebug: str
    env: Mapping[str, str] = field(default_factory=dict)
    nameserver: NameserverSpec | None = None
    cache_dir: Path | None = None  # where built programs are kept (the nameserver's Go engine)
    mount_nsswitch: bool = False  # Kubernetes leaves the image's own nsswitch.conf alone
    start_timeout: float = 20.0
    info: dict[str, Any] = field(default_factory=dict)
    _client: Any = None
    _container: Any = None
    _server: subprocess.Popen[bytes] | None = None
    _watchdog: subprocess.Popen[bytes] | None = None  # removes the container should dnsprobe die

    @property
    def _dir(self) -> Path:
        return self.socket_dir / f"d-{self.mode}"

    @property
    def container_id(self) -> str:
        """The running container's id (other containers join its network namespace); "" before start."""
        return str(self._container.id) if self._container is not None else ""

    @property
    def socket_path(self) -> Path:
        return self._dir / "probe.sock"

    def _volumes(self) -> dict[str, dict[str, str]]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        etc = {"resolv.conf": self.files.resolv_conf, "hosts": self.files.hosts}
        if self.mount_nsswitch:
            etc["nsswitch.conf"] = self.files.nsswitch_conf
        state = self.files.resolv_conf_state
        if state == "missing":  # docker mounts a resolv.conf into every container
            raise DockerError("resolv_conf = 'missing' needs the local backend: docker always writes one")
        volumes = {}
        for name, text in etc.items():
            (self.workdir / name).unlink(missing_ok=True)  # an unreadable one from the last start
            (self.workdir / name).write_text(text, encoding="utf-8")
            volumes[str(self.workdir / name)] = {"bind": f"/etc/{name}", "mode": "ro"}
        if state == "unreadable":  # mode 000; the container's user without the capabilities that skip it
            (self.workdir / "resolv.conf").chmod(0)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._dir.chmod(0o777)  # the probe runs as 65532 and creates its socket here
        volumes[str(self._dir)] = {"bind": "/run/dnsprobe", "mode": "rw"}
        return volumes

    def rewrite_resolv_conf(self, text: str) -> None:
        """Change resolv.conf under the running container, in place: the bind mount holds the file's
        inode, so a renamed file would never be seen (an unreadable one stays unreadable to the probe)."""
        self._rewrite("resolv.conf", replace(self.files, resolv_conf=text), text)

    def rewrite_nsswitch_conf(self, text: str) -> None:
        """Change nsswitch.conf under the running container, in place. Only a pod that mounts its own
        (`mount_nsswitch`, not an image's cell, which keeps the image's file) can."""
        if not self.mount_nsswitch:
            raise DockerError(
                f"{self.mode}: the container keeps its image's own nsswitch.conf, so a [[pod.changes]] "
                "nsswitch_hosts cannot reach it; use the local backend"
            )
        self._rewrite("nsswitch.conf", replace(self.files, nsswitch_conf=text), text)

    def _rewrite(self, name: str, files: PodFiles, text: str) -> None:
        allow = self.nameserver is not None and self.nameserver.allow_non_loopback
        check_pod_files(files, served=files.nameservers, allow_non_loopback=allow)
        path = self.workdir / name
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(0o600)
        try:
            with path.open("r+", encoding="utf-8") as fh:
                fh.write(text)
                fh.truncate()
        finally:
            path.chmod(mode)
        self.files = files

    def start(self) -> None:
        if self.nameserver is not None and self.nameserver.kind == "external":
            raise DockerError(
                "the docker backend runs its own nameserver: kind = 'external' is not supported"
            )
        from docker.errors import APIError

        volumes = self._volumes()
        self.socket_path.unlink(missing_ok=True)
        (self.workdir / "zone.txt").write_text(self.zone_text, encoding="utf-8")
        self._client = connect()
        environment = {**self.env, "GODEBUG": _godebug(self.env, self.godebug)}
        try:
            self._container = self._client.containers.create(
                self.image,
                command=["-listen", "unix:/run/dnsprobe/probe.sock", "-mode", self.mode],
                environment=environment,
                network_mode="none",
                volumes=volumes,
                labels={"dnsprobe.mode": self.mode},
                cap_drop=_UNREADABLE_CAPS if self.files.resolv_conf_state == "unreadable" else None,
            )
        except APIError as exc:
            raise DockerError(f"{self.image}: cannot create a container: {exc.explanation or exc}") from None
        from dnsprobe.sandbox import reaper

        self._watchdog = reaper.start(self._container.id)
        try:
            self._container.start()
        except APIError as exc:
            self.stop()
            raise PodStartFailure(self.mode, str(exc.explanation or exc)) from None
        self._container.reload()
        pid = self._container.attrs["State"]["Pid"]
        if not pid:
            text = self._exit_text()
            self.stop()
            raise PodStartFailure(self.mode, text)
        self._start_nameserver(pid)
        self._wait_ready()
        if self.info.get("pid") == 1:  # the probe is the container's first process: pid is its host pid
            self.info.update(pid=int(pid), pod_pid=1)

    def _start_nameserver(self, pid: int) -> None:
        ready = self.workdir / "nameserver.ready"
        ready.unlink(missing_ok=True)
        spec = {
            "ready": str(ready),
            "servers": group_spec(
                self.nameserver,
                zone_file=self.workdir / "zone.txt",
                querylog=self.querylog_path,
                workdir=self.workdir,
                cache_dir=self.cache_dir,
            ),
        }
        spec_path = self.workdir / "nameserver.json"
        spec_path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        argv = [
            "nsenter",
            "-t",
            str(pid),
            "-n",
            sys.executable,
            "-m",
            "dnsprobe.sandbox.netns_server",
            str(spec_path),
        ]
        with self.log_path.open("ab") as log:
            self._server = proc.spawn(argv, stdout=log, stderr=log)  # dies with dnsprobe
        deadline = time.monotonic() + 30  # a loaded machine: it imports, compiles the zone, binds
        while not ready.exists():
            if self._server.poll() is not None or time.monotonic() > deadline:
                self._container.reload()
                if self._container.status not in ("created", "running"):
                    text = self._exit_text()  # the probe died first: that is the result
                    self.stop()
                    raise PodStartFailure(self.mode, text)
                status = self._server.poll()
                self.stop()
                said = " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-3:])
                why = f"exited with status {status}" if status is not None else "not ready within 30 s"
                raise SandboxError(
                    f"the nameserver in the {self.mode} container did not start ({why}; "
                    f"{said or 'no output'}; see {self.log_path})"
                )
            time.sleep(0.02)

    def _wait_ready(self) -> None:
        client = ProbeClient(self.address, timeout=5)
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                self._container.reload()
                if self._container.status not in ("created", "running"):
                    text = self._exit_text()
                    self.stop()
                    raise PodStartFailure(self.mode, text)
                if self.socket_path.exists():
                    try:
                        self.info = client.info()
                        return
                    except ProbeUnavailable:
                        pass
                if time.monotonic() > deadline:
                    text = self._exit_text()
                    self.stop()
                    raise PodStartFailure(self.mode, f"no answer within {self.start_timeout:g} s ({text})")
                time.sleep(0.05)
        finally:
            client.close()

    def _exit_text(self) -> str:
        """What the container said (`exec /app: no such file or directory`), else its exit status."""
        state = self._container.attrs.get("State", {})
        logs: str = self._container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        lines = [
            ln.strip() for ln in logs.splitlines() if ln.strip() and not ln.startswith("go package net:")
        ]
        if lines:
            return lines[-1]
        if state.get("Error"):
            return str(state["Error"])
        return f"exited with status {state.get('ExitCode')} and said nothing"

    def events(self) -> list[dict[str, Any]]:
        """The probe's container or the nameserver in its network namespace gone before `stop`."""
        from docker.errors import APIError, NotFound

        found: list[dict[str, Any]] = []
        if self._container is not None:
            with contextlib.suppress(APIError, NotFound):
                self._container.reload()
                state = self._container.attrs.get("State", {})
                if state.get("Status") not in (None, "created", "running"):
                    how = "was killed (out of memory)" if state.get("OOMKilled") else "exited"
                    text = f"the probe's container {how} with status {state.get('ExitCode')}"
                    found.append({"at": _docker_time(state.get("FinishedAt")), "what": "probe", "text": text})
        if self._server is not None and (code := self._server.poll()) is not None:
            text = f"the nameserver in the container's network namespace exited with status {code}"
            found.append({"at": time.time(), "what": "nameserver", "text": text})
        return found

    def stop(self) -> None:
        from docker.errors import APIError, NotFound

        if self._container is not None:
            with contextlib.suppress(APIError, NotFound):
                self._container.stop(timeout=5)
            with contextlib.suppress(APIError, NotFound):
                self.trace_path.write_bytes(self._container.logs(stdout=False, stderr=True))
                (self.workdir / "probe.stdout").write_bytes(self._container.logs(stdout=True, stderr=False))
            with contextlib.suppress(APIError, NotFound):
                self._container.remove(force=True)
            self._container = None
        if self._watchdog is not None:
            from dnsprobe.sandbox import reaper

            reaper.finish(self._watchdog)
            self._watchdog = None
        if self._server is not None:
            proc.terminate(self._server, timeout=10)
            self._server = None
        if self._client is not None:
            self._client.close()
            self._client = None
        self.socket_path.unlink(missing_ok=True)


def _docker_time(text: object) -> float:
    """Docker's RFC 3339 time with nanoseconds ("2026-12-01T17:34:04.344660905Z") as unix time; now when
    it is missing or not one."""
    from datetime import datetime

    if isinstance(text, str) and text and not text.startswith("0001-"):
        head, _, frac = text.rstrip("Z").partition(".")
        try:
            return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()
        except ValueError:
            pass
    return time.time()


def _godebug(env: Mapping[str, str], mode_godebug: str) -> str:
    return godebug.merge(env.get("GODEBUG", ""), mode_godebug)


def docker_cell(
    mode: str,
    base: str,
    binary: Path,
    *,
    files: PodFiles,
    zone_text: str,
    workdir: Path,
    socket_dir: Path,
    godebug: str,
    env: Mapping[str, str],
    nameserver: NameserverSpec | None,
    mount_nsswitch: bool,
    cache_dir: Path | None = None,
    rootfs: str | None = None,
) -> tuple[DockerPod, dict[str, Any]]:
    """The pod for one cell of the mode x base matrix, and what the summary says about it: the image,
    the stand-in it was built on, and inspect's prediction (so the run can check it). With rootfs
    `image:REF` the user's image is the runtime stage instead of a stand-in."""
    from dnsprobe.binary import inspect_binary
    from dnsprobe.binary.bases import BASES
    from dnsprobe.sandbox.standins import ensure_standins

    if rootfs is not None and rootfs.startswith(("image:", "oci:")):
        return _image_cell(
            mode,
            rootfs,
            binary,
            files=files,
            zone_text=zone_text,
            workdir=workdir,
            socket_dir=socket_dir,
            godebug=godebug,
            env=env,
            nameserver=nameserver,
            mount_nsswitch=mount_nsswitch,
            cache_dir=cache_dir,
        )
    client = connect()
    try:
        standin = ensure_standins(client, [base])[base]
        tag = build_probe_image(client, binary=binary, base_tag=standin.tag, mode=mode, base=base)
    finally:
        client.close()
    verdict = inspect_binary(binary).verdict(base)
    pod = DockerPod(
        mode=f"{mode}+{base}",
        image=tag,
        files=files,
        zone_text=zone_text,
        workdir=workdir,
        socket_dir=socket_dir,
        godebug=godebug,
        env=env,
        nameserver=nameserver,
        mount_nsswitch=mount_nsswitch,
        cache_dir=cache_dir,
    )
    info = {
        "base_image": base,
        "image": tag,
        "standin": standin.to_json(),
        "stands_in_for": BASES[base].reference,
        "inspect": {**verdict.to_json(), "starts": verdict.starts},
    }
    return pod, info


def _image_cell(
    mode: str,
    rootfs: str,
    binary: Path,
    *,
    mount_nsswitch: bool,
    **pod: Any,
) -> tuple[DockerPod, dict[str, Any]]:
    kind, _, reference = rootfs.partition(":")
    if kind == "oci":
        raise DockerError(
            f"rootfs = {rootfs!r}: the docker backend runs images from the local engine; load the "
            f'tarball (docker load -i {reference}) and use image:REF, or use backend = "local"'
        )
    client = connect()
    try:
        tag, image_id = build_probe_on_image(client, binary=binary, reference=reference, mode=mode)
    finally:
        client.close()
    docker_pod = DockerPod(mode=f"{mode}+image", image=tag, mount_nsswitch=mount_nsswitch, **pod)
    info = {
        "base_image": "image",
        "image": tag,
        "image_rootfs": {"source": rootfs, "image_id": image_id},
        "stands_in_for": reference,
    }
    return docker_pod, info
