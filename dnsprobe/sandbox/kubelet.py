"""The pod's /etc/resolv.conf, /etc/hosts and DNS environment, derived the way the kubelet derives them.

Each function follows one function of the kubelet (kubernetes/kubernetes, Kubernetes 1.28 and later,
where the expanded DNS limits are the only ones) and is named after it:

- `pkg/kubelet/network/dns/dns.go`: `GetPodDNS` (the policy's base config, then the pod's dnsConfig,
  then the limits), `getPodDNSType` (ClusterFirst on hostNetwork falls back to Default),
  `generateSearchesForDNSClusterFirst` (`<ns>.svc.<domain> svc.<domain> <domain>` + the node's search
  list, duplicates dropped), `appendDNSConfig` / `mergeDNSOptions` (nameservers and searches appended
  without duplicates; an option given in dnsConfig replaces the one of the same name),
  `formDNSNameserversFitsLimits` (3 nameservers), `formDNSSearchFitsLimits` (32 domains, none longer
  than 253 characters, 2048 characters in all, cut from the end), `CheckLimitsForResolvConf` (the same
  limits checked on the node's own resolv.conf) and `parseResolvConf` (the node's file: nameservers
  accumulate, the last search and options lines win, trailing dots dropped from search domains);
- `pkg/kubelet/kubelet_pods.go`: `managedHostsFileContent` / `nodeHostsFileContent` (hostNetwork pods
  get the node's hosts file), `hostsEntriesFromHostAliases` (one line per alias IP, under
  "# Entries added by HostAliases."), `GeneratePodHostNameAndDomain` / `truncatePodHostnameIfNeeded`
  (hostname, `<subdomain>.<ns>.svc.<domain>`) and `makeEnvironmentVariables` (env in order, `$(VAR)`
  references expanded, valueFrom resolved where the manifest alone can tell);
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
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dnsprobe.errors import ManifestError
from dnsprobe.sandbox.manifest import PodTemplate, read_manifest

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
DEFAULT_DNS_OPTIONS = ("ndots:5",)  # dns.go defaultDNSOptions
MAX_DNS_NAMESERVERS = 3  # validation.MaxDNSNameservers
MAX_DNS_SEARCH_PATHS = 32  # validation.MaxDNSSearchPaths
MAX_DNS_SEARCH_LIST_CHARS = 2048  # validation.MaxDNSSearchListChars
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
HOSTNAME_MAX_LEN = 63
MANAGED_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HOSTS_HEADER_WITH_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
# The environment variables that change how a Go program (or the C library under it) resolves names.
DNS_ENV = ("LOCALDOMAIN", "RES_OPTIONS", "HOSTALIASES", "GODEBUG", "GOMAXPROCS")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CPU = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m?)$")


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


@dataclass
class DNSConfig:
    """The CRI's runtimeapi.DNSConfig: what the runtime writes into the pod's resolv.conf."""

    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


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
    dns_config = _dns_config(spec.get("dnsConfig"), where)
    if policy == "None" and (dns_config is None or not dns_config["nameservers"]):
        raise ManifestError(
            f"{where}: dnsPolicy None needs dnsConfig.nameservers (at least one), or the API server "
            "rejects the pod"
        )
    warnings += check_limits_for_resolv_conf(config)
    dns = get_pod_dns(policy, host_network, dns_config, ns, config, warnings)
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
    aliases = _host_aliases(spec.get("hostAliases"), where)
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


# --- pkg/kubelet/network/dns/dns.go -------------------------------------------------------------------


def parse_resolv_conf(text: str, path: str) -> tuple[list[str], list[str], list[str]]:
    """parseResolvConf: (nameservers, searches, options). Nameserver lines accumulate; the last search
    line and the last options line win; search domains lose a trailing dot."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        trimmed = line.strip()
        if trimmed.startswith("#"):
            continue
        fields = trimmed.split()
        if not fields:
            continue
        if fields[0] == "nameserver":
            if len(fields) < 2:
                raise ManifestError(
                    f"{path}: line {number}: 'nameserver' without an address (the kubelet cannot create "
                    "pods from this resolv.conf: nameserver list is empty)"
                )
            nameservers.append(fields[1])
        if fields[0] == "search":
            searches = [domain.removesuffix(".") for domain in fields[1:]]
        if fields[0] == "options":
            options = fields[1:]
    return nameservers, searches, options


