"""What the report's renderers share, so HTML, Markdown, terminal and charts cannot drift apart:

- `OUTCOME_CLASSES` / `PALETTE`: the fixed order and colours of outcome classes,
- the comparison, checks and workload tables as rows of `Cell` fragments,
- `chart_titles`: the finding each chart states, reused as alt text and captions,
- `write_atomic`: every file goes to a temp name first, then `os.replace`.

Input is the summary the pipeline writes as summary.json (README, "Contracts"); nothing here reaches back
into an earlier stage.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

OUTCOME_CLASSES: Final = (
    "ok",
    "not_found",
    "timeout",
    "temporary",
    "refused",
    "start_failure",
    "lost",
    "other",
)
# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies, and in greyscale print.
PALETTE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ok": "#009E73",
        "not_found": "#56B4E9",
        "timeout": "#D55E00",
        "temporary": "#E69F00",
        "refused": "#CC79A7",
        "start_failure": "#000000",
        "lost": "#0072B2",  # batches a dead probe never answered
        "other": "#999999",
    }
)
# REFUSED is "refused", and older summaries spelled it "server_misbehaving" (Go's wording): one class.
_ALIASES: Final[Mapping[str, str]] = MappingProxyType({"server_misbehaving": "refused"})

STATUS_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    # "pending": the run was interrupted before this mode's probe was built or started.
    {"ran": "ran", "skipped": "skipped", "start_failure": "did not start", "pending": "not run"}
)
CHART_NAMES: Final = (
    "latency",
    "latency_cdf",
    "latency_over_time",
    "workload_p99_over_time",
    "threads",
    "outcomes",
    "failures_over_time",
    "throughput",
    "wire_queries",
    "source_ports",
)
# A lookup of an absolute name costs one A and one AAAA query: anything above is search-list expansion,
# retries or TCP fallback.
BASELINE_WIRE_QUERIES: Final = 2.0
BASELINE_LABEL: Final = "2 = A + AAAA, no search expansion"
DASH: Final = "—"


# --- reading the summary -------------------------------------------------------------------------------


def modes(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in summary.get("modes") or () if isinstance(m, Mapping)]


def section(entry: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested object of the summary (pod, load, trace, ...), empty when missing or not an object."""
    value = entry.get(key)
    return value if isinstance(value, Mapping) else {}


def checks(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in summary.get("checks") or () if isinstance(c, Mapping)]


def number(value: object) -> float | None:
    """A finite JSON number, else None (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def count(value: object) -> int:
    n = number(value)
    return int(n) if n is not None else 0


def mode_name(mode: Mapping[str, Any]) -> str:
    return str(mode.get("mode") or "?")


def mode_status(mode: Mapping[str, Any]) -> str:
    return str(mode.get("status") or "ran")


def status_label(mode: Mapping[str, Any]) -> str:
    status = mode_status(mode)
    return STATUS_LABELS.get(status, status)


def ran(mode: Mapping[str, Any]) -> bool:
    return mode_status(mode) == "ran"


def latency(mode: Mapping[str, Any], key: str) -> float | None:
    return number(section(mode, "latency_ms").get(key))


def failure_items(entry: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Non-zero failure counts as reported: known classes in the fixed order, then any others by name."""
    raw = entry.get("failures")
    if not isinstance(raw, Mapping):
        return []
    counts = {str(k): count(v) for k, v in raw.items() if count(v) > 0}
    known = [(c, counts[c]) for c in OUTCOME_CLASSES if c in counts]
    return known + sorted((k, v) for k, v in counts.items() if k not in OUTCOME_CLASSES)


def outcome_counts(entry: Mapping[str, Any]) -> dict[str, int]:
    """Counts for every class in `OUTCOME_CLASSES` order; unknown classes are folded into "other"."""
    out = dict.fromkeys(OUTCOME_CLASSES, 0)
    out["ok"] = count(entry.get("ok"))
    for name, n in failure_items(entry):
        name = _ALIASES.get(name, name)
        out[name if name in out else "other"] += n
    return out


def outcome_class(name: str) -> str:
    """The palette class a reported failure name is drawn with."""
    name = _ALIASES.get(name, name)
    return name if name in PALETTE else "other"


def failed_checks(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in checks(summary) if c.get("passed") is not True]


def verdict(summary: Mapping[str, Any]) -> tuple[bool, str]:
    """(all passed, one sentence)."""
    total, failed = len(checks(summary)), len(failed_checks(summary))
    if total == 0:
        return True, "No checks were run."
    if failed == 0:
        return True, f"All {total} checks passed." if total > 1 else "The check passed."
    return False, f"{failed} of {total} checks failed."


