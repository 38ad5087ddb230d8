"""A pod on the local backend: one probe, its DNS files and its own nameserver, in fresh namespaces."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from dnsprobe import godebug, proc
from dnsprobe.errors import SandboxError, ToolMissing
from dnsprobe.nameserver.group import group_spec
from dnsprobe.probe_client import ProbeClient, ProbeUnavailable
from dnsprobe.sandbox.base import PodBase
from dnsprobe.sandbox.files import PodFiles, check_pod_files
from dnsprobe.sandbox.image_rootfs import ImageRoot, parse_rootfs, prepare_image_root
from dnsprobe.scenario import Nameserver as NameserverSpec

NAMESERVER_ADDRESS = "127.0.0.1"  # inside the pod's own network namespace
# --pid: the pod's init is PID 1 of its own PID namespace, so nothing in the pod outlives it;
# --kill-child: init gets SIGTERM when unshare dies (and unshare dies with dnsprobe: die_with_parent).
_UNSHARE = [
    "unshare",
    "--user",
    "--map-root-user",
    "--mount",
    "--net",
    "--pid",
    "--fork",
    "--kill-child=SIGTERM",
]


class PodStartFailure(SandboxError):
    """The probe did not come up; `text` is what it said (the run records it as outcome start_failure)."""

    def __init__(self, mode: str, text: str) -> None:
        self.mode = mode
        self.text = text
        super().__init__(f"the {mode} probe did not start: {text}")


def check_namespaces() -> None:
    """Fail in one line when unprivileged namespaces are not available here."""
    if shutil.which("unshare") is None:
        raise ToolMissing("unshare", "pods need it for their own namespaces", "apt-get install util-linux")
    proc.run(
        [*_UNSHARE, "true"],
        timeout=10,
        error=SandboxError,
        what="creating user, mount and network namespaces (unprivileged user namespaces may be disabled: "
        "set kernel.unprivileged_userns_clone=1, or use the docker backend)",
    )


@dataclass
class Pod(PodBase):
    """Context manager: starts the pod and waits until its probe answers /info; stops it on exit."""

    mode: str
    binary: Path
    files: PodFiles
    zone_text: str
    workdir: Path
    socket_dir: Path
    godebug: str
    env: Mapping[str, str] = field(default_factory=dict)
    nofile: int | None = None  # RLIMIT_NOFILE of the probe
    port_range: Sequence[int] | None = None  # ip_local_port_range inside the pod's network namespace
    # host | scratch | musl | musl-libc6-compat | image:REF | oci:PATH.tar: the probe's file system
    rootfs: str = "host"
    nameserver: NameserverSpec | None = None  # the scenario's [nameserver]; None: one embedded, no faults
    cache_dir: Path | None = None  # where built programs are kept (the nameserver's Go engine)
    pcap: bool = False  # the embedded nameserver logs every packet to dns.raw (nameserver/pcap.py)
    start_timeout: float = 20.0
    info: dict[str, Any] = field(default_factory=dict)
    # An image root (rootfs = image:/oci:) keeps the image's nsswitch.conf unless this is True.
    mount_nsswitch: bool = False
    # Another program instead of the probe (`dnsprobe observe`): its argv, and whether argv[0] is a path
    # inside the image root (else a host file, copied in). `launch()` starts it without waiting for /info.
    program: Sequence[str] | None = None
    program_in_root: bool = False
    image: ImageRoot | None = None  # set once an image root is prepared
    _process: subprocess.Popen[bytes] | None = None
    _pgid: int | None = None  # the pod's process group (unshare's pid), kept after unshare has gone
    _stop_requested: float | None = None  # unix time stop() began: later events are the stop itself
    _ready: bool = False  # the probe answered: from then on the pod stops gracefully

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / f"{self.mode}.sock"

    @property
    def events_path(self) -> Path:
        return self.workdir / "events.jsonl"

    @property
    def host_network(self) -> bool:
        """An external nameserver is reached from the host's network namespace (shared, not a new one)."""
        return self.nameserver is not None and self.nameserver.kind == "external"

    def _check_files(self, files: PodFiles) -> None:
        """The loopback rule on the files as written: a manifest's nameservers are served by this pod's
        own servers in its own network namespace; nothing else off loopback unless allowed."""
        allow = self.nameserver is not None and self.nameserver.allow_non_loopback
        served = () if self.host_network else files.nameservers
        check_pod_files(files, served=served, allow_non_loopback=allow)

    def _write_spec(self) -> Path:
        self._check_files(self.files)  # whoever rendered them
        self.workdir.mkdir(parents=True, exist_ok=True)
        etc = {
            "/etc/resolv.conf": ("resolv.conf", self.files.resolv_conf),
            "/etc/hosts": ("hosts", self.files.hosts),
            "/etc/nsswitch.conf": ("nsswitch.conf", self.files.nsswitch_conf),
        }
        mounts = {}
        for target, (name, text) in etc.items():
            (self.workdir / name).write_text(text, encoding="utf-8")
            mounts[target] = str(self.workdir / name)
        (self.workdir / "zone.txt").write_text(self.zone_text, encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "HOME": "/", **self.env, "GODEBUG": self._godebug()}
        argv = [str(self.binary), "-listen", f"unix:{self.socket_path}", "-mode", self.mode]
        if self.program is not None:
            argv = [str(arg) for arg in self.program]
        spec: dict[str, Any] = {
            "mounts": mounts,
            "zone_file": str(self.workdir / "zone.txt"),
            "nameserver": [NAMESERVER_ADDRESS, 53],
            "servers": group_spec(
                self.nameserver,
                zone_file=self.workdir / "zone.txt",
                querylog=self.querylog_path,
                workdir=self.workdir,
                cache_dir=self.cache_dir,
                addresses=list(self.files.nameservers) or None,  # a manifest's cluster DNS
            ),
            "querylog": str(self.querylog_path),
            "events": str(self.events_path),
            "probe": {
                "argv": argv,
                "env": env,
                "stderr": str(self.trace_path),
                "stdout": str(self.workdir / "probe.stdout"),
                "status": str(self.status_path),
            },
        }
        self.status_path.unlink(missing_ok=True)
        if self.pcap:
            spec["servers"]["packets"] = str(self.workdir / "dns.raw")
        if self.nofile is not None:
            spec["nofile"] = self.nofile
        if parse_rootfs(self.rootfs) is not None:
            self._image_spec(spec, etc)
        elif self.rootfs != "host":
            spec.update(
                rootfs=self.rootfs, rootfs_dir=str(self.workdir / "rootfs"), socket_dir=str(self.socket_dir)
            )
        if self.port_range is not None:
            spec["sysctls"] = {"net/ipv4/ip_local_port_range": f"{self.port_range[0]} {self.port_range[1]}"}
        path = self.workdir / "pod.json"
        path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        return path

    @property
    def status_path(self) -> Path:
        """Where the pod's init writes how the program ended (`{"exit": N}` or `{"signal": N}`)."""
        return self.workdir / "status.json"

    def _image_spec(self, spec: dict[str, Any], etc: dict[str, tuple[str, str]]) -> None:
        """An image's own root: unpacked once into the cache, mounted per pod as an overlay's lower
        layer. The pod supplies resolv.conf and hosts, as the kubelet does; the image keeps the rest."""
        from dnsprobe.build.probe import default_cache_dir

        self.image = prepare_image_root(self.rootfs, self.cache_dir or default_cache_dir())
        keep = {"/etc/resolv.conf", "/etc/hosts"} | ({"/etc/nsswitch.conf"} if self.mount_nsswitch else set())
        probe = spec["probe"]
        probe["env"] = {
            "PATH": "/usr/bin:/bin",
            "HOME": "/",
            **self.image.env,
            **self.env,
            "GODEBUG": _join_godebug(
                self.env.get("GODEBUG") or self.image.env.get("GODEBUG", ""), self.godebug
            ),
        }
        spec.update(
            rootfs="image",
            rootfs_dir=str(self.workdir / "rootfs"),
            image={
                "lower": str(self.image.path),
                "upper": str(self.workdir / "rootfs-upper"),
                "work": str(self.workdir / "rootfs-work"),
                "etc": {
                    target: str(self.workdir / name) for target, (name, _) in etc.items() if target in keep
                },
                "program_in_root": self.program_in_root,
                "cwd": self.image.workdir,
            },
            socket_dir=str(self.socket_dir),
        )

    def rewrite_resolv_conf(self, text: str) -> None:
        """Change resolv.conf under the running probe. In place, not by rename: the bind mount holds the
        file's inode, so a replaced file would never be seen."""
        self._check_files(replace(self.files, resolv_conf=text))
        with (self.workdir / "resolv.conf").open("r+", encoding="utf-8") as fh:
            fh.write(text)
            fh.truncate()

    def _godebug(self) -> str:
        return _join_godebug(self.env.get("GODEBUG", ""), self.godebug)

    def launch(self) -> None:
        """Start the pod's init (nameserver, then the program) and return at once."""
        spec = self._write_spec()
        self.socket_path.unlink(missing_ok=True)
        self.events_path.unlink(missing_ok=True)
        self._stop_requested = None
        self._ready = False
        unshare = [arg for arg in _UNSHARE if arg != "--net"] if self.host_network else _UNSHARE
        argv = [*unshare, sys.executable, "-m", "dnsprobe.sandbox.init", str(spec)]
        with self.log_path.open("wb") as log:
            # dnsprobe SIGKILLed: unshare, then the pod, go too
            self._process = proc.spawn(argv, stdout=log, stderr=log, new_session=True)
        self._pgid = self._process.pid

    def wait(self, timeout: float | None) -> bool:
        """Wait for the pod to end by itself (its program exited); False when `timeout` passed first."""
        if self._process is None:
            return True
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def status(self) -> dict[str, Any]:
        """What init wrote about the program: `started` (unix time), then `exit` or `signal` and
        `stopped` (true when the pod stopped it), or `exec_error`."""
        try:
            data: dict[str, Any] = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data

    def start(self) -> None:
        self.launch()
        assert self._process is not None
        client = ProbeClient(self.address, timeout=5)
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                if self._process.poll() is not None:
                    raise PodStartFailure(self.mode, self._failure_text())
                if self.socket_path.exists():
                    try:
                        self.info = client.info()
                        self._host_pid()
                        self._ready = True
                        return
                    except ProbeUnavailable:
                        pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise PodStartFailure(
                        self.mode,
                        f"no answer on {self.socket_path} within "
                        f"{self.start_timeout:g} s ({self._failure_text()})",
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def _host_pid(self) -> None:
        """The probe says its pid inside the pod's PID namespace; `info["pid"]` becomes the pid here (for
        /proc/PID/...), and `info["pod_pid"]` keeps the probe's own."""
        inside = self.info.get("pid")
        if not isinstance(inside, int) or self._pgid is None:
            return
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(
                    line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
                )
            except OSError:
                continue
            nspid = fields.get("NSpid", "").split()
            if len(nspid) < 2 or nspid[-1] != str(inside):
                continue
            with contextlib.suppress(OSError):
                if os.getpgid(int(nspid[0])) == self._pgid:
                    self.info.update(pid=int(nspid[0]), pod_pid=inside)
                    return

    def _failure_text(self) -> str:
        """The most telling line: the probe's own error, else the pod's."""
        for path in (self.trace_path, self.log_path):
            try:
                lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
            except OSError:
                continue
            lines = [ln for ln in lines if not ln.startswith("go package net:")]
            if lines:
                return lines[-1]
        code = self._process.returncode if self._process else None
        return f"exited with status {code} and said nothing"

    def exited(self) -> int | None:
        """unshare's exit status when the pod ended on its own (its init gone), None while it runs."""
        return None if self._process is None else self._process.poll()

    def events(self) -> list[dict[str, Any]]:
        """What happened to the pod before it was asked to stop (see dnsprobe.sandbox.init): the probe
        exiting, a nameserver process dying; each {"at": unix time, "what", "text"}."""
        try:
            lines = self.events_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        found = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict) or not isinstance(event.get("at"), int | float):
                continue
            if self._stop_requested is None or event["at"] < self._stop_requested:
                found.append(event)
        return found

    def stop(self) -> None:
        """SIGTERM to the pod's whole process group (init stops the probe and writes the query log), then
        SIGKILL to whatever is left after 10 s: whether or not unshare is still alive. A pod stopped
        before its probe answered (or its program started) gets SIGKILL at once: it has measured
        nothing, and the PID 1 of a namespace that is still starting up would ignore a SIGTERM (it has
        no handler yet)."""
        if self._pgid is None:
            return
        if self._stop_requested is None:
            self._stop_requested = time.time()
        pgid = self._pgid
        # A program of the user's (`observe`) answers nothing: it is ready once init says it started.
        ready = self._ready or (self.program is not None and bool(self.status().get("started")))
        with _suppress_lookup():
            os.killpg(pgid, signal.SIGTERM if ready else signal.SIGKILL)
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with _suppress_lookup():
                    os.killpg(pgid, signal.SIGKILL)
                self._process.wait()
        # unshare is gone; its group (an orphaned probe, say) maybe not. SIGKILL after 5 s; after 10 s
        # only zombies nobody has reaped yet can be left, and they hold nothing.
        started = time.monotonic()
        killed = False
        while _group_alive(pgid) and time.monotonic() - started < 10:
            if not killed and time.monotonic() - started > 5:
                with _suppress_lookup():
                    os.killpg(pgid, signal.SIGKILL)
                killed = True
            time.sleep(0.02)
        self._process = None
        self._pgid = None
        self._ready = False
        self.socket_path.unlink(missing_ok=True)


def _join_godebug(user: str, ours: str) -> str:
    """The program's own GODEBUG settings with ours added, its own resolver choice kept."""
    return godebug.merge(user, ours)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _suppress_lookup:
    """The process group may be gone already; that is fine."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return t is ProcessLookupError
