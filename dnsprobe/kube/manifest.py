"""Kubernetes manifests: the pod template and container a Pod, Deployment, StatefulSet, DaemonSet,
ReplicaSet, Job or CronJob would run, read from (multi-document) YAML with PyYAML.

`read_manifest(text, source, container=...)` returns a `PodTemplate`: the pod spec, the container
chosen, the name the pod would get and the namespace the manifest names. `dnsprobe.kube.kubelet`
turns it into the pod's resolv.conf, hosts and environment.

Pods of a controller get a generated name (`api-6d8f9c7b5d-x7k2p`); the generated part is fixed here so
the files are the same on every run. A StatefulSet's pod is `<name>-0`, and its controller also sets the
pod's hostname to that name and its subdomain to the set's `serviceName`, as the StatefulSet controller
does (`updateIdentity`), so the hosts file gets the pod's stable name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from dnsprobe.errors import ManifestError

__all__ = ["WORKLOAD_KINDS", "PodTemplate", "read_manifest"]

WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
_TEMPLATE_PATH = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# The generated part of a controller's pod name (a pod-template hash, a job's schedule time, the random
# suffix): fixed, so a render is the same every time.
_GENERATED = {
    "Deployment": "-6d8f9c7b5d-x7k2p",
    "ReplicaSet": "-x7k2p",
    "DaemonSet": "-x7k2p",
    "Job": "-x7k2p",
    "CronJob": "-29000000-x7k2p",
}
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


@dataclass(frozen=True)
class PodTemplate:
    """One workload's pod, as the kubelet would receive it."""

    kind: str
    name: str  # the workload's metadata.name
    namespace: str | None  # metadata.namespace, None when the manifest names none
    pod_name: str  # the pod's own name (generated for a controller's pods)
    spec: dict[str, Any]  # the pod spec (hostname and subdomain set as a StatefulSet's controller sets them)
    container: dict[str, Any]  # the container chosen
    source: str  # the file
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def container_name(self) -> str:
        return str(self.container.get("name", ""))


def read_manifest(text: str, source: str, *, container: str | None = None) -> PodTemplate:
    """The pod template and container of the first workload in `text` (the first one holding a
    container named `container`, when given). ManifestError: not YAML, no pod template, no such
    container."""
    documents = list(_documents(text, source))
    workloads = [doc for doc in documents if doc.get("kind") in WORKLOAD_KINDS]
    if not workloads:
        found = ", ".join(_title(doc) for doc in documents) or "nothing"
        raise ManifestError(
            f"{source}: no pod template: no {', '.join(WORKLOAD_KINDS[:-1])} or CronJob in it "
            f"(found: {found})"
        )
    specs = [(doc, _pod_spec(doc, source)) for doc in workloads]
    chosen = specs[0]
    if container is not None:
        holding = [(doc, spec) for doc, spec in specs if container in _container_names(spec)]
        if not holding:
            doc, spec = specs[0]
            others = f" (nor in {', '.join(_title(d) for d, _ in specs[1:])})" if len(specs) > 1 else ""
            raise ManifestError(
                f"{source}: {_title(doc)} has no container {container!r}{others}; its containers: "
                f"{', '.join(_container_names(spec)) or 'none'} (pass one of those with --container, or "
                "container = ... in [pod])"
            )
        chosen = holding[0]
    doc, spec = chosen
    notes = []
    if len(specs) > 1:
        rest = ", ".join(_title(d) for d, _ in specs if d is not doc)
        notes.append(f"{source} also holds {rest}; rendering {_title(doc)} (choose with --container)")
    picked, note = _pick_container(doc, spec, container, source)
    if note:
        notes.append(note)
    metadata = doc.get("metadata") or {}
    name = str(metadata.get("name") or metadata.get("generateName") or "pod").rstrip("-")
    namespace = metadata.get("namespace")
    kind = str(doc["kind"])
    spec = dict(spec)
    if kind == "Pod":
        pod_name = str(metadata.get("name") or f"{name}-x7k2p")
    elif kind == "StatefulSet":
        pod_name = f"{name}-0"
        spec["hostname"] = pod_name
        service = (doc.get("spec") or {}).get("serviceName")
        if service:
            spec["subdomain"] = str(service)
        notes.append(
            f"StatefulSet pods are named <name>-<ordinal>: rendering {pod_name}, with hostname {pod_name}"
            + (f" and subdomain {service} (spec.serviceName)" if service else "")
        )
    else:
        pod_name = f"{name}{_GENERATED[kind]}"
        notes.append(
            f"{kind} pods get a generated name; rendering {pod_name} (the generated part is made up)"
        )
    return PodTemplate(
        kind=kind,
        name=name,
        namespace=str(namespace) if namespace else None,
        pod_name=pod_name,
        spec=spec,
        container=picked,
        source=source,
        notes=notes,
    )


