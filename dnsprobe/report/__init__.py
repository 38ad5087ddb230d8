"""The report stage: charts, report.html and report.md from a run's summary.

Every renderer takes the summary and nothing else, so a report can be rebuilt from an old run directory;
nothing here writes summary.json. What the renderers share is in `dnsprobe.report.common`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dnsprobe.report.charts import write_charts
from dnsprobe.report.html import write_html
from dnsprobe.report.markdown import write_markdown

__all__ = ["write_report"]


def write_report(run_dir: Path, summary: Mapping[str, Any]) -> dict[str, Path]:
    """Write charts/<name>.png, report.html and report.md under `run_dir`.

    Returns their paths keyed "latency", "outcomes", "wire_queries", "html", "markdown".
    summary.json is the pipeline's to write, not this function's.
    """
    charts = write_charts(summary, run_dir / "charts")
    paths = dict(charts)
    paths["html"] = write_html(summary, charts, run_dir / "report.html")
    paths["markdown"] = write_markdown(summary, charts, run_dir / "report.md")
    return paths
