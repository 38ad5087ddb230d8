"""`--pcap`: each pod's DNS traffic as the nameserver saw it, in `pods/<mode>/dns.pcap` for
tcpdump/Wireshark.

On the hot path the nameserver only appends each packet's payload, addresses and time to a raw side log
(`dns.raw`, `PacketLog`): a fixed header per packet, then the DNS message as sent or received (for TCP
without its two-byte length). After the mode `write_pcap` turns it into a pcap file with dpkt: Ethernet
frames (zero MAC addresses), IPv4 or IPv6, UDP datagrams or TCP segments (one per DNS message, with the
length prefix, sequence numbers per connection and direction, no handshake), each at the time the server
received or sent it. Wireshark decodes them as DNS on port 53.

Raw record (little endian): time f64, proto u8 (0 udp, 1 tcp), direction u8 (0 to the server, 1 from
it), family u8 (4 or 6), pad u8, client address 16 bytes, client port u16, server address 16 bytes, server
port u16, length u32, then the message.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

RAW_NAME: Final = "dns.raw"
PCAP_NAME: Final = "dns.pcap"
_HEAD: Final = struct.Struct("<dBBBx16sH16sHI")
_FLUSH_BYTES: Final = 1 << 20


def _packed(address: str) -> tuple[int, bytes]:
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.version, ip.packed.ljust(16, b"\0")


class PacketLog:
    """Appends packets to the raw side log; buffered, written on `flush` (the server's timer) and close.
    Not thread-safe: the server's event loop owns it."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._file = path.open("ab")
        self._buffer = bytearray()
        self._addresses: dict[str, tuple[int, bytes]] = {}

    def add(self, proto: str, inbound: bool, client: Any, server: Any, message: bytes) -> None:
        """One DNS message; `client`/`server` are (address, port) as sockets give them."""
        cache = self._addresses
        c = cache.get(client[0]) or cache.setdefault(client[0], _packed(client[0]))
        s = cache.get(server[0]) or cache.setdefault(server[0], _packed(server[0]))
        self._buffer += _HEAD.pack(
            self._clock(),
            1 if proto == "tcp" else 0,
            0 if inbound else 1,
            c[0],
            c[1],
            int(client[1]),
            s[1],
            int(server[1]),
            len(message),
        )
        self._buffer += message
        if len(self._buffer) >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._buffer and not self._file.closed:
            self._file.write(self._buffer)
            self._file.flush()
            self._buffer.clear()

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


@dataclass(frozen=True)
class Packet:
    time: float
    proto: str
    inbound: bool
    client: tuple[str, int]
    server: tuple[str, int]
    message: bytes


def read_raw(path: Path) -> Iterator[Packet]:
    """The packets of a raw side log; a record cut by a crash at the end is left out."""
    data = path.read_bytes()
    offset, size = 0, _HEAD.size
    while offset + size <= len(data):
        when, proto, direction, family, c_ip, c_port, s_ip, s_port, length = _HEAD.unpack_from(data, offset)
        start = offset + size
        if start + length > len(data):
            return
        width = 4 if family == 4 else 16
        yield Packet(
            when,
            "tcp" if proto else "udp",
            direction == 0,
            (str(ipaddress.ip_address(c_ip[:width])), c_port),
            (str(ipaddress.ip_address(s_ip[:width])), s_port),
            data[start : start + length],
        )
        offset = start + length


def write_pcap(raw_path: Path, pcap_path: Path) -> int:
    """Convert a raw side log to pcap with dpkt; returns the packets written. Atomic (temp name, rename)."""
    import dpkt

    tmp = pcap_path.with_name(f".{pcap_path.name}.tmp")
    seqs: dict[tuple[Any, ...], int] = {}
    written = 0
    with tmp.open("wb") as out:
        writer = dpkt.pcap.Writer(out, snaplen=262144, linktype=dpkt.pcap.DLT_EN10MB, nano=False)
        for packet in read_raw(raw_path) if raw_path.exists() else ():
            src, dst = (packet.client, packet.server) if packet.inbound else (packet.server, packet.client)
            if packet.proto == "udp":
                segment: Any = dpkt.udp.UDP(sport=src[1], dport=dst[1], data=packet.message)
                segment.ulen = len(segment)
                protocol = dpkt.ip.IP_PROTO_UDP
            else:
                key = (src, dst)
                seq = seqs.get(key, 1)
                payload = len(packet.message).to_bytes(2, "big") + packet.message
                seqs[key] = (seq + len(payload)) & 0xFFFFFFFF
                segment = dpkt.tcp.TCP(
                    sport=src[1],
                    dport=dst[1],
                    seq=seq,
                    ack=seqs.get((dst, src), 1),
                    flags=dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK,
                    win=65535,
                    data=payload,
                )
                protocol = dpkt.ip.IP_PROTO_TCP
            if ":" in src[0]:
                ip: Any = dpkt.ip6.IP6(
                    src=socket.inet_pton(socket.AF_INET6, src[0]),
                    dst=socket.inet_pton(socket.AF_INET6, dst[0]),
                    nxt=protocol,
                    hlim=64,
                    data=segment,
                    plen=len(segment),
                )
                ethertype = dpkt.ethernet.ETH_TYPE_IP6
            else:
                ip = dpkt.ip.IP(
                    src=socket.inet_aton(src[0]),
                    dst=socket.inet_aton(dst[0]),
                    p=protocol,
                    ttl=64,
                    data=segment,
                )
                ip.len = len(ip)
                ethertype = dpkt.ethernet.ETH_TYPE_IP
            frame = dpkt.ethernet.Ethernet(src=b"\0" * 6, dst=b"\0" * 6, type=ethertype, data=ip)
            writer.writepkt(bytes(frame), ts=packet.time)
            written += 1
    tmp.replace(pcap_path)
    return written
