"""Charts from a run's summary, one `Figure` per question; never pyplot, so no global state.

Each builder takes the summary and returns a Figure whose artists carry the data (bar heights, widths,
the max markers, the reference line), which is what the tests read. Every bar's gid is its mode name.
Modes that were skipped or did not start keep their place on the axis with a label saying so.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from dnsprobe.report import timecharts
from dnsprobe.report.common import (
    BASELINE_LABEL,
    BASELINE_WIRE_QUERIES,
    OUTCOME_CLASSES,
    PALETTE,
    chart_titles,
    fmt_int,
    fmt_ms,
    latency,
    mode_name,
    modes,
    number,
    outcome_counts,
    ran,
    run_banner,
    status_label,
    write_atomic,
)

DPI: Final = 110
WIDTH_IN: Final = 8.5
PERCENTILES: Final = ("p50", "p90", "p99")
PERCENTILE_COLOURS: Final[Mapping[str, str]] = {"p50": "#9ECAE1", "p90": "#4292C6", "p99": "#08306B"}
MAX_COLOUR: Final = "#C00000"
ALL_WORKLOADS: Final = "all workloads"
MUTED: Final = "#666666"
# Characters of 9 pt tick text that fit across the plot; shared among the modes' ticks.
TICK_CHARS: Final = 112
# Wider spreads than this hide the fast modes' bars on a linear axis.
LOG_SPREAD: Final = 30.0
# PNG metadata without the matplotlib version, so the bytes depend only on the data.
PNG_METADATA: Final[dict[str, str | None]] = {"Software": None}


def _mpl(text: str) -> str:
    """User text as literal matplotlib text: a pair of "$" would otherwise start mathtext."""
    return text.replace("$", r"\$")


def _figure(name: str, summary: Mapping[str, Any], height: float) -> tuple[Figure, Axes]:
    finding, what = chart_titles(summary)[name]
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    fig.suptitle(_mpl(finding), x=0.01, ha="left", fontsize=12, fontweight="bold")
    ax = fig.add_subplot()
    ax.set_title(_mpl(what), loc="left", fontsize=9.5, color="#333333")
    if run_banner(summary):  # a chart is often shared on its own: it must say the run was cut short
        ax.set_title("unfinished run: partial figures", loc="right", fontsize=9.5, color=MAX_COLOUR)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _not_ran_label(mode: Mapping[str, Any]) -> str:
    return status_label(mode) if not ran(mode) else "no lookups"


def _tick_label(mode: Mapping[str, Any], columns: int) -> str:
    # Long names wrap at hyphens so neighbouring ticks do not run into each other.
    name = "\n".join(textwrap.wrap(_mpl(mode_name(mode)), columns, break_on_hyphens=True)) or "?"
    used, expected = mode.get("resolver"), mode.get("expected_resolver")
    if not ran(mode) or not used:
        return name
    if expected and used != expected:
        return f"{name}\n{used} resolver\n(expected {expected})"
    return f"{name}\n{used} resolver"


def _resolver_surprise(mode: Mapping[str, Any]) -> bool:
    used, expected = mode.get("resolver"), mode.get("expected_resolver")
    return ran(mode) and bool(used) and (used in ("mixed", "unknown") or bool(expected and used != expected))


def _mode_ticks(ax: Axes, ms: Sequence[Mapping[str, Any]]) -> None:
    """One tick per mode (skipped ones included); a resolver other than the expected one in red."""
    columns = max(8, int(TICK_CHARS / max(len(ms), 1)))
    ax.set_xticks(range(len(ms)), [_tick_label(m, columns) for m in ms], fontsize=9)
    for label, m in zip(ax.get_xticklabels(), ms, strict=True):
        if _resolver_surprise(m):
            label.set_color(MAX_COLOUR)
    ax.set_xlim(-0.6, max(len(ms), 1) - 0.4)


def _label_gap(ax: Axes, x: float, text: str) -> None:
    """Write why a mode has no bars where its bars would be."""
    ax.text(
        x,
        0.04,
        text,
        transform=ax.get_xaxis_transform(),
        ha="center",
        va="bottom",
        fontsize=9,
        fontstyle="italic",
        color=MUTED,
    )


def _tag(container: BarContainer, gids: Sequence[str]) -> None:
    for rect, gid in zip(container.patches, gids, strict=True):
        rect.set_gid(gid)


def latency_figure(summary: Mapping[str, Any]) -> Figure:
    """Grouped bars p50/p90/p99 per mode, a marker at the max; log y when the spread is wide."""
    ms = modes(summary)
    fig, ax = _figure("latency", summary, 5.0)
    width = 0.26
    data = [m for m in ms if ran(m) and latency(m, "p50") is not None]
    xs = {mode_name(m): float(i) for i, m in enumerate(ms)}
    values = [v for m in data for k in (*PERCENTILES, "max") if (v := latency(m, k)) is not None]
    log = bool(values) and min(values) > 0 and max(values) / min(values) > LOG_SPREAD

    for i, p in enumerate(PERCENTILES):
        shown = [m for m in data if latency(m, p) is not None]
        heights = [latency(m, p) or 0.0 for m in shown]
        bars = ax.bar(
            [xs[mode_name(m)] + (i - 1) * width for m in shown],
            heights,
            width,
            label=p,
            color=PERCENTILE_COLOURS[p],
            zorder=2,
        )
        _tag(bars, [mode_name(m) for m in shown])
        if p == "p99":
            ax.bar_label(bars, labels=[fmt_ms(h) for h in heights], fontsize=8, padding=2)
    peaks = [(m, v) for m in data if (v := latency(m, "max")) is not None]
    ax.plot(
        [xs[mode_name(m)] for m, _ in peaks],
        [v for _, v in peaks],
        linestyle="none",
        marker="_",
        markersize=16,
        markeredgewidth=2,
        color=MAX_COLOUR,
        label="max",
        gid="max",
        zorder=3,
    )
    for m, v in peaks:
        ax.annotate(
            # Left-aligned over the group, so it stays clear of the p99 label over the right bar.
            f"max {fmt_ms(v)}",
            (xs[mode_name(m)] - 1.5 * width, v),
            xytext=(0, 3),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=7.5,
            color=MAX_COLOUR,
        )
    for m in ms:
        if m not in data:
            _label_gap(ax, xs[mode_name(m)], _not_ran_label(m))

    _mode_ticks(ax, ms)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
        ax.set_ylim(min(values) / 2, max(values) * 3)
        ax.set_ylabel("latency (ms, log scale)")
    else:
        ax.set_ylim(0, (max(values) if values else 1.0) * 1.15)
        ax.set_ylabel("latency (ms)")
    ax.set_xlabel("resolver mode")
    ax.grid(axis="y", color="#E5E5E5", zorder=0)
    if data:
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda i: [*PERCENTILES, "max"].index(labels[i]))
        fig.legend(
            [handles[i] for i in order],
            [labels[i] for i in order],
            loc="outside lower center",
            ncols=4,
            frameon=False,
            fontsize=9,
        )
    return fig


def _ink(colour: str) -> str:
    """Black or white, whichever reads on `colour`."""
    r, g, b = to_rgb(colour)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def outcomes_figure(summary: Mapping[str, Any]) -> Figure:
    """Stacked horizontal bars per mode: share of lookups in each outcome class, counts written on."""
    ms = modes(summary)
    fig, ax = _figure("outcomes", summary, 1.9 + 0.62 * max(len(ms), 1))
    counts = [outcome_counts(m) if ran(m) else dict.fromkeys(OUTCOME_CLASSES, 0) for m in ms]
    totals = [sum(c.values()) for c in counts]
    ys = list(range(len(ms)))
    lefts = [0.0] * len(ms)
    small: list[list[str]] = [[] for _ in ms]
    for cls in OUTCOME_CLASSES:
        n = [c[cls] for c in counts]
        if not any(n):
            continue
        widths = [100.0 * k / t if t else 0.0 for k, t in zip(n, totals, strict=True)]
        bars = ax.barh(ys, widths, 0.62, left=lefts, label=cls, color=PALETTE[cls], linewidth=0, zorder=2)
        _tag(bars, [mode_name(m) for m in ms])
        for y, k, w, left in zip(ys, n, widths, lefts, strict=True):
            if not k:
                continue
            if w >= 9:
                text = f"{k:,} ({w:.0f}%)" if w >= 22 else f"{k:,}"
                ax.text(
                    left + w / 2,
                    y,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=_ink(PALETTE[cls]),
                    zorder=3,
                )
            else:
                small[y].append(f"{cls} {k:,} ({w:.1f}%)" if w >= 0.1 else f"{cls} {k:,} (<0.1%)")
        lefts = [a + b for a, b in zip(lefts, widths, strict=True)]

    for y, (m, total) in enumerate(zip(ms, totals, strict=True)):
        if not ran(m) or not total:
            reason = m.get("reason")
            note = _not_ran_label(m) + (f": {_shorten(str(reason), 70)}" if reason else "")
            ax.text(1, y, _mpl(note), ha="left", va="center", fontsize=9, fontstyle="italic", color=MUTED)
        elif small[y]:
            ax.text(100.8, y, "\n".join(small[y]), ha="left", va="center", fontsize=7.5, clip_on=False)

    ax.set_yticks(
        ys,
        [
            f"{_mpl(mode_name(m))}\n{fmt_int(t)} lookups" if t else _mpl(mode_name(m))
            for m, t in zip(ms, totals, strict=True)
        ],
        fontsize=9,
    )
    ax.set_ylim(max(len(ms), 1) - 0.5, -0.5)  # first mode on top
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the mode's lookups (%)")
    ax.spines[["left"]].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color="#E5E5E5", zorder=0)
    if any(totals):
        fig.legend(loc="outside lower center", ncols=7, frameon=False, fontsize=9)
    return fig


def _shorten(text: str, limit: int) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _workload_names(ms: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for m in ms:
        for w in m.get("workloads") or ():
            if isinstance(w, Mapping) and str(w.get("workload")) not in names:
                names.append(str(w.get("workload")))
    return names


def _wire_value(mode: Mapping[str, Any], series: str) -> float | None:
    if series == ALL_WORKLOADS:
        return number(mode.get("wire_queries_per_lookup"))
    for w in mode.get("workloads") or ():
        if isinstance(w, Mapping) and str(w.get("workload")) == series:
            return number(w.get("wire_queries_per_lookup"))
    return None


def wire_queries_figure(summary: Mapping[str, Any]) -> Figure:
    """Bars per mode: wire queries per lookup over all workloads, then per workload; a line at 2."""
    ms = modes(summary)
    fig, ax = _figure("wire_queries", summary, 5.0)
    series = [ALL_WORKLOADS, *_workload_names(ms)]
    tab = colormaps["tab10"]
    colours = ["#4D4D4D"] + [tab(i % 10) for i in range(len(series) - 1)]
    width = 0.8 / len(series)
    top = BASELINE_WIRE_QUERIES
    plotted: set[int] = set()
    for j, name in enumerate(series):
        shown = [(i, m, v) for i, m in enumerate(ms) if ran(m) and (v := _wire_value(m, name)) is not None]
        if not shown:
            continue
        bars = ax.bar(
            [i - 0.4 + width * (j + 0.5) for i, _, _ in shown],
            [v for _, _, v in shown],
            width * 0.92,
            label=_mpl(name),
            color=colours[j],
            zorder=2,
        )
        _tag(bars, [mode_name(m) for _, m, _ in shown])
        ax.bar_label(bars, fmt="%.1f", fontsize=7.5, padding=1.5)
        top = max(top, *(v for _, _, v in shown))
        plotted.update(i for i, _, _ in shown)
    ax.axhline(
        BASELINE_WIRE_QUERIES,
        color="#333333",
        linestyle="--",
        linewidth=1.2,
        label=BASELINE_LABEL,
        gid="baseline",
        zorder=1,
    )
    for i, m in enumerate(ms):
        if i not in plotted:
            _label_gap(ax, float(i), _not_ran_label(m) if not ran(m) else "no wire data")
    _mode_ticks(ax, ms)
    ax.set_ylim(0, math.ceil(top * 1.2))
    ax.set_ylabel("wire queries per lookup")
    ax.set_xlabel("resolver mode")
    ax.grid(axis="y", color="#E5E5E5", zorder=0)
    fig.legend(loc="outside lower center", ncols=min(len(series) + 1, 4), frameon=False, fontsize=9)
    return fig


FigureBuilder = Callable[[Mapping[str, Any]], Figure]
BUILDERS: Final[Mapping[str, FigureBuilder]] = {
    "latency": latency_figure,
    "latency_cdf": timecharts.latency_cdf_figure,
    "latency_over_time": timecharts.latency_over_time_figure,
    "workload_p99_over_time": timecharts.workload_p99_over_time_figure,
    "threads": timecharts.threads_figure,
    "outcomes": outcomes_figure,
    "failures_over_time": timecharts.failures_over_time_figure,
    "throughput": timecharts.throughput_figure,
    "wire_queries": wire_queries_figure,
    "source_ports": timecharts.source_ports_figure,
}


def build_figures(summary: Mapping[str, Any]) -> dict[str, Figure]:
    return {name: build(summary) for name, build in BUILDERS.items()}


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=PNG_METADATA, facecolor="white")
    return buf.getvalue()


def write_charts(summary: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write <out_dir>/<name>.png for every chart; returns the paths by chart name."""
    return {
        name: write_atomic(out_dir / f"{name}.png", png_bytes(fig))
        for name, fig in build_figures(summary).items()
    }
