"""The pod's /etc/resolv.conf, /etc/hosts and DNS environment, derived the way the kubelet derives them.

`render_pod` puts together functions that each follow one function of the kubelet
(kubernetes/kubernetes, Kubernetes 1.28 and later, where the expanded DNS limits are the only ones)
and are named after it:

- `kubedns.py`, from `pkg/kubelet/network/dns/dns.go`: `GetPodDNS` (the policy's base config, then
  the pod's dnsConfig, then the limits), `getPodDNSType` (ClusterFirst on hostNetwork falls back to
  Default), `generateSearchesForDNSClusterFirst` (`<ns>.svc.<domain> svc.<domain> <domain>` + the
  node's search list, duplicates dropped), `appendDNSConfig` / `mergeDNSOptions` (nameservers and
  searches appended without duplicates; an option given in dnsConfig replaces the one of the same
  name), `formDNSNameserversFitsLimits` (3 nameservers), `formDNSSearchFitsLimits` (32 domains, none
  longer than 253 characters, 2048 characters in all, cut from the end), `CheckLimitsForResolvConf`
  (the same limits checked on the node's own resolv.conf) and `parseResolvConf` (the node's file:
  nameservers accumulate, the last search and options lines win, trailing dots dropped);
- `kubepods.py`, from `pkg/kubelet/kubelet_pods.go`: `managedHostsFileContent` /
  `nodeHostsFileContent` (hostNetwork pods get the node's hosts file), `hostsEntriesFromHostAliases`
  (one line per alias IP, under "# Entries added by HostAliases."), `GeneratePodHostNameAndDomain` /
  `truncatePodHostnameIfNeeded` (hostname, `<subdomain>.<ns>.svc.<domain>`) and
  `makeEnvironmentVariables` (env in order, `$(VAR)` references expanded, valueFrom resolved where the
  manifest alone can tell);
- the container runtime writes the resolv.conf from the kubelet's DNSConfig (containerd's and CRI-O's
  `parseDNSOptions`): one `search` line, one `nameserver` line per server, one `options` line.

One thing cannot be reproduced byte for byte: `mergeDNSOptions` collects the options in a Go map, so
when a pod has a dnsConfig its options line comes out in a different order from pod to pod. Here the
order is the base options first, then the dnsConfig's new ones as written (and a note says so); the
meaning is the same.

The node's own resolv.conf and hosts file are settings (`KubeletConfig`), defaulting to fixed samples:
never this machine's files.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dnsprobe.errors import ManifestError
from dnsprobe.kube.kubedns import (
    LABEL,
    POLICIES,
    DNSConfig,
    check_limits_for_resolv_conf,
    get_pod_dns,
    pod_dns_config,
    resolv_conf_content,
)
from dnsprobe.kube.kubepods import (
    DNS_ENV,
    container_env,
    generate_pod_hostname_and_domain,
    host_aliases,
    managed_hosts_file_content,
    node_hosts_file_content,
)
from dnsprobe.kube.manifest import PodTemplate, read_manifest

__all__ = [
    "DNS_ENV",
    "SAMPLE_NODE_HOSTS",
    "SAMPLE_NODE_RESOLV_CONF",
    "DNSConfig",
    "KubeletConfig",
    "RenderedPod",
    "format_render",
    "kubelet_config",
    "render_manifest",
    "render_pod",
]

POD_IP = "10.244.0.5"  # the pod's address in its hosts file (the one dnsprobe's hand-written pods use)
SAMPLE_NODE_RESOLV_CONF = "nameserver 10.0.0.2\nsearch node.example.internal\n"
SAMPLE_NODE_HOSTS = (
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    "10.0.0.15\tnode-1.node.example.internal node-1\n"
)


@dataclass(frozen=True)
class KubeletConfig:
    """The kubelet's settings that shape a pod's DNS files (its flags `--cluster-domain`,
    `--cluster-dns`, `--resolv-conf`), the node's files, and the pod's IP addresses."""

    cluster_domain: str = "cluster.local"
    cluster_dns: tuple[str, ...] = ("10.96.0.10",)
    node_resolv_conf: str = SAMPLE_NODE_RESOLV_CONF
    node_resolv_conf_path: str = "/etc/resolv.conf"  # how the kubelet's messages name it
    node_hosts: str = SAMPLE_NODE_HOSTS
    pod_ips: tuple[str, ...] = (POD_IP,)


@dataclass(frozen=True)
class RenderedPod:
    template: PodTemplate
    namespace: str
    policy: str  # dnsPolicy as the pod has it (ClusterFirst when unset)
    host_network: bool
    dns: DNSConfig
    resolv_conf: str
    hosts: str
    hostname: str
    host_domain: str
    env: dict[str, str]  # the container's DNS-relevant variables (DNS_ENV), as the probe gets them
    warnings: list[str]  # what the kubelet would log and record as events
    notes: list[str]  # what dnsprobe assumed
    unresolved: list[str]  # what only the cluster knows (configMaps, secrets, ...)
    cpu_limit: float | None

    @property
    def nameservers(self) -> list[str]:
        return list(self.dns.servers)

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.template.title,
            "container": self.template.container_name,
            "pod": self.template.pod_name,
            "namespace": self.namespace,
            "dns_policy": self.policy,
            "host_network": self.host_network,
            "hostname": self.hostname,
            "host_domain": self.host_domain,
            "resolv_conf": self.resolv_conf,
            "hosts": self.hosts,
            "env": dict(self.env),
            "cpu_limit": self.cpu_limit,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "unresolved": list(self.unresolved),
        }


def render_pod(template: PodTemplate, config: KubeletConfig, *, namespace: str | None = None) -> RenderedPod:
    """The pod's files and DNS environment. `namespace` overrides the manifest's (default: `default`).
    ManifestError for what the API server or the kubelet would refuse."""
    spec = template.spec
    ns = namespace or template.namespace or "default"
    where = f"{template.source}: {template.title}"
    warnings: list[str] = []
    notes = list(template.notes)
    policy = str(spec.get("dnsPolicy") or "ClusterFirst")
    if policy not in POLICIES:
        raise ManifestError(f"{where}: dnsPolicy {policy!r} is not one of {', '.join(POLICIES)}")
    host_network = spec.get("hostNetwork") is True
    dns_config = pod_dns_config(spec.get("dnsConfig"), where)
    if policy == "None" and (dns_config is None or not dns_config["nameservers"]):
        raise ManifestError(
            f"{where}: dnsPolicy None needs dnsConfig.nameservers (at least one), or the API server "
            "rejects the pod"
        )
    warnings += check_limits_for_resolv_conf(
        config.node_resolv_conf, config.node_resolv_conf_path, config.cluster_domain
    )
    dns = get_pod_dns(
        policy,
        host_network,
        dns_config,
        ns,
        cluster_domain=config.cluster_domain,
        cluster_dns=config.cluster_dns,
        node_resolv_conf=config.node_resolv_conf,
        node_resolv_conf_path=config.node_resolv_conf_path,
        warnings=warnings,
    )
    if policy == "ClusterFirst" and host_network:
        notes.append(
            "dnsPolicy ClusterFirst with hostNetwork: the kubelet falls back to Default, the node's "
            "resolv.conf (getPodDNSType); ClusterFirstWithHostNet keeps the cluster DNS"
        )
    if dns_config is not None and dns_config["options"] and len(dns.options) > 1:
        notes.append(
            "the kubelet merges dnsConfig options through a Go map (mergeDNSOptions): in a real pod the "
            "options line lists the same options in a varying order"
        )
    hostname, domain = generate_pod_hostname_and_domain(template, spec, ns, config.cluster_domain, warnings)
    aliases = host_aliases(spec.get("hostAliases"), where)
    if host_network:
        hosts = node_hosts_file_content(config.node_hosts, aliases)
        notes.append(
            "hostNetwork: in Kubernetes the pod shares the node's network; dnsprobe still runs it in a "
            "network namespace of its own, with its nameserver on the addresses the resolv.conf names"
        )
    else:
        hosts = managed_hosts_file_content(list(config.pod_ips), hostname, domain, aliases)
    unresolved: list[str] = []
    env, cpu_limit = container_env(template, ns, list(config.pod_ips), notes, unresolved)
    return RenderedPod(
        template=template,
        namespace=ns,
        policy=policy,
        host_network=host_network,
        dns=dns,
        resolv_conf=resolv_conf_content(dns),
        hosts=hosts,
        hostname=hostname,
        host_domain=domain,
        env=env,
        warnings=warnings,
        notes=notes,
        unresolved=unresolved,
        cpu_limit=cpu_limit,
    )


# --- output -------------------------------------------------------------------------------------------


def format_render(rendered: RenderedPod) -> str:
    """`dnsprobe pod render`: where the pod comes from, each file between markers, byte for byte, then
    the environment, the kubelet's warnings and dnsprobe's notes."""
    template = rendered.template
    lines = [
        f"{template.title}, container {template.container_name}, pod {template.pod_name} in namespace "
        f"{rendered.namespace} ({template.source})",
        f"dnsPolicy {rendered.policy}, hostNetwork {str(rendered.host_network).lower()}",
        "",
        "==> /etc/resolv.conf <==",
        rendered.resolv_conf.rstrip("\n")
        if rendered.resolv_conf
        else "(empty: the runtime copies the node's)",
        "",
        "==> /etc/hosts <==",
        rendered.hosts.rstrip("\n"),
        "",
        "==> environment (the variables that change DNS) <==",
        *([f"{name}={value}" for name, value in rendered.env.items()] or ["(none)"]),
        "",
        "warnings (what the kubelet would log):",
        *([f"  {warning}" for warning in rendered.warnings] or ["  (none)"]),
        "notes:",
        *([f"  {note}" for note in rendered.notes] or ["  (none)"]),
    ]
    if rendered.unresolved:
        lines += ["not resolved (only the cluster knows):", *(f"  {item}" for item in rendered.unresolved)]
    return "\n".join(lines) + "\n"


def read_text(path: Path, what: str) -> str:
    """A manifest's or a node file's text; ManifestError when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file ({what})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read ({what}): {exc}") from None


