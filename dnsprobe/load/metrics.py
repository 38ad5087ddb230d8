"""`dnsprobe run --metrics 127.0.0.1:9464`: a Prometheus endpoint on loopback while the run goes.

Names follow the DNS load tools of the Kubernetes world (kubernetes/perf-tests `dnsperfgo`, dnspyre's
`--prometheus`), labelled by `mode` and `workload`:

    dns_lookups_total{mode,workload}               lookups done
    dns_errors_total{mode,workload,class}          failed lookups by outcome class (timeouts included)
    dns_timeouts_total{mode,workload}              lookups that timed out
    dns_lookup_latency_seconds{mode,workload}      histogram of Go's latency per lookup
    dns_server_queries_total{mode,proto,qtype,rcode}  wire queries the nameserver saw (its query log)
    dns_server_faults_total{mode,fault}            queries a fault rule was applied to

The lookup figures come from the rollups (rollups.py) as Locust's processes write them, about once a
second; the server's from the query log as the compactor takes it (logstore.py), every two seconds.
Only loopback addresses are served: the endpoint has no authentication.
"""

from __future__ import annotations

import ipaddress
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from dnsprobe.errors import LoadError
from dnsprobe.load import rollups

# Bucket bounds in seconds: loopback answers in well under a millisecond, timeouts take seconds.
BUCKETS_S: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip


class MetricsError(LoadError):
    """A bad --metrics address."""


def parse_address(text: str) -> tuple[str, int]:
    """`127.0.0.1:9464` or `[::1]:9464`; anything but a loopback address is refused."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise MetricsError(
            f"--metrics {text!r}: expected HOST:PORT with a loopback address, e.g. 127.0.0.1:9464"
        ) from None
    if not sep or not 0 < number < 65536:
        raise MetricsError(f"--metrics {text!r}: the port must be 1-65535, e.g. 127.0.0.1:9464")
    if not address.is_loopback:
        raise MetricsError(
            f"--metrics {text!r}: only a loopback address is served (the endpoint has no authentication); "
            "use 127.0.0.1:PORT and forward it if you must"
        )
    return str(address), number


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lookups: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, str, str]] = Counter()
        self.sums: Counter[tuple[str, str]] = Counter()
        self.histograms: dict[tuple[str, str], np.ndarray[Any, Any]] = {}
        self.queries: Counter[tuple[str, str, str, str]] = Counter()
        self.faults: Counter[tuple[str, str]] = Counter()


class DnsCollector(Collector):
    def __init__(self, state: _State) -> None:
        self.state = state
        lows, highs = rollups.bucket_bounds()
        self._mids = (lows + highs) / 2

    def collect(self) -> Iterator[Any]:
        s = self.state
        with s.lock:
            lookups = CounterMetricFamily("dns_lookups", "Lookups done", labels=["mode", "workload"])
            errors = CounterMetricFamily(
                "dns_errors", "Failed lookups by outcome class", labels=["mode", "workload", "class"]
            )
            timeouts = CounterMetricFamily(
                "dns_timeouts", "Lookups that timed out", labels=["mode", "workload"]
            )
            latency = HistogramMetricFamily(
                "dns_lookup_latency_seconds", "Go's latency per lookup", labels=["mode", "workload"]
            )
            for key, n in sorted(s.lookups.items()):
                lookups.add_metric(list(key), n)
                timeouts.add_metric(list(key), s.errors.get((*key, "timeout"), 0))
                counts = s.histograms[key]
                cumulative = [(repr(float(b)), float(counts[self._mids <= b * 1e9].sum())) for b in BUCKETS_S]
                latency.add_metric(list(key), [*cumulative, ("+Inf", float(n))], s.sums[key] / 1e9)
            for (mode, workload, cls), n in sorted(s.errors.items()):
                errors.add_metric([mode, workload, cls], n)
            queries = CounterMetricFamily(
                "dns_server_queries",
                "Wire queries the nameserver saw",
                labels=["mode", "proto", "qtype", "rcode"],
            )
            for qkey, n in sorted(s.queries.items()):
                queries.add_metric(list(qkey), n)
            faults = CounterMetricFamily(
                "dns_server_faults", "Queries a fault rule was applied to", labels=["mode", "fault"]
            )
            for fkey, n in sorted(s.faults.items()):
                faults.add_metric(list(fkey), n)
        yield from (lookups, errors, timeouts, latency, queries, faults)


class MetricsExporter:
    """Serves the metrics; `poll` reads new rollups, `count_querylog` takes query-log lines of a mode."""

    def __init__(self, records_path: Path, address: str, *, interval_s: float = 1.0) -> None:
        self.host, self.port = parse_address(address)
        self.records_path = records_path
        self.interval_s = interval_s
        self.state = _State()
        self.registry = CollectorRegistry()
        self.registry.register(DnsCollector(self.state))
        self._last_rowid = 0
        self._stop = threading.Event()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsExporter:
        try:
            self._server, _ = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as exc:
            raise MetricsError(
                f"--metrics {self.host}:{self.port}: cannot listen ({exc.strerror}); pick another port"
            ) from exc
        self._thread = threading.Thread(target=self._run, name="metrics-poll", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def poll(self) -> None:
        if not rollups.has_rollups(self.records_path):
            return
        db = sqlite3.connect(f"file:{self.records_path}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute(
                "SELECT rowid, mode, workload, outcome, lookups, latency FROM rollups WHERE rowid > ? "
                "ORDER BY rowid",
                (self._last_rowid,),
            ).fetchall()
        except sqlite3.OperationalError:
            return
        finally:
            db.close()
        s = self.state
        lows, highs = rollups.bucket_bounds()
        mids = (lows + highs) / 2
        with s.lock:
            for rowid, mode, workload, outcome, n, blob in rows:
                self._last_rowid = rowid
                key = (mode, workload)
                counts = rollups.decode_counts(blob)
                s.lookups[key] += n
                if outcome != "ok":
                    s.errors[(mode, workload, outcome)] += n
                s.sums[key] += int((counts * mids).sum())
                s.histograms[key] = s.histograms.get(key, 0) + counts

    def count_querylog(self, mode: str, chunk: bytes) -> None:
        """Count a chunk of query-log lines (whole lines, as the compactor takes them)."""
        queries: Counter[tuple[str, str, str, str]] = Counter()
        faults: Counter[tuple[str, str]] = Counter()
        for line in chunk.decode("utf-8", "replace").splitlines():
            fields = line.split("\t")
            if len(fields) != 10 or fields[0] == "time":
                continue
            queries[(mode, fields[1], fields[6], fields[9])] += 1
            if fields[8] != "-":
                faults[(mode, fields[8])] += 1
        with self.state.lock:
            self.state.queries.update(queries)
            self.state.faults.update(faults)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> MetricsExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
