"""The pod's first process, run by `unshare -Urmn` as root of its own namespaces.

    python -m dnsprobe.sandbox.init POD.json

It brings the loopback interface up, bind-mounts the pod's DNS files over /etc, starts the embedded
nameserver on 127.0.0.1:53 (allowed: we are root in this network namespace), then runs the probe and
waits. SIGTERM (or SIGHUP, SIGINT) stops the probe, flushes the query log and exits.

Nothing outlives the pod: it has its own PID namespace (`unshare --pid`), whose PID 1 is a small
supervisor (this program, forked: it passes signals on to the pod's real init, reaps orphans, and exits
with it). When PID 1 ends, however it ends, the kernel kills every process left in the pod (probe, Go
engine, dnsmasq); `unshare --kill-child` sends it SIGTERM when unshare dies, and unshare dies with
dnsprobe. The probe also gets SIGKILL should the real init die (PR_SET_PDEATHSIG). (The init is not PID 1
itself: the Go engine takes a parent of PID 1 for an orphaned start and exits.)

What happens to the pod while it runs is appended to the spec's `events` file, one JSON object a line
(`{"at": unix time, "what": "probe" | "nameserver", "text": ...}`): the probe exiting, or a nameserver
process dying, before anyone asked them to stop. The run reports these as results.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
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

from dnsprobe import proc
from dnsprobe.proc import die_with_parent

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def bind_mount(source: str, target: str) -> None:
    done = proc.run_plain(["mount", "--bind", source, target])
    if done.returncode != 0:
        raise SystemExit(f"dnsprobe-pod: cannot bind-mount {source} over {target}: {done.stderr.strip()}")


MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"


PR_CAPBSET_DROP = 24
# What lets the pod's root read a file whatever its mode: without them, mode 000 means EACCES.
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _drop_file_read_override() -> Callable[[], None]:
    """For `[pod] resolv_conf = "unreadable"`: a function, run in the probe's process before exec, that
    drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set. The probe still runs as the
    pod's root, but exec gives root no capability outside the bounding set, so file modes apply to it
    as to a non-root user (or a container with those capabilities dropped)."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not in the forked child

    def drop() -> None:
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap})")

    return drop


def _in_child(
    nofile: int | None, root: Path | None, cwd: str = "/", *, unreadable: bool = False
) -> Callable[[], None]:
    """Run in the probe's process before exec: it dies with this process, its own file-descriptor limit
    (the nameserver in this process keeps the default one), its own root file system (an image's:
    its WorkingDir) and, with `unreadable`, no capability that reads a mode-000 file."""
    orphan_guard = die_with_parent()
    drop = _drop_file_read_override() if unreadable else None

    def setup() -> None:
        orphan_guard()
        if drop is not None:
            drop()
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
    """A minimal root file system like a base image's: `scratch` (the binary and the pod's /etc files,
    bind-mounted, only), `musl` (plus musl's loader, as on Alpine) or `musl-libc6-compat` (plus what Alpine's
    libc6-compat package adds: glibc's loader and library names as symlinks to musl). Returns the
    binary's path inside it (/app)."""
    (root / "etc").mkdir(parents=True, exist_ok=True)
    for target, source in etc.items():  # mounted, not copied: a [[pod.changes]] rewrite must reach it
        (root / target.lstrip("/")).touch()
        bind_mount(source, str(root / target.lstrip("/")))  # the pod's file, its mode (unreadable: 000)
    shutil.copy2(binary, root / "app")
    if kind in ("musl", "musl-libc6-compat"):
        (root / "lib").mkdir(exist_ok=True)
        shutil.copy2(MUSL_LOADER, root / "lib" / Path(MUSL_LOADER).name)
    if kind == "musl-libc6-compat":
        from dnsprobe.binary.bases import LIBC6_COMPAT_LIBS, LIBC6_COMPAT_LOADER

        (root / "lib" / "libc.musl-x86_64.so.1").symlink_to(Path(MUSL_LOADER).name)
        for name in (Path(LIBC6_COMPAT_LOADER).name, *LIBC6_COMPAT_LIBS):
            (root / "lib" / name).symlink_to("/lib/libc.musl-x86_64.so.1")
        (root / "lib64").symlink_to("lib")
    inside = root / socket_dir.lstrip("/")
    inside.mkdir(parents=True, exist_ok=True)
    bind_mount(socket_dir, str(inside))
    return "/app"


