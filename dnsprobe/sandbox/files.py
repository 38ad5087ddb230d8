"""The pod's DNS files, rendered the way the kubelet writes them for a ClusterFirst pod, or, with
`[pod] manifest`, derived from the manifest exactly as the kubelet does (`dnsprobe.sandbox.kubelet`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    def as_dict(self) -> dict[str, Any]:
        files: dict[str, Any] = {
            "resolv_conf": self.resolv_conf,
            "hosts": self.hosts,
            "nsswitch": self.nsswitch_conf,
        }
        if self.kubelet is not None:
            files["manifest"] = {
                key: self.kubelet[key]
                for key in ("workload", "container", "pod", "namespace", "dns_policy", "host_network")
            } | {key: self.kubelet[key] for key in ("warnings", "notes", "unresolved")}
        return files


def render_pod_files(spec: PodSpec, *, hostname: str, nameservers: list[str]) -> PodFiles:
    """The pod's files. With `spec.manifest`, `hostname` and `nameservers` are the manifest's."""
    if spec.manifest is not None:
        return _manifest_files(spec)
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
    from dnsprobe.sandbox.kubelet import kubelet_config, render_manifest

    assert spec.manifest is not None
    config = kubelet_config(
        cluster_domain=spec.cluster_domain,
        cluster_dns=list(spec.cluster_dns),
        node_resolv_conf=Path(spec.node_resolv_conf) if spec.node_resolv_conf else None,
    )
    return render_manifest(
        Path(spec.manifest), container=spec.container, namespace=spec.namespace, config=config
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
