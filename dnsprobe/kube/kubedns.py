"""The kubelet's pod DNS configuration: pkg/kubelet/network/dns/dns.go, function by function.

`get_pod_dns` is `GetPodDNS`: the dnsPolicy's base (`getPodDNSType`: the node's resolv.conf as
`parseResolvConf` reads it, the cluster DNS with `generateSearchesForDNSClusterFirst`'s search list and
`ndots:5`, or nothing for None), then the pod's dnsConfig (`appendDNSConfig`, `mergeDNSOptions`), then
the limits (`formDNSNameserversFitsLimits`, `formDNSSearchFitsLimits`), each cut logged as the kubelet
logs it. `check_limits_for_resolv_conf` is `CheckLimitsForResolvConf` on the node's own file, and
`resolv_conf_content` is how the container runtime writes the result (containerd's and CRI-O's
`parseDNSOptions`). `pod_dns_config` decodes a manifest's dnsConfig with the API server's own checks
(`validatePodDNSConfig`), since a pod that fails them never reaches a kubelet.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dnsprobe.errors import ManifestError

DEFAULT_DNS_OPTIONS = ("ndots:5",)  # dns.go defaultDNSOptions
MAX_DNS_NAMESERVERS = 3  # validation.MaxDNSNameservers
MAX_DNS_SEARCH_PATHS = 32  # validation.MaxDNSSearchPaths
MAX_DNS_SEARCH_LIST_CHARS = 2048  # validation.MaxDNSSearchListChars
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # one label of a DNS-1123 name


@dataclass
class DNSConfig:
    """The CRI's runtimeapi.DNSConfig: what the runtime writes into the pod's resolv.conf."""

    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


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
    *,
    cluster_domain: str,
    cluster_dns: Sequence[str],
    node_resolv_conf: str,
    node_resolv_conf_path: str,
    warnings: list[str],
) -> DNSConfig:
    """GetPodDNS: the policy's base (the node's resolv.conf, the cluster DNS, or nothing), the pod's
    dnsConfig appended, then cut to the limits."""
    servers, searches, options = parse_resolv_conf(node_resolv_conf, node_resolv_conf_path)
    dns = DNSConfig(servers, searches, options)
    kind = get_pod_dns_type(policy, host_network)
    if kind == "none":
        dns = DNSConfig()
    elif kind == "cluster":
        if cluster_dns:
            dns.servers = list(cluster_dns)
            dns.searches = generate_searches_for_dns_cluster_first(dns.searches, namespace, cluster_domain)
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


def check_limits_for_resolv_conf(text: str, path: str, cluster_domain: str) -> list[str]:
    """CheckLimitsForResolvConf: the node's own search line against the limits, three domains fewer
    when there is a cluster domain (the kubelet logs it as a warning event on the node)."""
    _, searches, _ = parse_resolv_conf(text, path)
    limit = MAX_DNS_SEARCH_PATHS - (3 if cluster_domain else 0)
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


def pod_dns_config(value: Any, where: str) -> dict[str, Any] | None:
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
        if len(domain) > DNS1123_SUBDOMAIN_MAX_LENGTH or not all(LABEL.match(label) for label in labels):
            raise ManifestError(f"{rejects}.searches: {domain!r} is not a valid domain name")
    return {"nameservers": lists["nameservers"], "searches": searches, "options": options}
