"""report.html: one self-contained file, readable on a phone.

Charts are inlined as data: URIs and the CSS sits in the page; there is no JavaScript and no external
reference, so the file can be attached to a ticket or opened offline. Every string from the summary goes
through `html.escape`, including the scenario's own description and the pod's files.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any, Final

from dnsprobe import __version__
from dnsprobe.report import postmortem
from dnsprobe.report.common import (
    CHART_NAMES,
    CHECK_COLUMNS,
    COMPARISON_COLUMNS,
    DASH,
    OUTCOME_CLASSES,
    PALETTE,
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

_CSS: Final = """
*{box-sizing:border-box}
body{margin:0;color:#1b1b1b;background:#fff;
 font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:64rem;margin:0 auto;padding:1rem}
h1{font-size:1.45rem;line-height:1.25;margin:.5rem 0 .75rem}
h2{font-size:1.2rem;margin:2rem 0 .6rem;padding-bottom:.2rem;border-bottom:1px solid #ddd}
h3{font-size:1.05rem;margin:1.5rem 0 .4rem}
h4{font-size:.95rem;margin:1rem 0 .3rem}
p{margin:.5rem 0}
.banner{padding:.75rem 1rem;border-radius:.4rem;margin:.75rem 0}
.banner.bad{background:#fdecea;border:2px solid #b3261e;color:#6e130d;font-weight:600}
.banner.note{background:#fff7dc;border:1px solid #d9a400}
.verdict{font-size:1.1rem;font-weight:700;padding:.5rem .75rem;border-radius:.4rem}
.verdict.pass{background:#e7f5ec;color:#145c2c}
.verdict.fail{background:#fdecea;color:#8c1d18}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.5rem 0}
table{border-collapse:collapse;font-size:.88rem}
th,td{padding:.3rem .55rem;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top;
 white-space:nowrap}
th{background:#f4f5f7;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
.wrap{white-space:normal;min-width:14rem;overflow-wrap:anywhere}
.bad{color:#b3261e;font-weight:600}
.good{color:#1e7b34}
.muted{color:#6b6b6b}
.frag{display:inline-block;margin-right:.5em}
.swatch{display:inline-block;width:.75em;height:.75em;border-radius:2px;margin-right:.3em;
 vertical-align:-.05em}
pre{background:#f6f8fa;border:1px solid #e3e3e3;border-radius:.3rem;padding:.6rem .75rem;
 overflow-x:auto;font-size:.82rem;line-height:1.4;margin:.4rem 0}
figure{margin:1.25rem 0}
figure img{display:block;max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.88rem;color:#444;margin-top:.3rem}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.15rem 1rem;margin:.4rem 0}
dl.facts dt{color:#555}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.mode{border-top:1px solid #ddd;margin-top:1.5rem}
.finding{border-left:4px solid #999;padding:.2rem .8rem;margin:.6rem 0;background:#fafafa}
.finding.critical{border-color:#b3261e}.finding.warning{border-color:#d9a400}
.sev{text-transform:uppercase;font-size:.75rem;font-weight:700;letter-spacing:.04em;color:#555}
footer{margin:2.5rem 0 1rem;font-size:.8rem;color:#777}
@media (max-width:40rem){main{padding:.6rem}body{font-size:15px}dl.facts{grid-template-columns:1fr}
 dl.facts dt{margin-top:.3rem}}
"""


def _swatch_css() -> str:
    return "\n".join(f".oc-{name}{{background:{colour}}}" for name, colour in PALETTE.items())


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _fragments(fragments: Fragments) -> str:
    parts = []
    for f in fragments:
        swatch = f'<span class="swatch oc-{f.outcome}"></span>' if f.outcome in OUTCOME_CLASSES else ""
        cls = f' class="frag {f.tone}"' if f.tone else ' class="frag"'
        parts.append(f"<span{cls}>{swatch}{_e(f.text)}</span>")
    return "".join(parts)


def _table(columns: Sequence[Column], rows: Iterable[Row], table_id: str = "") -> str:
    def cls(col: Column) -> str:
        names = [n for n, on in (("num", col.numeric), ("wrap", col.wrap)) if on]
        return f' class="{" ".join(names)}"' if names else ""

    ident = f' id="{table_id}"' if table_id else ""
    head = "".join(f'<th scope="col"{cls(c)}>{_e(c.title)}</th>' for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td{cls(c)}>{_fragments(v)}</td>" for c, v in zip(columns, row, strict=True))
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def _facts(items: Iterable[tuple[str, object]]) -> str:
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(fmt_value(v))}</dd>" for k, v in items)
    return f'<dl class="facts">{rows}</dl>' if rows else ""


def _mapping_items(value: object) -> list[tuple[str, object]]:
    return [(str(k), v) for k, v in value.items()] if isinstance(value, Mapping) else []


def _pre(text: str) -> str:
    return f"<pre>{_e(text)}</pre>"


def _header(summary: Mapping[str, Any]) -> str:
    out = [f"<h1>dnsprobe report: {_e(summary.get('scenario') or '?')}</h1>"]
    if banner := run_banner(summary):
        out.append(f'<p class="banner bad" role="alert">{_e(banner)}</p>')
    if note := quick_note(summary):
        out.append(f'<p class="banner note">{_e(note)}</p>')
    passed, sentence = verdict(summary)
    out.append(f'<p class="verdict {"pass" if passed else "fail"}">{_e(sentence)}</p>')
    if summary.get("description"):
        out.append(f"<p>{_e(summary['description'])}</p>")
    nameserver = section(summary, "nameserver")
    load = section(summary, "load")
    out.append(
        _facts(
            [
                ("run", summary.get("run_id")),
                ("scenario file", summary.get("scenario_file")),
                ("started", summary.get("started_at")),
                ("finished", summary.get("finished_at") if summary.get("finished") else "did not finish"),
                ("nameserver", nameserver_text(nameserver)),
                ("load", ", ".join(f"{k} {fmt_value(v)}" for k, v in load.items()) or None),
            ]
        )
    )
    return "\n".join(out)


def _chart_figures(summary: Mapping[str, Any], charts: Mapping[str, Path]) -> str:
    titles = chart_titles(summary)
    names = [n for n in CHART_NAMES if n in charts] + sorted(n for n in charts if n not in CHART_NAMES)
    out = []
    for name in names:
        finding, what = titles.get(name, (name, ""))
        data = base64.b64encode(charts[name].read_bytes()).decode("ascii")
        out.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_e(finding)}">'
            f"<figcaption><strong>{_e(finding)}.</strong> {_e(what)}.</figcaption></figure>"
        )
    return "\n".join(out) or '<p class="muted">No charts.</p>'


def _mode_section(mode: Mapping[str, Any]) -> str:
    desc = mode.get("description")
    out = [f'<section class="mode"><h3>{_e(mode_name(mode))}{" — " + _e(desc) if desc else ""}</h3>']
    status = mode_status(mode)
    tone = "" if status == "ran" else "bad" if status == "start_failure" else "muted"
    label = f'<span class="{tone}">{_e(status_label(mode))}</span>' if tone else _e(status_label(mode))
    out.append(f"<p>Status: {label}</p>")
    if mode.get("reason"):
        label = "Start failure" if status == "start_failure" else "Reason"
        out.append(f"<h4>{label}</h4>{_pre(str(mode['reason']))}")
    if status == "ran":
        lat = section(mode, "latency_ms")
        out.append(
            _facts(
                [
                    ("resolver used", mode.get("resolver")),
                    ("resolver expected", mode.get("expected_resolver")),
                    (
                        "latency (ms)",
                        " · ".join(f"{k} {fmt_ms(lat.get(k))}" for k in ("p50", "p90", "p99", "max")),
                    ),
                    ("wire queries", fmt_int(mode.get("wire_queries"))),
                    *(
                        [("peak OS threads", fmt_int(peak))]
                        if (peak := peak_threads(mode)) is not None
                        else []
                    ),
                ]
            )
        )
    if isinstance(mode.get("binary"), Mapping):
        out.append(f"<h4>Binary</h4>{_facts(_mapping_items(mode['binary']))}")
    out.append(_twin_table(mode))
    trace = section(mode, "trace")
    if selection := sequence_of_str(trace.get("selection")):
        out.append(f"<h4>Resolver selection (trace)</h4>{_pre(chr(10).join(selection))}")
    orders = _mapping_items(trace.get("order_counts"))
    if orders:
        rows = "".join(f'<tr><td>{_e(k)}</td><td class="num">{_e(fmt_int(v))}</td></tr>' for k, v in orders)
        out.append(
            "<h4>Lookup order (trace)</h4>"
            '<div class="scroll"><table><thead><tr><th scope="col">order</th>'
            f'<th scope="col" class="num">names</th></tr></thead><tbody>{rows}</tbody></table></div>'
        )
    if rows_w := workload_rows(mode):
        out.append(f"<h4>Workloads</h4>{_table(WORKLOAD_COLUMNS, rows_w)}")
    out.append("</section>")
    return "\n".join(out)


def _twin_table(mode: Mapping[str, Any]) -> str:
    """A `like:` mode's twin table: each fact of the target beside the twin's, matched or not, and why."""
    rows = mode.get("twin")
    if not isinstance(rows, list) or not rows:
        return ""
    of = section(mode, "twin_of")
    body = "".join(
        f'<tr><td>{_e(r.get("fact"))}</td><td class="wrap">{_e(r.get("target"))}</td>'
        f'<td class="wrap">{_e(r.get("twin"))}</td>'
        + ('<td class="good">yes</td>' if r.get("matched") else '<td class="bad">no</td>')
        + f'<td class="wrap">{_e(r.get("why") or "")}</td></tr>'
        for r in rows
        if isinstance(r, Mapping)
    )
    head = "".join(f'<th scope="col">{c}</th>' for c in ("fact", "target", "twin", "matched", "why not"))
    rootfs = f" (root file system asked for: {_e(mode.get('rootfs'))})" if mode.get("rootfs") else ""
    return (
        f"<h4>Twin of {_e(of.get('target') or mode_name(mode))}{rootfs}</h4>"
        f'<div class="scroll"><table class="twin"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        "</table></div>"
    )


def _pod(summary: Mapping[str, Any]) -> str:
    pod = section(summary, "pod")
    out = []
    for key, title in (
        ("resolv_conf", "/etc/resolv.conf"),
        ("nsswitch", "/etc/nsswitch.conf"),
        ("hosts", "/etc/hosts"),
    ):
        text = pod.get(key)
        out.append(f"<h3>{title}</h3>" + (_pre(str(text)) if text else f'<p class="muted">{DASH}</p>'))
        if key == "resolv_conf" and pod.get("resolv_conf_state"):
            out.append(f"<p><strong>{_e(resolv_conf_state_text(pod))}</strong></p>")
    image = section(summary, "image_rootfs")
    if image:  # the probe ran in the image's own root: its libc and /etc files
        out.append(f"<h3>Root file system</h3><p>{_e(image_rootfs_text(summary))}</p>")
    env = _mapping_items(pod.get("env"))
    out.append("<h3>Environment</h3>")
    out.append(_pre("\n".join(f"{k}={v}" for k, v in env)) if env else '<p class="muted">none set</p>')
    return "\n".join(out)


def _impact(summary: Mapping[str, Any]) -> str:
    rows = postmortem.impact_rows(summary)
    if not rows:
        return '<p class="muted">No modes in this run.</p>'
    body = "".join(
        f"<li><strong>{_e(r.mode)}</strong>: "
        + (
            f'<span class="bad">{_e(r.share)} of {r.lookups:,} lookups failed</span> ({_e(r.classes)})'
            if r.failed
            else f"all {r.lookups:,} lookups succeeded"
        )
        + f"; p99 {_e(r.p99_ms)} ms</li>"
        for r in rows
    )
    return f"<ul>{body}</ul>"


def _timeline(summary: Mapping[str, Any]) -> str:
    events = postmortem.timeline_events(summary)
    if not events:
        return '<p class="muted">No events.</p>'
    rows = "".join(f'<tr><td>{_e(t or DASH)}</td><td class="wrap">{_e(what)}</td></tr>' for t, what in events)
    return (
        '<div class="scroll"><table id="timeline-table"><thead><tr><th scope="col">UTC</th>'
        f'<th scope="col" class="wrap">event</th></tr></thead><tbody>{rows}</tbody></table></div>'
    )


def _findings(summary: Mapping[str, Any]) -> str:
    found = postmortem.findings(summary)
    if not found:
        return '<p class="muted">No rule matched the evidence.</p>'
    out = []
    for f in found:
        severity = str(f.get("severity") or "info")
        label = postmortem.SEVERITY_LABELS.get(severity, severity)
        modes_text = ", ".join(str(m) for m in f.get("modes") or ())
        out.append(
            f'<div class="finding {_e(severity)}" id="finding-{_e(f.get("rule"))}">'
            f'<p><span class="sev">{_e(label)}</span> <strong>{_e(f.get("rule"))}</strong>'
            f"{' · ' + _e(modes_text) if modes_text else ''}</p>"
            f"<p><strong>Seen:</strong> {_e(f.get('seen'))}</p>"
            f"<p><strong>Why:</strong> {_e(f.get('why'))}</p></div>"
        )
    return "\n".join(out)


def _remediation(summary: Mapping[str, Any]) -> str:
    fixes = postmortem.remediation(summary)
    if not fixes:
        return '<p class="muted">Nothing to change.</p>'
    return (
        "<ol>" + "".join(f"<li><strong>{_e(rule)}</strong>: {_e(fix)}</li>" for rule, fix in fixes) + "</ol>"
    )


def _wire(summary: Mapping[str, Any]) -> str:
    rows = postmortem.wire_rows(summary)
    if not rows:
        return '<p class="muted">No query log.</p>'
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in postmortem.WIRE_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return (
        f'<div class="scroll"><table id="wire"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _traces(summary: Mapping[str, Any]) -> str:
    excerpts = postmortem.trace_excerpts(summary)
    if not excerpts:
        return '<p class="muted">No resolver trace.</p>'
    return "\n".join(f"<h4>{_e(name)}</h4>{_pre(chr(10).join(lines))}" for name, lines in excerpts)


def render_html(summary: Mapping[str, Any], charts: Mapping[str, Path]) -> str:
    """The whole report as one HTML document; `charts` maps chart names to PNG files to inline."""
    title = f"dnsprobe: {summary.get('scenario') or '?'} ({summary.get('run_id') or '?'})"
    ms = modes(summary)
    comparison = (
        _table(COMPARISON_COLUMNS, comparison_rows(summary), "comparison")
        if ms
        else '<p class="muted">No modes in this run.</p>'
    )
    checks = check_rows(summary)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}{_swatch_css()}</style>",
        "</head><body><main>",
        f"<header>{_header(summary)}</header>",
        '<h2 id="summary">Summary</h2>',
        "".join(f"<p>{_e(line)}</p>" for line in postmortem.summary_lines(summary)),
        '<h2 id="impact">Impact</h2>',
        _impact(summary),
        comparison,
        '<h2 id="timeline">Timeline</h2>',
        _timeline(summary),
        '<h2 id="cause">Likely cause</h2>',
        _findings(summary),
        '<h2 id="remediation">Remediation</h2>',
        _remediation(summary),
        '<h2 id="evidence">Evidence</h2>',
        "<h3>Checks and SLO gates</h3>",
        _table(CHECK_COLUMNS, checks) if checks else '<p class="muted">No checks were run.</p>',
        "<h3>Charts</h3>",
        _chart_figures(summary, charts),
        "<h3>The nameserver's view</h3>",
        _wire(summary),
        "<h3>Resolver trace excerpts</h3>",
        _traces(summary),
        "<h2>Modes</h2>",
        "\n".join(_mode_section(m) for m in ms) or '<p class="muted">No modes in this run.</p>',
        "<h2>Pod</h2>",
        _pod(summary),
        f"<footer>dnsprobe {_e(__version__)} · run {_e(summary.get('run_id') or '?')}</footer>",
        "</main></body></html>",
        "",
    ]
    return "\n".join(parts)


def write_html(summary: Mapping[str, Any], charts: Mapping[str, Path], path: Path) -> Path:
    return write_atomic(path, render_html(summary, charts))
