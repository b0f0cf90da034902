"""How metrics, ratios, intervals and significance are written in recommendations, tables and plot labels."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

MISSING = "–"
METRIC_DISPLAY_NAMES = {"bleu": "BLEU", "chrf": "chrF", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2",
                        "rougel": "ROUGE-L", "rougelsum": "ROUGE-Lsum"}  # fmt: skip
SIGNIFICANCE_LEVEL = 0.05  # a metric delta's paired test is "significant" below this p-value
SIGNIFICANT_MARK = "*"
NOT_SIGNIFICANT_MARK = "n.s."
SIGNIFICANCE_NOTE = (
    f"{SIGNIFICANT_MARK} significant at p<{SIGNIFICANCE_LEVEL:g} (paired test against the model's fp32)"
)


def row_float(row: Mapping | pd.Series | None, column: str) -> float:
    """``row[column]`` as a float; NaN when the row lacks the column or holds nothing there (older records)."""
    if row is None:
        return math.nan
    value = row.get(column)
    if value is None or isinstance(value, str | bytes):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def row_interval(row: Mapping | pd.Series | None, columns: tuple[str, ...]) -> tuple[float, float] | None:
    """The (low, high) pair held in ``columns`` of ``row``; None when either end is absent or NaN."""
    if len(columns) != 2:
        return None
    low, high = row_float(row, columns[0]), row_float(row, columns[1])
    return None if math.isnan(low) or math.isnan(high) else (low, high)


def intervals_overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool | None:
    """Whether two intervals share a point; None when either is unknown."""
    if a is None or b is None:
        return None
    return max(a[0], b[0]) <= min(a[1], b[1])


def delta_significance(row: Mapping | pd.Series | None) -> bool | None:
    """Whether the row's metric delta against its fp32 is significant; None when no test was recorded.

    ``metric_delta_significant`` wins where recorded; otherwise ``metric_delta_p`` < SIGNIFICANCE_LEVEL.
    """
    p = row_float(row, "metric_delta_p")
    if math.isnan(p):
        return None
    flag = row.get("metric_delta_significant") if row is not None else None
    if flag is None or isinstance(flag, str) or pd.isna(flag):
        return p < SIGNIFICANCE_LEVEL
    return bool(flag)


def format_metric(value: float | None, metric_name: str | None = None) -> str:
    """Metrics on a 0..1 scale get 3 decimals, BLEU-like 0..100 scores get 2."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if (metric_name or "").lower() in METRIC_DISPLAY_NAMES or abs(value) > 1.0:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_p(p: float) -> str:
    """0.6234 -> 'p=0.62', 0.0312 -> 'p=0.031', 2e-5 -> 'p<0.001'."""
    if p is None or math.isnan(p):
        return "p=?"
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def format_interval(low: float, high: float, pattern: str = "{:.1f}", sep: str = ", ") -> str:
    """'[290, 330]' for an interval, '' when an end is missing; ``pattern`` formats each end."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return ""
    return f"[{pattern.format(low)}{sep}{pattern.format(high)}]"


def delta_label(row: Mapping | pd.Series | None) -> str:
    """A frontier label's quality marker: '+0.24 BLEU n.s.' or '-1.2 pts*'; '' without a recorded test.

    0..1 metrics (accuracy) are shown in percentage points, BLEU-like scores in their own unit.
    """
    significant = delta_significance(row)
    delta = row_float(row, "metric_delta")
    if significant is None or math.isnan(delta):
        return ""
    name = row.get("metric_name") if row is not None else None
    name = None if name is None or pd.isna(name) else str(name)
    if name is not None and name.lower() in METRIC_DISPLAY_NAMES:
        text = f"{delta:+.2f} {display_metric_name(name)}"
    elif abs(delta) <= 1.0 and abs(row_float(row, "metric")) <= 1.0:
        text = f"{100.0 * delta:+.1f} pts"
    else:
        text = f"{delta:+.2f}"
    return text + (SIGNIFICANT_MARK if significant else f" {NOT_SIGNIFICANT_MARK}")


def display_metric_name(metric_name: str | None) -> str:
    """'bleu' -> 'BLEU'; other names as recorded."""
    name = str(metric_name) if metric_name is not None and not pd.isna(metric_name) else "metric"
    return METRIC_DISPLAY_NAMES.get(name.lower(), name)


def format_ratio(ratio: float) -> str:
    """2.1 -> '2.1', 1.04 -> '1.04', 12.345 -> '12.3': enough digits to tell a gain from noise."""
    if ratio is None or math.isnan(ratio):
        return "?"
    text = f"{ratio:.1f}" if ratio >= 10 else f"{ratio:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent_text(share: float) -> str:
    """0.996 -> '99.6%'."""
    return f"{100.0 * share:.1f}%"


def fraction_text(fraction: float) -> str:
    """A quality fraction as the percentage a user typed: 0.99 -> '99%', 0.995 -> '99.5%'."""
    return f"{100.0 * fraction:.10g}%"


__all__ = [
    "METRIC_DISPLAY_NAMES",
    "MISSING",
    "NOT_SIGNIFICANT_MARK",
    "SIGNIFICANCE_LEVEL",
    "SIGNIFICANCE_NOTE",
    "SIGNIFICANT_MARK",
    "delta_label",
    "delta_significance",
    "display_metric_name",
    "format_interval",
    "format_metric",
    "format_p",
    "format_ratio",
    "fraction_text",
    "intervals_overlap",
    "percent_text",
    "row_float",
    "row_interval",
]