def without_resolv_conf(overlay: dict[str, str]) -> None:
    """`[pod] resolv_conf = "missing"` on the host's root: /etc becomes an overlay whose lower layer is
    the host's /etc and whose upper layer is the pod's own, and resolv.conf is deleted there (a
    whiteout in the upper layer; the host's file is untouched). The host's resolv.conf names the host's
    resolver: if it were still visible the pod must not start."""
    options = f"lowerdir=/etc,upperdir={overlay['upper']},workdir={overlay['work']}"
    done = proc.run_plain(["mount", "-t", "overlay", "overlay", "-o", options, "/etc"])
    if done.returncode != 0:
        raise SystemExit(f"dnsprobe-pod: cannot mount an overlay over /etc: {done.stderr.strip()}")
    Path("/etc/resolv.conf").unlink(missing_ok=True)
    if os.path.lexists("/etc/resolv.conf"):
        raise SystemExit("dnsprobe-pod: /etc/resolv.conf is still there after deleting it; not starting")


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


def note_event(spec: dict[str, Any], what: str, text: str) -> None:
    """One line in the pod's events file (and in pod.log, for a person reading it)."""
    print(f"dnsprobe-pod: {what}: {text}", file=sys.stderr, flush=True)
    path = spec.get("events")
    if not path:
        return
    with contextlib.suppress(OSError), Path(path).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"at": time.time(), "what": what, "text": text}) + "\n")


def exit_text(code: int | None) -> str:
    if code is None:
        return "is running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


async def _watch_servers(server: Any, spec: dict[str, Any]) -> None:
    """Note the first nameserver process that dies while the probe runs (the probe keeps running: its
    lookups failing from then on are the result)."""
    while True:
        await asyncio.sleep(0.2)
        dead = server.dead()
        if dead:
            note_event(spec, "nameserver", dead)
            return


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
                preexec_fn=_in_child(
                    spec.get("nofile"),
                    Path(root) if root else None,
                    cwd,
                    unreadable=spec.get("resolv_conf") == "unreadable",
                ),
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
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    waiter = asyncio.ensure_future(child.wait())
    stopper = asyncio.ensure_future(stop.wait())
    watcher = asyncio.ensure_future(_watch_servers(server, spec))
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        watcher.cancel()
        if waiter.done() and not stop.is_set():
            note_event(spec, "probe", f"the probe (pid {child.pid} in the pod) {exit_text(child.returncode)}")
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


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def supervise() -> int | None:
    """As PID 1 of the pod's PID namespace: fork the pod's init (which gets None and goes on), pass
    SIGTERM, SIGHUP and SIGINT on to it, reap every orphan, and return its exit status when it ends.
    Not PID 1 (no PID namespace): None at once.

    A signal that came before this process had a handler was dropped by the kernel (PID 1 ignores what
    it does not handle): so once the handlers are in, an unshare already gone (dnsprobe killed while the
    pod started) ends the pod here, before it starts anything."""
    if os.getpid() != 1:
        return None
    child = [0]
    pending: list[int] = []

    def forward(signum: int, frame: object) -> None:
        if not child[0]:
            pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(child[0], signum)

    for signum in _STOP:
        signal.signal(signum, forward)
    if pending or _unshare_gone():
        return 128 + signal.SIGTERM
    pid = os.fork()
    if pid == 0:
        for signum in _STOP:
            signal.signal(signum, signal.SIG_DFL)
        return None
    child[0] = pid
    if pending:  # came between the fork and the line above
        forward(pending[0], None)
    while True:
        try:
            done, status = os.wait()
        except ChildProcessError:
            return 1
        if done == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


_STOP = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def _unshare_gone() -> bool:
    """Whether our parent, unshare, has died: it leads the pod's process group (its pid is the group's
    id), so a parent other than the group leader means we were orphaned. /proc here is the host's, so
    the ids are the host's."""
    try:
        text = Path("/proc/self/stat").read_text()
    except OSError:
        return False
    fields = text[text.rindex(")") + 2 :].split()
    ppid, pgrp = int(fields[1]), int(fields[2])
    return ppid not in (0, pgrp)


def main(argv: list[str]) -> int:
    supervisor = supervise()
    if supervisor is not None:
        return supervisor
    # PID 1 of a PID namespace ignores every signal it has no handler for: until the event loop takes
    # over, these end the pod's setup (and, through the namespace, anything it started).
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    if spec["servers"]["kind"] != "external":  # an external server: the host's network namespace
        loopback_up()
        set_sysctls(spec.get("sysctls", {}))
    if spec.get("etc_overlay"):
        without_resolv_conf(spec["etc_overlay"])
    for target, source in spec["mounts"].items():
        bind_mount(source, target)
    if spec.get("rootfs") == "image":
        from dnsprobe.sandbox.image_rootfs import mount_image_root

        probe = spec["probe"]
        probe["argv"][0] = mount_image_root(
            spec["image"], Path(spec["rootfs_dir"]), probe["argv"][0], spec["socket_dir"]
        )
        if spec.get("resolv_conf") == "missing":
            from dnsprobe.sandbox.image_rootfs import remove_in_root

            remove_in_root(Path(spec["rootfs_dir"]), "/etc/resolv.conf")
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