def _documents(text: str, source: str) -> Iterator[dict[str, Any]]:
    try:
        loaded = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ManifestError(f"{source}: not valid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: not valid YAML: {exc}") from None
    for index, doc in enumerate(loaded, 1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(
                f"{source}: document {index} is a {type(doc).__name__}, not a Kubernetes object "
                "(a mapping with apiVersion, kind, metadata, spec)"
            )
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):  # kubectl get -o yaml
            yield from (item for item in doc["items"] if isinstance(item, dict))
        else:
            yield doc


def _title(doc: dict[str, Any]) -> str:
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return f"{doc.get('kind', '?')}/{(metadata or {}).get('name', '?')}"


def _pod_spec(doc: dict[str, Any], source: str) -> dict[str, Any]:
    node: Any = doc
    path = _TEMPLATE_PATH[str(doc["kind"])]
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ManifestError(
                f"{source}: {_title(doc)} has no pod template ({'.'.join(path)} is missing or not a mapping)"
            )
    containers = node.get("containers")
    if not isinstance(containers, list) or not containers:
        raise ManifestError(f"{source}: {_title(doc)} has no containers ({'.'.join(path)}.containers)")
    for index, item in enumerate(containers):
        if not isinstance(item, dict) or not item.get("name"):
            raise ManifestError(f"{source}: {_title(doc)}: {'.'.join(path)}.containers[{index}] has no name")
    spec: dict[str, Any] = node
    return spec


def _container_names(spec: dict[str, Any]) -> list[str]:
    return [str(c["name"]) for c in spec["containers"]]


def _pick_container(
    doc: dict[str, Any], spec: dict[str, Any], wanted: str | None, source: str
) -> tuple[dict[str, Any], str | None]:
    containers: list[dict[str, Any]] = spec["containers"]
    names = _container_names(spec)
    if wanted is not None:
        return containers[names.index(wanted)], None
    if len(containers) == 1:
        return containers[0], None
    annotations = ((spec_metadata(doc) or {}).get("annotations")) or {}
    default = annotations.get(DEFAULT_CONTAINER_ANNOTATION)
    if default in names:
        return containers[names.index(default)], (
            f"{_title(doc)} has containers {', '.join(names)}: rendering {default} "
            f"({DEFAULT_CONTAINER_ANNOTATION})"
        )
    return containers[0], (
        f"{_title(doc)} has containers {', '.join(names)}: rendering the first, {names[0]} "
        "(choose with --container, or container = ... in [pod])"
    )


def spec_metadata(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod's metadata: the Pod's own, or the template's (where kubectl looks for annotations)."""
    if doc.get("kind") == "Pod":
        metadata = doc.get("metadata")
    else:
        node: Any = doc
        for key in _TEMPLATE_PATH[str(doc["kind"])][:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        metadata = node.get("metadata") if isinstance(node, dict) else None
    return metadata if isinstance(metadata, dict) else None
