"""The report stage: files written, data plotted, HTML self-contained and escaped, Markdown tables."""

from __future__ import annotations

import base64
import copy
import io
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from rich.console import Console

from dnsprobe.report import write_report
from dnsprobe.report.charts import (
    ALL_WORKLOADS,
    latency_figure,
    outcomes_figure,
    png_bytes,
    wire_queries_figure,
)
from dnsprobe.report.common import (
    CHART_NAMES,
    OUTCOME_CLASSES,
    PALETTE,
    cell_text,
    comparison_rows,
    nameserver_text,
)
from dnsprobe.report.html import render_html
from dnsprobe.report.markdown import render_markdown
from dnsprobe.report.terminal import checks_table, comparison_table, fragments_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCRIPT = "<script>alert('x')</script>"


def _latency(p50: float, p90: float, p99: float, peak: float) -> dict[str, float]:
    return {"p50": p50, "p90": p90, "p99": p99, "max": peak}


def _workload(
    name: str, pattern: str, lookups: int, failures: dict[str, int], wire: float, lat: dict[str, float]
) -> dict[str, Any]:
    return {
        "workload": name,
        "kind": "host",
        "name": pattern,
        "lookups": lookups,
        "ok": lookups - sum(failures.values()),
        "failures": failures,
        "latency_ms": lat,
        "wire_queries_per_lookup": wire,
    }


def _binary(cgo: bool) -> dict[str, Any]:
    return {
        "go_version": "go1.27.3",
        "cgo_enabled": cgo,
        "tags": "netcgo" if cgo else "",
        "linkage": "dynamic" if cgo else "static",
        "interpreter": "/lib64/ld-linux-x86-64.so.2" if cgo else None,
    }


