"""Addresses on the pod's own loopback interface, for nameservers a pod's resolv.conf names off loopback.

A pod rendered from a Kubernetes manifest keeps the cluster's nameserver address in its resolv.conf
(`nameserver 10.96.0.10`), byte for byte what the kubelet writes. Inside the pod's own network namespace
that address is added to the loopback interface (`ip addr add 10.96.0.10/32 dev lo`) and the embedded
nameserver listens on it. The namespace has no other interface, so a packet to that address stays in
the namespace: the address is only allowed because it exists there, never on the host.

`add_pod_address` refuses to run in a network namespace with any interface besides `lo` (the host's,
for one), so the loopback-only rule can never be bent outside a pod.
"""

from __future__ import annotations

import ipaddress
import socket

from dnsprobe import proc
from dnsprobe.errors import NameserverError

__all__ = ["add_pod_address", "is_pod_address", "namespace_interfaces"]


def namespace_interfaces() -> list[str]:
    """The network interfaces of the namespace this process is in."""
    return [name for _, name in socket.if_nameindex()]


def is_pod_address(address: str) -> bool:
    """True for an address that is not loopback, so it must be added to the pod's own loopback."""
    return not ipaddress.ip_address(address).is_loopback


def add_pod_address(address: str) -> None:
    """Add `address` to the loopback interface of this process's network namespace, which must be a
    pod's own: only `lo` in it. NameserverError otherwise, or when `ip` fails."""
    interfaces = namespace_interfaces()
    if interfaces != ["lo"]:
        raise NameserverError(
            f"refusing to add {address} to loopback: this network namespace has {', '.join(interfaces)}, "
            "not only lo, so it is not a pod's own (a manifest's nameserver addresses live only there)"
        )
    ip = ipaddress.ip_address(address)
    prefix = f"{ip}/{32 if ip.version == 4 else 128}"
    done = proc.run_plain(["ip", "addr", "add", prefix, "dev", "lo"])
    if done.returncode != 0 and "File exists" not in done.stderr:
        raise NameserverError(f"cannot add {prefix} to the pod's loopback: {done.stderr.strip()}")
