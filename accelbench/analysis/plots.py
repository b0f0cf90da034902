"""The notebooks' pictures other than the frontiers: one function per plot or table, drawing ok rows only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..records import BASELINE_METHOD, OK_STATUS

if TYPE_CHECKING:  # matplotlib is imported lazily so that importing the analysis stays cheap
    from matplotlib.figure import Figure

FIGSIZE = (7.5, 4.2)
ORT_STATIC_INT8 = "ort-static-int8"


def _fig(ncols: int = 1) -> tuple[Figure, list]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGSIZE[0] * (1 if ncols == 1 else 0.75) * ncols, FIGSIZE[1]), layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


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


def training_curve(info: dict) -> Figure | None:
    """Smoothed training loss against step, from a checkpoint's ``accelbench.json`` (None when absent)."""
    log = (info or {}).get("training", {})
    curve = log.get("loss_curve")
    if not curve:
        return None
    fig, (ax,) = _fig()
    steps, losses = zip(*curve, strict=True)
    ax.plot(steps, losses)
    ax.set(xlabel="step", ylabel="training loss (smoothed)",
           title=f"training: {log.get('steps')} steps in {log.get('wall_s')} s (stopped by {log.get('stopped_by')})")  # fmt: skip
    ax.grid(alpha=0.3)
    return fig


