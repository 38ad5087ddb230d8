"""The pod's DNS files, rendered the way the kubelet writes them for a ClusterFirst pod."""

from __future__ import annotations

from dataclasses import dataclass

from dnsprobe.scenario import Pod as PodSpec

POD_IP = "10.244.0.5"  # the address a pod's own hostname maps to in /etc/hosts, as the kubelet writes it


@dataclass(frozen=True)
class PodFiles:
    resolv_conf: str
    hosts: str
    nsswitch_conf: str

    def as_dict(self) -> dict[str, str]:
        return {"resolv_conf": self.resolv_conf, "hosts": self.hosts, "nsswitch": self.nsswitch_conf}


def render_pod_files(spec: PodSpec, *, hostname: str, nameservers: list[str]) -> PodFiles:
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
    return PodFiles("\n".join(resolv) + "\n", "\n".join(hosts) + "\n", "\n".join(nsswitch) + "\n")