def get_pod_dns_type(policy: str, host_network: bool) -> str:
    """getPodDNSType: `cluster`, `host` or `none`."""
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network):
        return "cluster"
    return "host"


def get_pod_dns(
    policy: str,
    host_network: bool,
    dns_config: Mapping[str, Any] | None,
    namespace: str,
    config: KubeletConfig,
    warnings: list[str],
) -> DNSConfig:
    """GetPodDNS: the policy's base (the node's resolv.conf, the cluster DNS, or nothing), the pod's
    dnsConfig appended, then cut to the limits."""
    servers, searches, options = parse_resolv_conf(config.node_resolv_conf, config.node_resolv_conf_path)
    dns = DNSConfig(servers, searches, options)
    kind = get_pod_dns_type(policy, host_network)
    if kind == "none":
        dns = DNSConfig()
    elif kind == "cluster":
        if config.cluster_dns:
            dns.servers = list(config.cluster_dns)
            dns.searches = generate_searches_for_dns_cluster_first(
                dns.searches, namespace, config.cluster_domain
            )
            dns.options = list(DEFAULT_DNS_OPTIONS)
        else:
            warnings.append(
                "MissingClusterDNS: kubelet does not have ClusterDNS IP configured and cannot create Pod "
                'using "ClusterFirst" policy. Falling back to "Default" policy.'
            )
    if dns_config is not None:
        dns = append_dns_config(dns, dns_config)
    dns.servers = form_dns_nameservers_fits_limits(dns.servers, warnings)
    dns.searches = form_dns_search_fits_limits(dns.searches, warnings)
    return dns


def generate_searches_for_dns_cluster_first(host_search: list[str], namespace: str, domain: str) -> list[str]:
    """generateSearchesForDNSClusterFirst."""
    if not domain:
        return list(host_search)
    return omit_duplicates([f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *host_search])


def omit_duplicates(items: list[str]) -> list[str]:
    """omitDuplicates: the first of each, in order."""
    return list(dict.fromkeys(items))


def merge_dns_options(existing: list[str], pod_options: list[tuple[str, str | None]]) -> list[str]:
    """mergeDNSOptions: `name` or `name:value`; a pod option replaces the existing one of that name.
    (The kubelet's Go map leaves the order to chance; this keeps first-seen order.)"""
    merged: dict[str, str] = {}
    for option in existing:
        name, _, value = option.partition(":")
        merged[name] = value
    for name, given in pod_options:
        merged[name] = given or ""
    return [f"{name}:{value}" if value else name for name, value in merged.items()]


def append_dns_config(existing: DNSConfig, dns_config: Mapping[str, Any]) -> DNSConfig:
    """appendDNSConfig."""
    return DNSConfig(
        servers=omit_duplicates([*existing.servers, *dns_config["nameservers"]]),
        searches=omit_duplicates([*existing.searches, *dns_config["searches"]]),
        options=merge_dns_options(existing.options, dns_config["options"]),
    )


def form_dns_nameservers_fits_limits(nameservers: list[str], warnings: list[str]) -> list[str]:
    """formDNSNameserversFitsLimits."""
    if len(nameservers) > MAX_DNS_NAMESERVERS:
        nameservers = nameservers[:MAX_DNS_NAMESERVERS]
        warnings.append(
            "DNSConfigForming: Nameserver limits were exceeded, some nameservers have been omitted, the "
            f"applied nameserver line is: {' '.join(nameservers)}"
        )
    return nameservers


