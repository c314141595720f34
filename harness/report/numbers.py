"""How a page prints one value (pure): its own module so summary, words and rooms all use it without a cycle."""

from __future__ import annotations

from typing import Any

__all__ = ["number"]


def number(value: Any, unit: str = "") -> str:
    """A count or a latency for a page: '-' for a missing value (never a literal None), thousands separated."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}{unit}"
    if isinstance(value, float):
        shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}" if abs(value) >= 1 else f"{value:.3g}"
        return shown + unit
    return f"{value}{unit}"
