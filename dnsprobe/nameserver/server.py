"""The nameserver process: UDP and TCP listeners on an asyncio loop around `wire.Responder`.

Every packet goes through `Nameserver._handle`: parse, ask the `Policy` for a `Fault` (skipped when there
is no policy), answer, log. Nothing raised while answering one packet escapes to the event loop.

UDP does not use asyncio's datagram transports: a reader callback drains the socket with plain
`recvfrom`/`sendto` until it would block. One wake-up then serves every packet queued, and a packet costs
two system calls and no transport machinery: about 1.5 times the queries per second of uvloop's
transport here, on the same loop and in the same thread as TCP, timers and the query log.

Three ways to run it:
- `await Nameserver(...).start()` inside an event loop you own;
- `NameserverThread(...)`, a context manager that runs it on its own loop in a background thread (tests,
  `dnsprobe serve`);
- `serve_forever(...)`, blocking until SIGTERM or SIGINT on uvloop when it is installed (the pod process
  that serves port 53 inside a network namespace).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import functools
import ipaddress
import logging
import signal
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from dnsprobe.codec.wire import TCP_LIMIT, BadQuery, Query, Responder, parse_query, rcode_text
from dnsprobe.codec.zone import Zone
from dnsprobe.errors import NameserverError
from dnsprobe.nameserver.pcap import PacketLog
from dnsprobe.nameserver.querylog import FLUSH_INTERVAL, QueryLog

__all__ = [
    "MANGLES",
    "Endpoint",
    "Fault",
    "Nameserver",
    "NameserverThread",
    "Policy",
    "SwapPair",
    "bind_sockets",
    "check_addresses",
    "serve_forever",
]

log = logging.getLogger(__name__)

Endpoint = tuple[str, int]
LOOPBACK: Sequence[Endpoint] = (("127.0.0.1", 0),)

UDP_MAX = 65507  # the largest payload of one IPv4 UDP datagram
# Each TCP message (its length and its bytes) must arrive within this many seconds of the previous one
# being answered, else the connection is closed: one deadline per message, as the Go engine's
# conn.SetDeadline does, so a client trickling a byte at a time cannot hold a connection open.
TCP_IDLE = 10.0
_PORT_ATTEMPTS = 20  # port 0: times to look for a port free for both UDP and TCP
_STOP_TIMEOUT = 2.0  # seconds to wait for aborted TCP connections to close
_RECEIVE_BUFFER = 4 << 20  # bytes; absorbs bursts from a load test (capped by net.core.rmem_max)
_UDP_BURST = 256  # packets answered per wake-up before the loop gets a turn


@dataclass(frozen=True, slots=True)
class Fault:
    """What a `Policy` does to one query instead of answering it normally."""

    name: str  # written to the query log's fault column
    drop: bool = False  # send nothing
    delay: float = 0.0  # seconds before the reply goes out
    rcode: int | None = None  # reply with this rcode and no records (SERVFAIL, REFUSED...)
    truncate: bool = False  # reply with TC set and the question only
    ignore_udp_limit: bool = False  # send an oversized UDP answer whole, without TC
    mangle: str | None = None  # garbage | wrong_id | wrong_question: a malformed or mismatched answer
    flags_clear: int = 0  # with rcode: header bits cleared in the reply (0x0080: RA)
    no_opt: bool = False  # with rcode: no OPT record in the reply, even to an EDNS0 query
    swap: SwapPair | None = None  # UDP: the normal reply, sent cross-wired with its partner's (SwapPair)

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name) or self.name == "-":
            raise ValueError(f"fault name {self.name!r}: one word please (it is a query-log column)")
        if self.mangle not in (None, *MANGLES):
            raise ValueError(f"fault {self.name}: mangle must be one of {', '.join(MANGLES)}")


MANGLES = ("garbage", "wrong_id", "wrong_question", "tc_bit", "uncompressed")

Sender = Callable[[bytes, Any], None]  # sends one UDP reply to a client address


class SwapPair:
    """Two UDP replies sent cross-wired (fault action `swap_replies`), as golang/go#35521 captured a
    broken server doing to Go's parallel A and AAAA queries.

    Whichever of the two replies is ready first is held up to `window_s`. When the other is ready, each
    reply (its own header flags, question and records) goes out with the *other* query's ID to the
    *other* query's client address and port: the client socket that asked for A gets the AAAA answer
    under its own ID, and the reverse. (Two queries from one socket, as glibc and musl send them, both
    get an answer under their own ID for the other question.) A client that checks the question
    against its query ignores the reply; one that matches replies by ID only takes it. When the partner
    does not come within `window_s`, `release` sends the held reply as it is, just late."""

    __slots__ = ("_held", "_state", "window_s")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._state = _PAIR_EMPTY
        self._held: tuple[bytes, Any, Sender] | None = None

    def arrive(self, reply: bytes, addr: Any, send: Sender) -> bool:
        """One of the two replies is ready. True: it is held (call `release` after `window_s`); False:
        it went out, swapped with the held one, or as it is when the held one was already released."""
        if self._state == _PAIR_EMPTY:
            self._held = (reply, addr, send)
            self._state = _PAIR_HELD
            return True
        held = self._held
        self._held = None
        if self._state == _PAIR_HELD and held is not None:
            self._state = _PAIR_DONE
            first, first_addr, first_send = held
            first_send(first[:2] + reply[2:], first_addr)  # this answer, under the first query's ID
            send(reply[:2] + first[2:], addr)  # the first answer, under this query's ID
            return False
        send(reply, addr)
        return False

    def release(self) -> None:
        """The window is over: a reply still held goes out as it is."""
        held = self._held
        if self._state == _PAIR_HELD and held is not None:
            self._state = _PAIR_DONE
            self._held = None
            reply, addr, send = held
            send(reply, addr)


_PAIR_EMPTY, _PAIR_HELD, _PAIR_DONE = 0, 1, 2


class Policy(Protocol):
    """Chooses a fault per query. Called on the server's event loop for every packet: keep it cheap."""

    def fault_for(self, query: Query, proto: str, client: Endpoint) -> Fault | None: ...