def form_dns_search_fits_limits(searches: list[str], warnings: list[str]) -> list[str]:
    """formDNSSearchFitsLimits: at most 32 domains, none over 253 characters, 2048 characters joined."""
    exceeded = False
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        searches = searches[:MAX_DNS_SEARCH_PATHS]
        exceeded = True
    kept = [domain for domain in searches if len(domain) <= DNS1123_SUBDOMAIN_MAX_LENGTH]
    exceeded = exceeded or len(kept) != len(searches)
    searches = kept
    length = len(" ".join(searches))
    if length > MAX_DNS_SEARCH_LIST_CHARS:
        cut = cut_length = 0
        for domain in reversed(searches):
            cut_length += len(domain) + 1
            cut += 1
            if length - cut_length <= MAX_DNS_SEARCH_LIST_CHARS:
                break
        searches = searches[: len(searches) - cut]
        exceeded = True
    if exceeded:
        warnings.append(
            "DNSConfigForming: Search Line limits were exceeded, some search paths have been omitted, the "
            f"applied search line is: {' '.join(searches)}"
        )
    return searches


def check_limits_for_resolv_conf(config: KubeletConfig) -> list[str]:
    """CheckLimitsForResolvConf: the node's own search line against the limits, three domains fewer
    when there is a cluster domain (the kubelet logs it as a warning event on the node)."""
    path = config.node_resolv_conf_path
    _, searches, _ = parse_resolv_conf(config.node_resolv_conf, path)
    limit = MAX_DNS_SEARCH_PATHS - (3 if config.cluster_domain else 0)
    prefix = "CheckLimitsForResolvConf (node): "
    if len(searches) > limit:
        return [
            f"{prefix}Resolv.conf file '{path}' contains search line consisting of more than {limit} domains!"
        ]
    if any(len(domain) > DNS1123_SUBDOMAIN_MAX_LENGTH for domain in searches):
        return [
            f'{prefix}Resolv.conf file "{path}" contains a search path which length is more than allowed '
            f"{DNS1123_SUBDOMAIN_MAX_LENGTH} chars!"
        ]
    if len(" ".join(searches)) > MAX_DNS_SEARCH_LIST_CHARS:
        return [
            f"{prefix}Resolv.conf file '{path}' contains search line which length is more than allowed "
            f"{MAX_DNS_SEARCH_LIST_CHARS} chars!"
        ]
    return []


def resolv_conf_content(dns: DNSConfig) -> str:
    """The runtime's parseDNSOptions (containerd, CRI-O): search, nameservers, options."""
    text = ""
    if dns.searches:
        text += f"search {' '.join(dns.searches)}\n"
    if dns.servers:
        text += "".join(f"nameserver {server}\n" for server in dns.servers)
    if dns.options:
        text += f"options {' '.join(dns.options)}\n"
    return text


