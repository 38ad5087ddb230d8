"""The pod's DNS files, rendered the way the kubelet writes them for a ClusterFirst pod.

Every value in them was checked for its file's grammar when the scenario was read (`dnsprobe.etcfiles`).
`check_pod_files` checks the rendered files once more as a whole, before any pod starts: only the lines
dnsprobe writes, and every `nameserver` line one of the servers the run itself starts or names, on
loopback unless the scenario's `allow_non_loopback = true` says the server is the user's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from dnsprobe import etcfiles
from dnsprobe.errors import SandboxError
from dnsprobe.scenario import Pod as PodSpec

POD_IP = "10.244.0.5"  # the address a pod's own hostname maps to in /etc/hosts, as the kubelet writes it


@dataclass(frozen=True)
class PodFiles:
    resolv_conf: str
    hosts: str
    nsswitch_conf: str

    def as_dict(self) -> dict[str, str]:
        return {"resolv_conf": self.resolv_conf, "hosts": self.hosts, "nsswitch": self.nsswitch_conf}


def render_pod_files(
    spec: PodSpec, *, hostname: str, nameservers: list[str], allow_non_loopback: bool = False
) -> PodFiles:
    """The three files; SandboxError when the result breaks `check_pod_files`."""
    options = [f"ndots:{spec.ndots}"]
    if spec.timeout is not None:
        options.append(f"timeout:{spec.timeout}")
    if spec.attempts is not None:
        options.append(f"attempts:{spec.attempts}")
    options += spec.options
    resolv = [f"search {' '.join(spec.search)}"] if spec.search else []
    resolv += [f"nameserver {address}" for address in nameservers]
    resolv.append(f"options {' '.join(options)}")
    hosts = [
        "# Kubernetes-managed hosts file (written by dnsprobe)",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{POD_IP}\t{hostname}",
        *spec.hosts,
    ]
    nsswitch = [
        "passwd:         files",
        "group:          files",
        f"hosts:          {spec.nsswitch_hosts}",
        "networks:       files",
        "protocols:      files",
        "services:       files",
    ]
    files = PodFiles("\n".join(resolv) + "\n", "\n".join(hosts) + "\n", "\n".join(nsswitch) + "\n")
    check_pod_files(files, nameservers=nameservers, allow_non_loopback=allow_non_loopback)
    return files


_RESOLV_KEYWORDS = ("search", "nameserver", "options")
_NSSWITCH_DATABASES = ("passwd", "group", "hosts", "networks", "protocols", "services")


def check_pod_files(
    files: PodFiles, *, nameservers: Sequence[str] | None = None, allow_non_loopback: bool = False
) -> None:
    """Defence in depth, whatever built `files`: resolv.conf has only search, nameserver and options
    lines, its nameservers are exactly `nameservers` (the servers this run starts or names; None: any)
    and each is on loopback unless `allow_non_loopback`; every hosts and nsswitch.conf line is one of
    its grammar. SandboxError names the file and line."""
    servers: list[str] = []
    for number, line in enumerate(files.resolv_conf.splitlines(), 1):
        keyword, _, rest = line.partition(" ")
        where = f"the pod's resolv.conf, line {number} ({line!r})"
        if keyword not in _RESOLV_KEYWORDS or not rest.strip():
            raise SandboxError(f"{where}: not a line dnsprobe writes; refusing to start the pod")
        if keyword == "nameserver":
            address = rest.strip()
            problem = etcfiles.check_address(address)
            if problem:
                raise SandboxError(f"{where}: {problem}; refusing to start the pod")
            if not allow_non_loopback and not ipaddress.ip_address(address.partition("%")[0]).is_loopback:
                raise SandboxError(
                    f"{where}: {address} is not on loopback; set allow_non_loopback = true in the "
                    "scenario's [nameserver] only if that server is yours to load"
                )
            servers.append(address)
        else:
            check = etcfiles.check_domain if keyword == "search" else etcfiles.check_option
            problem = next(filter(None, map(check, rest.split(" "))), None)
            if problem:
                raise SandboxError(f"{where}: {problem}; refusing to start the pod")
    if nameservers is not None and servers != list(nameservers):
        raise SandboxError(
            f"the pod's resolv.conf names the nameservers {servers}, not the run's own {list(nameservers)}; "
            "refusing to start the pod"
        )
    for number, line in enumerate(files.hosts.splitlines(), 1):
        problem = etcfiles.check_hosts_line(line)
        if problem:
            raise SandboxError(f"the pod's hosts, line {number}: {problem}; refusing to start the pod")
    for number, line in enumerate(files.nsswitch_conf.splitlines(), 1):
        database, colon, sources = line.partition(":")
        problem = (
            etcfiles.check_nsswitch_sources(sources)
            if colon and database in _NSSWITCH_DATABASES
            else f"{line!r} is not a line dnsprobe writes"
        )
        if problem:
            where = f"the pod's nsswitch.conf, line {number}"
            raise SandboxError(f"{where}: {problem}; refusing to start the pod")