def make_summary() -> dict[str, Any]:
    """A run of five modes: two clean-ish, one skipped, one that did not start, one with a surprise."""
    not_run: dict[str, Any] = {
        "resolver": None,
        "lookups": 0,
        "ok": 0,
        "failures": {},
        "lookups_per_s": None,
        "latency_ms": {"p50": None, "p90": None, "p99": None, "max": None},
        "wire_queries": 0,
        "wire_queries_per_lookup": None,
        "workloads": [],
        "trace": None,
    }
    return {
        "run_id": "20261123-111500-quickstart",
        "scenario": "quickstart",
        "scenario_file": "scenarios/quickstart.toml",
        "description": f"Kubernetes-style pod with ndots:5 and three search domains. {SCRIPT}",
        "started_at": "2026-11-23T11:15:00+00:00",
        "finished_at": "2026-11-23T11:16:10+00:00",
        "finished": True,
        "interrupted": False,
        "quick": False,
        "pod": {
            "resolv_conf": "search default.svc.cluster.local svc.cluster.local cluster.local\n"
            "nameserver 127.0.0.1\noptions ndots:5\n",
            "hosts": "127.0.0.1 localhost\n10.0.0.7 db.internal <b>bold</b>\n",
            "nsswitch": "hosts: files dns\n",
            "env": {"GODEBUG": "netdns=+2"},
        },
        "nameserver": {"kind": "embedded", "endpoints": ["127.0.0.1:53"]},
        "load": {"users": 4, "duration_s": 10.0, "batch": 25, "concurrency": 8},
        "modes": [
            {
                "mode": "go",
                "description": "pure Go resolver (CGO_ENABLED=0)",
                "status": "ran",
                "reason": None,
                "resolver": "go",
                "expected_resolver": "go",
                "lookups": 4210,
                "ok": 4200,
                "failures": {"not_found": 10},
                "lookups_per_s": 421.0,
                "latency_ms": _latency(1.9, 3.2, 6.8, 41.2),
                "wire_queries": 21050,
                "wire_queries_per_lookup": 5.0,
                "workloads": [
                    _workload(
                        "external", "{rand}.api.example.test", 2105, {}, 8.0, _latency(2.4, 3.9, 7.7, 41.2)
                    ),
                    _workload(
                        "internal",
                        "{rand}.web.default.svc.cluster.local.",
                        2105,
                        {"not_found": 10},
                        2.0,
                        _latency(1.1, 1.9, 4.1, 12.0),
                    ),
                ],
                "trace": {
                    "resolver": "go",
                    "selection": ["go package net: using the Go DNS resolver"],
                    "order_counts": {"files,dns": 4210},
                },
                "binary": _binary(False),
            },
            {
                "mode": "cgo",
                "description": "cgo resolver, glibc (CGO_ENABLED=1, -tags netcgo)",
                "status": "ran",
                "reason": None,
                "resolver": "cgo",
                "expected_resolver": "cgo",
                "lookups": 6120,
                "ok": 5900,
                "failures": {"timeout": 180, "temporary": 40},
                "lookups_per_s": 612.0,
                "latency_ms": _latency(1.1, 2.4, 1010.0, 2003.5),
                "wire_queries": 31212,
                "wire_queries_per_lookup": 5.1,
                "workloads": [
                    _workload(
                        "external",
                        "{rand}.api.example.test",
                        3060,
                        {"timeout": 180},
                        8.2,
                        _latency(1.3, 2.9, 1500.0, 2003.5),
                    ),
                    _workload(
                        "internal",
                        "{rand}.web.default.svc.cluster.local.",
                        3060,
                        {"temporary": 40},
                        2.0,
                        _latency(0.9, 1.8, 3.3, 9.9),
                    ),
                ],
                "trace": {
                    "resolver": "cgo",
                    "selection": ["go package net: using the cgo DNS resolver"],
                    "order_counts": {"cgo": 6120},
                },
                "binary": _binary(True),
            },
            {
                **not_run,
                "mode": "musl",
                "description": "cgo linked against musl (musl-gcc)",
                "status": "skipped",
                "reason": "musl-gcc not found (apt-get install musl-tools)",
                "expected_resolver": "cgo",
                "binary": None,
            },
            {
                **not_run,
                "mode": "cgo-on-scratch",
                "description": "glibc cgo binary in a scratch image",
                "status": "start_failure",
                "lookups": 1,  # the pipeline records the failed start as one lookup
                "failures": {"start_failure": 1},
                "reason": "exec /app: no such file or directory\n"
                f"loader /lib64/ld-linux-x86-64.so.2 missing {SCRIPT}",
                "expected_resolver": "cgo",
                "binary": _binary(True),
            },
            {
                "mode": "godebug-cgo",
                "description": "default cgo build run with GODEBUG=netdns=cgo",
                "status": "ran",
                "reason": None,
                "resolver": "mixed",
                "expected_resolver": "cgo",
                "lookups": 3000,
                "ok": 2950,
                "failures": {"refused": 50},
                "lookups_per_s": 300.0,
                "latency_ms": _latency(2.3, 4.0, 9.5, 55.0),
                "wire_queries": 14700,
                "wire_queries_per_lookup": 4.9,
                "workloads": [
                    _workload(
                        "external",
                        "{rand}.api.example.test",
                        1500,
                        {"refused": 50},
                        7.8,
                        _latency(2.6, 4.4, 9.9, 55.0),
                    ),
                    _workload(
                        "internal",
                        "{rand}.web.default.svc.cluster.local.",
                        1500,
                        {},
                        2.0,
                        _latency(2.0, 3.1, 8.0, 20.0),
                    ),
                ],
                "trace": {
                    "resolver": "mixed",
                    "selection": ["go package net: GODEBUG setting forcing use of the cgo resolver", SCRIPT],
                    "order_counts": {"cgo": 2900, "files,dns": 100},
                },
                "binary": _binary(True),
            },
        ],
        "checks": [
            {"name": "go: resolver is go", "passed": True, "detail": "trace shows go for 4210 names"},
            {"name": "cgo: resolver is cgo", "passed": True, "detail": "trace shows cgo for 6120 names"},
            {"name": "cgo: p99 under 100 ms", "passed": False, "detail": "p99 1010 ms"},
            {
                "name": "godebug-cgo: resolver is cgo",
                "passed": False,
                "detail": f"mixed: 100 names via go {SCRIPT}",
            },
        ],
    }


def interrupted_summary() -> dict[str, Any]:
    summary = copy.deepcopy(make_summary())
    summary.update(finished=False, interrupted=True, finished_at=None)
    # the stop came while the last mode's probe was being built
    last = summary["modes"][-1]
    last.update(
        status="pending", resolver=None, lookups=0, ok=0, failures={}, lookups_per_s=0.0, workloads=[]
    )
    last.update(wire_queries=0, wire_queries_per_lookup=None, trace={}, binary={})
    last["latency_ms"] = dict.fromkeys(("p50", "p90", "p99", "max"))
    summary["checks"].insert(
        0, {"name": "run completed", "passed": False, "detail": "interrupted after 13331 lookups"}
    )
    return summary


