"""Readable time bins (0.1 s ... 1 h) for timelines: one rule shared by the rollup store, which bins as it
reads, and the analysis."""

from __future__ import annotations

import math
from typing import Final

MAX_BINS: Final = 60
_NICE_WIDTHS: Final = (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def nice_width(span_s: float, max_bins: int = MAX_BINS) -> float:
    """The smallest readable bin width that cuts `span_s` into at most `max_bins` bins."""
    for width in _NICE_WIDTHS:
        if span_s / width <= max_bins:
            return float(width)
    return float(math.ceil(span_s / max_bins / 3600) * 3600)