class Nameserver:
    """UDP and, unless `tcp=False`, TCP on the same port of each address. Port 0 picks a free port."""

    def __init__(
        self,
        zone: Zone,
        addresses: Sequence[Endpoint] = LOOPBACK,
        querylog: Path | QueryLog | None = None,
        tcp: bool = True,
        *,
        allow_non_loopback: bool = False,
        policy: Policy | None = None,
        packets: PacketLog | None = None,
        gaps: Sequence[Sequence[float]] = (),
    ) -> None:
        """`querylog`: a path this server opens and closes, or a `QueryLog` several servers share (its owner
        closes it). `packets`: every message received and sent goes there too (`--pcap`; its owner closes
        it). `gaps`: [start_s, end_s] windows after the start in which the UDP sockets are closed (clients
        get ICMP port unreachable) and bound again after, as while a node-local cache restarts."""
        self.packets = packets
        self._gaps = [(float(start), float(end)) for start, end in gaps]
        self._addresses = check_addresses(addresses, allow_non_loopback)
        self._responder = Responder(zone)
        self._querylog_path = querylog
        self._tcp = tcp
        self._policy = policy
        self._log: QueryLog | None = None
        self._endpoints: list[Endpoint] = []
        self._udp: list[_UdpListener] = []
        self._servers: list[asyncio.Server] = []
        self._connections: set[_TcpProtocol] = set()  # from the moment asyncio creates the protocol
        self._stopping = False
        self._timers: set[asyncio.TimerHandle] = set()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def endpoints(self) -> list[Endpoint]:
        """The (address, port) pairs actually bound, in the order given."""
        return list(self._endpoints)

    async def start(self) -> None:
        if self._loop is not None:
            raise RuntimeError("this Nameserver was already started")
        loop = self._loop = asyncio.get_running_loop()
        try:
            if isinstance(self._querylog_path, QueryLog):
                self._log = self._querylog_path
                self._flush_timer = loop.call_later(FLUSH_INTERVAL, self._flush_tick)
            elif self._querylog_path is not None:
                self._log = QueryLog(self._querylog_path)
                self._flush_timer = loop.call_later(FLUSH_INTERVAL, self._flush_tick)
            for host, port in self._addresses:
                await self._listen(loop, host, port)
            for start, end in self._gaps:
                self._later(start, self._close_udp)
                self._later(end, functools.partial(self._reopen_udp, loop))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close every socket and the query log. Safe to call more than once."""
        self._stopping = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for server in self._servers:
            server.close()
        for listener in self._udp:
            listener.close()
        for server in self._servers:
            await server.wait_closed()
        # Wait until every TCP socket is really closed too, so none is left for the garbage collector to
        # warn about. A connection accepted but not yet set up aborts itself in connection_made.
        connections = list(self._connections)
        for connection in connections:
            connection.abort()
        if connections:
            await asyncio.wait([connection.lost for connection in connections], timeout=_STOP_TIMEOUT)
        self._servers.clear()
        self._udp.clear()
        if self._log is not None:
            if self._log is not self._querylog_path:
                self._log.close()
            else:
                self._log.flush()
            self._log = None

    async def __aenter__(self) -> Nameserver:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- the request path --------------------------------------------------------------------------------

    def _handle(
        self, data: bytes, client: Endpoint, proto: str
    ) -> tuple[bytes | None, float, SwapPair | None]:
        """The reply to one packet (None: send nothing), the delay before sending it and the pair it is
        to be swapped in (None: send it as it is)."""
        querylog = self._log
        try:
            query = parse_query(data)
        except BadQuery as bad:
            if querylog is not None:
                querylog.record(proto, client, bad.qid, None, None, None, None, bad.outcome)
            return bad.reply, 0.0, None
        fault = None if self._policy is None else self._policy.fault_for(query, proto, client)
        delay = 0.0
        if fault is None:
            limit = TCP_LIMIT if proto == "tcp" else query.udp_limit
            reply: bytes | None
            reply, rcode = self._responder.respond(query, limit)
        else:
            reply, rcode = self._apply(fault, query, proto)
            delay = fault.delay
        if querylog is not None:
            outcome = "drop" if reply is None else rcode_text(rcode)
            fault_name = None if fault is None else fault.name
            querylog.record(
                proto, client, query.id, query.qname, query.qtype, query.edns, fault_name, outcome
            )
        return reply, delay, None if fault is None else fault.swap

    def _apply(self, fault: Fault, query: Query, proto: str) -> tuple[bytes | None, int]:
        responder = self._responder
        if fault.drop:
            return None, 0
        if fault.rcode is not None:
            reply = responder.error(query, fault.rcode, flags_clear=fault.flags_clear, no_opt=fault.no_opt)
            return reply, fault.rcode
        if fault.truncate:
            reply, rcode = responder.truncated(query)
        elif proto == "tcp":
            reply, rcode = responder.respond(query, TCP_LIMIT)
        else:
            reply, rcode = responder.respond(query, UDP_MAX if fault.ignore_udp_limit else query.udp_limit)
        if fault.mangle is not None:
            reply = _mangled(fault.mangle, reply, query)
        return reply, rcode

    def _later(self, delay: float, send: Callable[[], None]) -> None:
        assert self._loop is not None

        def fire() -> None:
            self._timers.discard(timer)
            send()

        timer = self._loop.call_later(delay, fire)
        self._timers.add(timer)

    def _flush_tick(self) -> None:
        if self._log is None or self._loop is None:
            return
        try:
            self._log.flush()
            if self.packets is not None:
                self.packets.flush()
        except OSError:
            log.exception("cannot write the query log %s", self._log.path)
        self._flush_timer = self._loop.call_later(FLUSH_INTERVAL, self._flush_tick)

    # -- listening ---------------------------------------------------------------------------------------

    def _close_udp(self) -> None:
        for listener in self._udp:
            listener.close()
        self._udp.clear()

    def _reopen_udp(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._stopping:
            return
        for host, port in self._endpoints:
            udp_sock, _ = bind_sockets(host, port, False)
            self._udp.append(_UdpListener(self, loop, udp_sock))

    async def _listen(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        udp_sock, tcp_sock = bind_sockets(host, port, self._tcp)
        try:
            self._udp.append(_UdpListener(self, loop, udp_sock))
        except BaseException:
            udp_sock.close()
            if tcp_sock is not None:
                tcp_sock.close()
            raise
        if tcp_sock is not None:
            try:
                server = await loop.create_server(lambda: _TcpProtocol(self), sock=tcp_sock, backlog=1024)
            except BaseException:
                tcp_sock.close()
                raise
            self._servers.append(server)
        self._endpoints.append((host, udp_sock.getsockname()[1]))


_GARBAGE = b"\xc0\x0c\x00\x01\x00\x01\xff\xff"  # an answer record cut inside its TTL


def _mangled(how: str, reply: bytes, query: Query) -> bytes:
    """A reply a client must reject: unparseable, for another query ID, or for another question; or
    (tc_bit) the whole answer with TC set anyway, as some proxies do even over TCP."""
    if how == "tc_bit":
        return reply[:2] + bytes([reply[2] | 0x02]) + reply[3:]
    if how == "uncompressed":
        return _uncompressed(reply, query)
    if how == "wrong_id":
        return ((query.id + 0x5555) & 0xFFFF).to_bytes(2, "big") + reply[2:]
    if how == "wrong_question":
        # Another name in front of the question: answer owners point at it (0xC00C), and no other name in
        # the answer is compressed, so the message stays well-formed, just not an answer to this query.
        return reply[:12] + b"\x05wrong" + reply[12:]
    # garbage: the header promises answers, the question is right, then the first record is cut short
    header = reply[:4] + (1).to_bytes(2, "big") + (3).to_bytes(2, "big") + bytes(4)
    return header + query.question + _GARBAGE


def _uncompressed(reply: bytes, query: Query) -> bytes:
    """The reply with every record owner that points at the question (0xC00C) written out in full, as a
    server without name compression sends it: the same records, longer (past 512 bytes sooner)."""
    qname = query.question[:-4]
    counts = struct.unpack_from("!HHHH", reply, 4)
    pos = 12 + (len(query.question) if counts[0] else 0)
    out = [reply[:pos]]
    for _ in range(sum(counts[1:])):
        if reply[pos : pos + 2] == b"\xc0\x0c":
            out.append(qname)
            pos += 2
        else:
            start = pos
            while reply[pos] and reply[pos] < 0xC0:
                pos += 1 + reply[pos]
            pos += 2 if reply[pos] >= 0xC0 else 1
            out.append(reply[start:pos])
        rdlength = int.from_bytes(reply[pos + 8 : pos + 10], "big")
        out.append(reply[pos : pos + 10 + rdlength])
        pos += 10 + rdlength
    out.append(reply[pos:])
    return b"".join(out)


class _UdpListener:
    """One UDP socket served from the loop's reader callback (see the module's docstring)."""

    def __init__(self, nameserver: Nameserver, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self._nameserver = nameserver
        self._loop = loop
        self._sock = sock
        self._backlog: collections.deque[tuple[bytes, Any]] = collections.deque()  # replies that would block
        self._local = sock.getsockname()
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        handle = self._nameserver._handle
        receive = self._sock.recvfrom
        send = self._send
        for _ in range(_UDP_BURST):  # then let the loop run TCP and timers
            try:
                data, addr = receive(UDP_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error queued on the socket (a client went away): nothing to answer
            if self._nameserver.packets is not None:
                self._nameserver.packets.add("udp", True, addr, self._local, data)
            try:
                reply, delay, swap = handle(data, addr, "udp")  # IPv6: 4 items; [0] and [1] are used
                if reply is None:
                    continue
                if swap is not None:
                    if swap.arrive(reply, addr, send):
                        self._nameserver._later(swap.window_s, swap.release)
                elif delay:
                    self._nameserver._later(delay, functools.partial(send, reply, addr))
                else:
                    send(reply, addr)
            except Exception:
                log.exception("nameserver: error answering a UDP packet from %s", addr)

    def _send(self, reply: bytes, addr: Any) -> None:
        if self._nameserver.packets is not None:
            self._nameserver.packets.add("udp", False, addr, self._local, reply)
        if self._backlog:
            self._backlog.append((reply, addr))
            return
        try:
            self._sock.sendto(reply, addr)
        except (BlockingIOError, InterruptedError):
            self._backlog.append((reply, addr))
            self._loop.add_writer(self._sock.fileno(), self._writable)
        except OSError as exc:
            log.debug("nameserver: cannot answer %s: %s", addr, exc)

    def _writable(self) -> None:
        backlog = self._backlog
        while backlog:
            reply, addr = backlog[0]
            try:
                self._sock.sendto(reply, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("nameserver: cannot answer %s: %s", addr, exc)
            backlog.popleft()
        self._loop.remove_writer(self._sock.fileno())

    def close(self) -> None:
        if self._sock.fileno() < 0:
            return
        self._loop.remove_reader(self._sock.fileno())
        if self._backlog:
            self._loop.remove_writer(self._sock.fileno())
            self._backlog.clear()
        self._sock.close()


class _TcpProtocol(asyncio.Protocol):
    """RFC 7766 framing: each message after a 2-byte length; several queries per connection."""

    def __init__(self, nameserver: Nameserver) -> None:
        self._nameserver = nameserver
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._client: Endpoint = ("-", 0)
        self._local: Endpoint = ("0.0.0.0", 53)  # noqa: S104 - a label for --pcap until connection_made
        self._idle: asyncio.TimerHandle | None = None
        self._last_activity = 0.0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # socket closed
        nameserver._connections.add(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self._client = (str(peer[0]), int(peer[1]))
        local = transport.get_extra_info("sockname")
        if local:
            self._local = (str(local[0]), int(local[1]))
        if self._nameserver._stopping:
            self._transport.abort()  # accepted while the server was stopping
            return
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        self._idle = loop.call_later(TCP_IDLE, self._check_idle)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        try:
            while len(buffer) >= 2:
                size = int.from_bytes(buffer[:2], "big")
                if len(buffer) < 2 + size:
                    break
                message = bytes(buffer[2 : 2 + size])
                del buffer[: 2 + size]
                self._last_activity = asyncio.get_running_loop().time()  # the next message's deadline
                if self._nameserver.packets is not None:
                    self._nameserver.packets.add("tcp", True, self._client, self._local, message)
                reply, delay, _ = self._nameserver._handle(message, self._client, "tcp")  # UDP-only swaps
                if reply is None:
                    continue
                framed = len(reply).to_bytes(2, "big") + reply
                if delay:
                    self._nameserver._later(delay, functools.partial(self._send, framed))
                else:
                    self._send(framed)
        except Exception:
            log.exception("nameserver: error answering a TCP query from %s", self._client)
            self.abort()

    def _send(self, framed: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            if self._nameserver.packets is not None:
                self._nameserver.packets.add("tcp", False, self._client, self._local, framed[2:])
            self._transport.write(framed)

    def pause_writing(self) -> None:
        # The client is not reading its answers: stop reading its questions until it does.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        idle_for = loop.time() - self._last_activity
        if idle_for >= TCP_IDLE:
            if self._transport is not None:
                self._transport.close()
            self._idle = None
        else:
            self._idle = loop.call_later(TCP_IDLE - idle_for, self._check_idle)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._nameserver._connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._transport = None
        if not self.lost.done():
            self.lost.set_result(None)


# -- sockets ---------------------------------------------------------------------------------------------


def bind_sockets(host: str, port: int, tcp: bool) -> tuple[socket.socket, socket.socket | None]:
    """A non-blocking UDP socket bound to host:port and, with `tcp`, a TCP socket on the same port (not
    yet listening). Port 0 picks a port free for both. NameserverError says why not."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    for attempt in range(_PORT_ATTEMPTS if port == 0 else 1):
        udp_sock = _open(family, socket.SOCK_DGRAM, host, port)
        if not tcp:
            return udp_sock, None
        bound = udp_sock.getsockname()[1]
        try:
            return udp_sock, _open(family, socket.SOCK_STREAM, host, bound)
        except NameserverError as exc:
            udp_sock.close()
            taken = exc.__cause__ is not None and _errno(exc.__cause__) == errno.EADDRINUSE
            if not (port == 0 and taken and attempt + 1 < _PORT_ATTEMPTS):
                raise
            # the UDP port was free but its TCP twin is not: try another
    raise AssertionError("unreachable: the last attempt returns or raises")