def render_manifest(
    path: Path,
    *,
    container: str | None = None,
    namespace: str | None = None,
    config: KubeletConfig | None = None,
) -> RenderedPod:
    """Read a manifest file and render its pod (`dnsprobe pod render`, `[pod] manifest`)."""
    template = read_manifest(read_text(path, "the Kubernetes manifest"), str(path), container=container)
    return render_pod(template, config or KubeletConfig(), namespace=namespace)


def kubelet_config(
    *,
    cluster_domain: str = "cluster.local",
    cluster_dns: str | list[str] = "10.96.0.10",
    node_resolv_conf: Path | None = None,
    node_hosts: Path | None = None,
) -> KubeletConfig:
    """A KubeletConfig from command-line or scenario settings: `cluster_dns` comma-separated or a list
    of IP addresses; the node's files read from the paths given (the samples otherwise)."""
    servers = [s.strip() for s in cluster_dns.split(",")] if isinstance(cluster_dns, str) else cluster_dns
    servers = [s for s in servers if s]
    for server in servers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise ManifestError(
                f"cluster DNS {server!r} is not an IP address (the kubelet's --cluster-dns, e.g. 10.96.0.10)"
            ) from None
    if cluster_domain and not all(LABEL.match(label) for label in cluster_domain.split(".")):
        raise ManifestError(f"cluster domain {cluster_domain!r} is not a domain name (e.g. cluster.local)")
    config = KubeletConfig(cluster_domain=cluster_domain, cluster_dns=tuple(servers))
    if node_resolv_conf is not None:
        text = read_text(node_resolv_conf, "the node's resolv.conf")
        config = replace(config, node_resolv_conf=text, node_resolv_conf_path=str(node_resolv_conf))
    if node_hosts is not None:
        config = replace(config, node_hosts=read_text(node_hosts, "the node's hosts file"))
    return config


def render_pod_manifest(
    manifest: Path,
    *,
    container: str | None,
    namespace: str | None,
    cluster_domain: str,
    cluster_dns: list[str],
    node_resolv_conf: Path | None,
) -> RenderedPod:
    """A scenario's `[pod] manifest` rendered with its kubelet settings (what the scenario model and the
    pod's files both read)."""
    config = kubelet_config(
        cluster_domain=cluster_domain, cluster_dns=cluster_dns, node_resolv_conf=node_resolv_conf
    )
    return render_manifest(manifest, container=container, namespace=namespace, config=config)
