"""The wire query names one lookup of a workload can cause: its name template (`{rand}`, `{seq}`) with
and without each search domain. The query log is matched against these to count wire queries per lookup
and to time a search-list walk."""

from __future__ import annotations

import re
from collections.abc import Sequence


def _name_body(query: str) -> str:
    """A regex (without anchors) for the names a workload's query template produces."""
    parts = re.split(r"(\{rand\}|\{seq\})", query.rstrip(".").lower())
    return "".join(
        "[0-9a-f]{16}" if part == "{rand}" else r"\d+" if part == "{seq}" else re.escape(part)
        for part in parts
    )


def _suffixes(search: Sequence[str]) -> str:
    return "|".join(re.escape(s.rstrip(".").lower()) for s in search)


def workload_pattern(query: str, search: Sequence[str]) -> re.Pattern[str]:
    """A regex matching every wire query name one lookup of this workload can cause."""
    suffixes = _suffixes(search)
    tail = rf"(?:\.(?:{suffixes}))?" if suffixes and not query.endswith(".") else ""
    return re.compile(rf"^{_name_body(query)}{tail}\.?$")


def search_walk_pattern(query: str, search: Sequence[str]) -> re.Pattern[str] | None:
    """A regex matching this workload's names with a search domain appended (None: it never walks)."""
    suffixes = _suffixes(search)
    if not suffixes or query.endswith("."):
        return None
    return re.compile(rf"^{_name_body(query)}\.(?:{suffixes})\.?$")
