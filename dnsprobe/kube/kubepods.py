"""The kubelet's pod files and environment: pkg/kubelet/kubelet_pods.go, function by function.

`managed_hosts_file_content` / `node_hosts_file_content` (`managedHostsFileContent`,
`nodeHostsFileContent`: a hostNetwork pod gets the node's hosts file) with
`hosts_entries_from_host_aliases` (`hostsEntriesFromHostAliases`), `generate_pod_hostname_and_domain`
(`GeneratePodHostNameAndDomain`, `truncatePodHostnameIfNeeded`), and `container_env`, the part of
`makeEnvironmentVariables` that the manifest alone can answer: the env in order, `$(VAR)` expanded
(`expand`, Kubernetes' third_party expansion), fieldRef and resourceFieldRef values (the latter as
`containerResourceRuntimeValue` rounds them), never a configMap or secret.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from dnsprobe.errors import ManifestError
from dnsprobe.kube.kubedns import LABEL
from dnsprobe.kube.manifest import PodTemplate

HOSTNAME_MAX_LEN = 63
MANAGED_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HOSTS_HEADER_WITH_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
# The environment variables that change how a Go program (or the C library under it) resolves names.
DNS_ENV = ("LOCALDOMAIN", "RES_OPTIONS", "HOSTALIASES", "GODEBUG", "GOMAXPROCS")
_CPU = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m?)$")


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
    return len(text) <= HOSTNAME_MAX_LEN and bool(LABEL.match(text))


def host_aliases(value: Any, where: str) -> list[tuple[str, list[str]]]:
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
