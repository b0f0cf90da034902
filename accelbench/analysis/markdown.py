"""Markdown for summary.md: tables and the text of each kind of cell."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from ..records import BASELINE_METHOD
from .formatting import MISSING, NOT_SIGNIFICANT_MARK, SIGNIFICANT_MARK, delta_significance, format_metric


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


def fmt_interval(row: pd.Series | dict, column: str, pattern: str) -> str:
    """' [4.8–5.3]': the interval of ``column`` held in ``<column>_ci_low/_ci_high``; '' when not recorded."""
    low, high = to_float(row.get(f"{column}_ci_low")), to_float(row.get(f"{column}_ci_high"))
    if math.isnan(low) or math.isnan(high):
        return ""
    return f" [{pattern.format(low)}–{pattern.format(high)}]"


def fmt_delta_test(row: pd.Series | dict) -> str:
    """'-0.025* [-0.040, -0.010]' or '+0.24 n.s. [-1.06, +1.52]': the delta and, where tested, its verdict."""
    name = row.get("metric_name")
    name = name if isinstance(name, str) else None
    text = fmt_delta(row.get("metric_delta"), name)
    significant = delta_significance(row)
    if text == MISSING or significant is None or row.get("method") == BASELINE_METHOD:
        return text
    text += SIGNIFICANT_MARK if significant else f" {NOT_SIGNIFICANT_MARK}"
    low, high = to_float(row.get("metric_delta_ci_low")), to_float(row.get("metric_delta_ci_high"))
    if not (math.isnan(low) or math.isnan(high)):
        text += f" [{fmt_delta(low, name)}, {fmt_delta(high, name)}]"
    return text


def fmt_speedup(ratio: float, interval: tuple[float, float] | None = None, mark: str = "") -> str:
    """'2.67x [2.51–2.80]'; ``mark`` flags a ratio that is not paired."""
    if math.isnan(ratio):
        return MISSING
    text = f"{ratio:.2f}x"
    if interval is not None:
        text += f" [{interval[0]:.2f}–{interval[1]:.2f}]"
    return text + mark


def fmt_seconds(value: object) -> str:
    """Seconds: whole above 10 s, one decimal below."""
    if is_missing(value):
        return MISSING
    return f"{float(value):.0f}" if abs(float(value)) >= 10 else f"{float(value):.1f}"


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
