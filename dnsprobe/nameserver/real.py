"""Real nameservers for comparison: dnsmasq and unbound, configured from the scenario's records.

Both serve the records locally and never ask anyone else: dnsmasq gets `no-resolv` and no `server=` line
(so it reads no upstream from /etc/resolv.conf), unbound gets `local-zone: "." static` (so it never
recurses from the root hints). Both run in the foreground as whoever starts them: inside a pod that is
root of a user namespace where no other user exists, so neither may switch user, group or chroot.

What each can express differs from the embedded server: a wildcard `*.x` becomes dnsmasq's
`address=/x/` and unbound's `redirect` zone, both of which also answer `x` itself.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import dns.name
import dns.rdatatype

from dnsprobe import proc
from dnsprobe.codec.zone import Zone
from dnsprobe.errors import NameserverError, ToolMissing

__all__ = ["KINDS", "RealServer", "dnsmasq_config", "unbound_config", "wait_answering"]

KINDS = ("dnsmasq", "unbound")
_PACKAGES = {"dnsmasq": "apt-get install dnsmasq-base", "unbound": "apt-get install unbound"}
_WILDCARD = dns.name.Name([b"*"])


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True)


def _apexes(zone: Zone) -> list[dns.name.Name]:
    """The zones' apexes (SOA owners); without any SOA, the parents of the record owners."""
    soas = [r.name for r in zone.rrsets() if r.rdtype == dns.rdatatype.SOA]
    if soas:
        return sorted(set(soas))
    return sorted({_strip_wildcard(r.name).parent() for r in zone.rrsets() if len(r.name) > 2})


def _strip_wildcard(name: dns.name.Name) -> dns.name.Name:
    return name.parent() if name.labels and name.labels[0] == b"*" else name


def dnsmasq_config(zone: Zone, address: str, port: int) -> list[str]:
    """dnsmasq.conf lines serving `zone` on address:port, with no upstream at all."""
    lines = [
        "no-resolv",  # never read /etc/resolv.conf for upstream servers
        "no-hosts",  # nor /etc/hosts: the scenario's records only
        "no-poll",
        "no-negcache",
        # no-daemon: foreground, and never setgroups/setgid/setuid, which a user namespace without
        # setgroups permission (unshare --map-root-user) refuses even for root
        "no-daemon",
        "pid-file=",
        f"listen-address={address}",
        "bind-interfaces",
        f"port={port}",
        "cache-size=0",
        "log-facility=-",
    ]
    ttls = [r.ttl for r in zone.rrsets()]
    lines.append(f"local-ttl={min(ttls) if ttls else 30}")  # dnsmasq's default, 0, would defeat caches
    lines += [f"local=/{_text(apex)}/" for apex in _apexes(zone)]
    for rrset in zone.rrsets():
        owner = rrset.name
        wild = owner.labels[0] == b"*" if owner.labels else False
        base = _text(owner.parent() if wild else owner)
        for rdata in rrset:
            rtype = rrset.rdtype
            if rtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                address_text = rdata.to_text()
                lines.append(
                    f"address=/{base}/{address_text}" if wild else f"host-record={base},{address_text}"
                )
            elif rtype == dns.rdatatype.CNAME:
                lines.append(f"cname={_text(owner)},{_text(rdata.target)}")
            elif rtype == dns.rdatatype.SRV:
                srv = rdata
                lines.append(f"srv-host={base},{_text(srv.target)},{srv.port},{srv.priority},{srv.weight}")
            elif rtype == dns.rdatatype.TXT:
                strings = ",".join('"' + s.decode("ascii", "replace") + '"' for s in rdata.strings)
                lines.append(f"txt-record={base},{strings}")
            elif rtype == dns.rdatatype.MX:
                lines.append(f"mx-host={base},{_text(rdata.exchange)},{rdata.preference}")
            elif rtype == dns.rdatatype.PTR:
                lines.append(f"ptr-record={base},{_text(rdata.target)}")
    return lines


