"""The nameserver's view (`timeline.WireView`) counted while the run goes, so that the report of a long run
does not read hours of query log again.

The query-log compactor (nameserver/logstore.py) hands each chunk of lines it takes to a `WireCounter`,
which counts them as `timeline.read_wire_view` does and stores its running totals in `records.sqlite`
(table `wire_rollups`, one row per mode, replaced at each step) together with how far into the log they
reach: `covered` bytes of log text and `zst_size` bytes of `queries.tsv.zst`. The analysis then adds the
lines past that point (none, after a clean end) to the stored totals: the same figures as reading it all.
"""

from __future__ import annotations

import json
import re
import sqlite3
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from dnsprobe.analyse import timeline
from dnsprobe.load import records
from dnsprobe.nameserver import logstore

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS wire_rollups (
    mode TEXT PRIMARY KEY, covered INTEGER NOT NULL, zst_size INTEGER NOT NULL, view TEXT NOT NULL
);
"""
_PROTOS: Final = ("udp", "tcp")


class WireCounter:
    """Counts query-log chunks for one mode; `save` stores the totals with the log position."""

    def __init__(
        self, records_path: Path, mode: str, patterns: Sequence[tuple[str, re.Pattern[str]]]
    ) -> None:
        self.records_path = records_path
        self.mode = mode
        self.patterns = list(patterns)
        self.kinds: Counter[tuple[str, str, str, str]] = Counter()
        self.per: Counter[str] = Counter()
        self.ports = {proto: np.zeros(65536, dtype=bool) for proto in _PROTOS}
        self.other_ports: set[tuple[str, str]] = set()
        self._matched: dict[str, str | None] = {}

    def count(self, chunk: bytes) -> None:
        matched = self._matched
        kinds, per = self.kinds, self.per
        seen: dict[str, set[int]] = {proto: set() for proto in _PROTOS}
        for line in chunk.decode("utf-8", "replace").split("\n"):
            fields = line.split("\t")
            if len(fields) != 10 or line == logstore_header():
                continue
            _, proto, _, port, _, qname, qtype, _, fault, rcode = fields
            kinds[proto, qtype, fault, rcode] += 1
            if proto in seen and port.isdigit():
                seen[proto].add(int(port))
            else:
                self.other_ports.add((proto, port))
            label = matched.get(qname, "\0")
            if label == "\0":
                name = qname.lower()
                label = next((lbl for lbl, p in self.patterns if p.match(name)), None)
                if len(matched) > 4096:
                    matched.clear()
                matched[qname] = label
            if label is not None:
                per[label] += 1
        for proto, ports in seen.items():
            if ports:
                self.ports[proto][np.fromiter(ports, np.int64, len(ports)) % 65536] = True

    def view(self) -> timeline.WireView:
        rcodes: Counter[str] = Counter()
        qtypes: Counter[str] = Counter()
        protos: Counter[str] = Counter()
        faults: Counter[str] = Counter()
        for (proto, qtype, fault, rcode), n in self.kinds.items():
            protos[proto] += n
            qtypes[qtype] += n
            rcodes[rcode] += n
            if fault != "-":
                faults[fault] += n
        ports = sum(int(bits.sum()) for bits in self.ports.values()) + len(self.other_ports)
        return timeline.WireView(
            sum(self.kinds.values()), Counter(self.per), rcodes, qtypes, protos, faults, ports
        )

    def save(self, covered: int, zst_size: int) -> None:
        state = {
            "kinds": [[*key, n] for key, n in self.kinds.items()],
            "per": dict(self.per),
            "ports": {p: zlib.compress(np.packbits(b).tobytes()).hex() for p, b in self.ports.items()},
            "other_ports": sorted(self.other_ports),
        }
        db = records.connect(self.records_path)
        try:
            db.executescript(SCHEMA)
            db.execute(
                "INSERT OR REPLACE INTO wire_rollups VALUES (?, ?, ?, ?)",
                (self.mode, covered, zst_size, json.dumps(state)),
            )
        finally:
            db.close()

    @classmethod
    def load(
        cls, records_path: Path, mode: str, patterns: Sequence[tuple[str, re.Pattern[str]]]
    ) -> tuple[WireCounter, int, int] | None:
        """The stored totals of a mode and (covered, zst_size); None when there are none."""
        if not records_path.exists():
            return None
        db = sqlite3.connect(f"file:{records_path}?mode=ro", uri=True, timeout=30)
        try:
            row = db.execute(
                "SELECT covered, zst_size, view FROM wire_rollups WHERE mode = ?", (mode,)
            ).fetchone()
        except sqlite3.OperationalError:
            return None
        finally:
            db.close()
        if row is None:
            return None
        state: dict[str, Any] = json.loads(row[2])
        counter = cls(records_path, mode, patterns)
        for proto, qtype, fault, rcode, n in state["kinds"]:
            counter.kinds[proto, qtype, fault, rcode] = n
        counter.per.update(state["per"])
        for proto, packed in state["ports"].items():
            bits = np.unpackbits(np.frombuffer(zlib.decompress(bytes.fromhex(packed)), np.uint8))
            counter.ports[proto] = bits[:65536].astype(bool)
        counter.other_ports = {(p, port) for p, port in state["other_ports"]}
        return counter, int(row[0]), int(row[1])


def logstore_header() -> str:
    from dnsprobe.nameserver.querylog import HEADER

    return HEADER


def read_wire_view(
    records_path: Path, mode: str, querylog: Path, patterns: Sequence[tuple[str, re.Pattern[str]]]
) -> timeline.WireView:
    """The mode's wire view: stored totals plus the log past them, or the whole log without totals."""
    loaded = WireCounter.load(records_path, mode, patterns)
    if loaded is None:
        return timeline.read_wire_view(logstore.querylog_lines(querylog), patterns)
    counter, covered, zst_size = loaded
    rest = "".join(logstore.querylog_lines(querylog, start=covered, zst_offset=zst_size))
    if rest:
        counter.count(rest.encode())
    return counter.view()
