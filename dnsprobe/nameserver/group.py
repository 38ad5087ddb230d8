"""The nameservers of one pod, as the scenario's `[nameserver]` describes them.

- `embedded`: one server per `[[nameserver.servers]]` on 127.0.0.1, 127.0.0.2, ... (all of 127.0.0.0/8 is
  the loopback interface), each with its own fault rules followed by the shared ones, all writing one
  query log (wire queries per lookup count every server). One Go engine process serves them all
  (`goengine`), fault rules included, unless the scenario asks for the Python engine (one asyncio server
  each); either way the `index`-th server draws its random numbers from `server_seed(fault_seed, index)`;
- `dnsmasq` / `unbound`: the real server on 127.0.0.1:53, configured from the same records;
- `external`: nothing to start; the pod shares the host's network namespace and its resolv.conf names
  the address.

A pod rendered from a Kubernetes manifest names the cluster's nameservers (10.96.0.10): `group_spec`
gets those `addresses`, server i keeping `[[nameserver.servers]]` i's rules, and `ServerGroup.start`
adds each address that is not loopback to the pod's own loopback interface first
(`dnsprobe.nameserver.podnet`, which refuses any namespace with another interface), then lets the servers
listen there: allowed off loopback only because the address exists in that namespace alone.

`group_spec` turns the scenario model into the JSON the pod's init process reads; `ServerGroup` starts
and stops what it says, inside the pod.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dnsprobe.codec.zone import Zone
from dnsprobe.errors import NameserverError
from dnsprobe.nameserver.faults import new_seed, policy_for, server_seed
from dnsprobe.nameserver.goengine import GoNameserver, engine_for, go_engine_binary
from dnsprobe.nameserver.pcap import PacketLog
from dnsprobe.nameserver.podnet import add_pod_address, is_pod_address
from dnsprobe.nameserver.querylog import QueryLog
from dnsprobe.nameserver.real import RealServer
from dnsprobe.nameserver.server import Endpoint, Nameserver, serve_forever
from dnsprobe.scenario import FaultRule, Scenario
from dnsprobe.scenario import Nameserver as NameserverSpec

__all__ = [
    "ServerGroup",
    "group_spec",
    "nameserver_engine",
    "serve_engine",
    "serve_scenario",
    "server_addresses",
    "with_fault_seed",
]

PORT = 53
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def server_addresses(spec: NameserverSpec | None) -> list[str]:
    """The pod's resolv.conf nameserver lines, in order."""
    if spec is None:
        return ["127.0.0.1"]
    if spec.kind == "external":
        assert spec.address is not None  # the scenario model requires it
        return [spec.address]
    if spec.kind == "embedded":
        return [f"127.0.0.{index + 1}" for index in range(len(spec.servers))]
    return ["127.0.0.1"]


def with_fault_seed(scenario: Scenario) -> Scenario:
    """The scenario with its nameserver's `fault_seed` set (a new one when unset and fault rules exist),
    so every mode's servers draw the same numbers and the run reports the seed that replays it."""
    spec = scenario.nameserver
    if spec.kind != "embedded" or not spec.has_faults or spec.fault_seed is not None:
        return scenario
    return scenario.model_copy(update={"nameserver": spec.model_copy(update={"fault_seed": new_seed()})})