def run_banner(summary: Mapping[str, Any]) -> str | None:
    """The warning an unfinished run must carry, or None for a run that finished."""
    if summary.get("interrupted"):
        stop = section(summary, "interruption")
        how = f" by {stop.get('signal')}" if stop.get("signal") else ""
        if stop.get("stage"):
            how += f" during {stop.get('stage')}" + (f" of {stop.get('mode')}" if stop.get("mode") else "")
        return (
            f"Interrupted: this run was stopped{how} before it finished. The figures cover only what ran "
            "before the stop and are not comparable with a complete run."
        )
    error = section(summary, "error")
    if error:
        where = f"{error.get('stage')}" + (f" of {error.get('mode')}" if error.get("mode") else "")
        return (
            f"Failed during {where}: {error.get('text')}. The figures cover only what ran before the failure."
        )
    if summary.get("finished") is not True:
        return "Did not finish: this run ended early. The figures cover only what ran before it ended."
    return None


def quick_note(summary: Mapping[str, Any]) -> str | None:
    if summary.get("quick"):
        return "Quick run (--quick): each load phase lasted a few seconds; treat the figures as a smoke test."
    return None


def mode_failed_checks(summary: Mapping[str, Any], mode: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The failed checks about one mode: each check names its mode (older summaries only in the check's
    name, "<mode>: ...")."""
    name = mode_name(mode)
    return [
        c
        for c in failed_checks(summary)
        if c.get("mode") == name or ("mode" not in c and str(c.get("name", "")).startswith(f"{name}:"))
    ]


# --- formatting ----------------------------------------------------------------------------------------


def fmt_int(value: object) -> str:
    n = number(value)
    return DASH if n is None else f"{int(n):,}"


def fmt_ms(value: object) -> str:
    n = number(value)
    if n is None:
        return DASH
    if n < 10:
        return f"{n:.2f}"
    if n < 100:
        return f"{n:.1f}"
    return f"{n:,.0f}"


def fmt_rate(value: object) -> str:
    n = number(value)
    if n is None:
        return DASH
    return f"{n:,.0f}" if n >= 100 else f"{n:.1f}"


def fmt_ratio(value: object) -> str:
    n = number(value)
    return DASH if n is None else f"{n:.1f}"


def fmt_pct(part: int, whole: int) -> str:
    if whole <= 0:
        return DASH
    share = 100.0 * part / whole
    if 0 < share < 0.1:
        return "<0.1%"
    if 99.9 < share < 100:
        return ">99.9%"
    return f"{share:.1f}%"


def fmt_value(value: object) -> str:
    """A fact from the summary (binary, load, nameserver) as text."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(fmt_value(v) for v in value) or DASH
    return str(value)


def nameserver_text(nameserver: Mapping[str, Any]) -> str:
    """`embedded (go engine) 127.0.0.1:53`: the summary's nameserver in one line."""
    kind = fmt_value(nameserver.get("kind"))
    if nameserver.get("engine"):
        kind += f" ({nameserver['engine']} engine)"
    return f"{kind} {fmt_value(nameserver.get('endpoints'))}"


# --- tables as cells -----------------------------------------------------------------------------------

Tone = Literal["", "bad", "good", "muted"]


@dataclass(frozen=True)
class Cell:
    """One fragment of a table cell; a cell is a tuple of fragments joined by ", "."""

    text: str
    tone: Tone = ""
    outcome: str | None = None  # drawn with PALETTE[outcome] where the medium has colour


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool = False
    wrap: bool = False  # free text that may wrap (details, names)


Fragments = tuple[Cell, ...]
Row = tuple[Fragments, ...]

COMPARISON_COLUMNS: Final = (
    Column("mode"),
    Column("status"),
    Column("resolver (expected)"),
    Column("lookups", numeric=True),
    Column("lookups/s", numeric=True),
    Column("p50 ms", numeric=True),
    Column("p99 ms", numeric=True),
    Column("failures"),
    Column("wire q/lookup", numeric=True),
)
CHECK_COLUMNS: Final = (Column("result"), Column("check", wrap=True), Column("detail", wrap=True))
WORKLOAD_COLUMNS: Final = (
    Column("workload"),
    Column("kind"),
    Column("name", wrap=True),
    Column("lookups", numeric=True),
    Column("p50 ms", numeric=True),
    Column("p99 ms", numeric=True),
    Column("failures"),
    Column("wire q/lookup", numeric=True),
)


def _failure_cell(entry: Mapping[str, Any]) -> Fragments:
    items = failure_items(entry)
    if not items:
        return (Cell("none", "muted"),)
    total = count(entry.get("lookups"))
    return tuple(Cell(f"{name} {n:,} ({fmt_pct(n, total)})", "bad", outcome_class(name)) for name, n in items)


def _resolver_cell(mode: Mapping[str, Any]) -> Fragments:
    used, expected = mode.get("resolver"), mode.get("expected_resolver")
    if not ran(mode) or not used:
        return (Cell(DASH if not expected else f"{DASH} ({expected})", "muted"),)
    if expected is None:
        return (Cell(str(used), "bad" if used in ("mixed", "unknown") else ""),)
    if used == expected:
        return (Cell(f"{used} ({expected})", "good"),)
    return (Cell(f"{used} (expected {expected})", "bad"),)


def _number_cell(text: str, tone: Tone = "") -> Fragments:
    return (Cell(text, "muted" if text == DASH else tone),)


def comparison_rows(summary: Mapping[str, Any]) -> list[Row]:
    """One row per mode, in `COMPARISON_COLUMNS` order; failing values carry tone "bad"."""
    rows: list[Row] = []
    for mode in modes(summary):
        status = mode_status(mode)
        status_tone: Tone = "" if status == "ran" else "bad" if status == "start_failure" else "muted"
        lookups = count(mode.get("lookups"))
        # A probe that did not start is recorded as one start_failure lookup: show it, it is the finding.
        has_data = ran(mode) or lookups > 0
        rows.append(
            (
                (Cell(mode_name(mode), "bad" if mode_failed_checks(summary, mode) else ""),),
                (Cell(status_label(mode), status_tone),),
                _resolver_cell(mode),
                _number_cell(
                    fmt_int(lookups) if has_data else DASH, "bad" if has_data and not lookups else ""
                ),
                _number_cell(fmt_rate(mode.get("lookups_per_s")) if ran(mode) else DASH),
                _number_cell(fmt_ms(latency(mode, "p50"))),
                _number_cell(fmt_ms(latency(mode, "p99"))),
                _failure_cell(mode) if has_data else (Cell(DASH, "muted"),),
                _number_cell(fmt_ratio(mode.get("wire_queries_per_lookup"))),
            )
        )
    return rows


def check_rows(summary: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for check in checks(summary):
        passed = check.get("passed") is True
        rows.append(
            (
                (Cell("PASS", "good") if passed else Cell("FAIL", "bad"),),
                (Cell(str(check.get("name") or "?")),),
                (Cell(fmt_value(check.get("detail"))),),
            )
        )
    return rows


def workload_rows(mode: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for w in mode.get("workloads") or ():
        if not isinstance(w, Mapping):
            continue
        rows.append(
            (
                (Cell(fmt_value(w.get("workload"))),),
                (Cell(fmt_value(w.get("kind"))),),
                (Cell(fmt_value(w.get("name"))),),
                _number_cell(fmt_int(w.get("lookups"))),
                _number_cell(fmt_ms(latency(w, "p50"))),
                _number_cell(fmt_ms(latency(w, "p99"))),
                _failure_cell(w),
                _number_cell(fmt_ratio(w.get("wire_queries_per_lookup"))),
            )
        )
    return rows


def cell_text(fragments: Fragments) -> str:
    return ", ".join(f.text for f in fragments)


# --- chart titles --------------------------------------------------------------------------------------


def _times(ratio: float) -> str:
    return f"{ratio:.1f}×" if ratio < 10 else f"{ratio:,.0f}×"


def _latency_finding(summary: Mapping[str, Any]) -> str:
    p99 = [(latency(m, "p99"), mode_name(m)) for m in modes(summary) if ran(m)]
    measured = sorted((v, name) for v, name in p99 if v is not None)
    if not measured:
        return "No lookup latency was measured"
    (low, fast), (high, slow) = measured[0], measured[-1]
    if len(measured) == 1:
        return f"p99 latency {fmt_ms(high)} ms ({slow})"
    if low > 0 and high / low >= 1.5:
        return (
            f"p99 latency: {slow} {fmt_ms(high)} ms vs {fast} {fmt_ms(low)} ms ({_times(high / low)} slower)"
        )
    if fmt_ms(low) == fmt_ms(high):
        return f"p99 latency is {fmt_ms(high)} ms in every mode that ran"
    return f"p99 latency is similar across modes: {fmt_ms(low)} to {fmt_ms(high)} ms"


def _outcome_finding(summary: Mapping[str, Any]) -> str:
    shares = []
    for m in modes(summary):
        counts = outcome_counts(m)
        total = sum(counts.values())
        if ran(m) and total:
            shares.append((counts["ok"] / total, mode_name(m), counts, total))
    if not shares:
        return "No lookups were made"
    worst = min(shares, key=lambda s: s[0])
    if worst[0] == 1.0:
        return "Every lookup succeeded in every mode that ran"
    _, name, counts, total = worst
    failures = {c: n for c, n in counts.items() if c != "ok"}
    top = max(failures, key=lambda c: failures[c])  # ties: first in the fixed class order
    prefix = "Lowest success rate: " if len(shares) > 1 else ""
    return f"{prefix}{name}, {fmt_pct(counts['ok'], total)} ok (mostly {top})"


def _wire_finding(summary: Mapping[str, Any]) -> str:
    seen: list[tuple[float, str, str]] = []
    for m in modes(summary):
        if not ran(m):
            continue
        for w in m.get("workloads") or ():
            if isinstance(w, Mapping) and (v := number(w.get("wire_queries_per_lookup"))) is not None:
                seen.append((v, mode_name(m), f"workload {w.get('workload')}"))
        if (v := number(m.get("wire_queries_per_lookup"))) is not None:
            seen.append((v, mode_name(m), "all workloads"))
    if not seen:
        return "No wire queries were counted"
    top = max(seen, key=lambda s: s[0])
    if top[0] <= BASELINE_WIRE_QUERIES * 1.05:
        return "Every lookup cost about 2 wire queries or fewer (A + AAAA)"
    return f"Up to {top[0]:.1f} wire queries per lookup ({top[1]}, {top[2]})"


def _timeout_finding(summary: Mapping[str, Any]) -> str:
    worst: tuple[float, str, Mapping[str, Any]] | None = None
    for m in modes(summary):
        for peak in m.get("timeout_peaks") or ():
            share = number(peak.get("share")) if isinstance(peak, Mapping) else None
            if share is not None and (worst is None or share > worst[0]):
                worst = (share, mode_name(m), peak)
    if worst is None:
        return "No lookup waited out the resolver timeout"
    share, name, peak = worst
    return (
        f"Timeout fingerprint: {fmt_pct(round(share * 1e5), 100_000)} of {name}'s lookups ended at "
        f"{peak.get('k')}× the {number(peak.get('at_s', 0)) or 0:g} s mark"
    )


def _series_finding(summary: Mapping[str, Any], key: str) -> tuple[float, str, float] | None:
    """The highest value of a per-bin series over all modes: (value, mode, bin start s)."""
    best: tuple[float, str, float] | None = None
    for m in modes(summary):
        tl = section(m, "timeline")
        for x, v in zip(tl.get("start_s") or (), tl.get(key) or (), strict=False):
            if (n := number(v)) is not None and (best is None or n > best[0]):
                best = (n, mode_name(m), float(x))
    return best


def _failures_over_time_finding(summary: Mapping[str, Any]) -> str:
    worst: tuple[int, str, str] | None = None
    for m in modes(summary):
        for cls, counts in section(section(m, "timeline"), "failures").items():
            total = sum(count(c) for c in counts or ())
            if total and (worst is None or total > worst[0]):
                worst = (total, mode_name(m), str(cls))
    if worst is None:
        return "No failures at any time"
    return f"Most failures: {worst[1]}, {worst[0]:,} {worst[2]} over the run"


def _throughput_finding(summary: Mapping[str, Any]) -> str:
    rates = sorted(
        (v, mode_name(m)) for m in modes(summary) if ran(m) and (v := number(m.get("lookups_per_s")))
    )
    if not rates:
        return "No throughput measured"
    if len(rates) == 1:
        return f"{rates[0][1]}: {fmt_rate(rates[0][0])} lookups/s"
    (low, slow), (high, fast) = rates[0], rates[-1]
    return f"Throughput: {fast} {fmt_rate(high)} lookups/s, {slow} {fmt_rate(low)} lookups/s"


def _ports_finding(summary: Mapping[str, Any]) -> str:
    seen = []
    for m in modes(summary):
        wire = section(m, "wire")
        ports, queries = number(wire.get("source_ports")), number(wire.get("queries"))
        if ports and queries:
            seen.append((queries / ports, mode_name(m), ports))
    if not seen:
        return "No source ports seen"
    per, name, ports = max(seen)
    return f"Most queries per source port: {name}, {per:.1f} (over {fmt_int(ports)} ports)"


def peak_threads(mode: Mapping[str, Any]) -> int | None:
    """The most OS threads the probe had during the mode's load (None: not sampled)."""
    peak = number(section(mode, "threads").get("peak"))
    return None if peak is None else int(peak)


def _threads_finding(summary: Mapping[str, Any]) -> str:
    peaks = sorted(
        ((p, mode_name(m)) for m in modes(summary) if (p := peak_threads(m)) is not None), reverse=True
    )
    if not peaks:
        return "No thread samples in this summary"
    return "Peak OS threads: " + ", ".join(f"{name} {fmt_int(p)}" for p, name in peaks)


def _workload_p99_finding(summary: Mapping[str, Any]) -> str:
    best: tuple[float, str, str] | None = None
    for m in modes(summary):
        for label, values in section(section(m, "timeline"), "p99_by_workload").items():
            for v in values or ():
                if (n := number(v)) is not None and (best is None or n > best[0]):
                    best = (n, mode_name(m), str(label))
    if best is None:
        return "No per-workload latency over time in this summary"
    return f"Worst p99 of one workload: {best[1]} `{best[2]}` {fmt_ms(best[0])} ms"


def chart_titles(summary: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Per chart: (the finding, in words; what is plotted, with units)."""
    peak = _series_finding(summary, "p99")
    return {
        "latency_cdf": (
            _timeout_finding(summary),
            "Share of lookups done within a latency, per mode (log ms); dashed: k × resolv.conf timeout",
        ),
        "latency_over_time": (
            f"Worst p99 over time: {peak[1]} {fmt_ms(peak[0])} ms at {peak[2]:g} s"
            if peak
            else "No latency over time in this summary",
            "p50 / p90 / p99 of the lookups started in each time bin (ms, log); dotted: resolver timeout",
        ),
        "failures_over_time": (
            _failures_over_time_finding(summary),
            "Failed lookups/s by outcome class, per mode, by start time; "
            "line: lookups/s that waited a timeout",
        ),
        "workload_p99_over_time": (
            _workload_p99_finding(summary),
            "p99 of each workload's lookups started in each time bin, per mode (ms, log)",
        ),
        "threads": (
            _threads_finding(summary),
            "The probe's OS threads (/proc/PID/status, once a second), per mode, by time since its first "
            "lookup",
        ),
        "throughput": (_throughput_finding(summary), "Lookups started per second, per mode"),
        "source_ports": (
            _ports_finding(summary),
            "Distinct client source ports the nameserver saw, per mode",
        ),
        "latency": (
            _latency_finding(summary),
            "Latency percentiles by resolver mode: bars p50 / p90 / p99, marker = max (ms)",
        ),
        "outcomes": (_outcome_finding(summary), "Lookups by outcome class per mode, % of the mode's lookups"),
        "wire_queries": (
            _wire_finding(summary),
            "Wire queries the nameserver saw per lookup, by mode and workload",
        ),
    }


# --- writing -------------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write to a temp file beside `path`, then `os.replace` it in: readers never see half a report."""
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are 0600, and a report is meant to be read by others (umask decides).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("xb") as f:
            f.write(payload)
        tmp.replace(path)  # os.replace: atomic within one filesystem
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def image_rootfs_text(summary: Mapping[str, Any]) -> str:
    """One line on the image root a run used (`[pod] rootfs = "image:..."`), for both report formats."""
    image = section(summary, "image_rootfs")
    layers = image.get("layers") or []
    text = f"{image.get('source')} ({str(image.get('image_id', ''))[:19]}, {len(layers)} layer(s))"
    if section(summary, "pod").get("nsswitch_from") == "image":
        text += "; /etc/nsswitch.conf above is the image's own, resolv.conf and hosts the pod's"
    return text


def sequence_of_str(value: object) -> Sequence[str]:
    if isinstance(value, str):
        return value.splitlines()
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


def resolv_conf_state_text(pod: Mapping[str, Any]) -> str:
    """The line under the pod's resolv.conf when the probe never read it (`[pod] resolv_conf`)."""
    state = str(pod.get("resolv_conf_state") or "present")
    if state == "missing":
        return (
            "Not in the pod (resolv_conf = missing): the probe found no /etc/resolv.conf; the text above "
            "is unused."
        )
    return (
        f"Unreadable in the pod (resolv_conf = {state}): mode 000 and the probe without CAP_DAC_OVERRIDE, "
        "so its open() failed with EACCES; the text above was never read."
    )
