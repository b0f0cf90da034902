"""Markdown for summary.md: tables and the text of each kind of cell."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from .formatting import MISSING, format_metric


def is_missing(value: object) -> bool:
    """None, NaN and NA are missing; containers (lists of CPU flags, ...) are not."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers
        return False


def _cell(value: object) -> str:
    """Markdown-safe cell text: one line, pipes escaped."""
    text = MISSING if is_missing(value) else str(value)
    return text.replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool] = ()
) -> str:
    """A GitHub-flavoured markdown table; ``right[i]`` right-aligns column i (for numbers)."""
    align = [("---:" if i < len(right) and right[i] else "---") for i in range(len(headers))]
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def to_float(value: object) -> float:
    return math.nan if is_missing(value) else float(value)


def fmt(value: object, pattern: str) -> str:
    return MISSING if is_missing(value) else pattern.format(float(value))


def fmt_ms(value: object) -> str:
    return fmt(value, "{:.1f}")


def fmt_throughput(value: object) -> str:
    if is_missing(value):
        return MISSING
    return f"{float(value):.0f}" if abs(float(value)) >= 100 else f"{float(value):.1f}"


def fmt_metric_ci(row: pd.Series) -> str:
    """'0.901 [0.881, 0.920]': the metric with its 95% interval when recorded."""
    name = row.get("metric_name")
    text = format_metric(to_float(row.get("metric")), name)
    low, high = to_float(row.get("metric_ci_low")), to_float(row.get("metric_ci_high"))
    if not (math.isnan(low) or math.isnan(high)):
        text += f" [{format_metric(low, name)}, {format_metric(high, name)}]"
    return text


def fmt_delta(value: object, metric_name: object) -> str:
    if is_missing(value):
        return MISSING
    text = format_metric(float(value), metric_name if isinstance(metric_name, str) else None)
    return text if text.startswith("-") else f"+{text}"


def fmt_share(value: object) -> str:
    return fmt(value, "{:.1%}")


def first_line(message: object) -> str:
    """The first line of an error message (a traceback's first line names the error)."""
    if is_missing(message) or not str(message).strip():
        return ""
    return str(message).strip().splitlines()[0]


def env_text(value: object) -> str:
    """An environment value in one line: lists joined, dicts as k=v, whole floats as ints."""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


__all__ = ["markdown_table"]
