"""The embedded nameserver: answers from a zone, logs every query, and injects faults.

zone.py      records in master-file syntax and how a question is answered from them
wire.py      the hot path: hand-rolled parsing, answers pre-encoded once per zone
querylog.py  one TSV line per packet received, and its reader
server.py    the Python engine: asyncio UDP + TCP listeners, `NameserverThread`, the `Policy` hook
faults.py    the scenario's fault rules compiled once for both engines, and the Python engine's `Policy`
goengine.py  the Go engine (goserver/): records and fault rules, the same bytes at dnsmasq's pace
group.py     a pod's servers (embedded on either engine, dnsmasq, unbound or external), `dnsprobe serve`
real.py      dnsmasq and unbound configured from the same records
"""

from dnsprobe.codec.wire import Query
from dnsprobe.codec.zone import Answer, Zone
from dnsprobe.nameserver.querylog import QueryLog, QueryLogEntry, read_querylog
from dnsprobe.nameserver.server import Endpoint, Fault, Nameserver, NameserverThread, Policy, serve_forever

__all__ = [
    "Answer",
    "Endpoint",
    "Fault",
    "Nameserver",
    "NameserverThread",
    "Policy",
    "Query",
    "QueryLog",
    "QueryLogEntry",
    "Zone",
    "read_querylog",
    "serve_forever",
]
