"""How metrics, ratios and shares are written in recommendations, tables and plot labels."""

from __future__ import annotations

import math

import pandas as pd

MISSING = "–"
METRIC_DISPLAY_NAMES = {"bleu": "BLEU", "chrf": "chrF"}


def format_metric(value: float | None, metric_name: str | None = None) -> str:
    """Metrics on a 0..1 scale get 3 decimals, BLEU-like 0..100 scores get 2."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if (metric_name or "").lower() in METRIC_DISPLAY_NAMES or abs(value) > 1.0:
        return f"{value:.2f}"
    return f"{value:.3f}"


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
    "display_metric_name",
    "format_metric",
    "format_ratio",
    "fraction_text",
    "percent_text",
]
