"""Durations as people write them: `30s`, `1.5m`, `1h30m`, `500ms`, or a plain number of seconds."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds; ValueError with the accepted forms when `text` is not a duration."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    value = str(text).strip().replace(" ", "")
    try:
        return float(value)
    except ValueError:
        pass
    parts = _PART.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30, 30s, 5m, 1h30m or 500ms")
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """`1h 5m`, `42 s`, `1.5 s`: for progress lines and estimates."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60)}m"
    if seconds >= 120:
        return f"{int(seconds // 60)}m {int(seconds % 60)}s"
    return f"{seconds:g} s"
