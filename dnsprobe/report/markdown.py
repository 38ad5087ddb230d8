"""report.md: the report's content as GitHub-flavoured Markdown, for pasting into an incident ticket.

Charts are relative image links (charts/<name>.png), so the file reads best next to its run directory.
User text is backslash-escaped in prose and tables; multi-line text (pod files, start failures, trace
lines) goes into fenced blocks long enough that nothing inside can close them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from dnsprobe.report import postmortem
from dnsprobe.report.common import (
    CHART_NAMES,
    CHECK_COLUMNS,
    COMPARISON_COLUMNS,
    WORKLOAD_COLUMNS,
    Column,
    Fragments,
    Row,
    chart_titles,
    check_rows,
    comparison_rows,
    fmt_int,
    fmt_ms,
    fmt_value,
    image_rootfs_text,
    mode_name,
    mode_status,
    modes,
    nameserver_text,
    peak_threads,
    quick_note,
    resolv_conf_state_text,
    run_banner,
    section,
    sequence_of_str,
    status_label,
    verdict,
    workload_rows,
    write_atomic,
)

# "_" only at a word's edge: GFM never emphasises inside a word, and not\_found reads badly when pasted raw.
_SPECIAL: Final = re.compile(r"([\\`*\[\]<>|#]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")


def md(text: object) -> str:
    """Text as literal Markdown on one line: specials backslash-escaped, newlines as spaces."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _cell(fragments: Fragments) -> str:
    return ", ".join(f"**{md(f.text)}**" if f.tone == "bad" else md(f.text) for f in fragments)