def length_histogram(tokenizer, texts: list[str], max_length: int = 128) -> Figure:
    """Token lengths of the evaluation texts: why padding to ``max_length`` wastes compute."""
    texts = list(texts)
    lengths = np.array(
        [len(x) for x in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    )
    fig, (ax,) = _fig()
    ax.hist(lengths, bins=40, color="tab:blue", alpha=0.8)
    ax.axvline(max_length, color="tab:red", ls="--", label=f"max_length padding = {max_length}")
    ax.axvline(np.mean(lengths), color="k", ls=":", label=f"mean = {lengths.mean():.1f} tokens")
    ax.set(xlabel="tokens per text", ylabel="texts", title=f"{len(texts)} evaluation texts: token lengths")
    ax.legend()
    return fig


def throughput_vs_batch(records: pd.DataFrame) -> Figure:
    """Batch-inference throughput against batch size, one line per variant and padding (bars: its interval)."""
    df = _ok(records)
    df = df[df["scenario"] == "batch"]
    fig, (ax,) = _fig()
    for (variant, padding), g in df.groupby(["variant", "padding"], sort=False):
        g = g.sort_values("batch_size")
        ax.errorbar(g["batch_size"], g["throughput"], yerr=_yerr(g, "throughput"), marker="o", capsize=2,
                    ls="-" if padding == "dynamic" else "--", label=f"{variant} ({padding})")  # fmt: skip
    ax.set(xscale="log", xlabel="batch size", ylabel="throughput (samples/s)", title="batch inference")
    ax.set_xticks(
        sorted(df["batch_size"].unique()), labels=[str(b) for b in sorted(df["batch_size"].unique())]
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def latency_bars(records: pd.DataFrame) -> Figure:
    """Real-time latency percentiles (p50, p90, p99) per variant, with their intervals where recorded."""
    df = _ok(records)
    df = df[df["scenario"] == "realtime"].drop_duplicates("variant", keep="last")
    fig, (ax,) = _fig()
    qs = ["latency_ms_p50", "latency_ms_p90", "latency_ms_p99"]
    x = np.arange(len(df))
    for i, q in enumerate(qs):
        ax.bar(x + (i - 1) * 0.27, df[q], width=0.27, yerr=_yerr(df, q), capsize=2, label=q.split("_")[-1])
    ax.set_xticks(x, labels=df["variant"], rotation=15, ha="right", fontsize=8)
    ax.set(ylabel="latency per request (ms)", title="real-time (batch 1) latency")
    ax.legend()
    return fig


def speedup_and_quality(
    records: pd.DataFrame, baseline_method: str = BASELINE_METHOD, batch_size: int = 32
) -> Figure:
    """Left: throughput relative to the baseline per batch size. Right: metric with its 95% interval.

    Where the records hold ``speedup_vs_fp32`` (the median of per-round ratios against the model's own
    fp32, measured in turns) it is drawn with its interval as error bars; older records fall back to the
    ratio of the two throughputs.
    """
    df = _ok(records)
    fig, (ax1, ax2) = _fig(2)
    batch = df[(df["scenario"] == "batch") & (df["padding"] == "dynamic")]
    if "model" not in batch.columns:
        batch = batch.assign(model="")
    # each model against its own fp32; one model (notebook 02) is labelled by method, several by variant
    point = ["model", "batch_size"]
    base = batch[batch["method"] == baseline_method].drop_duplicates(point, keep="last").set_index(point)
    paired = "speedup_vs_fp32" in batch.columns and batch["speedup_vs_fp32"].notna().any()
    label_by = "variant" if batch["model"].nunique() > 1 and "variant" in batch.columns else "method"
    for label, g in batch.groupby(label_by, sort=False):
        g = g.sort_values("batch_size")
        if paired and g["speedup_vs_fp32"].notna().all():
            ax1.errorbar(g["batch_size"], g["speedup_vs_fp32"], yerr=_yerr(g, "speedup_vs_fp32"), marker="o",
                         capsize=3, label=label)  # fmt: skip
        else:
            fp32 = base["throughput"].reindex(pd.MultiIndex.from_frame(g[point])).to_numpy(dtype=float)
            ax1.plot(g["batch_size"], g["throughput"].to_numpy(dtype=float) / fp32, marker="o", label=label)
    ax1.axhline(1, color="k", lw=0.8)
    ax1.set(
        xscale="log",
        xlabel="batch size",
        ylabel=f"throughput / {baseline_method}",
        title="speed-up (paired over rounds, with interval)" if paired else "speed-up (same run)",
    )
    ax1.legend(fontsize=8)
    q = df.drop_duplicates("variant", keep="last")
    y = np.arange(len(q))
    err = np.vstack([q["metric"] - q["metric_ci_low"], q["metric_ci_high"] - q["metric"]])
    ax2.errorbar(q["metric"], y, xerr=err, fmt="o", capsize=3)
    ax2.set_yticks(y, labels=q["method"])
    name = q["metric_name"].iloc[0] if len(q) else "metric"
    ax2.set(xlabel=f"{name} (95% bootstrap CI)", title="quality")
    ax2.grid(alpha=0.3)
    return fig


def padding_comparison(records: pd.DataFrame) -> Figure | None:
    """Dynamic (length-sorted) vs max_length padding throughput per batch size, for each variant."""
    df = _ok(records)
    df = df[df["scenario"] == "batch"]
    both = [v for v, g in df.groupby("variant", sort=False) if g["padding"].nunique() > 1]
    if not both:
        return None
    df = df[df["variant"] == both[0]]  # the variant measured both ways (the fp32 baseline)
    piv = df.pivot_table(index="batch_size", columns="padding", values="throughput", aggfunc="last")
    fig, (ax,) = _fig()
    x = np.arange(len(piv))
    for i, col in enumerate(piv.columns):
        ax.bar(x + (i - 0.5) * 0.4, piv[col], width=0.4, label=col)
    for xi, (_, row) in zip(x, piv.iterrows(), strict=True):
        if {"dynamic", "max_length"} <= set(row.index):
            ax.annotate(
                f"{row['dynamic'] / row['max_length']:.1f}x", (xi, max(row)), ha="center", va="bottom"
            )
    ax.set_xticks(x, labels=[str(b) for b in piv.index])
    ax.set(
        xlabel="batch size", ylabel="throughput (samples/s)", title="padding: length-sorted dynamic vs fixed"
    )
    ax.legend()
    return fig


def percent_of_peak(records: pd.DataFrame, batch_size: int = 32) -> Figure | None:
    """Each variant's achieved matrix-multiply rate as a share of this machine's peak for its precision."""
    df = _ok(records)
    if "pct_of_peak" not in df:
        return None
    df = df[(df["scenario"] == "batch") & (df["padding"] == "dynamic")]
    if df.empty:
        return None
    bs = batch_size if (df["batch_size"] == batch_size).any() else int(df["batch_size"].max())
    df = df[df["batch_size"] == bs].drop_duplicates("variant", keep="last")
    fig, (ax,) = _fig()
    bars = ax.bar(df["variant"], df["pct_of_peak"], color="tab:green")
    for bar, (_, row) in zip(bars, df.iterrows(), strict=True):
        ax.annotate(f"{row['achieved_gops']:.0f} of {row['peak_gops']:.0f} GOP/s", (bar.get_x() + bar.get_width() / 2,
                    bar.get_height()), ha="center", va="bottom", fontsize=8)  # fmt: skip
    ax.set(ylabel="% of matmul peak (same precision)", title=f"hardware use at batch {bs}")
    ax.tick_params(axis="x", labelrotation=15, labelsize=8)
    return fig


def calibration_sensitivity(records: pd.DataFrame, method: str = ORT_STATIC_INT8) -> Figure | None:
    """Static-int8 metric by calibration method and sample count, with 95% intervals and the fp32 line."""
    df = _ok(records)
    if "method_options" not in df or "method_name" not in df:
        return None
    df = df[df["method_name"] == method].drop_duplicates("variant", keep="last")
    if df.empty:
        return None
    opts = df["method_options"].map(lambda o: json.loads(o) if isinstance(o, str) else {})
    df = df.assign(calibration=opts.map(lambda o: o.get("calibration", "minmax")),
                   samples=opts.map(lambda o: o.get("samples", 128)))  # fmt: skip
    fig, (ax,) = _fig()
    for cal, g in df.groupby("calibration"):
        g = g.sort_values("samples")
        err = np.vstack([g["metric"] - g["metric_ci_low"], g["metric_ci_high"] - g["metric"]])
        ax.errorbar(g["samples"], g["metric"], yerr=err, marker="o", capsize=3, label=cal)
    base = _ok(records)
    base = base[base["method"] == BASELINE_METHOD]
    if len(base):
        ax.axhline(base["metric"].iloc[-1], color="k", ls="--", lw=1, label=BASELINE_METHOD)
    ax.set(xscale="log", xlabel="calibration samples (training texts)", ylabel=df["metric_name"].iloc[0],
           title=f"{method}: calibration sensitivity")  # fmt: skip
    ax.legend()
    return fig


def calibration_table(records: pd.DataFrame, method: str = ORT_STATIC_INT8) -> pd.DataFrame:
    """Metric (with CI) of every calibration setting of ``method``: rows calibration, columns samples."""
    df = _ok(records)
    df = df[df.get("method_name", pd.Series(dtype=str)) == method].drop_duplicates("variant", keep="last")
    if df.empty:
        return pd.DataFrame()
    opts = df["method_options"].map(lambda o: json.loads(o) if isinstance(o, str) else {})
    cell = (
        df["metric"].map("{:.3f}".format)
        + " ["
        + df["metric_ci_low"].map("{:.3f}".format)
        + ", "
        + df["metric_ci_high"].map("{:.3f}".format)
        + "]"
    )
    table = pd.DataFrame({"calibration": opts.map(lambda o: o.get("calibration", "minmax")),
                          "samples": opts.map(lambda o: o.get("samples", 128)), "metric": cell})  # fmt: skip
    return table.pivot_table(index="calibration", columns="samples", values="metric", aggfunc="last")


def distillation_curves(info: dict) -> Figure | None:
    """A student's training: total loss, and each weighted loss (kd, ce, hidden, attention) on its own axis."""
    log = (info or {}).get("training", {})
    parts = log.get("loss_parts")
    if not parts:
        return training_curve(info)
    fig, (ax1, ax2) = _fig(2)
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
    ax2.legend(fontsize=8)
    return fig


def teacher_vs_students(comparison: pd.DataFrame) -> Figure | None:
    """Throughput relative to the teacher's fp32 against the share of its metric kept, one point per variant."""
    if comparison is None or comparison.empty:
        return None
    col, batch_size = "throughput x", int(comparison["batch"].iloc[0])
    fig, (ax,) = _fig()
    for role, marker in (("teacher", "s"), ("student", "o")):
        g = comparison[comparison["role"] == role]
        ax.scatter(g[col], g["share of teacher"] * 100, marker=marker, s=50, label=role)
        for _, r in g.iterrows():
            ax.annotate(r["variant"], (r[col], r["share of teacher"] * 100), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")  # fmt: skip
    ax.axhline(100, color="k", lw=0.8)
    ax.axvline(1, color="k", lw=0.8)
    ax.set(xlabel=f"throughput / teacher fp32 (batch {batch_size})", ylabel="% of the teacher's metric",
           title="students and their compressed forms against the teacher")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def fusion_table(records: pd.DataFrame) -> pd.DataFrame:
    """ONNX Runtime graph fusions per model, and the fused-vs-unfused timing check where it was run."""
    df = _ok(records)
    if "variant_details" not in df or "runtime" not in df:
        return pd.DataFrame()
    df = df[df["runtime"] == "onnxruntime"].drop_duplicates("variant", keep="last")
    rows = []
    for _, r in df.iterrows():
        d = json.loads(r["variant_details"]) if isinstance(r["variant_details"], str) else {}
        opt = d.get("optimizer") or {}
        fusions = opt.get("fusions") or {}
        check = d.get("fusion_check") or {}
        rows.append({"variant": r["variant"],
                     "fusions": ", ".join(f"{k} {v}" for k, v in fusions.items() if v)
                                or ("none: " + opt["note"] if opt.get("note") else "none"),
                     "unfused ms": check.get("unfused_ms"), "fused ms": check.get("fused_ms"),
                     "fused speed-up": check.get("speedup"), "fused not slower": check.get("fused_not_slower"),
                     "max |diff|": check.get("max_abs_diff")})  # fmt: skip
    return pd.DataFrame(rows)
