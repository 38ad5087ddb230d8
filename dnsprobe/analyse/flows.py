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

from collections.abc import Iterable
from typing import Any

from dnsprobe.nameserver.querylog import read_querylog_fields


def drop_window(lines: Iterable[str], t0_ns: int | None) -> dict[str, Any] | None:
    """The dropped queries' window and flows (seconds since `t0_ns`, the mode's first lookup); None when
    the server dropped nothing."""
    rows = [(float(f[0]), f[3], f[9] == "drop") for f in read_querylog_fields(lines)]
    drops = [t for t, _, dropped in rows if dropped]
    if not drops:
        return None
    start, end = min(drops), max(drops)
    first_seen: dict[str, float] = {}
    for t, port, _ in rows:
        first_seen.setdefault(port, t)
    dropped_old = sum(1 for t, port, dropped in rows if dropped and first_seen[port] < start)
    in_window = [(t, port) for t, port, dropped in rows if not dropped and start <= t <= end]
    answered_new = sum(1 for _, port in in_window if first_seen[port] >= start)
    origin = t0_ns / 1e9 if t0_ns is not None else min(t for t, _, _ in rows)
    span = max(t for t, _, _ in rows) - min(t for t, _, _ in rows)
    return {
        "drops": len(drops),
        "window_s": [round(start - origin, 2), round(end - origin, 2)],
        "window_share_of_run": round((end - start) / span, 3) if span > 0 else 1.0,
        "dropped_on_old_ports": round(dropped_old / len(drops), 3),
        "answered_in_window": len(in_window),
        "answered_on_new_ports": round(answered_new / len(in_window), 3) if in_window else None,
    }
