"""Charts of the series the analysis stage computed per mode: over time, as a distribution, on the wire.

Modes sit side by side: one panel per mode on shared axes for the busy charts (percentiles over time,
failures over time), one line per mode where lines stay readable (CDF, throughput). Every artist that
carries data has a gid "<mode>" or "<mode>:<series>" so tests read the plotted data back.
A summary without the series (an older run, a mode that did not run) gets a panel saying so.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, Final

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from dnsprobe.report.common import (
    OUTCOME_CLASSES,
    PALETTE,
    chart_titles,
    mode_name,
    modes,
    number,
    ran,
    run_banner,
    section,
)

DPI: Final = 110
WIDTH_IN: Final = 8.5
TITLE_PT: Final = 12
SUBTITLE_PT: Final = 9.5
SUBTITLE_CHARS: Final = int(WIDTH_IN * 72 / (SUBTITLE_PT * 0.56))  # DejaVu Sans' average width
PANEL_COLUMNS: Final = 3
PERCENTILE_STYLE: Final[Mapping[str, tuple[str, float]]] = {
    "p50": ("#9ECAE1", 1.4),
    "p90": ("#4292C6", 1.4),
    "p99": ("#08306B", 1.8),
}
TIMEOUT_COLOUR: Final = "#C00000"
MUTED: Final = "#666666"
DEFAULT_TIMEOUT_S: Final = 5.0


def _mpl(text: str) -> str:
    return text.replace("$", r"\$")


def mode_colour(index: int) -> tuple[float, float, float, float]:
    return tuple(colormaps["tab10"](index % 10))  # type: ignore[return-value]


def _titled(fig: Figure, name: str, summary: Mapping[str, Any]) -> None:
    """The finding in bold on top, what is plotted under it (wrapped to the figure's width). The title
    carries blank lines that make room for the subtitle, which is placed a fixed distance in points
    below the top, so neither overlaps the other whatever the figure's height."""
    finding, what = chart_titles(summary)[name]
    note = "  (unfinished run: partial figures)" if run_banner(summary) else ""
    lines = textwrap.wrap(_mpl(what + note), width=SUBTITLE_CHARS) or [""]
    # x only: with y given, constrained layout would no longer make room for the title (autopos)
    fig.suptitle(_mpl(finding) + "\n" * len(lines), x=0.01, ha="left", fontsize=TITLE_PT, fontweight="bold")
    below = (7 + TITLE_PT * 1.25) / (72 * fig.get_figheight())  # the layout's pad, the title line, a gap
    fig.text(0.01, 1 - below, "\n".join(lines), ha="left", va="top", fontsize=SUBTITLE_PT, color="#333333")


def _single(name: str, summary: Mapping[str, Any], height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    _titled(fig, name, summary)
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(color="#E5E5E5", zorder=0)
    return fig, ax


def _panels(
    name: str, summary: Mapping[str, Any], ms: Sequence[Mapping[str, Any]]
) -> tuple[Figure, list[Axes]]:
    cols = max(1, min(PANEL_COLUMNS, len(ms)))
    rows = max(1, math.ceil(len(ms) / cols))
    fig = Figure(figsize=(WIDTH_IN, 1.3 + 2.3 * rows), dpi=DPI, layout="constrained")
    _titled(fig, name, summary)
    grid = fig.subplots(rows, cols, sharex=False, sharey=True, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[len(ms) :]:
        ax.set_visible(False)
    for ax, m in zip(axes, ms, strict=False):
        ax.set_title(_mpl(mode_name(m)), loc="left", fontsize=10, fontweight="bold")
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(color="#E5E5E5", zorder=0)
        ax.tick_params(labelsize=8)
    return fig, axes[: len(ms)] if ms else axes[:1]


def _gap(ax: Axes, text: str) -> None:
    ax.text(
        0.5,
        0.5,
        _mpl(text),
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=9,
        fontstyle="italic",
        color=MUTED,
    )


def _why_empty(mode: Mapping[str, Any]) -> str:
    if not ran(mode):
        return str(mode.get("status") or "not run").replace("_", " ")
    return "no series in this summary"


def series(mode: Mapping[str, Any]) -> Mapping[str, Any]:
    """The mode's timeline, or {} when it has none (older summaries, modes that did not run)."""
    tl = section(mode, "timeline")
    return tl if tl.get("start_s") else {}


def resolver_timeout_s(mode: Mapping[str, Any]) -> float:
    return number(section(mode, "resolv").get("timeout_s")) or DEFAULT_TIMEOUT_S


def _ms_axis(ax: Axes) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))


def latency_over_time_figure(summary: Mapping[str, Any]) -> Figure:
    """Per mode: p50/p90/p99 of the lookups started in each time bin (log ms), timeout as a line."""
    ms = modes(summary)
    fig, axes = _panels("latency_over_time", summary, ms)
    for ax, m in zip(axes, ms, strict=False):
        tl = series(m)
        if not tl:
            _gap(ax, _why_empty(m))
            continue
        xs = tl["start_s"]
        for p, (colour, lw) in PERCENTILE_STYLE.items():
            ys = [math.nan if v is None else v for v in tl.get(p) or []]
            ax.plot(xs[: len(ys)], ys, color=colour, linewidth=lw, label=p, gid=f"{mode_name(m)}:{p}")
        timeout_ms = resolver_timeout_s(m) * 1000
        ax.axhline(
            timeout_ms, color=TIMEOUT_COLOUR, linestyle=":", linewidth=1, gid=f"{mode_name(m)}:timeout"
        )
        ax.set_xlabel("s since the mode's first lookup", fontsize=8)
    _ms_axis(axes[0])
    axes[0].set_ylabel("latency (ms, log)", fontsize=8)
    handles = [h for ax in axes for h in ax.get_lines()[:3]][:3]
    if handles:
        fig.legend(
            handles, [*PERCENTILE_STYLE], loc="outside lower center", ncols=3, frameon=False, fontsize=9
        )
    return fig


def workload_p99_over_time_figure(summary: Mapping[str, Any]) -> Figure:
    """Per mode: p99 of each workload's lookups per time bin (log ms), one line per workload: fast names
    queued behind slow ones show here, where the mode's p99 is the slow names'."""
    ms = modes(summary)
    fig, axes = _panels("workload_p99_over_time", summary, ms)
    labels: list[str] = []
    for ax, m in zip(axes, ms, strict=False):
        tl = series(m)
        per_workload = section(tl, "p99_by_workload")
        if not per_workload:
            _gap(ax, _why_empty(m) if not tl else "no per-workload series in this summary")
            continue
        xs = tl["start_s"]
        for label, values in per_workload.items():
            if label not in labels:
                labels.append(label)
            ys = [math.nan if v is None else v for v in values or ()]
            ax.plot(
                xs[: len(ys)],
                ys,
                color=mode_colour(labels.index(label)),
                linewidth=1.4,
                marker=".",
                label=_mpl(label),
                gid=f"{mode_name(m)}:{label}",
            )
        ax.axhline(
            resolver_timeout_s(m) * 1000,
            color=TIMEOUT_COLOUR,
            linestyle=":",
            linewidth=1,
            gid=f"{mode_name(m)}:timeout",
        )
        ax.set_xlabel("s since the mode's first lookup", fontsize=8)
    _ms_axis(axes[0])
    axes[0].set_ylabel("p99 (ms, log)", fontsize=8)
    if labels:
        from matplotlib.lines import Line2D

        fig.legend(
            [Line2D([], [], color=mode_colour(i), marker=".") for i in range(len(labels))],
            [_mpl(label) for label in labels],
            loc="outside lower center",
            ncols=min(len(labels), 5),
            frameon=False,
            fontsize=9,
        )
    return fig


def threads_figure(summary: Mapping[str, Any]) -> Figure:
    """The probe's OS threads over the load, one line per mode (modes ran one after another, each from
    its own first lookup): hundreds in cgo modes with slow lookups in flight, a handful with Go's."""
    ms = modes(summary)
    fig, ax = _single("threads", summary, 4.2)
    drawn = 0
    for i, m in enumerate(ms):
        samples = section(m, "threads")
        xs, ys = samples.get("at_s") or [], samples.get("count") or []
        if not xs:
            continue
        ax.plot(
            xs,
            ys,
            drawstyle="steps-post",
            color=mode_colour(i),
            linewidth=1.8,
            label=_mpl(f"{mode_name(m)} (peak {max(ys):,})"),
            gid=mode_name(m),
        )
        drawn += 1
    if not drawn:
        _gap(ax, "no thread samples in this summary")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("s since the mode's first lookup")
    ax.set_ylabel("probe OS threads")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # threads come whole
    if drawn:
        fig.legend(loc="outside lower center", ncols=min(drawn, 5), frameon=False, fontsize=9)
    return fig


def latency_cdf_figure(summary: Mapping[str, Any]) -> Figure:
    """Share of lookups done within x ms, one line per mode, log x; dashed lines at k x timeout."""
    ms = modes(summary)
    fig, ax = _single("latency_cdf", summary, 4.8)
    top = 0.0
    timeouts: set[float] = set()
    drawn = 0
    for i, m in enumerate(ms):
        cdf = section(m, "latency_cdf")
        xs, ys = cdf.get("ms") or [], cdf.get("share") or []
        if not xs:
            continue
        ax.plot(
            xs,
            [100 * y for y in ys],
            drawstyle="steps-post",
            color=mode_colour(i),
            linewidth=1.8,
            label=_mpl(mode_name(m)),
            gid=mode_name(m),
        )
        top = max(top, float(xs[-1]))
        timeouts.add(resolver_timeout_s(m))
        drawn += 1
    for t in sorted(timeouts):
        k = 1
        while k * t * 1000 <= max(top * 1.2, t * 1000) and k <= 16:
            ax.axvline(
                k * t * 1000, color=TIMEOUT_COLOUR, linestyle="--", linewidth=1, gid=f"timeout:{k * t:g}"
            )
            ax.text(
                k * t * 1000,
                101,
                f"{k}×{t:g} s" if k > 1 else f"timeout {t:g} s",
                rotation=90,
                ha="right",
                va="top",
                fontsize=7.5,
                color=TIMEOUT_COLOUR,
            )
            k += 1
    if not drawn:
        _gap(ax, "no lookup latencies in this summary")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
    ax.set_ylim(0, 102)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("lookups done within (%)")
    if drawn:
        fig.legend(loc="outside lower center", ncols=min(drawn, 5), frameon=False, fontsize=9)
    return fig


def failures_over_time_figure(summary: Mapping[str, Any]) -> Figure:
    """Per mode: failed lookups per second by outcome class, stacked, per time bin."""
    ms = modes(summary)
    fig, axes = _panels("failures_over_time", summary, ms)
    seen: set[str] = set()
    for ax, m in zip(axes, ms, strict=False):
        tl = series(m)
        if not tl:
            _gap(ax, _why_empty(m))
            continue
        xs, width = tl["start_s"], number(tl.get("bin_s")) or 1.0
        failures = section(tl, "failures")
        bottom = [0.0] * len(xs)
        for cls in OUTCOME_CLASSES[1:]:
            counts = failures.get(cls)
            if not counts:
                continue
            rates = [c / width for c in counts]
            bars = ax.bar(
                xs,
                rates,
                width,
                bottom=bottom,
                align="edge",
                color=PALETTE[cls],
                label=cls,
                linewidth=0,
                zorder=2,
            )
            for rect in bars.patches:
                rect.set_gid(f"{mode_name(m)}:{cls}")
            bottom = [a + b for a, b in zip(bottom, rates, strict=True)]
            seen.add(cls)
        waited = tl.get("waited_timeout") or []
        if any(waited):  # lookups that sat out a resolver timeout, whether they then succeeded or not
            ax.plot(
                xs[: len(waited)],
                [c / width for c in waited],
                drawstyle="steps-post",
                color="#000000",
                linewidth=1.2,
                gid=f"{mode_name(m)}:waited_timeout",
                zorder=3,
            )
            seen.add("waited_timeout")
        if not any(bottom):
            _gap(ax, "no failures")
        ax.set_xlim(0, (xs[-1] + width) if xs else 1)
        ax.set_xlabel("s since the mode's first lookup", fontsize=8)
    axes[0].set_ylabel("lookups/s (bars: failed)", fontsize=8)
    if seen:
        order: list[str] = [c for c in OUTCOME_CLASSES if c in seen]
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles: list[Any] = [Patch(color=PALETTE[c]) for c in order]
        if "waited_timeout" in seen:
            handles.append(Line2D([], [], color="#000000", linewidth=1.2))
            order.append("waited ≥ 1 timeout (ok or not)")
        fig.legend(
            handles,
            order,
            loc="outside lower center",
            ncols=len(order),
            frameon=False,
            fontsize=9,
        )
    return fig


def throughput_figure(summary: Mapping[str, Any]) -> Figure:
    """Lookups started per second over time, one line per mode (modes ran one after another)."""
    ms = modes(summary)
    fig, ax = _single("throughput", summary, 4.2)
    drawn = 0
    for i, m in enumerate(ms):
        tl = series(m)
        if not tl:
            continue
        ax.plot(
            tl["start_s"],
            tl.get("lookups_per_s") or [],
            color=mode_colour(i),
            linewidth=1.8,
            marker="." if len(tl["start_s"]) < 30 else None,
            label=_mpl(mode_name(m)),
            gid=mode_name(m),
        )
        drawn += 1
    if not drawn:
        _gap(ax, "no timeline in this summary")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("s since the mode's first lookup")
    ax.set_ylabel("lookups started per second")
    if drawn:
        fig.legend(loc="outside lower center", ncols=min(drawn, 5), frameon=False, fontsize=9)
    return fig


def source_ports_figure(summary: Mapping[str, Any]) -> Figure:
    """Distinct client source ports the nameserver saw per mode, with the queries they carried."""
    ms = modes(summary)
    fig, ax = _single("source_ports", summary, 4.0)
    xs, heights, labels, gids = [], [], [], []
    for i, m in enumerate(ms):
        wire = section(m, "wire")
        ports, queries = number(wire.get("source_ports")), number(wire.get("queries"))
        if ports is None or not queries:
            ax.text(
                i,
                0,
                _why_empty(m) if not ran(m) else "no wire data",
                ha="center",
                va="bottom",
                fontsize=8,
                fontstyle="italic",
                color=MUTED,
            )
            continue
        xs.append(i)
        heights.append(ports)
        labels.append(f"{ports:,.0f} ports\n{queries / ports:.1f} queries/port")
        gids.append(mode_name(m))
    bars = ax.bar(xs, heights, 0.6, color=[mode_colour(i) for i in xs], zorder=2)
    for rect, gid in zip(bars.patches, gids, strict=True):
        rect.set_gid(gid)
    ax.bar_label(bars, labels=labels, fontsize=7.5, padding=2)
    ax.set_xticks(range(len(ms)), [_mpl(mode_name(m)) for m in ms], fontsize=9)
    ax.set_ylim(0, max(heights, default=1.0) * 1.3)
    ax.set_ylabel("distinct source ports")
    ax.grid(axis="x", visible=False)
    return fig
