"""The embedded nameserver: answers from a zone, logs every query, and (next) injects faults.

zone.py      records in master-file syntax and how a question is answered from them
wire.py      the hot path: hand-rolled parsing, answers pre-encoded once per zone
querylog.py  one TSV line per packet received, and its reader
server.py    asyncio UDP + TCP listeners, `NameserverThread`, `serve_forever`, the `Policy` hook
"""

from dnsprobe.nameserver.querylog import QueryLog, QueryLogEntry, read_querylog
from dnsprobe.nameserver.server import Endpoint, Fault, Nameserver, NameserverThread, Policy, serve_forever
from dnsprobe.nameserver.wire import Query
from dnsprobe.nameserver.zone import Answer, Zone

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