def unbound_config(zone: Zone, address: str, port: int, directory: Path) -> str:
    """unbound.conf serving `zone` on address:port; everything else NXDOMAIN, nothing recursed."""
    server = [
        f"interface: {address}",
        f"port: {port}",
        'username: ""',  # do not switch user (none exists inside a pod's user namespace)
        'chroot: ""',
        f'directory: "{directory}"',
        'pidfile: ""',
        "do-daemonize: no",
        "use-syslog: no",
        'logfile: ""',
        "verbosity: 0",
        "num-threads: 1",
        "so-reuseport: no",
        "do-ip6: no",
        'module-config: "iterator"',
        "access-control: 127.0.0.0/8 allow",
        "access-control: ::1 allow",
        "outgoing-num-tcp: 0",
        "incoming-num-tcp: 64",
        'local-zone: "." static',  # never recurse: a name not below is NXDOMAIN
    ]
    server += [f'local-zone: "{apex}" static' for apex in _apexes(zone) if apex != dns.name.root]
    for rrset in zone.rrsets():
        owner = rrset.name
        if owner.labels and owner.labels[0] == b"*":
            owner = owner.parent()
            server.append(f'local-zone: "{owner}" redirect')
        for rdata in rrset:
            record = f"{owner} {rrset.ttl} IN {dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text()}"
            quote = "'" if '"' in record else '"'
            server.append(f"local-data: {quote}{record}{quote}")
    remote = ["control-enable: no"]
    return (
        "server:\n"
        + "".join(f"    {line}\n" for line in server)
        + "remote-control:\n"
        + "".join(f"    {line}\n" for line in remote)
    )


def wait_answering(address: str, port: int, timeout: float) -> bool:
    """True once something answers a DNS query on address:port/udp within `timeout` seconds."""
    query = struct.pack("!HHHHHH", 0x1D1D, 0x0100, 1, 0, 0, 0) + b"\x00\x00\x06\x00\x01"  # . SOA
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    deadline = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                sock.sendto(query, (address, port))
                reply = sock.recv(4096)
                if reply[:2] == query[:2]:
                    return True
            time.sleep(0.05)
    return False


@dataclass
class RealServer:
    """dnsmasq or unbound serving `zone` on address:port, in the foreground, until `stop`.

    `workdir` receives the configuration and the server's output (`<kind>.log`).
    """

    kind: str
    zone: Zone
    workdir: Path
    address: str = "127.0.0.1"
    port: int = 53
    start_timeout: float = 10.0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.kind}.log"

    def argv(self) -> list[str]:
        if self.kind not in KINDS:
            raise NameserverError(f"nameserver kind {self.kind!r}: use one of {', '.join(KINDS)}")
        binary = shutil.which(self.kind) or shutil.which(self.kind, path="/usr/sbin:/sbin")
        if binary is None:
            raise ToolMissing(self.kind, f"nameserver kind = {self.kind!r}", _PACKAGES[self.kind])
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.kind == "dnsmasq":
            conf = self.workdir / "dnsmasq.conf"
            conf.write_text("\n".join(dnsmasq_config(self.zone, self.address, self.port)) + "\n")
            return [binary, f"--conf-file={conf}"]
        conf = self.workdir / "unbound.conf"
        conf.write_text(unbound_config(self.zone, self.address, self.port, self.workdir))
        return [binary, "-d", "-p", "-c", str(conf)]

    def start(self) -> None:
        argv = self.argv()
        with self.log_path.open("wb") as log:
            # Started from an executor thread: no PR_SET_PDEATHSIG (it would fire when that thread
            # ends); the pod's PID namespace ends it with the pod.
            self._process = proc.spawn(argv, stdout=log, stderr=log, dies_with_parent=False)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if wait_answering(self.address, self.port, 0.3):
                return
        said = self._said()
        self.stop()
        raise NameserverError(
            f"{self.kind} did not start on {self.address}:{self.port} ({said}); see {self.log_path}"
        )

    def _said(self) -> str:
        with contextlib.suppress(OSError):
            lines = [
                ln.strip() for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()
            ]
            if lines:
                return lines[-1]
        return "no output"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            proc.terminate(process)

    def __enter__(self) -> RealServer:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
