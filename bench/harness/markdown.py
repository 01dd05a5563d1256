"""Markdown helpers the reports share: medians over rounds, number formats, ratios, tables."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from .results import Sample

__all__ = ["fmt", "markdown_table", "median", "ratio"]


def median(sample_list: list[Sample], key: str) -> float | None:
    """The median of a figure over rounds, leaving out rounds without it (or with NaN)."""
    values = [s.values[key] for s in sample_list if key in s.values and s.values[key] == s.values[key]]
    return statistics.median(values) if values else None


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def ratio(value: float | None, reference: float | None) -> str:
    return "-" if value is None or not reference else f"{value / reference:.2f}x"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
