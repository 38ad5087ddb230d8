"""The pod's DNS files, rendered the way the kubelet writes them for a ClusterFirst pod, or, with
`[pod] manifest`, derived from the manifest exactly as the kubelet does (`dnsprobe.kube.kubelet`).

Every value a scenario puts in them was checked for its file's grammar when the scenario was read
(`dnsprobe.etcfiles`). `check_pod_files` checks the rendered files once more as a whole, before any pod
starts: only the lines dnsprobe writes, and every `nameserver` line one of the servers the run itself
starts or names, each on loopback or served by dnsprobe in the pod's own network namespace (a
manifest's cluster DNS address), unless the scenario's `allow_non_loopback = true` says the server is
the user's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dnsprobe import etcfiles
from dnsprobe.errors import SandboxError
from dnsprobe.scenario import Pod as PodSpec

POD_IP = "10.244.0.5"  # the address a pod's own hostname maps to in /etc/hosts, as the kubelet writes it


@dataclass(frozen=True)
class PodFiles:
    resolv_conf: str
    hosts: str
    nsswitch_conf: str
    # A manifest's pod: the nameserver addresses its resolv.conf names (the pod's nameservers listen
    # there), and what the kubelet would log, as `RenderedPod.to_json` has it.
    nameservers: tuple[str, ...] = ()
    kubelet: dict[str, Any] | None = field(default=None, compare=False)
    # [pod] resolv_conf: "present", or "missing" / "unreadable" (the pod never sees `resolv_conf` then;
    # it is still checked, and kept for the summary as what the pod would have had)
    resolv_conf_state: str = "present"

    def as_dict(self) -> dict[str, Any]:
        files: dict[str, Any] = {
            "resolv_conf": self.resolv_conf,
            "hosts": self.hosts,
            "nsswitch": self.nsswitch_conf,
        }
        if self.resolv_conf_state != "present":
            files["resolv_conf_state"] = self.resolv_conf_state
        if self.kubelet is not None:
            files["manifest"] = {
                key: self.kubelet[key]
                for key in ("workload", "container", "pod", "namespace", "dns_policy", "host_network")
            } | {key: self.kubelet[key] for key in ("warnings", "notes", "unresolved")}
        return files


def render_pod_files(
    spec: PodSpec, *, hostname: str, nameservers: list[str], allow_non_loopback: bool = False
) -> PodFiles:
    """The pod's files. With `spec.manifest`, `hostname` and `nameservers` are the manifest's.
    SandboxError when the result breaks `check_pod_files`."""
    if spec.manifest is not None:
        files = replace(_manifest_files(spec), resolv_conf_state=spec.resolv_conf)
        # a manifest needs kind = 'embedded': its nameservers listen on those addresses in the pod
        served = files.nameservers
        check_pod_files(files, nameservers=served, served=served, allow_non_loopback=allow_non_loopback)
        return files
    files = replace(
        _scenario_files(spec, hostname=hostname, nameservers=nameservers), resolv_conf_state=spec.resolv_conf
    )
    check_pod_files(files, nameservers=nameservers, allow_non_loopback=allow_non_loopback)
    return files


def _scenario_files(spec: PodSpec, *, hostname: str, nameservers: list[str]) -> PodFiles:
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
    return PodFiles("\n".join(resolv) + "\n", "\n".join(hosts) + "\n", _nsswitch(spec))


def _nsswitch(spec: PodSpec) -> str:
    lines = [
        "passwd:         files",
        "group:          files",
        f"hosts:          {spec.nsswitch_hosts}",
        "networks:       files",
        "protocols:      files",
        "services:       files",
    ]
    return "\n".join(lines) + "\n"


def render_manifest_pod(spec: PodSpec) -> Any:
    """The `RenderedPod` of a scenario's `[pod] manifest` (paths already absolute)."""
    from dnsprobe.kube.kubelet import render_pod_manifest

    assert spec.manifest is not None
    return render_pod_manifest(
        Path(spec.manifest),
        container=spec.container,
        namespace=spec.namespace,
        cluster_domain=spec.cluster_domain,
        cluster_dns=list(spec.cluster_dns),
        node_resolv_conf=Path(spec.node_resolv_conf) if spec.node_resolv_conf else None,
    )


def _manifest_files(spec: PodSpec) -> PodFiles:
    rendered = render_manifest_pod(spec)
    return PodFiles(
        rendered.resolv_conf,
        rendered.hosts,
        _nsswitch(spec),
        nameservers=tuple(rendered.nameservers),
        kubelet=rendered.to_json(),
    )


_RESOLV_KEYWORDS = ("search", "nameserver", "options")
_NSSWITCH_DATABASES = ("passwd", "group", "hosts", "networks", "protocols", "services")


def check_pod_files(
    files: PodFiles,
    *,
    nameservers: Sequence[str] | None = None,
    served: Sequence[str] = (),
    allow_non_loopback: bool = False,
) -> None:
    """Defence in depth, whatever built `files`: resolv.conf has only search, nameserver and options
    lines; its nameservers are exactly `nameservers` (the servers this run starts or names; None: any),
    each on loopback or in `served` (addresses dnsprobe's own servers listen on inside the pod's network
    namespace) unless `allow_non_loopback`; every hosts and nsswitch.conf line is one of its grammar.
    SandboxError names the file and line."""
    servers: list[str] = []
    for number, line in enumerate(files.resolv_conf.splitlines(), 1):
        keyword, _, rest = line.partition(" ")
        where = f"the pod's resolv.conf, line {number} ({line!r})"
        if not line.strip():
            continue
        if keyword not in _RESOLV_KEYWORDS or not rest.strip():
            raise SandboxError(f"{where}: not a line dnsprobe writes; refusing to start the pod")
        if keyword == "nameserver":
            address = rest.strip()
            problem = etcfiles.check_address(address)
            if problem:
                raise SandboxError(f"{where}: {problem}; refusing to start the pod")
            loopback = ipaddress.ip_address(address.partition("%")[0]).is_loopback
            if not (loopback or address in served or allow_non_loopback):
                raise SandboxError(
                    f"{where}: {address} is not on loopback; set allow_non_loopback = true in the "
                    "scenario's [nameserver] only if that server is yours to load"
                )
            servers.append(address)
        else:
            check = etcfiles.check_domain if keyword == "search" else etcfiles.check_option
            problem = next(filter(None, map(check, rest.split())), None)
            if problem:
                raise SandboxError(f"{where}: {problem}; refusing to start the pod")
    if nameservers is not None and servers != list(nameservers):
        raise SandboxError(
            f"the pod's resolv.conf names the nameservers {servers}, not the run's own {list(nameservers)}; "
            "refusing to start the pod"
        )
    for number, line in enumerate(files.hosts.splitlines(), 1):
        problem = etcfiles.check_hosts_line(line) if line.strip() else None
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
