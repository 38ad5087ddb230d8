"""A pod on the local backend: one probe, its DNS files and its own nameserver, in fresh namespaces."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from dnsprobe import proc
from dnsprobe.errors import SandboxError, ToolMissing
from dnsprobe.nameserver.group import group_spec
from dnsprobe.probe_client import ProbeClient, ProbeUnavailable
from dnsprobe.sandbox.base import PodBase
from dnsprobe.sandbox.files import PodFiles
from dnsprobe.scenario import Nameserver as NameserverSpec

NAMESERVER_ADDRESS = "127.0.0.1"  # inside the pod's own network namespace
_UNSHARE = ["unshare", "--user", "--map-root-user", "--mount", "--net", "--fork", "--kill-child=SIGTERM"]


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
        [*_UNSHARE[:-2], "true"],
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
    rootfs: str = "host"  # host | scratch | musl: what else the probe's file system holds
    nameserver: NameserverSpec | None = None  # the scenario's [nameserver]; None: one embedded, no faults
    cache_dir: Path | None = None  # where built programs are kept (the nameserver's Go engine)
    pcap: bool = False  # the embedded nameserver logs every packet to dns.raw (nameserver/pcap.py)
    start_timeout: float = 20.0
    info: dict[str, Any] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / f"{self.mode}.sock"

    @property
    def host_network(self) -> bool:
        """An external nameserver is reached from the host's network namespace (shared, not a new one)."""
        return self.nameserver is not None and self.nameserver.kind == "external"

    def _write_spec(self) -> Path:
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
            ),
            "querylog": str(self.querylog_path),
            "probe": {
                "argv": [str(self.binary), "-listen", f"unix:{self.socket_path}", "-mode", self.mode],
                "env": env,
                "stderr": str(self.trace_path),
                "stdout": str(self.workdir / "probe.stdout"),
            },
        }
        if self.pcap:
            spec["servers"]["packets"] = str(self.workdir / "dns.raw")
        if self.nofile is not None:
            spec["nofile"] = self.nofile
        if self.rootfs != "host":
            spec.update(
                rootfs=self.rootfs, rootfs_dir=str(self.workdir / "rootfs"), socket_dir=str(self.socket_dir)
            )
        if self.port_range is not None:
            spec["sysctls"] = {"net/ipv4/ip_local_port_range": f"{self.port_range[0]} {self.port_range[1]}"}
        path = self.workdir / "pod.json"
        path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        return path

    def rewrite_resolv_conf(self, text: str) -> None:
        """Change resolv.conf under the running probe. In place, not by rename: the bind mount holds the
        file's inode, so a replaced file would never be seen."""
        with (self.workdir / "resolv.conf").open("r+", encoding="utf-8") as fh:
            fh.write(text)
            fh.truncate()

    def _godebug(self) -> str:
        user = self.env.get("GODEBUG", "")
        return f"{user},{self.godebug}" if user else self.godebug

    def start(self) -> None:
        spec = self._write_spec()
        self.socket_path.unlink(missing_ok=True)
        unshare = [arg for arg in _UNSHARE if arg != "--net"] if self.host_network else _UNSHARE
        argv = [*unshare, sys.executable, "-m", "dnsprobe.sandbox.init", str(spec)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        client = ProbeClient(self.address, timeout=5)
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                if self._process.poll() is not None:
                    raise PodStartFailure(self.mode, self._failure_text())
                if self.socket_path.exists():
                    try:
                        self.info = client.info()
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

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            with _suppress_lookup():
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with _suppress_lookup():
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._process = None
        self.socket_path.unlink(missing_ok=True)


class _suppress_lookup:
    """The process group may be gone already; that is fine."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return t is ProcessLookupError
