"""`dnsprobe observe` on the docker backend: the user's image run as a container in a pod's network.

A pod in Kubernetes is a pause container that holds the network namespace, and the app containers join
it. Here the holder is dnsprobe's own static probe on the scratch stand-in (a DockerPod, `--network
none`), whose namespace gets the scenario's nameserver; the user's image then runs with
`--network container:<holder>`, the pod's resolv.conf and hosts bind-mounted, its own nsswitch.conf
kept, until it exits or for N seconds. Its stderr and the holder's query log are what observe reads.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnsprobe.errors import DockerError
from dnsprobe.sandbox.files import PodFiles
from dnsprobe.scenario import Nameserver as NameserverSpec


@dataclass(frozen=True)
class ContainerRun:
    status: dict[str, Any]  # as the local pod's status.json: started, ended, exit or signal, stopped
    trace_path: Path  # the program's stderr
    querylog_path: Path
    interrupted: bool


def run_program_container(
    *,
    reference: str,
    argv: Sequence[str],
    files: PodFiles,
    zone_text: str,
    workdir: Path,
    socket_dir: Path,
    env: Mapping[str, str],
    godebug: str,
    nameserver: NameserverSpec | None,
    cache_dir: Path,
    mount_nsswitch: bool,
    seconds: float,
) -> ContainerRun:
    """Run `argv` (argv[0] a path in the image) in image `reference`, in a pod with the scenario's
    nameserver. An image the engine cannot start the program in is a DockerError (one line)."""
    from docker.errors import APIError
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import ReadTimeout

    from dnsprobe.build.probe import build_probe
    from dnsprobe.dockerengine import connect
    from dnsprobe.modes import MODES
    from dnsprobe.sandbox.docker import DockerPod, build_probe_image
    from dnsprobe.sandbox.standins import ensure_standins

    probe = build_probe(MODES["go"], cache_dir=cache_dir)
    client = connect()
    try:
        standin = ensure_standins(client, ["scratch"])["scratch"]
        holder_image = build_probe_image(
            client, binary=probe.path, base_tag=standin.tag, mode="go", base="scratch"
        )
    finally:
        client.close()
    holder = DockerPod(
        mode="observed-pod",
        image=holder_image,
        files=files,
        zone_text=zone_text,
        workdir=workdir / "pod",
        socket_dir=socket_dir,
        godebug="netdns=go",
        nameserver=nameserver,
        cache_dir=cache_dir,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    etc = {"resolv.conf": files.resolv_conf, "hosts": files.hosts}
    if mount_nsswitch:
        etc["nsswitch.conf"] = files.nsswitch_conf
    volumes = {}
    for name, text in etc.items():
        (workdir / name).write_text(text, encoding="utf-8")
        volumes[str(workdir / name)] = {"bind": f"/etc/{name}", "mode": "ro"}
    trace_path, stdout_path = workdir / "probe.stderr", workdir / "probe.stdout"
    status: dict[str, Any] = {}
    interrupted = False
    with holder:
        client = connect()
        container = None
        try:
            try:
                container = client.containers.create(
                    reference,
                    entrypoint=[argv[0]],
                    command=list(argv[1:]),
                    environment={**env, "GODEBUG": godebug},
                    network_mode=f"container:{holder.container_id}",
                    volumes=volumes,
                    labels={"dnsprobe.tools.observe": "1"},
                )
                status["started"] = time.time()
                container.start()
            except APIError as exc:
                raise DockerError(
                    f"{argv[0]}: cannot be executed in {reference}: {exc.explanation or exc}"
                ) from None
            stopped = False
            try:
                result = container.wait(timeout=seconds)
            except (ReadTimeout, RequestsConnectionError):
                stopped = True
            except KeyboardInterrupt:
                stopped = interrupted = True
            if stopped:
                with contextlib.suppress(APIError):
                    container.stop(timeout=5)
                result = container.wait(timeout=30)
            status["ended"] = time.time()
            code = int(result.get("StatusCode", 0))
            status.update(
                {"signal": code - 128} if stopped and code > 128 else {"exit": code}, stopped=stopped
            )
            trace_path.write_bytes(container.logs(stdout=False, stderr=True))
            stdout_path.write_bytes(container.logs(stdout=True, stderr=False))
        finally:
            if container is not None:
                with contextlib.suppress(APIError):
                    container.remove(force=True)
            client.close()
    return ContainerRun(status, trace_path, holder.querylog_path, interrupted)
