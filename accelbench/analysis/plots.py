"""The notebooks' pictures other than the frontiers: one function per plot, drawing ok rows only.

Every figure is drawn for the page it is shown on (``style``): the page's width, fonts of at least 9 pt,
legends beside the axes, batch sizes as ticks, the quality floor on every quality plot, names down the y
axis of bar charts (never slanted under them), and hollow markers or hatched bars for speeds measured on
a busy machine.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..records import BASELINE_METHOD, OK_STATUS
from .busy import busy_mask, busy_note
from .formatting import display_metric_name, format_metric, fraction_text
from .labels import LabelJob, place_labels
from .onnx_tables import ORT_STATIC_INT8, calibration_table, fusion_table
from .recommend import DEFAULT_FRACTION
from .style import (
    FLOOR_STYLE,
    METHOD_MARKERS,
    ROW_HEIGHT_IN,
    batch_size_axis,
    legend_beside,
    new_figure,
    quality_floor,
    readable,
    rows_height,
    wrap,
)

if TYPE_CHECKING:  # matplotlib is imported lazily so that importing the analysis stays cheap
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BUSY_HATCH = "///"


def _ok(records: pd.DataFrame) -> pd.DataFrame:
    return records[records["status"] == OK_STATUS] if "status" in records else records


def _yerr(df: pd.DataFrame, column: str) -> np.ndarray | None:
    """Error bars [[below], [above]] of ``column`` from its ``_ci_low``/``_ci_high`` columns; None when absent.

    Older records have no intervals; rows without one get zero-length bars.
    """
    low, high = f"{column}_ci_low", f"{column}_ci_high"
    if low not in df.columns or high not in df.columns or not (df[low].notna() & df[high].notna()).any():
        return None
    value = df[column].astype(float)
    below = (value - df[low].astype(float)).clip(lower=0).fillna(0.0)
    above = (df[high].astype(float) - value).clip(lower=0).fillna(0.0)
    return np.vstack([below.to_numpy(), above.to_numpy()])


def _floor_handle(ax: Axes, floor: tuple[float, str] | None, fraction: float, metric_name: object,
                  vertical: bool = False, scale: float = 1.0) -> list:  # fmt: skip
    """Draw the recommendation's quality floor (``fraction`` of the best fp32 metric); its legend entry."""
    from matplotlib.lines import Line2D

    if floor is None:
        return []
    value, base = floor
    (ax.axvline if vertical else ax.axhline)(value * scale, zorder=1, **FLOOR_STYLE)
    name = metric_name if isinstance(metric_name, str) else None
    label = f"floor {format_metric(value, name)} ({fraction_text(fraction)} of {base})"
    return [Line2D([], [], label=wrap(label), **FLOOR_STYLE)]


def _busy_handle(rows: pd.DataFrame, hatched: bool = False) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if not busy_mask(rows).any():
        return []
    note = wrap(busy_note(rows).replace("hollow", "hatched") if hatched else busy_note(rows))
    if hatched:
        return [Patch(facecolor="white", edgecolor="dimgrey", hatch=BUSY_HATCH, label=note)]
    return [Line2D([], [], ls="none", marker="o", mfc="white", mec="dimgrey", label=note)]


def _colours(n: int) -> list:
    """``n`` distinct line colours: tab10 up to ten lines, tab20 beyond."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if n <= 10 else "tab20"]
    return [palette(i % palette.N) for i in range(max(n, 1))]


def _mark_busy(ax: Axes, rows: pd.DataFrame, x: str, y: str, colour) -> None:
    """Hollow markers over the points of ``rows`` measured on a busy machine."""
    busy = rows[busy_mask(rows)]
    if len(busy):
        ax.scatter(busy[x], busy[y], s=40, facecolors="white", edgecolors=[colour], linewidths=1.5, zorder=4)


def _scenario(df: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """The rows of one scenario; none where nothing was measured (records of skipped variants only)."""
    return df[df["scenario"] == scenario] if "scenario" in df.columns else df.iloc[0:0]


@readable
def training_curve(info: dict) -> Figure | None:
    """Smoothed training loss against step, from a checkpoint's ``accelbench.json`` (None when absent)."""
    log = (info or {}).get("training", {})
    curve = log.get("loss_curve")
    if not curve:
        return None
    fig, (ax,) = new_figure()
    steps, losses = zip(*curve, strict=True)
    ax.plot(steps, losses)
    ax.set(xlabel="step", ylabel="training loss (smoothed)",
           title=f"training: {log.get('steps')} steps in {log.get('wall_s')} s (stopped by {log.get('stopped_by')})")  # fmt: skip
    ax.grid(alpha=0.3)
    return fig


