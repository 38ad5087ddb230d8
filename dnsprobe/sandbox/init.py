"""The pod's first process, run by `unshare -Urmn` as root of its own namespaces.

    python -m dnsprobe.sandbox.init POD.json

It brings the loopback interface up, bind-mounts the pod's DNS files over /etc, starts the embedded
nameserver on 127.0.0.1:53 (allowed: we are root in this network namespace), then runs the probe and
waits. SIGTERM stops the probe, flushes the query log and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def bind_mount(source: str, target: str) -> None:
    done = subprocess.run(["mount", "--bind", source, target], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"dnsprobe-pod: cannot bind-mount {source} over {target}: {done.stderr.strip()}")


MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"


def _in_child(nofile: int | None, root: Path | None, cwd: str = "/") -> Callable[[], None] | None:
    """Run in the probe's process before exec: its own file-descriptor limit (the nameserver in this
    process keeps the default one) and its own root file system (an image's: its WorkingDir)."""
    if nofile is None and root is None:
        return None

    def setup() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        if root is not None:
            os.chroot(root)
            try:
                os.chdir(cwd)
            except OSError:
                os.chdir("/")

    return setup


def make_rootfs(kind: str, root: Path, binary: str, etc: dict[str, str], socket_dir: str) -> str:
    """A minimal root file system like a base image's: `scratch` (the binary and the pod's /etc files
    only) or `musl` (plus musl's loader, as on Alpine). Returns the binary's path inside it (/app)."""
    (root / "etc").mkdir(parents=True, exist_ok=True)
    for target, source in etc.items():
        shutil.copyfile(source, root / target.lstrip("/"))
    shutil.copy2(binary, root / "app")
    if kind == "musl":
        (root / "lib").mkdir(exist_ok=True)
        shutil.copy2(MUSL_LOADER, root / "lib" / Path(MUSL_LOADER).name)
    inside = root / socket_dir.lstrip("/")
    inside.mkdir(parents=True, exist_ok=True)
    bind_mount(socket_dir, str(inside))
    return "/app"


def set_sysctls(sysctls: dict[str, str]) -> None:
    """Per-network-namespace sysctls (we are root of this namespace), e.g. ip_local_port_range."""
    for key, value in sysctls.items():
        path = Path("/proc/sys") / key
        try:
            path.write_text(value, encoding="ascii")
        except OSError as exc:
            raise SystemExit(
                f"dnsprobe-pod: cannot set {key.replace('/', '.')} = {value}: {exc.strerror}"
            ) from None


async def run_pod(spec: dict[str, Any]) -> int:
    from dnsprobe.nameserver.group import ServerGroup

    server = ServerGroup(spec["servers"])  # embedded servers, dnsmasq/unbound, or none (external)
    await server.start()
    probe = spec["probe"]
    root = spec.get("rootfs_dir")
    cwd = (spec.get("image") or {}).get("cwd", "/")
    status: dict[str, Any] = {"started": time.time()}
    with Path(probe["stdout"]).open("wb") as out, Path(probe["stderr"]).open("wb") as err:
        try:
            child = await asyncio.create_subprocess_exec(
                *probe["argv"],
                env=probe["env"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=_in_child(spec.get("nofile"), Path(root) if root else None, cwd),
            )
        except OSError as exc:
            await server.stop()
            # the wording container runtimes use, so a person recognises it
            text = f"exec {probe['argv'][0]}: {(exc.strerror or str(exc)).lower()}"
            _write_status(probe, {**status, "exec_error": text})
            print(text, file=sys.stderr)
            return 127
    _write_status(probe, status)  # started: kept even if this process is killed before the end
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    waiter = asyncio.ensure_future(child.wait())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            # The pod's whole process group got the SIGTERM, so the probe may be gone already: it has
            # exited but not yet been reaped, and terminate() then raises ProcessLookupError.
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
            try:
                await asyncio.wait_for(waiter, 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await waiter
        stopper.cancel()
    finally:
        await server.stop()  # writes out the query log, whatever happened above
    code = child.returncode or 0
    ended = {"signal": -code} if code < 0 else {"exit": code}
    _write_status(probe, {**status, **ended, "ended": time.time(), "stopped": stop.is_set()})
    return 0 if stop.is_set() else code


def _write_status(probe: dict[str, Any], status: dict[str, Any]) -> None:
    """How the program ended, for whoever started the pod (`dnsprobe observe`)."""
    if probe.get("status"):
        Path(probe["status"]).write_text(json.dumps(status), encoding="utf-8")


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    if spec["servers"]["kind"] != "external":  # an external server: the host's network namespace
        loopback_up()
        set_sysctls(spec.get("sysctls", {}))
    for target, source in spec["mounts"].items():
        bind_mount(source, target)
    if spec.get("rootfs") == "image":
        from dnsprobe.sandbox.image_rootfs import mount_image_root

        probe = spec["probe"]
        probe["argv"][0] = mount_image_root(
            spec["image"], Path(spec["rootfs_dir"]), probe["argv"][0], spec["socket_dir"]
        )
    elif spec.get("rootfs", "host") != "host":
        probe = spec["probe"]
        probe["argv"][0] = make_rootfs(
            spec["rootfs"], Path(spec["rootfs_dir"]), probe["argv"][0], spec["mounts"], spec["socket_dir"]
        )
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(run_pod(spec))
    return asyncio.run(run_pod(spec))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
