"""The report of `dnsprobe observe`: report.md and report.html from summary.json's `observed` section.

One table row per name the program looked up (resolver and why, wire queries, rcodes, retries,
timeouts, the delay each fault added, the outcome), then each failure with the program's own stderr
lines around it, the findings that explain what was seen, the pod's files and the command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from dnsprobe.analyse.observation import OK_OUTCOMES
from dnsprobe.report.common import write_atomic
from dnsprobe.report.html import _CSS
from dnsprobe.report.markdown import md

COLUMNS = ("name", "resolver", "order", "queries", "rcodes", "retries", "timeouts", "fault delay", "outcome")


def name_rows(observed: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for view in observed.get("names") or []:
        rows.append(
            [
                str(view["name"]),
                str(view["resolver"] or "-"),
                " then ".join(view["orders"]) or "-",
                str(view["queries"]),
                _counts(view["rcodes"]),
                str(view["retries"]),
                str(view["timeouts"]),
                ", ".join(f"{fault} +{s:.2f} s" for fault, s in view["fault_delay_s"].items()) or "-",
                str(view["outcome"]),
            ]
        )
    return rows


def facts(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    observed = summary["observed"]
    go = observed.get("go") or {}
    first = observed.get("first_answer_s")
    items = [
        ("command", " ".join(observed["argv"])),
        ("image", observed.get("image") or "the host's root file system"),
        ("go", _go_text(go)),
        ("GODEBUG", observed["godebug"]),
        ("resolver", f"{observed['resolver']} ({'; '.join(observed['selection']) or 'no startup line'})"),
        ("ended", _ended(observed)),
        ("first successful answer", f"{first:.3f} s after the start" if first is not None else "none"),
        ("wire queries", f"{observed['wire_queries']} ({_counts(observed['rcodes'])})"),
        (
            "delay the faults added",
            ", ".join(f"{f} {s:.2f} s" for f, s in observed["fault_delays_s"].items()) or "none",
        ),
        ("nameserver", ", ".join(summary["nameserver"]["endpoints"])),
    ]
    return items


def _go_text(go: Mapping[str, Any]) -> str:
    """The Go facts that decide DNS behaviour; of DefaultGODEBUG only the resolver's settings."""
    if not go:
        return "not a Go binary"
    parts = [str(go.get("go_version") or "Go")]
    parts.append("CGO_ENABLED=" + ("1" if go.get("cgo_enabled") else "0"))
    if go.get("tags"):
        parts.append("-tags " + ",".join(go["tags"]))
    parts.append(f"{go.get('linkage') or '?'}" + (f" ({go['libc']})" if go.get("libc") else ""))
    dns = [s for s in str(go.get("default_godebug") or "").split(",") if s.startswith(("netdns", "netedns0"))]
    if dns:
        parts.append("//go:debug " + ",".join(dns))
    return ", ".join(parts)


def _ended(observed: Mapping[str, Any]) -> str:
    if observed["stopped"]:
        return f"still running after {observed['seconds_limit']:g} s; stopped"
    code = observed["exit"]
    if "signal" in code:
        return f"killed by signal {code['signal']} after {observed['ran_s']:g} s"
    return f"exit status {code.get('exit')} after {observed['ran_s']:g} s"


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.items()) or "-"


