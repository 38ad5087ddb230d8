"""Scenario files: TOML in, a validated `Scenario` out.

A scenario says what to build (modes), what the pod looks like (resolv.conf, hosts, nsswitch.conf,
environment), what the nameserver serves (records in master-file syntax), and the load (users, duration,
workloads). Every mistake is reported as `FILE: field.path: what is wrong (what to do)`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dnsprobe import etcfiles
from dnsprobe.durations import parse_duration
from dnsprobe.errors import ScenarioError
from dnsprobe.modes import resolve_mode

if TYPE_CHECKING:
    from dnsprobe.overrides import Overrides

K8S_SEARCH = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
LOOKUP_KINDS = ("host", "ip", "ip4", "ip6", "cname", "srv", "txt", "mx", "ns", "ptr")
_TEMPLATE = re.compile(r"\{(\w+)\}")


def _each(check: etcfiles.Check, values: list[str] | None) -> list[str] | None:
    """Run one of `etcfiles`' grammar checks on every entry of a list: a pod file gets each verbatim."""
    for value in values or []:
        problem = check(value)
        if problem:
            raise ValueError(problem)
    return values


@dataclass(frozen=True)
class ImageSource:
    """Where an image root comes from: `image:REF` (the local engine) or `oci:PATH` (a tarball)."""

    kind: str  # "image" or "oci"
    ref: str

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.ref}"


