"""Figures and tables of a per-unit sensitivity pass and a mixed-precision search (``accelbench.sensitivity``).

They read the DataFrames that ``layer_sensitivity`` and ``mixed_precision_search`` return (columns and
``attrs`` as documented there), so this module needs nothing from the layer above it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .formatting import MISSING, format_metric
from .style import FLOOR_STYLE, legend_beside, new_figure, readable, rows_height

if TYPE_CHECKING:  # matplotlib is imported lazily so that importing the analysis stays cheap
    from matplotlib.figure import Figure

QUANTIZED_ALONE = ("delta_quantized_alone", "speedup_quantized_alone", "only this unit int8", "tab:red")
FP32_ALONE = ("delta_fp32_alone", "speedup_fp32_alone", "only this unit fp32", "tab:blue")
BAR_HEIGHT = 0.38
CHOSEN_MARK = "✓"


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@readable
def sensitivity_bars(table: pd.DataFrame) -> Figure:
    """Per unit (a row each, model order): the metric change against fp32 when only that unit is int8 and when
    only it stays fp32 (top), and the speed-up of the same two variants against fp32, paired in their rounds
    (bottom). The dashed lines: the fully quantized variant's change and speed-up; the solid ones, fp32."""
    units = list(table["unit"])
    y = np.arange(len(units))
    fig, (top, bottom) = new_figure(2, 1, row_height_in=[rows_height(len(units))] * 2)
    for i, (delta, speed, label, colour) in enumerate((QUANTIZED_ALONE, FP32_ALONE)):
        offset = (i - 0.5) * BAR_HEIGHT
        top.barh(y + offset, table[delta].astype(float), BAR_HEIGHT, color=colour, label=label)
        bottom.barh(y + offset, table[speed].astype(float), BAR_HEIGHT, color=colour, label=label)
    attrs = table.attrs
    full = _num(attrs.get("full_int8_delta"))
    handles = list(top.get_legend_handles_labels()[0])
    if not math.isnan(full):
        handles.append(top.axvline(full, **FLOOR_STYLE, label=f"all units int8: {full:+.3f}"))
    top.axvline(0.0, color="black", lw=0.8)
    top.set(xlabel="metric change against fp32", title=f"{attrs.get('method', 'int8')}: sensitivity per unit")
    full_speed = _num(attrs.get("full_int8_speedup"))
    speed_handles = list(bottom.get_legend_handles_labels()[0])
    if not math.isnan(full_speed):
        speed_handles.append(
            bottom.axvline(full_speed, **FLOOR_STYLE, label=f"all units int8: {full_speed:.2f}×")
        )
    bottom.axvline(1.0, color="black", lw=0.8)
    bottom.set(xlabel=f"speed-up against fp32 at batch {attrs.get('batch_size', '?')}", title="speed")
    for ax, h in ((top, handles), (bottom, speed_handles)):
        ax.set_yticks(y, units)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        legend_beside(ax, h)
    return fig


def search_table(search: pd.DataFrame) -> pd.DataFrame:
    """The attempts of a search for people: k, the units kept fp32, metric, change, floor, speed, chosen."""
    if search.empty:
        return pd.DataFrame()
    floor = _num(search.attrs.get("floor"))
    return pd.DataFrame({
        "k": search["k"].astype(int),
        "kept fp32": search["fp32_units"],
        "metric": [format_metric(_num(v)) for v in search["metric"]],
        "change vs fp32": [MISSING if math.isnan(_num(v)) else f"{_num(v):+.3f}" for v in search["delta"]],
        f"meets floor {format_metric(floor)}": ["yes" if v else "no" for v in search["meets_floor"]],
        f"throughput (batch {search.attrs.get('batch_size', '?')})": [
            MISSING if math.isnan(_num(v)) else f"{_num(v):.0f}/s" for v in search["throughput"]
        ],
        "speed-up": [MISSING if math.isnan(_num(v)) else f"{_num(v):.2f}×" for v in search["speedup"]],
        "chosen": [CHOSEN_MARK if v else "" for v in search["chosen"]],
    })  # fmt: skip


@readable
def search_plot(search: pd.DataFrame) -> Figure:
    """Metric against the number of units kept fp32, the floor as a dashed line, the chosen attempt ringed;
    each point is labelled with its throughput."""
    fig, (ax,) = new_figure()
    metric = search["metric"].astype(float)
    ax.plot(search["k"], metric, marker="o", color="tab:blue", label="attempt")
    for k, m, t in zip(search["k"], metric, search["throughput"], strict=True):
        if not math.isnan(m) and not math.isnan(_num(t)):
            ax.annotate(f"{_num(t):.0f}/s", (k, m), textcoords="offset points", xytext=(6, 6), fontsize=9)
    handles = list(ax.get_legend_handles_labels()[0])
    floor = _num(search.attrs.get("floor"))
    if not math.isnan(floor):
        handles.append(ax.axhline(floor, **FLOOR_STYLE, label=f"floor {format_metric(floor)}"))
    chosen = search[search["chosen"]]
    if len(chosen):
        handles.append(ax.scatter(chosen["k"], chosen["metric"].astype(float), s=220, facecolors="none",
                                  edgecolors="tab:red", linewidths=2, label="chosen", zorder=3))  # fmt: skip
    ax.set_xticks(list(search["k"]))
    ax.set(xlabel="units kept fp32 (most sensitive first)", ylabel="metric",
           title=search.attrs.get("message", "mixed-precision search"))  # fmt: skip
    ax.title.set_wrap(True)
    ax.grid(alpha=0.3)
    legend_beside(ax, handles)
    return fig


__all__ = ["search_plot", "search_table", "sensitivity_bars"]
