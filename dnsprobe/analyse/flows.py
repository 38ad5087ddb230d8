"""Which flows the nameserver left unanswered: the evidence of stale conntrack/IPVS entries after a DNS
backend rollout (catalog 37).

From the query log (time, client port, rcode): the window from the first to the last query the server saw
and did not answer (rcode `drop`), the share of those dropped queries whose client port the server had
already seen before the window began (an old flow), and the share of the queries it answered inside the
window that came from ports first seen since (new flows). Stale flows show a short window, dropped queries
on old ports only, and new ports answered; drops spread over the run (a lossy link, a conntrack race) show
a window as long as the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from dnsprobe.nameserver.querylog import read_querylog_fields


def drop_window(read: Callable[[], Iterable[str]], t0_ns: int | None) -> dict[str, Any] | None:
    """The dropped queries' window and flows (seconds since `t0_ns`, the mode's first lookup); None when
    the server dropped nothing. `read` gives the query log's lines afresh each call: it is read twice,
    so memory stays one entry per client port, however long the run (a soak's log has millions)."""
    first_seen: dict[str, float] = {}  # client port -> its first query's time
    drops_on: dict[str, int] = {}  # client port -> queries dropped on it
    drops, start, end = 0, math.inf, -math.inf
    earliest, latest = math.inf, -math.inf
    for f in read_querylog_fields(read()):
        t, port = float(f[0]), f[3]
        first_seen.setdefault(port, t)
        earliest, latest = min(earliest, t), max(latest, t)
        if f[9] == "drop":
            drops += 1
            drops_on[port] = drops_on.get(port, 0) + 1
            start, end = min(start, t), max(end, t)
    if not drops:
        return None
    dropped_old = sum(n for port, n in drops_on.items() if first_seen[port] < start)
    in_window = answered_new = 0
    for f in read_querylog_fields(read()):  # the second pass: the answered queries inside the window
        t, port = float(f[0]), f[3]
        if f[9] != "drop" and start <= t <= end and port in first_seen:
            in_window += 1
            answered_new += first_seen[port] >= start
    origin = t0_ns / 1e9 if t0_ns is not None else earliest
    span = latest - earliest
    return {
        "drops": drops,
        "window_s": [round(start - origin, 2), round(end - origin, 2)],
        "window_share_of_run": round((end - start) / span, 3) if span > 0 else 1.0,
        "dropped_on_old_ports": round(dropped_old / drops, 3),
        "answered_in_window": in_window,
        "answered_on_new_ports": round(answered_new / in_window, 3) if in_window else None,
    }