def group_spec(
    spec: NameserverSpec | None,
    *,
    zone_file: Path,
    querylog: Path,
    workdir: Path,
    cache_dir: Path | None = None,
    addresses: list[str] | None = None,
) -> dict[str, Any]:
    """The JSON-able description of the pod's servers (None: one embedded server, no faults). The Go
    engine's binary is built here, outside the pod, when the servers use it (`cache_dir` keeps it).
    `addresses`: where embedded servers listen instead of 127.0.0.1, ... (a manifest's nameservers);
    one not on loopback is marked `pod_address`, to be added to the pod's loopback."""
    kind = "embedded" if spec is None else spec.kind
    if addresses is None or kind != "embedded":
        addresses = server_addresses(spec)
    listen: list[dict[str, Any]] = []
    for index, address in enumerate(addresses):
        rules: list[FaultRule] = []
        if spec is not None and kind == "embedded":
            own = spec.servers[index].faults if index < len(spec.servers) else []
            rules = [*own, *spec.faults]
        listen.append(
            {
                "address": address,
                "port": PORT,
                "faults": [r.model_dump() for r in rules],
                "pod_address": is_pod_address(address),
                "listening": spec is None or index >= len(spec.servers) or spec.servers[index].listening,
                "gaps": [] if spec is None or index >= len(spec.servers) else spec.servers[index].gaps,
            }
        )
    engine = nameserver_engine(spec)
    go_binary = str(go_engine_binary(cache_dir)) if engine == "go" else None
    seed = spec.fault_seed if spec is not None and spec.fault_seed is not None else new_seed()
    return {
        "kind": kind,
        "engine": engine,
        "go_binary": go_binary,
        "fault_seed": seed,
        "zone_file": str(zone_file),
        "querylog": str(querylog),
        "workdir": str(workdir),
        "listen": listen,
    }


def nameserver_engine(spec: NameserverSpec | None) -> str | None:
    """The engine the pod's embedded servers run on (`go` or `python`), None for a real or external one."""
    if spec is not None and spec.kind != "embedded":
        return None
    return engine_for("auto" if spec is None else spec.engine, spec is not None and spec.has_faults)


class ServerGroup:
    """Starts (inside the pod) the servers a `group_spec` describes."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.kind: str = spec["kind"]
        self._spec = spec
        self._servers: list[Nameserver] = []
        self._real: RealServer | None = None
        self._go: GoNameserver | None = None
        self._log: QueryLog | None = None
        self._packets: PacketLog | None = None

    @property
    def host_network(self) -> bool:
        return self.kind == "external"

    async def start(self) -> None:
        spec = self._spec
        if self.kind == "external":
            return
        zone_file = spec["zone_file"]
        zone = Zone.from_text(Path(zone_file).read_text(encoding="utf-8"), source=zone_file)
        for listen in spec["listen"]:
            if listen.get("pod_address"):
                add_pod_address(listen["address"])  # refuses unless this namespace has only lo
        # Off loopback only for the addresses just added to this namespace's own loopback.
        off_loopback = any(listen.get("pod_address") for listen in spec["listen"])
        if self.kind != "embedded":
            first = spec["listen"][0]
            self._real = RealServer(self.kind, zone, Path(spec["workdir"]), first["address"], first["port"])
            await asyncio.get_running_loop().run_in_executor(None, self._real.start)
            return
        listening = [listen for listen in spec["listen"] if listen.get("listening", True)]
        if not listening:  # every address unanswered: the pod's queries meet closed ports
            QueryLog(Path(spec["querylog"])).close()  # an empty query log (its header)
            return
        if spec.get("engine") == "go":
            # Started from this (the main) thread: the Go process is told to exit when it ends.
            addresses = [(listen["address"], listen["port"]) for listen in listening]
            faults = [[FaultRule.model_validate(r) for r in listen["faults"]] for listen in listening]
            packets = Path(spec["packets"]) if spec.get("packets") else None  # --pcap
            self._go = GoNameserver(
                zone,
                addresses,
                Path(spec["querylog"]),
                binary=Path(spec["go_binary"]),
                allow_non_loopback=off_loopback,
                faults=faults,
                seed=spec.get("fault_seed", 0),
                packets=packets,
                gaps=[listen.get("gaps") or [] for listen in listening],
            )
            self._go.start()
            return
        self._log = QueryLog(Path(spec["querylog"]))
        if spec.get("packets"):  # --pcap: the raw side log the harness turns into dns.pcap
            self._packets = PacketLog(Path(spec["packets"]))
        policies = []
        try:
            for index, listen in enumerate(spec["listen"]):
                if not listen.get("listening", True):
                    continue
                rules = [FaultRule.model_validate(rule) for rule in listen["faults"]]
                policy = policy_for(rules, seed=server_seed(spec.get("fault_seed", 0), index))
                server = Nameserver(
                    zone,
                    [(listen["address"], listen["port"])],
                    self._log,
                    policy=policy,
                    allow_non_loopback=bool(listen.get("pod_address")),
                    packets=self._packets,
                    gaps=listen.get("gaps") or [],
                )
                await server.start()
                self._servers.append(server)
                if policy is not None:
                    policies.append(policy)
        except BaseException:
            await self.stop()
            raise
        for policy in policies:
            policy.restart_clock()  # time windows count from the moment every server answers

    def dead(self) -> str | None:
        """What died, for a server that runs in a process of its own (the Go engine, dnsmasq, unbound)
        and has exited although nobody stopped it; None while they all run. The pod's init watches this."""
        go = self._go._process if self._go is not None else None
        real = self._real._process if self._real is not None else None
        for what, process in (("the Go nameserver engine", go), (self.kind, real)):
            code = process.poll() if process is not None else None
            if code is not None:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                return f"{what} (pid {process.pid}) {how}"  # type: ignore[union-attr]
        return None

    async def stop(self) -> None:
        for server in self._servers:
            await server.stop()
        self._servers.clear()
        if self._go is not None:
            self._go.stop()
            self._go = None
        if self._real is not None:
            self._real.stop()
            self._real = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._packets is not None:
            self._packets.close()
            self._packets = None