def check_addresses(addresses: Sequence[Endpoint], allow_non_loopback: bool) -> list[Endpoint]:
    """The addresses to listen on, as a list; NameserverError for none, or one that is not an IP
    address on loopback (unless allowed off it), or a port out of range."""
    if not addresses:
        raise NameserverError("nameserver: no address to listen on; give at least one, e.g. 127.0.0.1")
    for host, port in addresses:
        _check_address(host, port, allow_non_loopback)
    return list(addresses)


def _check_address(host: str, port: int, allow_non_loopback: bool) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise NameserverError(
            f"cannot listen on {host!r}: not an IP address; use 127.0.0.1 or ::1 (names are not resolved)"
        ) from None
    if not 0 <= port <= 65535:
        raise NameserverError(f"cannot listen on {_where(host, port)}: port out of range; pick 0-65535")
    if not address.is_loopback and not allow_non_loopback:
        raise NameserverError(
            f"refusing to listen on {_where(host, port)}: not a loopback address; "
            "use 127.0.0.1 or ::1 (other addresses only inside the project's own network namespace)"
        )


def _open(family: socket.AddressFamily, kind: socket.SocketKind, host: str, port: int) -> socket.socket:
    """A bound socket, or NameserverError saying why not (the OSError is its __cause__)."""
    proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        raise NameserverError(f"cannot listen on {_where(host, port)}/{proto}: {_explain(exc)}") from exc
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            # Lets a restarted server take its port back from connections in TIME_WAIT; Linux still
            # refuses a second listener, so a taken port is reported.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        else:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise NameserverError(f"cannot listen on {_where(host, port)}/{proto}: {_explain(exc)}") from exc
    return sock


