"""What a run keeps on disk, per the `[load]` storage settings: the size estimate printed before a long
run, and the query-log compactor each mode starts (nameserver/logstore.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dnsprobe.scenario import Load

if TYPE_CHECKING:
    pass

# Bytes on disk, measured with `dnsprobe bench soak` (synthetic, 10,000 lookups/s, 5 wire queries each).
RECORD_BYTES: Final = 112  # one row of `lookups` (the quickstart figure: 65 MB for 578,600)
ROLLUP_BYTES_PER_S: Final = 3_000  # rollup rows per second and Locust process, histograms included
QUERY_TSV_BYTES: Final = 113  # one query-log line as text
QUERY_ZSTD_BYTES: Final = 5  # the same line in queries.tsv.zst (4.6 measured over the hour)
ASSUMED_RATE: Final = 10_000.0  # lookups/s when the scenario sets no rate (about what a probe does here)
ASSUMED_WIRE_PER_LOOKUP: Final = 2.0  # A + AAAA; a search list multiplies it
LONG_RUN_S: Final = 300.0  # runs of at least this much load per mode get the estimate printed
SAMPLE_PER_SECOND: Final = 20


def compresses_querylog(load: Load) -> bool:
    if load.querylog == "auto":
        return load.keep_records != "all"
    return load.querylog == "zstd"


def estimate_bytes(load: Load, seconds: float, modes: int) -> int:
    rate = load.rate or ASSUMED_RATE
    lookups = rate * seconds
    if load.keep_records == "all":
        kept = lookups
    elif load.keep_records == "sample":
        kept = min(lookups, SAMPLE_PER_SECOND * seconds * max(1, load.processes or 1)) + lookups * 0.01
    else:
        kept = lookups * 0.01  # failures; 1% is a guess: a fault scenario can fail far more
    per_query = QUERY_ZSTD_BYTES if compresses_querylog(load) else QUERY_TSV_BYTES
    total = kept * RECORD_BYTES + seconds * ROLLUP_BYTES_PER_S + lookups * ASSUMED_WIRE_PER_LOOKUP * per_query
    return int(total * modes)


def estimate_text(load: Load, seconds: float, modes: int) -> str:
    """One line for runs of `LONG_RUN_S` or more per mode ("" otherwise)."""
    if seconds < LONG_RUN_S:
        return ""
    size = estimate_bytes(load, seconds, modes)
    rate = f"{load.rate:,.0f}" if load.rate else f"up to about {ASSUMED_RATE:,.0f}"
    log = "zstd" if compresses_querylog(load) else "tsv"
    advice = "" if load.keep_records != "all" else '; set load.keep_records = "sample" to keep it small'
    return (
        f"disk estimate: about {size / 1e9:,.1f} GB for {modes} mode(s) x {seconds:,.0f} s at {rate} "
        f"lookups/s (keep_records = {load.keep_records}, query log {log}){advice}"
    )