def failures(observed: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [v for v in observed.get("names") or [] if v["outcome"] not in OK_OUTCOMES]


def render_markdown(summary: Mapping[str, Any]) -> str:
    observed = summary["observed"]
    out = [f"# dnsprobe observe: {md(summary['scenario'])}", ""]
    out += [f"- **{md(k)}**: {md(v)}" for k, v in facts(summary)]
    out += ["", "## Checks", ""]
    out += [
        f"- {'PASS' if c['passed'] else '**FAIL**'} {md(c['name'])}: {md(c['detail'])}"
        for c in summary["checks"]
    ]
    out += ["", "## Names looked up", ""]
    out.append("| " + " | ".join(COLUMNS) + " |")
    out.append("|" + "---|" * len(COLUMNS))
    out += ["| " + " | ".join(md(cell) for cell in row) + " |" for row in name_rows(observed)]
    for view in observed.get("names") or []:
        out.append(f"\n- {md(view['name'])}: {md(view['why'])}")
    failed = failures(observed)
    if failed:
        out += ["", "## Failures", ""]
        for view in failed:
            out += [f"### {md(view['name'])}: {md(view['outcome'])}", ""]
            out.append(
                f"{view['queries']} queries ({md(_counts(view['qtypes']))}), "
                f"rcodes {md(_counts(view['rcodes']))}, "
                f"first at {view['first_query_s']} s, last at {view['last_query_s']} s."
            )
            if view["stderr"]:
                out += ["", "The program's stderr around it:", "", _fence("\n".join(view["stderr"]))]
    if summary.get("findings"):
        out += ["", "## What was seen, and why", ""]
        for f in summary["findings"]:
            out += [
                f"### {md(f['severity'].upper())}: {md(f['rule'])}",
                "",
                md(f["seen"]),
                "",
                md(f["why"]),
                "",
            ]
            out += [f"Fix: {md(f['fix'])}", ""]
    pod = summary["pod"]
    out += ["", "## The pod", ""]
    for label, key in (("resolv.conf", "resolv_conf"), ("hosts", "hosts"), ("nsswitch.conf", "nsswitch")):
        out += [f"{label}:", "", _fence(str(pod.get(key) or "")), ""]
    return "\n".join(out).rstrip() + "\n"


def _fence(text: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}\n{text}\n{ticks}"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def render_html(summary: Mapping[str, Any]) -> str:
    observed = summary["observed"]
    passed = all(c["passed"] for c in summary["checks"])
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>dnsprobe observe: {_e(summary['scenario'])}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>dnsprobe observe: {_e(summary['scenario'])}</h1>",
        f"<p class='verdict {'pass' if passed else 'fail'}'>"
        f"{'Every name resolved' if passed else 'DNS failures seen'}</p>",
        "<dl class=facts>"
        + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts(summary))
        + "</dl>",
        "<h2>Checks</h2><ul>",
        *[
            f"<li class={'good' if c['passed'] else 'bad'}>{'PASS' if c['passed'] else 'FAIL'} "
            f"{_e(c['name'])}: {_e(c['detail'])}</li>"
            for c in summary["checks"]
        ],
        "</ul><h2>Names looked up</h2>",
        _table(COLUMNS, name_rows(observed)),
        "<ul>",
        *[f"<li><b>{_e(v['name'])}</b>: {_e(v['why'])}</li>" for v in observed.get("names") or []],
        "</ul>",
    ]
    failed = failures(observed)
    if failed:
        parts.append("<h2>Failures</h2>")
        for view in failed:
            parts.append(f"<h3>{_e(view['name'])}: {_e(view['outcome'])}</h3>")
            parts.append(
                f"<p>{view['queries']} queries ({_e(_counts(view['qtypes']))}), rcodes "
                f"{_e(_counts(view['rcodes']))}.</p>"
            )
            if view["stderr"]:
                parts.append(
                    "<p>The program's stderr around it:</p><pre>" + _e("\n".join(view["stderr"])) + "</pre>"
                )
    if summary.get("findings"):
        parts.append("<h2>What was seen, and why</h2>")
        for f in summary["findings"]:
            parts.append(
                f"<div class='finding {_e(f['severity'])}'>"
                f"<p class=sev>{_e(f['severity'])} · {_e(f['rule'])}</p>"
                f"<p>{_e(f['seen'])}</p><p>{_e(f['why'])}</p><p><b>Fix:</b> {_e(f['fix'])}</p></div>"
            )
    pod = summary["pod"]
    parts.append("<h2>The pod</h2>")
    for label, key in (("resolv.conf", "resolv_conf"), ("hosts", "hosts"), ("nsswitch.conf", "nsswitch")):
        parts.append(f"<h4>{label}</h4><pre>{_e(pod.get(key) or '')}</pre>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _table(columns: Sequence[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def write_observed_report(run_dir: Path, summary: Mapping[str, Any]) -> dict[str, Path]:
    """report.md and report.html beside summary.json (which observe writes itself)."""
    return {
        "markdown": write_atomic(run_dir / "report.md", render_markdown(summary)),
        "html": write_atomic(run_dir / "report.html", render_html(summary)),
    }