def table(columns: Sequence[Column], rows: Iterable[Row]) -> str:
    lines = [
        "| " + " | ".join(md(c.title) for c in columns) + " |",
        "|" + "|".join("---:" if c.numeric else "---" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fenced(text: str, info: str = "text") -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


def _link(path: Path, relative_to: Path | None) -> str:
    if relative_to is not None:
        return Path(os.path.relpath(path, relative_to)).as_posix()
    return path.as_posix() if not path.is_absolute() else f"charts/{path.name}"


def _header(summary: Mapping[str, Any]) -> list[str]:
    out = [f"# dnsprobe report: {md(summary.get('scenario') or '?')}", ""]
    if banner := run_banner(summary):
        out += [f"> ⚠️ **{md(banner)}**", ""]
    if note := quick_note(summary):
        out += [f"> {md(note)}", ""]
    passed, sentence = verdict(summary)
    out += [f"**Verdict: {'✅' if passed else '❌'} {md(sentence)}**", ""]
    if summary.get("description"):
        out += [md(summary["description"]), ""]
    ns = section(summary, "nameserver")
    load = section(summary, "load")
    facts = [
        ("Run", summary.get("run_id")),
        ("Scenario file", summary.get("scenario_file")),
        ("Started", summary.get("started_at")),
        ("Finished", summary.get("finished_at") if summary.get("finished") else "did not finish"),
        ("Nameserver", nameserver_text(ns)),
        ("Load", ", ".join(f"{k} {fmt_value(v)}" for k, v in load.items()) or None),
    ]
    out += [f"- **{k}:** {md(fmt_value(v))}" for k, v in facts]
    return [*out, ""]


def _mode(mode: Mapping[str, Any]) -> list[str]:
    desc = mode.get("description")
    out = [f"### {md(mode_name(mode))}" + (f" — {md(desc)}" if desc else ""), ""]
    status = mode_status(mode)
    out.append(f"- **Status:** {md(status_label(mode))}")
    if status == "ran":
        lat = section(mode, "latency_ms")
        out += [
            f"- **Resolver:** used {md(fmt_value(mode.get('resolver')))}, "
            f"expected {md(fmt_value(mode.get('expected_resolver')))}",
            "- **Latency (ms):** "
            + " · ".join(f"{k} {fmt_ms(lat.get(k))}" for k in ("p50", "p90", "p99", "max")),
            f"- **Wire queries:** {fmt_int(mode.get('wire_queries'))}",
        ]
        if (peak := peak_threads(mode)) is not None:
            out.append(f"- **Peak OS threads:** {fmt_int(peak)}")
    binary = mode.get("binary")
    if isinstance(binary, Mapping) and binary:
        out.append("- **Binary:** " + "; ".join(f"{md(k)} {md(fmt_value(v))}" for k, v in binary.items()))
    out.append("")
    out += _twin(mode)
    if mode.get("reason"):
        out += [
            "Start failure:" if status == "start_failure" else "Reason:",
            "",
            fenced(str(mode["reason"])),
            "",
        ]
    trace = section(mode, "trace")
    if selection := sequence_of_str(trace.get("selection")):
        out += ["Resolver selection (trace):", "", fenced("\n".join(selection)), ""]
    orders = trace.get("order_counts")
    if isinstance(orders, Mapping) and orders:
        out += ["| order | names |", "|---|---:|"]
        out += [f"| {md(k)} | {fmt_int(v)} |" for k, v in orders.items()]
        out.append("")
    if rows := workload_rows(mode):
        out += [table(WORKLOAD_COLUMNS, rows), ""]
    return out


def _twin(mode: Mapping[str, Any]) -> list[str]:
    """A `like:` mode's twin table: each fact of the target beside the twin's, matched or not, and why."""
    rows = mode.get("twin")
    if not isinstance(rows, list) or not rows:
        return []
    of = section(mode, "twin_of")
    rootfs = f" (root file system asked for: {md(mode.get('rootfs'))})" if mode.get("rootfs") else ""
    out = [f"Twin of {md(of.get('target') or mode_name(mode))}{rootfs}:", ""]
    out += ["| fact | target | twin | matched | why not |", "|---|---|---|---|---|"]
    for r in rows:
        if isinstance(r, Mapping):
            matched = "yes" if r.get("matched") else "**no**"
            cells = [md(r.get(k)) for k in ("fact", "target", "twin")]
            out.append("| " + " | ".join([*cells, matched, md(r.get("why") or "")]) + " |")
    return [*out, ""]


def _postmortem(summary: Mapping[str, Any]) -> list[str]:
    out = [
        "## Summary",
        "",
        *[md(line) + "  " for line in postmortem.summary_lines(summary)],
        "",
        "## Impact",
        "",
    ]
    for r in postmortem.impact_rows(summary):
        what = (
            f"**{md(r.share)} of {r.lookups:,} lookups failed** ({md(r.classes)})"
            if r.failed
            else (f"all {r.lookups:,} lookups succeeded")
        )
        out.append(f"- **{md(r.mode)}**: {what}; p99 {md(r.p99_ms)} ms")
    out += ["", "## Timeline", "", "| UTC | event |", "|---|---|"]
    out += [f"| {md(t or '—')} | {md(what)} |" for t, what in postmortem.timeline_events(summary)]
    out += ["", "## Likely cause", ""]
    found = postmortem.findings(summary)
    for f in found:
        label = postmortem.SEVERITY_LABELS.get(str(f.get("severity")), str(f.get("severity")))
        modes_text = ", ".join(str(m) for m in f.get("modes") or ())
        out += [
            f"- **{md(label.upper())}: {md(f.get('rule'))}** ({md(modes_text)})",
            f"  - Seen: {md(f.get('seen'))}",
            f"  - Why: {md(f.get('why'))}",
        ]
    if not found:
        out.append("No rule matched the evidence.")
    out += ["", "## Remediation", ""]
    fixes = postmortem.remediation(summary)
    out += [f"{i}. **{md(rule)}**: {md(fix)}" for i, (rule, fix) in enumerate(fixes, 1)] or [
        "Nothing to change."
    ]
    return [*out, ""]


def render_markdown(
    summary: Mapping[str, Any], charts: Mapping[str, Path], relative_to: Path | None = None
) -> str:
    """The report as Markdown. Chart links are relative to `relative_to` when given, else charts/<file>."""
    out = _header(summary)
    ms = modes(summary)
    out += [
        "## Comparison",
        "",
        table(COMPARISON_COLUMNS, comparison_rows(summary)) if ms else "No modes in this run.",
        "",
    ]
    out = out[: out.index("## Comparison")] + _postmortem(summary) + out[out.index("## Comparison") :]
    checks = check_rows(summary)
    out += ["## Checks", "", table(CHECK_COLUMNS, checks) if checks else "No checks were run.", ""]
    if wire := postmortem.wire_rows(summary):
        out += ["## The nameserver's view", ""]
        out += [
            "| " + " | ".join(postmortem.WIRE_COLUMNS) + " |",
            "|" + "---|" * len(postmortem.WIRE_COLUMNS),
        ]
        out += ["| " + " | ".join(md(v) for v in row) + " |" for row in wire]
        out.append("")
    if excerpts := postmortem.trace_excerpts(summary):
        out += ["## Resolver trace excerpts", ""]
        for name, lines in excerpts:
            out += [f"{md(name)}:", "", fenced(chr(10).join(lines)), ""]
    titles = chart_titles(summary)
    names = [n for n in CHART_NAMES if n in charts] + sorted(n for n in charts if n not in CHART_NAMES)
    if names:
        out += ["## Charts", ""]
        for name in names:
            finding, what = titles.get(name, (name, ""))
            out += [f"![{md(finding)}]({_link(charts[name], relative_to)})", "", f"*{md(what)}.*", ""]
    out += ["## Modes", ""]
    for mode in ms:
        out += _mode(mode)
    if not ms:
        out += ["No modes in this run.", ""]
    pod = section(summary, "pod")
    out += ["## Pod", ""]
    for key, title in (
        ("resolv_conf", "/etc/resolv.conf"),
        ("nsswitch", "/etc/nsswitch.conf"),
        ("hosts", "/etc/hosts"),
    ):
        if pod.get(key):
            out += [f"{title}:", "", fenced(str(pod[key])), ""]
        if key == "resolv_conf" and pod.get("resolv_conf_state"):
            out += [md(resolv_conf_state_text(pod)), ""]
    if section(summary, "image_rootfs"):
        out += [f"Root file system: {md(image_rootfs_text(summary))}", ""]
    env = pod.get("env")
    if isinstance(env, Mapping) and env:
        out += ["Environment:", "", fenced("\n".join(f"{k}={v}" for k, v in env.items())), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def write_markdown(summary: Mapping[str, Any], charts: Mapping[str, Path], path: Path) -> Path:
    return write_atomic(path, render_markdown(summary, charts, relative_to=path.parent))
