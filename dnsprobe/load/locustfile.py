"""Locust drives a dnsprobe probe: each task asks the probe for a batch of lookups and reports every
lookup to Locust with the latency the probe measured in Go (not the HTTP round trip).

Plain Locust works too, web UI included:

    locust -f dnsprobe/load/locustfile.py --host unix:///tmp/dnsprobe-x/go.sock \
        --dns-workloads '[{"label": "external", "query": "{rand}.api.example.test", "kind": "host"}]'

Options (also as environment variables, e.g. DNSPROBE_BATCH=50):
  --dns-workloads JSON   list of {"label", "query", "kind", "weight"}; {rand} gives each lookup its own name
  --dns-batch N          lookups per request to the probe (default 25)
  --dns-concurrency N    lookups in flight inside the probe per request (default 8)
  --dns-timeout-ms N     per-lookup timeout (default 30000)
  --dns-records PATH     append every lookup to this SQLite file (see dnsprobe/records.py)
  --dns-mode NAME, --dns-run ID   labels stored with each record
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from locust import User, events, task
from locust.exception import StopUser

from dnsprobe.probe_client import ProbeClient, ProbeUnavailable
from dnsprobe.records import RecordWriter

DEFAULT_WORKLOADS = '[{"label": "external", "query": "{rand}.api.example.test", "kind": "host"}]'


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("dnsprobe")
    group.add_argument(
        "--dns-workloads",
        env_var="DNSPROBE_WORKLOADS",
        default=DEFAULT_WORKLOADS,
        help="JSON list of workloads: label, query (with {rand}), kind, weight",
    )
    group.add_argument(
        "--dns-batch", env_var="DNSPROBE_BATCH", type=int, default=25, help="lookups per request to the probe"
    )
    group.add_argument(
        "--dns-concurrency",
        env_var="DNSPROBE_CONCURRENCY",
        type=int,
        default=8,
        help="lookups in flight inside the probe per request",
    )
    group.add_argument(
        "--dns-timeout-ms",
        env_var="DNSPROBE_TIMEOUT_MS",
        type=int,
        default=30_000,
        help="per-lookup timeout in milliseconds",
    )
    group.add_argument(
        "--dns-records", env_var="DNSPROBE_RECORDS", default="", help="SQLite file to append every lookup to"
    )
    group.add_argument("--dns-mode", env_var="DNSPROBE_MODE", default="probe", help="mode label for records")
    group.add_argument("--dns-run", env_var="DNSPROBE_RUN", default="", help="run id for records")


class LookupFailed(Exception):
    """Reported to Locust for a failed lookup; grouped by outcome class, not by (random) name."""


class DnsProbeUser(User):
    """One simulated client: asks the probe for batches of lookups back to back."""

    def on_start(self) -> None:
        options = self.environment.parsed_options
        if not self.host:
            raise StopUser()
        self.probe = ProbeClient(self.host)
        self.workloads = json.loads(options.dns_workloads)
        self.weights = [int(w.get("weight", 1)) for w in self.workloads]
        self.batch = options.dns_batch
        self.concurrency = options.dns_concurrency
        self.timeout_ms = options.dns_timeout_ms
        self.mode = options.dns_mode
        self.run_id = options.dns_run
        self.records = RecordWriter(options.dns_records) if options.dns_records else None

    def on_stop(self) -> None:
        self.probe.close()
        if self.records is not None:
            self.records.close()

    @task
    def lookups(self) -> None:
        workload = random.choices(self.workloads, weights=self.weights)[0]  # noqa: S311 - load mix, not crypto
        kind = workload.get("kind", "host")
        intended = time.time_ns()
        try:
            results = self.probe.batch(
                kind=kind,
                name=workload["query"],
                count=self.batch,
                concurrency=self.concurrency,
                timeout_ms=self.timeout_ms,
            )
        except ProbeUnavailable as exc:
            events.request.fire(
                request_type="probe",
                name="batch",
                response_time=0,
                response_length=0,
                exception=exc,
                context={},
            )
            raise StopUser() from exc
        fire = self.environment.events.request.fire
        label = workload["label"]
        request_type = f"DNS {kind}"
        for r in results:
            fire(
                request_type=request_type,
                name=label,
                response_time=r.latency_ns / 1e6,
                response_length=r.answers,
                context={},
                exception=None if r.outcome == "ok" else LookupFailed(r.outcome),
            )
        if self.records is not None:
            self.records.append(
                (
                    self.run_id,
                    self.mode,
                    label,
                    kind,
                    r.name,
                    intended,
                    r.start_ns,
                    r.latency_ns,
                    r.outcome,
                    r.error,
                    r.answers,
                )
                for r in results
            )