def _errno(exc: BaseException) -> int | None:
    return exc.errno if isinstance(exc, OSError) else None


def _explain(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use; pick another --port"
    if exc.errno == errno.EACCES:
        return (
            "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); pick a port above 1023"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return "address not available on this machine; use 127.0.0.1 (or ::1 where IPv6 is enabled)"
    if exc.errno == errno.EAFNOSUPPORT:
        return "address family not supported here (IPv6 disabled?); use 127.0.0.1"
    return f"{(exc.strerror or str(exc)).lower()}"


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- running ---------------------------------------------------------------------------------------------


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when installed: about three times the queries per second of the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class NameserverThread:
    """A `Nameserver` on its own event loop in a background thread.

        with NameserverThread(zone) as ns:
            host, port = ns.endpoints[0]

    The policy, if any, is called from that thread.
    """

    def __init__(
        self,
        zone: Zone,
        addresses: Sequence[Endpoint] = LOOPBACK,
        querylog: Path | None = None,
        tcp: bool = True,
        *,
        allow_non_loopback: bool = False,
        policy: Policy | None = None,
        timeout: float = 10.0,
        gaps: Sequence[Sequence[float]] = (),
    ) -> None:
        self.nameserver = Nameserver(
            zone, addresses, querylog, tcp, allow_non_loopback=allow_non_loopback, policy=policy, gaps=gaps
        )
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoints(self) -> list[Endpoint]:
        return self.nameserver.endpoints

    def start(self) -> None:
        if self._loop is not None:
            raise RuntimeError("this NameserverThread was already started")
        loop = self._loop = _loop_factory()()
        self._thread = threading.Thread(target=loop.run_forever, name="dnsprobe-nameserver", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.nameserver.start(), loop).result(self._timeout)
        except BaseException:
            self._end_loop()
            raise

    def stop(self) -> None:
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.nameserver.stop(), self._loop).result(self._timeout)
        finally:
            self._end_loop()

    def _end_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self._timeout)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> NameserverThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_forever(
    zone: Zone,
    addresses: Sequence[Endpoint] = LOOPBACK,
    querylog: Path | None = None,
    tcp: bool = True,
    *,
    allow_non_loopback: bool = False,
    policy: Policy | None = None,
    on_ready: Callable[[list[Endpoint]], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT (call from the main thread); `on_ready` gets the bound endpoints."""

    async def main() -> None:
        nameserver = Nameserver(
            zone, addresses, querylog, tcp, allow_non_loopback=allow_non_loopback, policy=policy
        )
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        await nameserver.start()
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stopping.set)
            if on_ready is not None:
                on_ready(nameserver.endpoints)
            await stopping.wait()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            await nameserver.stop()

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())