def parse_rootfs(value: str) -> ImageSource | None:
    """`image:REF` / `oci:PATH` as an ImageSource; None for the built-in roots (host, scratch, musl,
    musl-libc6-compat). Raises ValueError with a sentence for anything else."""
    if value in ("host", "scratch", "musl", "musl-libc6-compat"):
        return None
    kind, sep, ref = value.partition(":")
    if sep and kind in ("image", "oci") and ref.strip():
        return ImageSource(kind, ref.strip())
    raise ValueError(
        f"{value!r} is not a root file system; use host, scratch, musl, musl-libc6-compat, "
        "image:REF (a local Docker image) "
        "or oci:PATH.tar (a `docker save` or OCI layout tarball)"
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ResolvChange(_Strict):
    """`[[pod.changes]]`: rewrite the pod's resolv.conf (or, with `nsswitch_hosts`, its nsswitch.conf)
    `at_s` seconds into each mode's load."""

    at_s: float = Field(gt=0, le=24 * 3600)
    search: list[str] | None = None
    ndots: int | None = Field(default=None, ge=0, le=15)
    timeout: int | None = Field(default=None, ge=1, le=30)
    attempts: int | None = Field(default=None, ge=1, le=5)
    options: list[str] | None = None
    nsswitch_hosts: str | None = Field(
        default=None, description="the new sources of nsswitch.conf's hosts: line (rewrites nsswitch.conf)"
    )

    @field_validator("nsswitch_hosts")
    @classmethod
    def _nsswitch_sources(cls, value: str | None) -> str | None:
        problem = None if value is None else etcfiles.check_nsswitch_sources(value)
        if problem:
            raise ValueError(problem)
        return value

    @property
    def touches_resolv_conf(self) -> bool:
        return any(getattr(self, key) is not None for key in RESOLV_CHANGE_KEYS)

    @property
    def touches_nsswitch(self) -> bool:
        return self.nsswitch_hosts is not None

    @field_validator("options")
    @classmethod
    def _option_tokens(cls, value: list[str] | None) -> list[str] | None:
        return _each(etcfiles.check_option, value)

    @field_validator("search")
    @classmethod
    def _search_domains(cls, value: list[str] | None) -> list[str] | None:
        return _each(etcfiles.check_domain, value)


RESOLV_CHANGE_KEYS = ("search", "ndots", "timeout", "attempts", "options")
# [pod] resolv_conf: what the probe finds at /etc/resolv.conf (dnsprobe.sandbox.pod documents each).
RESOLV_CONF_STATES = ("present", "missing", "unreadable")


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
    nofile: int | None = Field(default=None, ge=16, le=1_048_576, description="the probe's open-file limit")
    port_range: list[int] | None = Field(
        default=None, description="ip_local_port_range in the pod's network namespace, e.g. [40000, 40063]"
    )
    changes: list[ResolvChange] = Field(
        default_factory=list, description="resolv.conf (or nsswitch.conf) edits during the load"
    )
    resolv_conf: Literal["present", "missing", "unreadable"] = Field(
        default="present",
        description="present: the rendered file; missing: no /etc/resolv.conf in the pod (local backend); "
        "unreadable: there, mode 000, and the probe runs without CAP_DAC_OVERRIDE (open fails with EACCES)",
    )
    rootfs: str = Field(
        default="host",
        description="the probe's root file system: the host's, an empty one like scratch, one with "
        "musl's loader like alpine (musl-libc6-compat: plus libc6-compat's glibc names), or an image's "
        "own: image:REF (local engine) or oci:PATH.tar",
    )
    # A Kubernetes manifest instead of a hand-written pod: the kubelet's resolv.conf, hosts and DNS env.
    manifest: str | None = Field(
        default=None, description="a Pod, Deployment, ... (YAML; relative to the scenario file)"
    )
    container: str | None = Field(default=None, description="manifest: the container (default: the first)")
    namespace: str | None = Field(default=None, description="manifest: the namespace (default: its own)")
    cluster_domain: str = Field(
        default="cluster.local", description="manifest: the kubelet's --cluster-domain"
    )
    cluster_dns: list[str] = Field(
        default_factory=lambda: ["10.96.0.10"], description="manifest: the kubelet's --cluster-dns"
    )
    node_resolv_conf: str | None = Field(
        default=None, description="manifest: the node's resolv.conf (relative; default: a fixed sample)"
    )

    @model_validator(mode="after")
    def _manifest_or_by_hand(self) -> Pod:
        given = self.model_fields_set
        if self.manifest is None:
            needs = sorted(
                given & {"container", "namespace", "cluster_domain", "cluster_dns", "node_resolv_conf"}
            )
            if needs:
                raise ValueError(f"{needs[0]} only applies with manifest (a Kubernetes manifest)")
            return self
        clash = sorted(given & {"search", "ndots", "timeout", "attempts", "options", "hosts", "changes"})
        if clash:
            raise ValueError(
                f"{clash[0]} comes from the manifest (its dnsPolicy, dnsConfig, hostAliases); remove "
                f"{clash[0]} or the manifest"
            )
        return self

    @model_validator(mode="after")
    def _changes_fit_resolv_conf(self) -> Pod:
        if self.resolv_conf != "present":
            for number, change in enumerate(self.changes, 1):
                if change.touches_resolv_conf:
                    raise ValueError(
                        f"changes[{number}] edits resolv.conf, which is {self.resolv_conf} in this pod "
                        "(resolv_conf = 'present', or change only nsswitch_hosts)"
                    )
        return self

    @field_validator("port_range")
    @classmethod
    def _port_range(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (len(value) != 2 or not 1024 <= value[0] <= value[1] <= 65535):
            raise ValueError(f"{value} is not a port range [low, high] within 1024..65535")
        return value

    @field_validator("rootfs")
    @classmethod
    def _rootfs(cls, value: str) -> str:
        parse_rootfs(value)  # ValueError with the accepted forms
        return value

    def changed(self, change: ResolvChange) -> Pod:
        """This pod with a resolv.conf change applied."""
        update = {k: v for k, v in change.model_dump(exclude={"at_s"}).items() if v is not None}
        return self.model_copy(update=update)

    @field_validator("search")
    @classmethod
    def _search_domains(cls, value: list[str]) -> list[str]:
        return _each(etcfiles.check_domain, value) or []

    @field_validator("options")
    @classmethod
    def _option_tokens(cls, value: list[str]) -> list[str]:
        return _each(etcfiles.check_option, value) or []

    @field_validator("hosts")
    @classmethod
    def _hosts_lines(cls, value: list[str]) -> list[str]:
        return _each(etcfiles.check_hosts_line, value) or []

    @field_validator("nsswitch_hosts")
    @classmethod
    def _nsswitch_sources(cls, value: str) -> str:
        problem = etcfiles.check_nsswitch_sources(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("env")
    @classmethod
    def _environment(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            problem = etcfiles.check_env_name(name) or etcfiles.check_env_value(name, text)
            if problem:
                raise ValueError(problem)
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
    batch: int = Field(default=200, ge=1, le=10_000, description="lookups per request to the probe")
    concurrency: int = Field(default=8, ge=1, le=10_000, description="lookups in flight per batch")
    timeout_ms: int = Field(default=30_000, ge=100, le=600_000, description="give up on one lookup")
    workloads: list[Workload] = Field(min_length=1)
    shape: Literal["steady", "ramp", "spike", "open"] = Field(
        default="steady",
        description="steady users; ramp from 1 to users; spike to spike_users in the middle third; "
        "open: a target rate of lookups, latency from each lookup's intended start",
    )
    ramp_seconds: float | None = Field(default=None, gt=0, description="ramp: seconds to reach users")
    spike_users: int | None = Field(default=None, ge=1, le=10_000, description="spike: users at the peak")
    rate: float | None = Field(default=None, gt=0, le=1e7, description="open: lookups per second, all users")
    processes: int = Field(
        default=0, ge=0, le=256, description="Locust processes (--processes); 0: a quarter of the cores"
    )
    keep_records: Literal["all", "failures", "sample"] = Field(
        default="all",
        description="records kept besides the per-second rollups: all, failures, or sample (failures and "
        "a bounded sample of the rest); for soak runs use sample",
    )
    querylog: Literal["auto", "tsv", "zstd"] = Field(
        default="auto",
        description="the nameserver's query log: tsv, or zstd (compressed while the run goes, disk "
        "bounded); auto: zstd unless keep_records = all",
    )

    @field_validator("duration", "quick_duration", mode="before")
    @classmethod
    def _duration_text(cls, value: Any) -> Any:
        """`duration = "30s"` (or "5m", "1h30m") as well as a number of seconds."""
        return parse_duration(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _unique_labels(self) -> Load:
        labels = [w.label for w in self.workloads]
        for label in labels:
            if labels.count(label) > 1:
                raise ValueError(f"workload label {label!r} is used twice")
        if (self.rate is None) != (self.shape != "open"):
            raise ValueError("shape = 'open' needs rate (lookups per second), and rate needs shape = 'open'")
        if self.ramp_seconds is not None and self.shape != "ramp":
            raise ValueError(f"ramp_seconds only applies to shape = 'ramp', not {self.shape!r}")
        if self.spike_users is not None and self.shape != "spike":
            raise ValueError(f"spike_users only applies to shape = 'spike', not {self.shape!r}")
        return self


FaultAction = Literal[
    "drop",
    "delay",
    "servfail",
    "refused",
    "nxdomain",
    "truncate",
    "oversize",
    "garbage",
    "wrong_id",
    "wrong_question",
    "tc_bit",
    "conntrack_race",
    "outage",
    "ratelimit",
    "formerr",
    "lame_nodata",
    "stale_flows",
    "uncompressed",
    "swap_replies",
]
FAULT_ACTIONS: tuple[str, ...] = get_args(FaultAction)
_GLOB = re.compile(r"[A-Za-z0-9_*?.\[\]!-]+")


class FaultRule(_Strict):
    """One `[[nameserver.faults]]` rule: which queries (name glob, type, protocol, time window, probability)
    get which fault. The first rule that matches a query applies; `dnsprobe.nameserver.faults` runs them."""

    action: FaultAction
    name: str = Field(default="*", min_length=1, max_length=255, description="glob on the query name")
    qtype: str | list[str] = Field(default="*", description="a type (AAAA), a list of types, or *")
    proto: Literal["any", "udp", "tcp"] = "any"
    edns: Literal["any", "present", "absent"] = Field(
        default="any", description="only queries with (present) or without (absent) an EDNS0 OPT record"
    )
    start_s: float = Field(default=0.0, ge=0, description="seconds after the server started")
    end_s: float | None = Field(default=None, gt=0, description="seconds after the server started")
    period_s: float | None = Field(default=None, gt=0, description="the window repeats every period_s")
    probability: float = Field(default=1.0, ge=0, le=1)
    delay_ms: float | None = Field(default=None, gt=0, le=600_000, description="action delay: the mean")
    jitter_ms: float = Field(default=0.0, ge=0, le=600_000, description="action delay: spread")
    distribution: Literal["fixed", "uniform", "normal", "exponential"] = "fixed"
    window_ms: float = Field(
        default=50.0,
        gt=0,
        le=60_000,
        description="conntrack_race: second packet; swap_replies: a first reply waits for its partner",
    )
    rate: float | None = Field(default=None, gt=0, description="ratelimit: answers per second")
    over: Literal["drop", "refused"] = Field(default="drop", description="ratelimit: beyond the rate")

    @field_validator("name")
    @classmethod
    def _name_glob(cls, value: str) -> str:
        if not _GLOB.fullmatch(value):
            raise ValueError(f"{value!r} is not a name glob (letters, digits, - _ . and * ? [ ] only)")
        return value

    @field_validator("qtype")
    @classmethod
    def _qtypes(cls, value: str | list[str]) -> str | list[str]:
        import dns.rdatatype

        for text in [value] if isinstance(value, str) else value:
            if text == "*":
                continue
            try:
                dns.rdatatype.from_text(text)
            except Exception:
                raise ValueError(f"unknown query type {text!r}; use A, AAAA, SRV, ... or *") from None
        return value

    @model_validator(mode="after")
    def _fits_the_action(self) -> FaultRule:
        action = self.action
        only = {"delay_ms": "delay", "rate": "ratelimit"}
        for key, owner in only.items():
            if getattr(self, key) is not None and action != owner:
                raise ValueError(f"{key} only applies to action = {owner!r}, not {action!r}")
        if self.jitter_ms and action != "delay":
            raise ValueError(f"jitter_ms only applies to action = 'delay', not {action!r}")
        if action == "delay":
            if self.delay_ms is None:
                raise ValueError("action = 'delay' needs delay_ms (the fixed or mean delay)")
            if self.distribution in ("uniform", "normal") and not self.jitter_ms:
                raise ValueError(f"distribution = {self.distribution!r} needs jitter_ms (its spread)")
        if action == "ratelimit" and self.rate is None:
            raise ValueError("action = 'ratelimit' needs rate (answers per second)")
        if action == "stale_flows" and (self.end_s is None or self.period_s is not None):
            raise ValueError(
                "action = 'stale_flows' needs start_s (the rollout) and end_s (when the stale entries "
                "expire), no period_s"
            )
        if action == "outage" and self.end_s is None and self.period_s is None:
            raise ValueError("action = 'outage' needs a window: end_s (and start_s, period_s)")
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s:g}) must be after start_s ({self.start_s:g})")
        if self.period_s is not None and self.period_s < (self.end_s or 0):
            raise ValueError(f"period_s ({self.period_s:g}) must be at least end_s ({self.end_s:g})")
        return self


class ServerRules(_Strict):
    """One of several embedded nameservers (127.0.0.1, 127.0.0.2, ... in resolv.conf order)."""

    @field_validator("gaps")
    @classmethod
    def _gap_windows(cls, value: list[list[float]]) -> list[list[float]]:
        last = 0.0
        for gap in value:
            if len(gap) != 2 or not last <= gap[0] < gap[1] <= 24 * 3600:
                raise ValueError(f"{gap} is not a gap [start_s, end_s] after the previous one")
            last = gap[1]
        return value

    faults: list[FaultRule] = Field(default_factory=list, description="tried before the shared rules")
    gaps: list[list[float]] = Field(
        default_factory=list,
        description="[start_s, end_s] windows (seconds after the server started) during which its UDP socket "
        "is closed (ICMP port unreachable), as while a node-local cache restarts",
    )
    listening: bool = Field(
        default=True,
        description="false: nothing listens at this address (ICMP port unreachable), like a loopback stub "
        "(127.0.0.53) leaked into a pod without systemd-resolved",
    )


class Nameserver(_Strict):
    kind: Literal["embedded", "dnsmasq", "unbound", "external"] = "embedded"
    zone: str = Field(default="", description="records in DNS master-file syntax, absolute names")
    faults: list[FaultRule] = Field(default_factory=list, description="rules for every embedded server")
    servers: list[ServerRules] = Field(
        default_factory=lambda: [ServerRules()], min_length=1, max_length=8, description="embedded servers"
    )
    address: str | None = Field(default=None, description="kind = 'external': the server's IP address")
    allow_non_loopback: bool = Field(default=False, description="kind = 'external' off loopback")
    engine: Literal["auto", "go", "python"] = Field(
        default="auto",
        description="embedded: 'go' (what 'auto' picks) or 'python', the reference; both apply fault rules",
    )
    fault_seed: int | None = Field(
        default=None,
        ge=0,
        lt=1 << 63,
        description="seed of the fault rules' random numbers; unset: a new one per run (in summary.json)",
    )

    @model_validator(mode="after")
    def _fits_the_kind(self) -> Nameserver:
        import ipaddress

        kind = self.kind
        if kind != "external" and not self.zone.strip():
            raise ValueError(f"kind = {kind!r} needs zone (records in master-file syntax)")
        if kind != "embedded" and self.has_faults:
            raise ValueError(f"faults need kind = 'embedded' ({kind} cannot inject them)")
        if kind != "embedded" and self.engine != "auto":
            raise ValueError(f"engine only applies to kind = 'embedded', not {kind!r}")
        if kind != "embedded" and len(self.servers) > 1:
            raise ValueError(f"several servers need kind = 'embedded', not {kind!r}")
        if kind == "external":
            if self.address is None:
                raise ValueError("kind = 'external' needs address (the nameserver's IP, e.g. 127.0.0.53)")
            problem = etcfiles.check_address(self.address)
            if problem:
                raise ValueError(problem)
            ip = ipaddress.ip_address(self.address.partition("%")[0])
            if not ip.is_loopback and not self.allow_non_loopback:
                raise ValueError(
                    f"address {self.address} is not on loopback; load goes to loopback only unless "
                    "allow_non_loopback = true in [nameserver] says the server is yours"
                )
        elif self.address is not None:
            raise ValueError(f"address only applies to kind = 'external', not {kind!r}")
        return self

    @property
    def has_faults(self) -> bool:
        return bool(self.faults) or any(server.faults for server in self.servers)


class ModeExpect(_Strict):
    """`[expect.modes.<mode>]`: gates for one mode, overriding the run-wide ones."""

    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    max_p99_ms: float | None = Field(default=None, gt=0)


class Expect(_Strict):
    """SLO gates: a run whose figures break one exits 1 (and the run's junit.xml has a failing case)."""

    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    max_p99_ms: float | None = Field(default=None, gt=0)
    modes: dict[str, ModeExpect] = Field(default_factory=dict, description="per-mode gates")

    def gates(self, mode: str) -> ModeExpect:
        """The gates that apply to `mode`: its own where set, else the run-wide ones."""
        own = self.modes.get(mode)
        return ModeExpect(
            max_error_rate=own.max_error_rate
            if own and own.max_error_rate is not None
            else self.max_error_rate,
            max_p99_ms=own.max_p99_ms if own and own.max_p99_ms is not None else self.max_p99_ms,
        )


class Behaviour(_Strict):
    """`[[behaviour]]`: what the modes named here are documented to do in this scenario (the catalog's
    checks). Every bound is optional; bands are [low, high] and inclusive."""

    modes: list[str] = Field(min_length=1)
    workload: str | None = Field(default=None, description="one workload's figures instead of the mode's")
    resolver: Literal["go", "cgo", "mixed"] | None = Field(
        default=None, description="go, cgo, or mixed (some lookups each way, as after an nsswitch change)"
    )
    outcome: str | None = Field(default=None, description="the outcome class most lookups must have")
    min_share: float = Field(default=0.9, gt=0, le=1, description="share of lookups with that outcome")
    p50_ms: list[float] | None = Field(default=None, description="band for the median latency")
    p99_ms: list[float] | None = Field(default=None, description="band for the p99 latency")
    wire_queries_per_lookup: list[float] | None = None
    search_walk_after_change_s: list[float] | None = Field(
        default=None,
        description="band for the seconds after the first [[pod.changes]] until the last search-list query",
    )
    status: Literal["ran", "start_failure"] | None = None
    peak_threads: list[float] | None = Field(
        default=None, description="band for the most OS threads the probe had during the load"
    )
    start_error: str | None = Field(
        default=None, min_length=1, description="text the start failure's message must contain"
    )
    why: str = Field(default="", description="the documented behaviour, in a sentence")

    go_queries_after_change_s: list[float] | None = Field(
        default=None,
        description="band for the seconds after the first [[pod.changes]] until the last query of Go's "
        "own resolver (one with an EDNS0 OPT record)",
    )

    @field_validator(
        "p50_ms",
        "p99_ms",
        "wire_queries_per_lookup",
        "search_walk_after_change_s",
        "go_queries_after_change_s",
        "peak_threads",
    )
    @classmethod
    def _band(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) != 2 or not 0 <= value[0] <= value[1]):
            raise ValueError(f"{value} is not a band [low, high]")
        return value

    @field_validator("outcome")
    @classmethod
    def _outcome(cls, value: str | None) -> str | None:
        from dnsprobe.vocabulary import OUTCOMES

        if value is not None and value not in OUTCOMES:
            raise ValueError(f"unknown outcome class {value!r}; one of {', '.join(OUTCOMES)}")
        return value


class FailureMode(_Strict):
    """`[failure_mode]`: which known DNS failure mode a catalog scenario reproduces, for the report."""

    number: int = Field(ge=1, le=99)
    title: str = Field(min_length=1)
    explanation: str = Field(min_length=1, description="what happens and why, for the on-call engineer")
    remedy: str = Field(default="", description="what to change")


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    modes: list[str] = Field(default_factory=lambda: ["go", "cgo", "musl", "godebug-go", "godebug-cgo"])
    pod: Pod = Field(default_factory=Pod)
    nameserver: Nameserver
    load: Load
    expect: Expect = Field(default_factory=Expect)
    behaviour: list[Behaviour] = Field(default_factory=list)
    failure_mode: FailureMode | None = None
    backend: Literal["local", "docker"] = Field(
        default="local",
        description="local: namespaced pods on this host; docker: each mode in real containers, once per "
        "base image (offline stand-ins when no registry is reachable)",
    )
    base_images: list[str] = Field(
        default_factory=lambda: ["scratch", "distroless-static", "distroless-base", "alpine", "debian-slim"],
        description="the docker backend's runtime base images (the matrix is modes x base_images)",
    )
    source: str = Field(default="", exclude=True)

    @field_validator("base_images")
    @classmethod
    def _known_bases(cls, value: list[str]) -> list[str]:
        from dnsprobe.binary.bases import BASES

        if not value:
            raise ValueError("name at least one base image")
        for base in value:
            if base not in BASES:
                raise ValueError(f"unknown base image {base!r}; known: {', '.join(BASES)}")
        if len(set(value)) != len(value):
            raise ValueError("a base image is listed twice")
        return value

    @model_validator(mode="after")
    def _behaviour_refers_to_the_scenario(self) -> Scenario:
        labels = {w.label for w in self.load.workloads}
        for behaviour in self.behaviour:
            for mode in behaviour.modes:
                if mode not in self.modes:
                    raise ValueError(f"behaviour names mode {mode!r}, which is not in modes")
            if behaviour.workload is not None and behaviour.workload not in labels:
                raise ValueError(f"behaviour names workload {behaviour.workload!r}, which is not in load")
        return self

    @field_validator("modes")
    @classmethod
    def _known_modes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one mode")
        for mode in value:
            try:
                resolve_mode(mode)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
        if len(set(value)) != len(value):
            raise ValueError("a mode is listed twice")
        return value

    @model_validator(mode="after")
    def _resolv_conf_state_on_the_backend(self) -> Scenario:
        if self.backend == "docker" and self.pod.resolv_conf == "missing":
            raise ValueError(
                "pod.resolv_conf = 'missing' needs backend = 'local' (docker always writes the "
                "container's resolv.conf)"
            )
        if self.nameserver.kind == "external" and self.pod.resolv_conf != "present":
            raise ValueError(
                f"pod.resolv_conf = {self.pod.resolv_conf!r} needs a nameserver the pod starts (kind "
                "'embedded', 'dnsmasq' or 'unbound'): without the file the resolvers ask 127.0.0.1:53, "
                "which must be the pod's own loopback, not the host's"
            )
        return self

    @model_validator(mode="after")
    def _gated_modes_run(self) -> Scenario:
        for mode in self.expect.modes:
            if mode not in self.modes:
                raise ValueError(f"expect.modes.{mode}: {mode!r} is not in modes ({', '.join(self.modes)})")
        return self

    def load_seconds(self, quick: bool) -> float:
        return min(self.load.quick_duration, self.load.duration) if quick else self.load.duration


def load_scenario(path: Path, overrides: Overrides | None = None) -> Scenario:
    """Read and validate a scenario file, with the command line's overrides applied first; raise
    ScenarioError naming the file and field."""
    from dnsprobe.files_io import read_text_limited

    try:
        data = tomllib.loads(read_text_limited(path, "scenario"))
    except FileNotFoundError:
        raise ScenarioError(
            path, "", "no such file (`dnsprobe scenarios` lists the bundled scenarios)"
        ) from None
    except IsADirectoryError:
        raise ScenarioError(path, "", "is a directory; give a scenario file (scenarios/*.toml)") from None
    except OSError as exc:
        raise ScenarioError(path, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(path, "", f"not UTF-8 text (byte {exc.start}); a scenario is TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, "", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(path, "", "not valid TOML: nested too deeply") from None
    if overrides:
        data = overrides.apply(data)
    return parse_scenario(data, source=str(path))


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    if "source" in data:
        raise ScenarioError(source, "source", "unknown key")
    try:
        scenario = Scenario.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ScenarioError(source, *_describe(exc.errors()[0])) from None
    _check_zone(scenario, source)
    return _with_manifest(scenario, source)


def _check_zone(scenario: Scenario, source: str) -> None:
    from dnsprobe.codec.zone import Zone
    from dnsprobe.errors import NameserverError

    if scenario.nameserver.kind == "external":
        return
    try:
        zone = Zone.from_text(scenario.nameserver.zone, source="zone")
    except NameserverError as exc:
        raise ScenarioError(source, "nameserver.zone", str(exc)) from None
    if scenario.nameserver.kind == "dnsmasq":
        _check_dnsmasq_text(zone, source)


def _check_dnsmasq_text(zone: Any, source: str) -> None:
    """dnsmasq.conf gets TXT strings verbatim between quotes: a newline or quote would be a line of its
    own (a `server=` line, say), so kind = 'dnsmasq' takes printable TXT strings only."""
    import dns.rdatatype

    for rrset in zone.rrsets():
        if rrset.rdtype != dns.rdatatype.TXT:
            continue
        for rdata in rrset:
            for text in rdata.strings:
                if any(byte < 0x20 or byte > 0x7E or byte in b'"\\' for byte in text):
                    raise ScenarioError(
                        source,
                        "nameserver.zone",
                        f"TXT of {rrset.name}: {text!r} has a control character, quote or backslash, "
                        "which dnsmasq's configuration cannot hold (use kind = 'embedded' for such text)",
                    )


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
        elif part in ("int", "float", "str", "list[str]") or part.startswith("function-"):
            continue
        else:
            out.append(part)
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _with_manifest(scenario: Scenario, source: str) -> Scenario:
    """`[pod] manifest`: paths made absolute, the pod's search list, options and DNS env taken from what
    the kubelet would write (dnsprobe.kube)."""
    pod = scenario.pod
    if pod.manifest is None:
        return scenario
    from dnsprobe.errors import ManifestError
    from dnsprobe.kube.kubelet import render_pod_manifest

    if scenario.backend != "local":
        raise ScenarioError(source, "pod.manifest", "runs on the local backend only (remove backend)")
    if scenario.nameserver.kind != "embedded":
        raise ScenarioError(
            source,
            "pod.manifest",
            "needs kind = 'embedded' (its nameserver listens on the cluster DNS address)",
        )
    base = Path(source).parent
    paths = {
        key: str(base / value) for key in ("manifest", "node_resolv_conf") if (value := getattr(pod, key))
    }
    pod = pod.model_copy(update=paths)
    try:
        rendered = render_pod_manifest(
            Path(str(pod.manifest)),
            container=pod.container,
            namespace=pod.namespace,
            cluster_domain=pod.cluster_domain,
            cluster_dns=list(pod.cluster_dns),
            node_resolv_conf=Path(pod.node_resolv_conf) if pod.node_resolv_conf else None,
        )
    except ManifestError as exc:
        raise ScenarioError(source, "pod.manifest", str(exc)) from None
    servers = len(scenario.nameserver.servers)
    if servers > len(rendered.nameservers):
        raise ScenarioError(
            source,
            "nameserver.servers",
            f"{servers} servers, but the manifest's pod has {len(rendered.nameservers)} nameserver(s) "
            f"({', '.join(rendered.nameservers) or 'none'}); list at most that many",
        )
    options = list(rendered.dns.options)
    values = {name: value for name, _, value in (option.partition(":") for option in options)}
    update: dict[str, Any] = {
        "search": list(rendered.dns.searches),
        "ndots": int(values["ndots"]) if values.get("ndots", "").isdigit() else 1,  # Go's default: 1
        "timeout": int(values["timeout"]) if values.get("timeout", "").isdigit() else None,
        "attempts": int(values["attempts"]) if values.get("attempts", "").isdigit() else None,
        "options": [o for o in options if o.partition(":")[0] not in ("ndots", "timeout", "attempts")],
        "env": {**rendered.env, **pod.env},  # [pod] env overrides the manifest's
    }
    return scenario.model_copy(update={"pod": pod.model_copy(update=update)})
