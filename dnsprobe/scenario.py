"""Scenario files: TOML in, a validated `Scenario` out.

A scenario says what to build (modes), what the pod looks like (resolv.conf, hosts, nsswitch.conf,
environment), what the nameserver serves (records in master-file syntax), and the load (users, duration,
workloads). Every mistake is reported as `FILE: field.path: what is wrong (what to do)`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dnsprobe.errors import ScenarioError
from dnsprobe.modes import MODES

K8S_SEARCH = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
LOOKUP_KINDS = ("host", "ip", "ip4", "ip6", "cname", "srv", "txt", "mx", "ns", "ptr")
_TEMPLATE = re.compile(r"\{(\w+)\}")
_LABEL = re.compile(r"^[A-Za-z0-9_*](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Pod(_Strict):
    """The pod's DNS configuration; defaults are what a Kubernetes pod gets (ClusterFirst)."""

    search: list[str] = Field(default_factory=lambda: list(K8S_SEARCH))
    ndots: int = Field(default=5, ge=0, le=15)
    timeout: int | None = Field(default=None, ge=1, le=30, description="resolv.conf options timeout:N")
    attempts: int | None = Field(default=None, ge=1, le=5, description="resolv.conf options attempts:N")
    options: list[str] = Field(default_factory=list, description="more resolv.conf options, verbatim")
    hosts: list[str] = Field(default_factory=list, description="extra /etc/hosts lines")
    nsswitch_hosts: str = Field(default="files dns", description="the sources of nsswitch.conf's hosts: line")
    env: dict[str, str] = Field(default_factory=dict, description="environment variables of the probe")

    @field_validator("search")
    @classmethod
    def _search_domains(cls, value: list[str]) -> list[str]:
        for domain in value:
            if not all(_LABEL.match(label) for label in domain.rstrip(".").split(".")):
                raise ValueError(f"{domain!r} is not a domain name")
        return value


class Workload(_Strict):
    """One kind of lookup the load repeats; `{rand}` in the name makes every lookup's name distinct."""

    label: str = Field(min_length=1, max_length=40)
    query: str = Field(min_length=1, max_length=253)
    kind: Literal["host", "ip", "ip4", "ip6", "cname", "srv", "txt", "mx", "ns", "ptr"] = "host"
    weight: int = Field(default=1, ge=1, le=1000)

    @field_validator("query")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        unknown = sorted(set(_TEMPLATE.findall(value)) - {"rand", "seq"})
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}; use {{rand}} or {{seq}}")
        return value


class Load(_Strict):
    users: int = Field(default=4, ge=1, le=1000, description="Locust users, each sending batches")
    duration: float = Field(default=10.0, gt=0, le=24 * 3600, description="seconds of load per mode")
    quick_duration: float = Field(default=3.0, gt=0, le=600, description="seconds per mode with --quick")
    batch: int = Field(default=25, ge=1, le=10_000, description="lookups per request to the probe")
    concurrency: int = Field(default=8, ge=1, le=10_000, description="lookups in flight per batch")
    timeout_ms: int = Field(default=30_000, ge=100, le=600_000, description="give up on one lookup")
    workloads: list[Workload] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_labels(self) -> Load:
        labels = [w.label for w in self.workloads]
        for label in labels:
            if labels.count(label) > 1:
                raise ValueError(f"workload label {label!r} is used twice")
        return self


class Nameserver(_Strict):
    kind: Literal["embedded"] = "embedded"
    zone: str = Field(min_length=1, description="records in DNS master-file syntax, absolute names")


class Expect(_Strict):
    """SLO gates: a run whose figures break one exits 1."""

    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    max_p99_ms: float | None = Field(default=None, gt=0)


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    modes: list[str] = Field(default_factory=lambda: ["go", "cgo", "musl", "godebug-go", "godebug-cgo"])
    pod: Pod = Field(default_factory=Pod)
    nameserver: Nameserver
    load: Load
    expect: Expect = Field(default_factory=Expect)
    source: str = Field(default="", exclude=True)

    @field_validator("modes")
    @classmethod
    def _known_modes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one mode")
        for mode in value:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}; known modes: {', '.join(MODES)}")
        if len(set(value)) != len(value):
            raise ValueError("a mode is listed twice")
        return value

    def load_seconds(self, quick: bool) -> float:
        return min(self.load.quick_duration, self.load.duration) if quick else self.load.duration


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; raise ScenarioError naming the file and field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(path, "", "no such file (scenarios live in scenarios/*.toml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(path, "", f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, "", f"not valid TOML: {exc}") from None
    return parse_scenario(data, source=str(path))


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    if "source" in data:
        raise ScenarioError(source, "source", "unknown key")
    try:
        scenario = Scenario.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ScenarioError(source, *_describe(exc.errors()[0])) from None
    _check_zone(scenario, source)
    return scenario


def _check_zone(scenario: Scenario, source: str) -> None:
    from dnsprobe.errors import NameserverError
    from dnsprobe.nameserver.zone import Zone

    try:
        Zone.from_text(scenario.nameserver.zone, source="zone")
    except NameserverError as exc:
        raise ScenarioError(source, "nameserver.zone", str(exc)) from None


_TYPE_WORDS = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
}


def _describe(error: Any) -> tuple[str, str]:
    """Turn pydantic's first error into (dotted field, one-line message)."""
    loc = [str(part) for part in error["loc"]]
    field = ".".join(_toml_path(loc))
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        return field, "unknown key (check its spelling against scenarios/quickstart.toml)"
    if kind == "missing":
        return field, "required key is missing"
    if kind in _TYPE_WORDS:
        return field, f"expected {_TYPE_WORDS[kind]}, got {_show(given)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return field, f"{message} (got {_show(given)})" if kind != "value_error" else message


def _toml_path(loc: list[str]) -> list[str]:
    """pydantic puts list indexes and union branches in loc; keep what a person would write."""
    out: list[str] = []
    for part in loc:
        if part.isdigit() and out:
            out[-1] = f"{out[-1]}[{part}]"
        elif part in ("int", "float", "str", "list[str]", "function-after[_unique_labels(), Load]"):
            continue
        else:
            out.append(part)
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