def serve_scenario(
    spec: NameserverSpec,
    *,
    address: str = "127.0.0.1",
    port: int = 5353,
    allow_non_loopback: bool = False,
    querylog: Path | None = None,
    engine: str | None = None,
    on_ready: Callable[[list[Endpoint]], None] | None = None,
) -> None:
    """`dnsprobe serve`: the scenario's first embedded server (records and fault rules) on address:port,
    UDP and TCP, until SIGINT or SIGTERM. `engine` overrides the scenario's."""
    if spec.kind != "embedded":
        raise NameserverError(
            f"serve runs the embedded nameserver; this scenario's kind is {spec.kind!r} "
            "(set kind = 'embedded', or run that server yourself)"
        )
    if not allow_non_loopback and not _is_loopback(address):
        raise NameserverError(
            f"refusing to serve on {address}: not a loopback address; pass --allow-non-loopback if this "
            "network is yours to test on"
        )
    zone = Zone.from_text(spec.zone, source="nameserver.zone")
    rules = [*spec.servers[0].faults, *spec.faults]
    seed = spec.fault_seed if spec.fault_seed is not None else new_seed()
    if serve_engine(spec, engine) == "go":
        _serve_go(zone, address, port, allow_non_loopback, querylog, on_ready, rules, seed)
        return
    policy = policy_for(rules, seed=server_seed(seed, 0))
    serve_forever(
        zone,
        [(address, port)],
        querylog,
        allow_non_loopback=allow_non_loopback,
        policy=policy,
        on_ready=on_ready,
    )


def serve_engine(spec: NameserverSpec, engine: str | None = None) -> str:
    """The engine `serve_scenario` runs: `engine`, else the scenario's, for its first server's rules."""
    return engine_for(engine or spec.engine, bool(spec.servers[0].faults or spec.faults))


def _serve_go(
    zone: Zone,
    address: str,
    port: int,
    allow_non_loopback: bool,
    querylog: Path | None,
    on_ready: Callable[[list[Endpoint]], None] | None,
    rules: list[FaultRule],
    seed: int,
) -> None:
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in _STOP_SIGNALS}
    server = GoNameserver(
        zone, [(address, port)], querylog, allow_non_loopback=allow_non_loopback, faults=[rules], seed=seed
    )
    try:
        with server:
            if on_ready is not None:
                on_ready(server.endpoints)
            while not stop.wait(0.5) and server.running:
                pass  # a Go engine that died is reported by stop(), with its last words
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return True  # not an address at all: the server's own check says so