@readable
def length_histogram(tokenizer, texts: list[str], max_length: int = 128) -> Figure:
    """Token lengths of the evaluation texts: why padding to ``max_length`` wastes compute."""
    texts = list(texts)
    lengths = np.array(
        [len(x) for x in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    )
    fig, (ax,) = new_figure()
    ax.hist(lengths, bins=40, color="tab:blue", alpha=0.8)
    ax.axvline(max_length, color="tab:red", ls="--", label=f"max_length padding = {max_length}")
    ax.axvline(np.mean(lengths), color="k", ls=":", label=f"mean = {lengths.mean():.1f} tokens")
    ax.set(xlabel="tokens per text", ylabel="texts", title=f"{len(texts)} evaluation texts: token lengths")
    ax.legend()
    return fig


@readable
def throughput_vs_batch(records: pd.DataFrame, padding: str | None = None) -> Figure | None:
    """Batch-inference throughput against batch size, one line per variant and padding (or only ``padding``;
    bars: its interval; hollow markers: measured on a busy machine); None when no batch point was measured
    (all skipped)."""

    df = _scenario(_ok(records), "batch")
    df = df[df["padding"] == padding] if padding and not df.empty else df
    if df.empty:
        return None
    fig, (ax,) = new_figure()
    groups = list(df.groupby(["variant", "padding"], sort=False))
    colours = _colours(len(groups))
    for i, ((variant, padding), g) in enumerate(groups):
        g = g.sort_values("batch_size")
        colour = colours[i]
        ax.errorbar(g["batch_size"], g["throughput"], yerr=_yerr(g, "throughput"), marker="o", capsize=2, color=colour,
                    ls="-" if padding == "dynamic" else "--", label=f"{variant} ({padding})")  # fmt: skip
        _mark_busy(ax, g, "batch_size", "throughput", colour)
    ax.set(xlabel="batch size", ylabel="throughput (samples/s)", title="batch inference")
    batch_size_axis(ax, df["batch_size"])
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    legend_beside(ax, handles + _busy_handle(df))
    return fig


@readable
def latency_bars(records: pd.DataFrame) -> Figure | None:
    """Real-time latency percentiles (p50, p90, p99) per variant, with their intervals where recorded; a
    variant per row, so that long names stay readable; hatched bars: measured on a busy machine. None when no
    real-time point was measured."""
    df = _scenario(_ok(records), "realtime").drop_duplicates("variant", keep="last").iloc[::-1]
    if df.empty:
        return None
    fig, (ax,) = new_figure(row_height_in=rows_height(len(df), per_row_in=0.5))
    qs = ["latency_ms_p50", "latency_ms_p90", "latency_ms_p99"]
    y = np.arange(len(df))
    busy = busy_mask(df).to_numpy()
    for i, q in enumerate(qs):
        bars = ax.barh(y + (1 - i) * 0.27, df[q], height=0.27, xerr=_yerr(df, q), capsize=2,
                       label=q.split("_")[-1])  # fmt: skip
        for bar, hatched in zip(bars, busy, strict=True):
            if hatched:
                bar.set_hatch(BUSY_HATCH)
    ax.set_yticks(y, labels=df["variant"])
    ax.set(xlabel="latency per request (ms)", title="real-time (batch 1) latency")
    ax.grid(axis="x", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    legend_beside(ax, handles + _busy_handle(df, hatched=True))
    return fig


@readable
def speedup_and_quality(
    records: pd.DataFrame,
    baseline_method: str = BASELINE_METHOD,
    batch_size: int = 32,
    fraction: float = DEFAULT_FRACTION,
) -> Figure | None:
    """Top: throughput relative to the model's own baseline per batch size. Bottom: each variant's metric
    with its 95% interval, and the quality floor (``fraction`` of the best fp32 metric). None when no
    variant of ``records`` was measured.

    Where the records hold ``speedup_vs_fp32`` (the median of per-round ratios against the model's own
    fp32, measured in turns) it is drawn with its interval as error bars; older records fall back to the
    ratio of the two throughputs. Hollow markers: measured on a busy machine.
    """
    df = _ok(records)
    if df.empty or "scenario" not in df.columns:
        return None
    q = df.drop_duplicates("variant", keep="last")
    fig, (ax1, ax2) = new_figure(2, row_height_in=[ROW_HEIGHT_IN, rows_height(len(q))])
    batch = df[(df["scenario"] == "batch") & (df["padding"] == "dynamic")]
    if "model" not in batch.columns:
        batch = batch.assign(model="")
    # each model against its own fp32; one model (notebook 02) is labelled by method, several by variant
    point = ["model", "batch_size"]
    base = batch[batch["method"] == baseline_method].drop_duplicates(point, keep="last").set_index(point)
    paired = "speedup_vs_fp32" in batch.columns and batch["speedup_vs_fp32"].notna().any()
    label_by = "variant" if batch["model"].nunique() > 1 and "variant" in batch.columns else "method"
    ax1.set_prop_cycle(color=_colours(batch[label_by].nunique()))
    for label, g in batch.groupby(label_by, sort=False):
        g = g.sort_values("batch_size")
        if paired and g["speedup_vs_fp32"].notna().all():
            bars = ax1.errorbar(g["batch_size"], g["speedup_vs_fp32"], yerr=_yerr(g, "speedup_vs_fp32"), marker="o",
                                capsize=3, label=label)  # fmt: skip
            _mark_busy(ax1, g, "batch_size", "speedup_vs_fp32", bars.lines[0].get_color())
        else:
            fp32 = base["throughput"].reindex(pd.MultiIndex.from_frame(g[point])).to_numpy(dtype=float)
            (line,) = ax1.plot(
                g["batch_size"], g["throughput"].to_numpy(dtype=float) / fp32, marker="o", label=label
            )
            _mark_busy(ax1, g.assign(_ratio=line.get_ydata()), "batch_size", "_ratio", line.get_color())
    ax1.axhline(1, color="k", lw=0.8)
    ax1.set(
        xlabel="batch size",
        ylabel=f"throughput / own {baseline_method}",
        title="speed-up against each model's own fp32"
        + (" (paired over rounds, with interval)" if paired else ""),
    )
    batch_size_axis(ax1, batch["batch_size"])
    ax1.grid(alpha=0.3)
    handles, _ = ax1.get_legend_handles_labels()
    legend_beside(ax1, handles + _busy_handle(batch))

    y = np.arange(len(q))[::-1]
    err = np.vstack([q["metric"] - q["metric_ci_low"], q["metric_ci_high"] - q["metric"]])
    ax2.errorbar(q["metric"], y, xerr=err, fmt="o", capsize=3, label="_nolegend_")
    several = "model" in q.columns and q["model"].nunique() > 1
    ax2.set_yticks(y, labels=q["variant"] if several else q["method"])
    name = q["metric_name"].iloc[0] if len(q) else "metric"
    floor = _floor_handle(ax2, quality_floor(q, fraction), fraction, name, vertical=True)
    ax2.set(xlabel=f"{display_metric_name(name)} (95% bootstrap CI) – higher is better", title="quality")
    ax2.grid(alpha=0.3)
    legend_beside(ax2, floor)
    return fig


@readable
def padding_comparison(records: pd.DataFrame) -> Figure | None:
    """Dynamic (length-sorted) vs max_length padding throughput per batch size, for each variant."""
    df = _scenario(_ok(records), "batch")
    both = [v for v, g in df.groupby("variant", sort=False) if g["padding"].nunique() > 1]
    if not both:
        return None
    df = df[df["variant"] == both[0]]  # the variant measured both ways (the fp32 baseline)
    piv = df.pivot_table(index="batch_size", columns="padding", values="throughput", aggfunc="last")
    fig, (ax,) = new_figure()
    x = np.arange(len(piv))
    for i, col in enumerate(piv.columns):
        ax.bar(x + (i - 0.5) * 0.4, piv[col], width=0.4, label=col)
    for xi, (_, row) in zip(x, piv.iterrows(), strict=True):
        if {"dynamic", "max_length"} <= set(row.index):
            ax.annotate(
                f"{row['dynamic'] / row['max_length']:.1f}x", (xi, max(row)), ha="center", va="bottom",
                xytext=(0, 2), textcoords="offset points",
            )  # fmt: skip
    ax.set_ylim(0, float(np.nanmax(piv.to_numpy())) * 1.18)  # room for the ratios above the bars
    ax.set_xticks(x, labels=[str(int(b)) for b in piv.index])
    ax.set(
        xlabel="batch size",
        ylabel="throughput (samples/s)",
        title=f"{both[0]}: length-sorted dynamic padding vs fixed max_length",
    )
    legend_beside(ax, ax.get_legend_handles_labels()[0])
    return fig


@readable
def percent_of_peak(records: pd.DataFrame, batch_size: int = 32) -> Figure | None:
    """Each variant's achieved matrix-multiply rate as a share of this machine's peak for its precision."""
    df = _ok(records)
    if "pct_of_peak" not in df:
        return None
    df = _scenario(df, "batch")
    df = df[df["padding"] == "dynamic"]
    if df.empty:
        return None
    bs = batch_size if (df["batch_size"] == batch_size).any() else int(df["batch_size"].max())
    df = df[df["batch_size"] == bs].drop_duplicates("variant", keep="last").iloc[::-1]
    fig, (ax,) = new_figure(row_height_in=rows_height(len(df)))
    y = np.arange(len(df))
    ax.barh(y, df["pct_of_peak"], color="tab:green", height=0.6)
    for yi, (_, row) in zip(y, df.iterrows(), strict=True):
        ax.annotate(f"{row['achieved_gops']:.0f} of {row['peak_gops']:.0f} GOP/s", (row["pct_of_peak"], yi),
                    xytext=(4, 0), textcoords="offset points", ha="left", va="center")  # fmt: skip
    ax.set_yticks(y, labels=df["variant"])
    ax.set_xlim(0, float(df["pct_of_peak"].max()) * 1.7)  # room for the GOP/s beside the longest bar
    ax.set(xlabel="% of matmul peak (same precision)", title=f"hardware use at batch {bs}")
    ax.grid(axis="x", alpha=0.3)
    return fig


@readable
def calibration_sensitivity(
    records: pd.DataFrame, method: str = ORT_STATIC_INT8, fraction: float = DEFAULT_FRACTION
) -> Figure | None:
    """Static-int8 metric by calibration method and sample count, with 95% intervals, the fp32 line and the
    quality floor."""
    df = _ok(records)
    if "method_options" not in df or "method_name" not in df:
        return None
    df = df[df["method_name"] == method].drop_duplicates("variant", keep="last")
    if df.empty:
        return None
    opts = df["method_options"].map(lambda o: json.loads(o) if isinstance(o, str) else {})
    df = df.assign(calibration=opts.map(lambda o: o.get("calibration", "minmax")),
                   samples=opts.map(lambda o: o.get("samples", 128)))  # fmt: skip
    fig, (ax,) = new_figure()
    for cal, g in df.groupby("calibration"):
        g = g.sort_values("samples")
        err = np.vstack([g["metric"] - g["metric_ci_low"], g["metric_ci_high"] - g["metric"]])
        ax.errorbar(g["samples"], g["metric"], yerr=err, marker="o", capsize=3, label=cal)
    base = _ok(records)
    base = base[base["method"] == BASELINE_METHOD]
    if len(base):
        ax.axhline(base["metric"].iloc[-1], color="k", ls="-", lw=1, label=BASELINE_METHOD)
    name = df["metric_name"].iloc[0]
    handles = ax.get_legend_handles_labels()[0] + _floor_handle(
        ax, quality_floor(base, fraction), fraction, name
    )
    ax.set(xlabel="calibration samples (training texts)", ylabel=display_metric_name(name),
           title=f"{method}: calibration sensitivity")  # fmt: skip
    batch_size_axis(ax, df["samples"])
    ax.grid(alpha=0.3)
    legend_beside(ax, handles)
    return fig


@readable
def distillation_curves(info: dict) -> Figure | None:
    """A student's training: total loss, and each weighted loss (kd, ce, hidden, attention) on its own axis."""
    log = (info or {}).get("training", {})
    parts = log.get("loss_parts")
    if not parts:
        return training_curve(info)
    fig, (ax1, ax2) = new_figure(1, 2)
    steps, losses = zip(*log["loss_curve"], strict=True)
    ax1.plot(steps, losses, color="k")
    ax1.set(xlabel="step", ylabel="weighted total (smoothed)",
            title=f"{log.get('steps')} steps, {log.get('wall_s')} s ({log.get('stopped_by')})")  # fmt: skip
    ax1.grid(alpha=0.3)
    weights = (info.get("recipe") or {}).get("losses", {})
    for name in parts[0][1]:
        xs = [s for s, p in parts if name in p]
        ys = [p[name] for _, p in parts if name in p]
        ax2.plot(xs, ys, label=f"{name} (weight {weights.get(name, '?')})")
    ax2.set(xlabel="step", ylabel="loss (smoothed, unweighted)", yscale="log", title="distillation losses")
    ax2.grid(alpha=0.3)
    ax2.legend()
    return fig


@readable
def teacher_vs_students(comparison: pd.DataFrame, fraction: float = DEFAULT_FRACTION) -> Figure | None:
    """Throughput relative to the teacher's fp32 against the share of its metric kept, one point per variant.

    Colour is the model, shape the method (legend beside); labels name the points beside them without
    overlapping (a point whose label finds no room is named by its colour and shape); the dashed line is
    the quality floor, ``fraction`` of the teacher's metric.
    """
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    if comparison is None or comparison.empty:
        return None
    col, batch_size = "throughput x", int(comparison["batch"].iloc[0])
    models = list(dict.fromkeys(comparison["model"]))
    methods = sorted(str(m) for m in comparison["method"].unique())
    palette = colormaps["tab10"]
    colour = {m: palette(i % palette.N) for i, m in enumerate(models)}
    marker = {m: METHOD_MARKERS[i % len(METHOD_MARKERS)] for i, m in enumerate(methods)}
    fig, (ax,) = new_figure(row_height_in=5.0)
    share = comparison["share of teacher"].astype(float) * 100
    for (_, r), y in zip(comparison.iterrows(), share, strict=True):
        ax.scatter([r[col]], [y], color=colour[r["model"]], marker=marker[str(r["method"])], s=60, zorder=3)
    ax.axhline(100, color="k", lw=0.8)
    ax.axvline(1, color="k", lw=0.8)
    ax.axhline(100 * fraction, zorder=1, **FLOOR_STYLE)
    roles = {m: ("teacher" if (comparison.loc[comparison["model"] == m, "role"] == "teacher").any() else "student")
             for m in models}  # fmt: skip
    handles = [
        Line2D([], [], color=colour[m], marker="o", ls="none", label=wrap(f"{m} ({roles[m]})"))
        for m in models
    ]
    handles += [Line2D([], [], color="dimgrey", marker=marker[m], ls="none", label=wrap(m)) for m in methods]
    handles.append(
        Line2D([], [], label=f"floor: {fraction_text(fraction)} of the teacher's metric", **FLOOR_STYLE)
    )
    ax.set(xlabel=f"throughput / teacher fp32 (batch {batch_size}) – higher is better",
           ylabel="% of the teacher's metric", title="students and their compressed forms against the teacher")  # fmt: skip
    ax.margins(x=0.15, y=0.15)
    ax.grid(alpha=0.3)
    legend_beside(ax, handles)
    order = comparison.assign(_y=share).sort_values(["role", col], ascending=[False, True])
    # a point whose label finds no room is still named by its colour (model) and shape (method)
    place_labels([LabelJob(ax, order[col].astype(float), order["_y"], list(order["variant"]))])
    return fig


__all__ = [
    "calibration_sensitivity",
    "calibration_table",
    "distillation_curves",
    "fusion_table",
    "latency_bars",
    "length_histogram",
    "padding_comparison",
    "percent_of_peak",
    "speedup_and_quality",
    "teacher_vs_students",
    "throughput_vs_batch",
    "training_curve",
]
