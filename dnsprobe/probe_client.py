"""A small client for the Go probe's HTTP API over a unix socket (or loopback TCP).

Standard library only, so it works both in the harness and inside Locust's gevent-patched workers.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any


class ProbeUnavailable(Exception):
    """The probe did not answer (not started yet, or gone)."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("probe", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True)
class LookupResult:
    name: str
    start_ns: int
    latency_ns: int
    outcome: str
    error: str
    answers: int


class ProbeClient:
    """`ProbeClient("unix:///tmp/x/probe.sock")` or `ProbeClient("http://127.0.0.1:8053")`."""

    def __init__(self, address: str, timeout: float = 120.0) -> None:
        self.address = address
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.address.startswith("unix://"):
                self._conn = _UnixConnection(self.address.removeprefix("unix://"), self.timeout)
            else:
                hostport = self.address.removeprefix("http://").rstrip("/")
                self._conn = http.client.HTTPConnection(hostport, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(self, method: str, path: str, payload: bytes | None) -> bytes:
        headers = {"Content-Type": "application/json"} if payload else {}
        for attempt in (1, 2):  # one retry: a keep-alive connection the server closed
            conn = self._connect()
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2 or isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
                    raise ProbeUnavailable(f"{self.address}: {exc}") from exc
                continue
            if response.status != 200:
                raise ProbeUnavailable(f"{self.address}{path}: HTTP {response.status}: {data[:200]!r}")
            return data
        raise AssertionError("unreachable")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return json.loads(
            self._request(method, path, json.dumps(body).encode() if body is not None else None)
        )

    def batch_bytes(self, body: dict[str, Any]) -> bytes:
        """POST /batch with `body` as is; the JSON response undecoded, so that the load can send its next
        batch before it spends time decoding this one (`decode_results`)."""
        return self._request("POST", "/batch", json.dumps(body).encode())

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/info")
        return result

    def batch(
        self, *, kind: str, name: str, count: int, concurrency: int, timeout_ms: int
    ) -> list[LookupResult]:
        body = {
            "kind": kind,
            "name": name,
            "count": count,
            "concurrency": concurrency,
            "timeout_ms": timeout_ms,
        }
        data = self._call("POST", "/batch", body)
        return [
            LookupResult(r["name"], r["start_ns"], r["latency_ns"], r["outcome"], r["error"], r["answers"])
            for r in data["results"]
        ]

    def loop(
        self,
        *,
        kind: str,
        name: str,
        concurrency: int,
        duration_ms: int,
        timeout_ms: int,
        records: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "concurrency": concurrency,
            "duration_ms": duration_ms,
            "timeout_ms": timeout_ms,
            "records": records,
        }
        result: dict[str, Any] = self._call("POST", "/loop", body)
        return result


def decode_results(data: bytes) -> list[dict[str, Any]]:
    """The `results` of a /batch response, as the probe sent them (no objects beyond what json makes)."""
    results: list[dict[str, Any]] = json.loads(data)["results"]
    return results