def _dns_config(value: Any, where: str) -> dict[str, Any] | None:
    """The pod's dnsConfig, checked the way the API server's types would decode it."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: dnsConfig must be a mapping (nameservers, searches, options)")
    unknown = sorted(set(value) - {"nameservers", "searches", "options"})
    if unknown:
        raise ManifestError(
            f"{where}: dnsConfig.{unknown[0]}: unknown field (nameservers, searches, options)"
        )
    lists: dict[str, list[str]] = {}
    for key in ("nameservers", "searches"):
        items = value.get(key) or []
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ManifestError(f"{where}: dnsConfig.{key} must be a list of strings")
        lists[key] = list(items)
    options: list[tuple[str, str | None]] = []
    for index, option in enumerate(value.get("options") or []):
        if not isinstance(option, dict) or not isinstance(option.get("name"), str):
            raise ManifestError(f"{where}: dnsConfig.options[{index}] needs a name (and an optional value)")
        raw = option.get("value")
        if raw is not None and not isinstance(raw, str):
            raise ManifestError(
                f"{where}: dnsConfig.options[{index}] ({option['name']}): value {raw!r} is not a string, "
                f'so the API server rejects it; quote it: value: "{raw}"'
            )
        options.append((option["name"], raw))
    # The API server's own checks on dnsConfig alone (validatePodDNSConfig); the kubelet's limits apply
    # to the merged result.
    rejects = f"{where}: the API server rejects this pod: dnsConfig"
    if len(lists["nameservers"]) > MAX_DNS_NAMESERVERS:
        raise ManifestError(f"{rejects}.nameservers has more than {MAX_DNS_NAMESERVERS} addresses")
    for server in lists["nameservers"]:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise ManifestError(f"{rejects}.nameservers: {server!r} is not an IP address") from None
    searches = lists["searches"]
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        raise ManifestError(f"{rejects}.searches has more than {MAX_DNS_SEARCH_PATHS} domains")
    if len(" ".join(searches)) > MAX_DNS_SEARCH_LIST_CHARS:
        raise ManifestError(f"{rejects}.searches is longer than {MAX_DNS_SEARCH_LIST_CHARS} characters")
    for domain in searches:
        labels = domain.removesuffix(".").split(".")
        if len(domain) > DNS1123_SUBDOMAIN_MAX_LENGTH or not all(_LABEL.match(label) for label in labels):
            raise ManifestError(f"{rejects}.searches: {domain!r} is not a valid domain name")
    return {"nameservers": lists["nameservers"], "searches": searches, "options": options}


# --- pkg/kubelet/kubelet_pods.go ----------------------------------------------------------------------


def generate_pod_hostname_and_domain(
    template: PodTemplate, spec: Mapping[str, Any], namespace: str, domain: str, warnings: list[str]
) -> tuple[str, str]:
    """GeneratePodHostNameAndDomain: spec.hostname (a DNS label) or the pod's name, cut to 63
    characters; `<subdomain>.<namespace>.svc.<cluster domain>` when spec.subdomain is set."""
    where = f"{template.source}: {template.title}"
    hostname = template.pod_name
    if spec.get("hostname"):
        hostname = str(spec["hostname"])
        if not _is_label(hostname):
            raise ManifestError(f"{where}: pod Hostname {hostname!r} is not a valid DNS label")
    if len(hostname) > HOSTNAME_MAX_LEN:
        truncated = hostname[:HOSTNAME_MAX_LEN].rstrip("-.")
        warnings.append(
            f"Hostname for pod was too long, truncated it: {hostname!r} -> {truncated!r} "
            f"(truncatePodHostnameIfNeeded, {HOSTNAME_MAX_LEN} characters)"
        )
        hostname = truncated
    host_domain = ""
    if spec.get("subdomain"):
        subdomain = str(spec["subdomain"])
        if not _is_label(subdomain):
            raise ManifestError(f"{where}: pod Subdomain {subdomain!r} is not a valid DNS label")
        host_domain = f"{subdomain}.{namespace}.svc.{domain}"
    return hostname, host_domain


def _is_label(text: str) -> bool:
    return len(text) <= HOSTNAME_MAX_LEN and bool(_LABEL.match(text))


def _host_aliases(value: Any, where: str) -> list[tuple[str, list[str]]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError(f"{where}: hostAliases must be a list of {{ip, hostnames}}")
    aliases = []
    for index, alias in enumerate(value):
        if not isinstance(alias, dict) or not isinstance(alias.get("ip"), str):
            raise ManifestError(f"{where}: hostAliases[{index}] needs an ip")
        names = alias.get("hostnames") or []
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ManifestError(f"{where}: hostAliases[{index}].hostnames must be a list of names")
        aliases.append((alias["ip"], names))
    return aliases


def hosts_entries_from_host_aliases(aliases: list[tuple[str, list[str]]]) -> str:
    """hostsEntriesFromHostAliases: a blank line, the header, then each IP with its names on one line."""
    if not aliases:
        return ""
    lines = "".join(f"{ip}\t{chr(9).join(names)}\n" for ip, names in aliases)
    return "\n# Entries added by HostAliases.\n" + lines


def managed_hosts_file_content(
    pod_ips: list[str], hostname: str, domain: str, aliases: list[tuple[str, list[str]]]
) -> str:
    """managedHostsFileContent."""
    text = MANAGED_HOSTS_HEADER
    text += "127.0.0.1\tlocalhost\n"
    text += "::1\tlocalhost ip6-localhost ip6-loopback\n"
    text += "fe00::0\tip6-localnet\n"
    text += "fe00::0\tip6-mcastprefix\n"
    text += "fe00::1\tip6-allnodes\n"
    text += "fe00::2\tip6-allrouters\n"
    for ip in pod_ips:
        text += f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n"
    return text + hosts_entries_from_host_aliases(aliases)


def node_hosts_file_content(node_hosts: str, aliases: list[tuple[str, list[str]]]) -> str:
    """nodeHostsFileContent: a hostNetwork pod gets the node's hosts file."""
    return MANAGED_HOSTS_HEADER_WITH_HOST_NETWORK + node_hosts + hosts_entries_from_host_aliases(aliases)


