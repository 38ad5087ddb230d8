"""Rich tables for the terminal: the modes side by side, and the checks.

The columns and the failing values are the same as in report.html (they come from `comparison_rows`);
failing values are bold red, outcome classes carry their palette colour as a swatch.
Importing this module does not import matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from rich import box
from rich.table import Table
from rich.text import Text

from dnsprobe.report.common import (
    CHECK_COLUMNS,
    COMPARISON_COLUMNS,
    PALETTE,
    Column,
    Fragments,
    Row,
    check_rows,
    comparison_rows,
    run_banner,
    verdict,
)

STYLES: Final[Mapping[str, str]] = {"bad": "bold red", "good": "green", "muted": "dim", "": ""}


def fragments_text(fragments: Fragments, separator: str = ", ") -> Text:
    text = Text()
    for i, f in enumerate(fragments):
        if i:
            text.append(separator)
        if f.outcome is not None and f.outcome in PALETTE:
            text.append("■ ", style=PALETTE[f.outcome])
        text.append(f.text, style=STYLES.get(f.tone, ""))
    return text


def _table(title: str, columns: Sequence[Column], rows: Sequence[Row], caption: Text | None) -> Table:
    table = Table(
        title=title, caption=caption, box=box.SIMPLE_HEAD, title_justify="left", caption_justify="left"
    )
    for col in columns:
        if col.numeric:  # numbers never wrap; "p50\nms" because numbers are narrower than their titles
            words = col.title.split()
            table.add_column("\n".join(words), justify="right", no_wrap=True, min_width=max(map(len, words)))
        else:
            table.add_column(col.title, overflow="fold")
    for row in rows:
        table.add_row(*(fragments_text(v, separator="\n") for v in row))  # one failure class per line
    return table


def comparison_table(summary: Mapping[str, Any]) -> Table:
    """The modes side by side (one row each); an unfinished run says so in the caption."""
    banner = run_banner(summary)
    caption = Text(banner, style="bold red") if banner else None
    title = f"dnsprobe {summary.get('scenario') or '?'}: resolver modes side by side"
    return _table(title, COMPARISON_COLUMNS, comparison_rows(summary), caption)


def checks_table(summary: Mapping[str, Any]) -> Table:
    """Every check with PASS/FAIL; the caption is the verdict."""
    passed, sentence = verdict(summary)
    return _table(
        "Checks", CHECK_COLUMNS, check_rows(summary), Text(sentence, style="green" if passed else "bold red")
    )
