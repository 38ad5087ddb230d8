"""dnsmasq and unbound as the pod's nameserver, configured from the scenario's records: a real Go probe
resolves through each, and neither has anywhere to forward to."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

import dns.message
import dns.query
import dns.rcode
import pytest

from dnsprobe.build.probe import build_probe
from dnsprobe.codec.zone import Zone
from dnsprobe.errors import NameserverError
from dnsprobe.modes import MODES
from dnsprobe.nameserver.group import server_addresses
from dnsprobe.nameserver.real import RealServer
from dnsprobe.probe_client import LookupResult, ProbeClient
from dnsprobe.sandbox import Pod, render_pod_files
from dnsprobe.scenario import Nameserver as NameserverSpec
from dnsprobe.scenario import Pod as PodSpec

pytestmark = pytest.mark.tools

ZONE = (
    "$TTL 30\n"
    "example.test. SOA ns.example.test. h.example.test. 1 7200 1800 86400 30\n"
    "*.api.example.test. A 192.0.2.10\n"
    "*.api.example.test. AAAA 2001:db8::10\n"
    "web.example.test. A 192.0.2.20\n"
    "_http._tcp.web.example.test. SRV 0 5 80 web.example.test.\n"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", ["dnsmasq", "unbound"])
def test_real_server_on_loopback(kind: str, tmp_path: Path) -> None:
    with RealServer(kind, Zone.from_text(ZONE), tmp_path, port=free_port()) as server:

        def ask(name: str, rdtype: str) -> dns.message.Message:
            query = dns.message.make_query(name, rdtype)
            return dns.query.udp(query, server.address, port=server.port, timeout=2)

        assert ask("x.api.example.test.", "A").answer[0][0].to_text() == "192.0.2.10"
        assert ask("x.api.example.test.", "AAAA").answer[0][0].to_text() == "2001:db8::10"
        assert ask("_http._tcp.web.example.test.", "SRV").answer[0][0].port == 80
        assert ask("missing.example.test.", "A").rcode() == dns.rcode.NXDOMAIN
        # nothing is forwarded: a name outside the records is answered locally, at once
        assert ask("www.example.invalid.", "A").rcode() in (dns.rcode.NXDOMAIN, dns.rcode.REFUSED)
    config = (tmp_path / f"{kind}.conf").read_text()
    assert "server=" not in config and "forward-zone" not in config


def go_lookups(spec: NameserverSpec, tmp_path: Path, probe_cache: Path, count: int) -> list[LookupResult]:
    """`count` lookups of fresh external names by a go-mode probe in a pod using `spec`'s nameserver."""
    files = render_pod_files(
        PodSpec(search=[], ndots=1, timeout=1, attempts=2), hostname="p", nameservers=server_addresses(spec)
    )
    pod = Pod(
        mode="go",
        binary=build_probe(MODES["go"], cache_dir=probe_cache).path,
        files=files,
        zone_text=ZONE,
        workdir=tmp_path / "pod",
        socket_dir=tmp_path,
        godebug="netdns=go+1",
        nameserver=spec,
    )
    with pod:
        client = ProbeClient(pod.address)
        results = client.batch(
            kind="host", name="{rand}.api.example.test.", count=count, concurrency=2, timeout_ms=5000
        )
        client.close()
    return results


@pytest.mark.parametrize("kind", ["dnsmasq", "unbound"])
def test_go_probe_resolves_through_a_real_server_in_its_pod(
    kind: Literal["dnsmasq", "unbound"], tmp_path: Path, probe_cache: Path
) -> None:
    spec = NameserverSpec(kind=kind, zone=ZONE)
    results = go_lookups(spec, tmp_path, probe_cache, 3)
    assert [(r.outcome, r.answers) for r in results] == [("ok", 2)] * 3
    assert (tmp_path / "pod" / f"{kind}.conf").exists()


def test_go_probe_uses_an_external_server_on_loopback(tmp_path: Path, probe_cache: Path) -> None:
    """kind = "external": dnsprobe starts nothing and the pod shares the host's network namespace, so the
    address must answer on port 53 there. Our own server on 127.0.0.77:53 plays the existing one; its
    query log must hold every name the probe looked up (and nothing else reached it)."""
    from dnsprobe.nameserver import NameserverThread, read_querylog

    if os.geteuid() != 0:
        pytest.skip("port 53 on the host's loopback needs root (CI runs as root)")
    querylog = tmp_path / "external.tsv"
    try:
        existing = NameserverThread(Zone.from_text(ZONE), [("127.0.0.77", 53)], querylog)
        existing.start()
    except NameserverError as exc:
        pytest.skip(f"127.0.0.77:53 is not free here: {exc}")
    spec = NameserverSpec(kind="external", address="127.0.0.77")
    try:
        results = go_lookups(spec, tmp_path, probe_cache, 4)
    finally:
        existing.stop()
    assert [(r.outcome, r.answers) for r in results] == [("ok", 2)] * 4
    with querylog.open() as lines:
        asked = {entry.qname.lower() for entry in read_querylog(lines)}
    assert asked == {r.name.lower() for r in results}