def container_env(
    template: PodTemplate, namespace: str, pod_ips: list[str], notes: list[str], unresolved: list[str]
) -> tuple[dict[str, str], float | None]:
    """makeEnvironmentVariables, for the variables in DNS_ENV: the container's env in order, `$(VAR)`
    expanded from the ones before it, valueFrom resolved where the manifest tells (pod fields, the
    container's CPU); a configMap or secret cannot be read here, so those are left out, with a warning.
    Also the CPU limit, and the GOMAXPROCS the Go runtime would pick from it."""
    container = template.container
    where = f"{template.source}: {template.title}, container {template.container_name}"
    cpu_limit = _cpu(_resource(container, "limits"), where)
    cpu_request = _cpu(_resource(container, "requests"), where)
    known: dict[str, str] = {}
    env: dict[str, str] = {}
    for index, item in enumerate(container.get("env") or []):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ManifestError(f"{where}: env[{index}] has no name")
        name = item["name"]
        value: str | None
        if item.get("value") not in (None, ""):
            value = expand(str(item["value"]), known.get)
        elif item.get("valueFrom") is not None:
            value, why = _value_from(item["valueFrom"], template, namespace, pod_ips, cpu_limit, cpu_request)
            if value is None:
                if name in DNS_ENV:
                    unresolved.append(
                        f"env {name}: {why}, so the probe runs without it (give its value in [pod] env)"
                    )
                continue
        else:
            value = ""
        known[name] = value
        if name in DNS_ENV:
            env[name] = value
    if container.get("envFrom"):
        unresolved.append(
            "envFrom (configMap or secret) cannot be read here: if it sets "
            f"{', '.join(DNS_ENV)}, give them in [pod] env"
        )
    if "HOSTALIASES" in env:
        notes.append(
            f"HOSTALIASES={env['HOSTALIASES']} names a file in the image; a cgo build reads it, "
            "the pure-Go resolver ignores it (either way any cgo-capable build now uses cgo)"
        )
    if "GOMAXPROCS" in env:
        notes.append(f"GOMAXPROCS={env['GOMAXPROCS']} from the manifest")
    elif cpu_limit is not None:
        procs = max(2, math.ceil(cpu_limit))
        env["GOMAXPROCS"] = str(procs)
        notes.append(
            f"CPU limit {cpu_limit:g}: Go 1.25 and later start with GOMAXPROCS = the limit rounded up, at "
            f"least 2, at most the node's CPUs ({procs}); Go 1.24 and older use all the node's CPUs. The "
            f"probe runs with GOMAXPROCS={procs}"
        )
    else:
        notes.append("no CPU limit: Go's GOMAXPROCS is the node's CPU count")
    return env, cpu_limit


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(VAR)` expansion: a known VAR is replaced, an unknown one kept as written, `$$`
    is a `$`."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "$" and index + 1 < len(text):
            following = text[index + 1]
            if following == "$":
                out.append("$")
                index += 2
                continue
            if following == "(":
                end = text.find(")", index + 2)
                if end != -1:
                    name = text[index + 2 : end]
                    found = lookup(name)
                    out.append(found if found is not None else f"$({name})")
                    index = end + 1
                    continue
        out.append(char)
        index += 1
    return "".join(out)


def _value_from(
    source: Any,
    template: PodTemplate,
    namespace: str,
    pod_ips: list[str],
    cpu_limit: float | None,
    cpu_request: float | None,
) -> tuple[str | None, str]:
    """(value, "") or (None, why it cannot be resolved from the manifest)."""
    if not isinstance(source, dict):
        return None, "valueFrom is not a mapping"
    if "fieldRef" in source:
        path = str((source["fieldRef"] or {}).get("fieldPath", ""))
        fields = {
            "metadata.name": template.pod_name,
            "metadata.namespace": namespace,
            "status.podIP": pod_ips[0],
            "status.podIPs": ",".join(pod_ips),
            "spec.serviceAccountName": str(template.spec.get("serviceAccountName") or "default"),
        }
        if path in fields:
            return fields[path], ""
        return None, f"valueFrom.fieldRef {path} is only known in a running cluster"
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"] or {}
        resource = str(ref.get("resource", ""))
        cores = {
            "limits.cpu": cpu_limit,
            "requests.cpu": cpu_request if cpu_request is not None else cpu_limit,
        }
        if resource in cores:
            divisor = _cpu(ref.get("divisor", "1"), "resourceFieldRef.divisor") or 1.0
            amount = cores[resource]
            if amount is None:
                return None, f"valueFrom.resourceFieldRef {resource} is unset: the node's allocatable CPU"
            # containerResourceRuntimeValue: the CPU in units of the divisor, rounded up
            return str(math.ceil(round(amount * 1000) / round(divisor * 1000))), ""
        return None, f"valueFrom.resourceFieldRef {resource} is not resolved by dnsprobe"
    for kind in ("configMapKeyRef", "secretKeyRef"):
        if kind in source:
            ref = source[kind] or {}
            return None, f"valueFrom.{kind} {ref.get('name')}/{ref.get('key')} cannot be read here"
    return None, "valueFrom names no source dnsprobe knows"


def _resource(container: Mapping[str, Any], kind: str) -> Any:
    resources = container.get("resources") or {}
    return (resources.get(kind) or {}).get("cpu") if isinstance(resources, dict) else None


def _cpu(value: Any, where: str) -> float | None:
    """A CPU quantity (`500m`, `2`, `1.5`) in cores."""
    if value is None:
        return None
    match = _CPU.match(str(value).strip())
    if not match:
        raise ManifestError(f"{where}: CPU quantity {value!r} is not one (write 500m, 1 or 1.5)")
    number = float(match.group(1))
    return number / 1000 if match.group(2) else number


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
    if cluster_domain and not all(_LABEL.match(label) for label in cluster_domain.split(".")):
        raise ManifestError(f"cluster domain {cluster_domain!r} is not a domain name (e.g. cluster.local)")
    config = KubeletConfig(cluster_domain=cluster_domain, cluster_dns=tuple(servers))
    if node_resolv_conf is not None:
        text = read_text(node_resolv_conf, "the node's resolv.conf")
        config = replace(config, node_resolv_conf=text, node_resolv_conf_path=str(node_resolv_conf))
    if node_hosts is not None:
        config = replace(config, node_hosts=read_text(node_hosts, "the node's hosts file"))
    return config