def _containers(fig: Figure) -> dict[str, BarContainer]:
    ax: Axes = fig.axes[0]
    return {str(c.get_label()): c for c in ax.containers if isinstance(c, BarContainer)}


def _by_mode(container: BarContainer, attr: str) -> dict[str, float]:
    return {str(r.get_gid()): float(getattr(r, attr)()) for r in container.patches}


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


@pytest.fixture
def summary() -> dict[str, Any]:
    return make_summary()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One report of `make_summary()`, shared by the tests that only read it (charts take a second)."""
    return write_report(tmp_path_factory.mktemp("run"), make_summary())


def _modes(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    modes: list[Mapping[str, Any]] = summary["modes"]
    return modes


def test_write_report_writes_every_file(written: dict[str, Path]) -> None:
    paths = written
    tmp_path = paths["html"].parent
    assert set(paths) == {*CHART_NAMES, "html", "markdown"}
    assert paths["html"] == tmp_path / "report.html"
    assert paths["markdown"] == tmp_path / "report.md"
    for name in CHART_NAMES:
        assert paths[name] == tmp_path / "charts" / f"{name}.png"
        assert paths[name].read_bytes().startswith(PNG_SIGNATURE)
    assert not (tmp_path / "summary.json").exists()
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert leftovers == []
    for path in paths.values():  # not mkstemp's 0600: the umask decides, as for any other file
        assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_reports_are_deterministic(tmp_path: Path, written: dict[str, Path]) -> None:
    second = write_report(tmp_path, make_summary())
    for name, path in written.items():
        assert path.read_bytes() == second[name].read_bytes(), name


def test_html_is_self_contained(written: dict[str, Path]) -> None:
    html = written["html"].read_text()
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert 'name="viewport"' in html
    images = re.findall(r"<img\b[^>]*>", html)
    assert len(images) == len(CHART_NAMES)
    for tag in images:
        src = re.search(r'src="([^"]*)"', tag)
        assert src is not None
        assert src.group(1).startswith("data:image/png;base64,")
        assert base64.b64decode(src.group(1).split(",", 1)[1]).startswith(PNG_SIGNATURE)
        assert re.search(r'alt="[^"]+"', tag)


def test_html_escapes_user_strings(written: dict[str, Path]) -> None:
    html = written["html"].read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_html_sections(written: dict[str, Path]) -> None:
    html = written["html"].read_text()
    assert "20261123-111500-quickstart" in html
    assert "2 of 4 checks failed." in html
    assert "musl-gcc not found (apt-get install musl-tools)" in html
    assert "exec /app: no such file or directory" in html
    assert "options ndots:5" in html
    assert "hosts: files dns" in html
    assert "go package net: using the Go DNS resolver" in html
    assert "go1.27.3" in html
    assert "Interrupted" not in html
    # one comparison row per mode
    table = html.split('id="comparison"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr") == 1 + len(make_summary()["modes"])


def test_interrupted_run_is_marked(tmp_path: Path) -> None:
    summary = interrupted_summary()
    paths = write_report(tmp_path, summary)
    html = paths["html"].read_text()
    assert 'class="banner bad"' in html
    assert "Interrupted: this run was stopped before it finished." in html
    assert html.index("Interrupted") < html.index('id="comparison"')
    md = paths["markdown"].read_text()
    assert "Interrupted: this run was stopped before it finished." in md
    assert md.index("Interrupted") < md.index("## Comparison")
    assert "3 of 5 checks failed." in html
    assert "not run" in _texts(latency_figure(summary))  # a mode the interruption never reached
    for build in (latency_figure, outcomes_figure, wire_queries_figure):
        assert build(summary).axes[0].get_title(loc="right") == "unfinished run: partial figures"
        assert build(make_summary()).axes[0].get_title(loc="right") == ""


def test_start_failure_is_counted_in_the_table(summary: dict[str, Any]) -> None:
    row = comparison_rows(summary)[3]
    assert [cell_text(c) for c in row[:2]] == ["cgo-on-scratch", "did not start"]
    assert cell_text(row[3]) == "1"
    (failure,) = row[7]
    assert (failure.text, failure.outcome, failure.tone) == (
        "start_failure 1 (100.0%)",
        "start_failure",
        "bad",
    )


def test_markdown_has_one_row_per_mode(written: dict[str, Path], summary: dict[str, Any]) -> None:
    md = written["markdown"].read_text()
    section = md.split("## Comparison", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header, rule, body = rows[0], rows[1], rows[2:]
    assert "resolver (expected)" in header
    assert set(rule.replace("|", "").replace(" ", "")) <= {"-", ":"}
    assert len(body) == len(summary["modes"])
    for row, mode in zip(body, _modes(summary), strict=True):
        assert row.count("|") == header.count("|")
        assert row.split("|")[1].strip().strip("*") == mode["mode"]
    for name in ("latency", "outcomes", "wire_queries"):
        assert f"](charts/{name}.png)" in md
    prose = re.sub(r"^```.*?^```", "", md, flags=re.S | re.M)
    assert "<script>" not in prose  # escaped outside code blocks
    assert r"\<script\>" in prose
    assert "<script>" in md  # verbatim inside fenced blocks, where Markdown shows it as text
    assert "http" not in md


def test_latency_bars_are_the_summary_percentiles(summary: dict[str, Any]) -> None:
    fig = latency_figure(summary)
    bars = _containers(fig)
    ran = {m["mode"]: m for m in _modes(summary) if m["status"] == "ran"}
    for p in ("p50", "p90", "p99"):
        heights = _by_mode(bars[p], "get_height")
        assert heights == {name: m["latency_ms"][p] for name, m in ran.items()}
    (peak,) = [line for line in fig.axes[0].lines if line.get_label() == "max"]
    assert np.asarray(peak.get_ydata()).tolist() == [m["latency_ms"]["max"] for m in ran.values()]
    # p99 spans 6.8 ms .. 1010 ms: linear would flatten the fast modes
    assert fig.axes[0].get_yscale() == "log"
    assert "ms" in fig.axes[0].get_ylabel()
    texts = _texts(fig)
    assert "skipped" in texts and "did not start" in texts
    tick_labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(tick_labels) == len(summary["modes"])
    assert fig.get_suptitle().startswith("p99 latency")


def test_latency_axis_is_linear_for_a_narrow_spread(summary: dict[str, Any]) -> None:
    for mode in _modes(summary):
        if mode["status"] == "ran":
            mode["latency_ms"].update(p99=8.0, max=12.0)
    assert latency_figure(summary).axes[0].get_yscale() == "linear"


def test_outcome_bars_add_up_to_100_percent(summary: dict[str, Any]) -> None:
    fig = outcomes_figure(summary)
    bars = _containers(fig)
    assert list(bars) == [c for c in OUTCOME_CLASSES if c in bars]  # fixed class order
    assert set(bars) == {"ok", "not_found", "timeout", "temporary", "refused"}
    for cls, container in bars.items():
        assert all(r.get_facecolor()[:3] == pytest.approx(_rgb(PALETTE[cls])) for r in container.patches)
    for mode in _modes(summary):
        widths = [_by_mode(c, "get_width")[mode["mode"]] for c in bars.values()]
        if mode["status"] == "ran":
            assert math.fsum(widths) == pytest.approx(100.0)
            counts = {"ok": mode["ok"], **mode["failures"]}
            for cls, n in counts.items():
                assert _by_mode(bars[cls], "get_width")[mode["mode"]] == pytest.approx(
                    100.0 * n / mode["lookups"]
                )
        else:
            assert math.fsum(widths) == 0
    texts = _texts(fig)
    assert "4,200 (100%)" in texts  # counts annotated on the segments
    assert any(t.startswith("skipped: musl-gcc not found") for t in texts)
    assert any(t.startswith("did not start: exec /app") for t in texts)
    assert "cgo" in fig.get_suptitle() or "godebug-cgo" in fig.get_suptitle()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _rgb(colour: str) -> tuple[float, float, float]:
    return tuple(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def test_wire_query_bars_and_reference_line(summary: dict[str, Any]) -> None:
    fig = wire_queries_figure(summary)
    bars = _containers(fig)
    assert list(bars) == [ALL_WORKLOADS, "external", "internal"]
    ran = [m for m in _modes(summary) if m["status"] == "ran"]
    assert _by_mode(bars[ALL_WORKLOADS], "get_height") == {
        m["mode"]: m["wire_queries_per_lookup"] for m in ran
    }
    for workload in ("external", "internal"):
        expected = {
            m["mode"]: w["wire_queries_per_lookup"]
            for m in ran
            for w in m["workloads"]
            if w["workload"] == workload
        }
        assert _by_mode(bars[workload], "get_height") == expected
    (baseline,) = [line for line in fig.axes[0].lines if line.get_gid() == "baseline"]
    assert np.asarray(baseline.get_ydata()).tolist() == [2.0, 2.0]
    assert "A + AAAA" in str(baseline.get_label())
    assert "wire queries per lookup" in fig.axes[0].get_ylabel()
    assert fig.get_suptitle() == "Up to 8.2 wire queries per lookup (cgo, workload external)"


def test_charts_survive_a_run_with_nothing_measured(tmp_path: Path) -> None:
    summary = make_summary()
    summary["modes"] = [m for m in summary["modes"] if m["status"] != "ran"]
    summary["checks"] = []
    paths = write_report(tmp_path, summary)
    assert all(p.exists() for p in paths.values())
    assert latency_figure(summary).get_suptitle() == "No lookup latency was measured"
    assert "No checks were run." in paths["html"].read_text()
    empty = {"run_id": "x", "scenario": "empty", "finished": True, "modes": [], "checks": []}
    for build in (latency_figure, outcomes_figure, wire_queries_figure):
        assert png_bytes(build(empty)).startswith(PNG_SIGNATURE)
    assert "No modes" in render_markdown(empty, {})
    assert "No modes" in render_html(empty, {})


def test_zero_lookup_mode_has_no_bars(summary: dict[str, Any]) -> None:
    mode = _modes(summary)[0]
    assert isinstance(mode, dict)
    mode.update(lookups=0, ok=0, failures={}, lookups_per_s=0.0, wire_queries_per_lookup=None, workloads=[])
    mode["latency_ms"] = {"p50": None, "p90": None, "p99": None, "max": None}
    fig = latency_figure(summary)
    assert "go" not in _by_mode(_containers(fig)["p50"], "get_height")
    assert "no lookups" in _texts(fig)
    assert "no lookups" in _texts(outcomes_figure(summary))
    (lookups,) = [cells for cells in comparison_rows(summary)[0][3]]
    assert lookups.tone == "bad"


def test_dollar_signs_are_not_mathtext(summary: dict[str, Any]) -> None:
    _modes(summary)[0]["mode"] = "go $HOME $x"  # type: ignore[index]
    for build in (latency_figure, outcomes_figure, wire_queries_figure):
        png_bytes(build(summary))


def test_terminal_tables(summary: dict[str, Any]) -> None:
    console = Console(file=io.StringIO(), record=True, width=220, color_system="truecolor")
    console.print(comparison_table(summary))
    console.print(checks_table(summary))
    text = console.export_text()
    for mode in _modes(summary):
        assert mode["mode"] in text
    assert "cgo (cgo)" in text
    assert "mixed (expected cgo)" in text
    assert "did not start" in text
    assert "FAIL" in text and "PASS" in text
    table = comparison_table(summary)
    assert table.row_count == len(summary["modes"])
    assert [str(c.header) for c in table.columns][:3] == ["mode", "status", "resolver (expected)"]
    godebug = comparison_rows(summary)[4]
    resolver = fragments_text(godebug[2])
    assert resolver.plain == "mixed (expected cgo)"
    assert [str(span.style) for span in resolver.spans] == ["bold red"]
    failures = fragments_text(godebug[7])
    assert failures.plain == "■ refused 50 (1.7%)"
    assert str(failures.spans[0].style) == PALETTE["refused"]


def test_terminal_marks_an_interrupted_run() -> None:
    console = Console(file=io.StringIO(), record=True, width=220)
    console.print(comparison_table(interrupted_summary()))
    assert "Interrupted" in console.export_text()


def test_nameserver_line_names_the_engine() -> None:
    embedded = {"kind": "embedded", "engine": "go", "endpoints": ["127.0.0.1:53", "127.0.0.2:53"]}
    assert nameserver_text(embedded) == "embedded (go engine) 127.0.0.1:53, 127.0.0.2:53"
    # a real server has no engine, and summaries from before engines existed have none either
    assert nameserver_text({"kind": "dnsmasq", "engine": None, "endpoints": ["127.0.0.1:53"]}) == (
        "dnsmasq 127.0.0.1:53"
    )
    assert nameserver_text({"kind": "embedded", "endpoints": ["127.0.0.1:53"]}) == "embedded 127.0.0.1:53"
