"""Locust drives a dnsprobe probe: each task asks the probe for a batch of lookups and reports every
lookup to Locust with the latency the probe measured in Go (not the HTTP round trip).

Plain Locust works too, web UI included (start a probe first, e.g. the one `dnsprobe run` leaves in a pod):

    locust -f dnsprobe/load/locustfile.py --host unix:///tmp/dnsprobe-x/go.sock \
        --dns-workloads '[{"label": "external", "query": "{rand}.api.example.test", "kind": "host"}]'

Options (also as environment variables, e.g. DNSPROBE_BATCH=50):
  --dns-workloads JSON   list of {"label", "query", "kind", "weight"}; {rand} gives each lookup its own name
  --dns-batch N          lookups per request to the probe (default 500)
  --dns-concurrency N    lookups in flight inside the probe per request (default 8)
  --dns-user-rate R      open loop: each user asks for R lookups/s on a fixed schedule, and the latency
                         Locust sees runs from each lookup's intended start (0, the default: closed loop)
  --dns-timeout-ms N     per-lookup timeout (default 30000)
  --dns-records PATH     append every lookup to this SQLite file (see dnsprobe/load/records.py)
  --dns-keep-records K   all (default), failures or sample: which records are kept besides the
                         per-second rollups (see dnsprobe/load/rollups.py)
  --dns-mode NAME, --dns-run ID   labels stored with each record

Why batches: one HTTP request per lookup costs the harness more CPU than the lookup costs the probe, and
then the figures describe Locust. A batch of a few hundred lookups costs one request, one JSON decode and
one SQLite transaction; Locust still sees every lookup, through its request event, with Go's latency.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from typing import Any

import gevent
from locust import User, events, task
from locust.exception import StopUser

from dnsprobe.load.rollups import RollupWriter
from dnsprobe.probe_client import ProbeClient, ProbeUnavailable, decode_results

DEFAULT_WORKLOADS = '[{"label": "external", "query": "{rand}.api.example.test", "kind": "host"}]'
OPEN_LOOP_LEAD_S = 0.05  # an open-loop batch is sent this long before its first slot
_REPORT_SLICE = 100  # lookups reported between two yields to the other users of this process


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
        "--dns-batch",
        env_var="DNSPROBE_BATCH",
        type=int,
        default=500,
        help="lookups per request to the probe",
    )
    group.add_argument(
        "--dns-concurrency",
        env_var="DNSPROBE_CONCURRENCY",
        type=int,
        default=8,
        help="lookups in flight inside the probe per request",
    )
    group.add_argument(
        "--dns-user-rate",
        env_var="DNSPROBE_USER_RATE",
        type=float,
        default=0.0,
        help="open loop: lookups per second per user, latency from the intended start (0: closed loop)",
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
    group.add_argument(
        "--dns-shape",
        env_var="DNSPROBE_SHAPE",
        default="steady",
        choices=["steady", "ramp", "spike"],
        help="with dnsprobe/load/shapes.py: how the user count changes over the run",
    )
    group.add_argument(
        "--dns-ramp-seconds",
        env_var="DNSPROBE_RAMP_SECONDS",
        type=float,
        default=0.0,
        help="ramp: seconds to --users",
    )
    group.add_argument(
        "--dns-spike-users",
        env_var="DNSPROBE_SPIKE_USERS",
        type=int,
        default=0,
        help="spike: users in the middle third",
    )
    group.add_argument(
        "--dns-keep-records",
        env_var="DNSPROBE_KEEP_RECORDS",
        default="all",
        choices=["all", "failures", "sample"],
        help="records kept besides the per-second rollups (dnsprobe/load/rollups.py)",
    )
    group.add_argument("--dns-mode", env_var="DNSPROBE_MODE", default="probe", help="mode label for records")
    group.add_argument("--dns-run", env_var="DNSPROBE_RUN", default="", help="run id for records")


class LookupFailed(Exception):
    """Reported to Locust for a failed lookup; grouped by outcome class, not by (random) name."""


_NO_CONTEXT: dict[str, Any] = {}  # shared: listeners only read it
_FAILED: dict[str, LookupFailed] = {}  # one instance per class: Locust groups errors by their text
_writers: dict[str, RollupWriter] = {}  # one per process: every user of this process shares it


def _writer(path: str, keep: str, open_loop: bool) -> RollupWriter | None:
    """Records and per-second rollups, written together about once a second (see rollups.py)."""
    if not path:
        return None
    if path not in _writers:
        from pathlib import Path

        _writers[path] = RollupWriter(Path(path), keep=keep, open_loop=open_loop)  # type: ignore[arg-type]
    return _writers[path]


@events.quit.add_listener
def _close_writers(**_: Any) -> None:
    for writer in _writers.values():
        writer.close()
    _writers.clear()


class DnsProbeUser(User):
    """One simulated client: asks the probe for batches of lookups, back to back (closed loop) or on a
    fixed timetable (open loop, `--dns-user-rate`).

    The next batch is sent before the last one is decoded, reported and recorded (two connections, one
    request in flight on each at most), so that the probe's lookup slots do not sit idle while Python
    works: the only gap between two batches is one HTTP round trip.
    """

    def on_start(self) -> None:
        options = self.environment.parsed_options
        if not self.host:
            raise StopUser()
        self.workloads = json.loads(options.dns_workloads)
        self.weights = [int(w.get("weight", 1)) for w in self.workloads]
        self.batch = options.dns_batch
        self.concurrency = options.dns_concurrency
        self.timeout_ms = options.dns_timeout_ms
        self.mode = options.dns_mode
        self.run_id = options.dns_run
        self.rate = float(options.dns_user_rate)
        self.records = _writer(options.dns_records, options.dns_keep_records, self.rate > 0)
        self.clients = [ProbeClient(self.host), ProbeClient(self.host)]
        self.turn = 0
        self.next_ns = time.time_ns() + int(OPEN_LOOP_LEAD_S * 1e9)
        self.inflight: list[gevent.Greenlet] = []  # oldest first; two at most

    def on_stop(self) -> None:
        """Batches in flight are waited for and recorded: a stop loses no lookup the probe made."""
        while self.inflight:
            with contextlib.suppress(StopUser):
                self._finish(self.inflight[0])
        for client in self.clients:
            client.close()

    @task
    def lookups(self) -> None:
        workload = random.choices(self.workloads, weights=self.weights)[0]  # noqa: S311 - load mix, not crypto
        start_ns = 0
        if self.rate > 0:
            start_ns = self.next_ns
            self.next_ns += int(self.batch * 1e9 / self.rate)
            delay = (start_ns - time.time_ns()) / 1e9 - OPEN_LOOP_LEAD_S
            if delay > 0:
                gevent.sleep(delay)
        elif self.inflight:
            self.inflight[-1].join()  # closed loop: the next batch starts when the last one is done
        client = self.clients[self.turn]  # the batch still in flight, if any, uses the other one
        self.turn ^= 1
        self.inflight.append(gevent.spawn(self._ask, client, workload, start_ns))
        gevent.sleep(0)  # the new batch's request goes out now, not after the last batch is reported
        if len(self.inflight) > 1:
            self._finish(self.inflight[0])

    def _ask(
        self, client: ProbeClient, workload: dict[str, Any], start_ns: int
    ) -> tuple[dict[str, Any], int, bytes | Exception]:
        """(workload, when sent, the response or why there is none): a batch that fails is still known,
        so that its lookups can be counted as lost."""
        body: dict[str, Any] = {
            "kind": workload.get("kind", "host"),
            "name": workload["query"],
            "count": self.batch,
            "concurrency": self.concurrency,
            "timeout_ms": self.timeout_ms,
        }
        if start_ns:
            body["rate"] = self.rate
            body["start_ns"] = start_ns
        sent = time.time_ns()
        try:
            return workload, sent, client.batch_bytes(body)
        except Exception as exc:  # any failure loses the whole batch; _finish reports it
            return workload, sent, exc

    def _finish(self, greenlet: gevent.Greenlet) -> None:
        """Wait for one batch, then report it; it leaves `inflight` only once reported (or failed)."""
        greenlet.join()
        self.inflight.remove(greenlet)
        if greenlet.successful():
            workload, sent, data = greenlet.value
            if not isinstance(data, Exception):
                self._report(workload, sent, decode_results(data))
                return
            self._record_lost(workload, sent, data)
            exc: BaseException | None = data
        else:
            exc = greenlet.exception
        self.environment.events.request.fire(
            request_type="probe", name="batch", response_time=0, response_length=0, exception=exc, context={}
        )
        if isinstance(exc, ProbeUnavailable):
            raise StopUser() from exc
        if exc is not None:
            raise exc

    def _record_lost(self, workload: dict[str, Any], sent: int, exc: Exception) -> None:
        """A batch sent without a response (the probe or its pod died, or it never answered): each of its
        lookups becomes a record of outcome `lost`, so the run's counts still cover everything asked."""
        if self.records is None:
            return
        error = f"no response to the batch: {exc}"[:500]
        label, kind, query = workload["label"], workload.get("kind", "host"), workload["query"]
        row = (self.run_id, self.mode, label, kind, query, sent, sent, 0, "lost", error, 0)
        self.records.append([row] * self.batch)

    def _report(self, workload: dict[str, Any], sent: int, results: list[dict[str, Any]]) -> None:
        """Every lookup to Locust (Go's latency; in open loop from the intended start) and to the records."""
        fire = self.environment.events.request.fire
        label = workload["label"]
        kind = workload.get("kind", "host")
        request_type = f"DNS {kind}"
        for index, r in enumerate(results):
            if index % _REPORT_SLICE == _REPORT_SLICE - 1:
                gevent.sleep(0)  # another user whose batch is done sends its next one meanwhile
            outcome = r["outcome"]
            intended = r.get("intended_ns", 0)
            latency = r["latency_ns"] + (r["start_ns"] - intended if intended else 0)
            failed = None
            if outcome != "ok":
                failed = _FAILED.get(outcome) or _FAILED.setdefault(outcome, LookupFailed(outcome))
            fire(
                request_type=request_type,
                name=label,
                response_time=latency / 1e6,
                response_length=r["answers"],
                context=_NO_CONTEXT,
                exception=failed,
            )
        if self.records is not None:
            run, mode = self.run_id, self.mode
            self.records.append(
                (
                    run,
                    mode,
                    label,
                    kind,
                    r["name"],
                    r.get("intended_ns") or sent,
                    r["start_ns"],
                    r["latency_ns"],
                    r["outcome"],
                    r["error"],
                    r["answers"],
                )
                for r in results
            )
