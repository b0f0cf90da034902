"""Figures of serving: service curves, predicted latency against load, throughput against replicas, cost per
million against quality, and predicted against measured p99. One panel per figure, drawn with the analysis package's page conventions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..analysis.style import batch_size_axis, legend_beside, new_figure, readable

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _label(ax, xlabel: str, ylabel: str, title: str, handles: list | None = None) -> None:
    """Axis labels, title, grid and the legend beside the panel (of ``handles``, or of every labelled artist)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_beside(ax, handles if handles is not None else ax.get_legend_handles_labels()[0])


@readable
def service_curves_plot(curves: pd.DataFrame) -> Figure:
    """Median service time of one batch against batch size (with its interval), per variant, threads and
    co-located replicas: where batching pays off and how much replicas slow each other down."""
    fig, (ax,) = new_figure()
    handles = []
    for (variant, t, k), g in curves.groupby(["variant", "threads", "colocated"], sort=True):
        g = g.sort_values("batch_size")
        y = g["service_ms_p50"].to_numpy(float)
        err = None
        if {"service_ms_p50_ci_low", "service_ms_p50_ci_high"} <= set(g.columns):
            err = [
                y - g["service_ms_p50_ci_low"].to_numpy(float),
                g["service_ms_p50_ci_high"].to_numpy(float) - y,
            ]
        line = ax.errorbar(g["batch_size"], y, yerr=err, marker="o", capsize=3, ls="-" if k == 1 else "--",
                           label=f"{variant}, {t} thread{'s' * (t > 1)}, {k} co-located")  # fmt: skip
        handles.append(line)
    batch_size_axis(ax, curves["batch_size"])
    ax.set_yscale("log")
    _label(
        ax,
        "batch size",
        "service time of one batch (ms, median)",
        "Service curves: time per batch (dashed: replicas sharing the cores)",
        handles,
    )
    return fig


@readable
def latency_vs_load_plot(curve: pd.DataFrame, p99_ms: float | None = None, by: str = "policy") -> Figure:
    """Predicted p99 against offered rate, one line per ``by`` value (e.g. a batching policy): the hockey
    stick, and the bound it must stay under."""
    fig, (ax,) = new_figure()
    for name, g in curve.groupby(by, sort=False):
        g = g.sort_values("offered_rate")
        ax.plot(g["offered_rate"], g["latency_ms_p99"], marker="o", label=str(name))
    if p99_ms is not None:
        ax.axhline(p99_ms, ls="--", color="grey", lw=1, label=f"p99 bound {p99_ms:g} ms")
    ax.set_yscale("log")
    _label(
        ax, "offered load (requests/s)", "predicted p99 latency (ms)", "Predicted p99 latency against load"
    )
    return fig


@readable
def throughput_vs_replicas_plot(df: pd.DataFrame) -> Figure:
    """The rate one machine sustains within the p99 bound against its replicas, per variant and threads
    (``load_curves.throughput_vs_replicas``); hollow markers where the co-location was extrapolated."""
    fig, (ax,) = new_figure()
    for i, ((variant, t), g) in enumerate(df.groupby(["variant", "threads"], sort=True)):
        g = g.sort_values("replicas")
        color = f"C{i % 10}"
        ax.plot(
            g["replicas"], g["sustainable_rate"], color=color, label=f"{variant}, {t} thread{'s' * (t > 1)}"
        )
        measured = g[~g["extrapolated"].astype(bool)]
        guessed = g[g["extrapolated"].astype(bool)]
        ax.scatter(measured["replicas"], measured["sustainable_rate"], color=color, zorder=3)
        ax.scatter(
            guessed["replicas"], guessed["sustainable_rate"], facecolors="none", edgecolors=color, zorder=3
        )
    ax.set_xticks(sorted(df["replicas"].unique()))
    _label(
        ax,
        "replicas on one machine",
        "requests/s within the p99 bound",
        "Throughput against replicas (hollow: co-location beyond what was measured)",
    )
    return fig


@readable
def cost_quality_plot(frontier: pd.DataFrame) -> Figure:
    """Cost per million inferences against quality (``cost_quality_frontier``'s table), frontier joined."""
    fig, (ax,) = new_figure()
    metric = str(frontier["metric_name"].dropna().iloc[0]) if frontier.get("metric_name") is not None and \
        frontier["metric_name"].notna().any() else "quality"  # fmt: skip
    on = frontier[frontier["on_frontier"]].sort_values("cost_per_million")
    off = frontier[~frontier["on_frontier"]]
    ax.scatter(off["cost_per_million"], off["metric"], color="grey", label="dominated")
    ax.scatter(on["cost_per_million"], on["metric"], color="C0", zorder=3, label="on the frontier")
    ax.step(on["cost_per_million"], on["metric"], where="post", color="C0", lw=1)
    for r in frontier.itertuples():
        ax.annotate(str(r.variant), (r.cost_per_million, r.metric), textcoords="offset points", xytext=(5, 4),
                    fontsize=9)  # fmt: skip
    currency = str(frontier["currency"].iloc[0]) if "currency" in frontier.columns and len(frontier) else ""
    _label(
        ax,
        f"cost per million inferences ({currency}, at the planned traffic)".replace(" (, ", " ("),
        metric,
        "Cost against quality: the cheapest deployment of each variant meeting the p99 bound",
    )
    return fig


@readable
def predicted_vs_measured_plot(validation: pd.DataFrame, p99_ms: float | None = None) -> Figure:
    """Predicted and measured p99 at each load level, per variant (rows of ``plan_validate``'s table)."""
    fig, (ax,) = new_figure()
    for i, (variant, g) in enumerate(validation.groupby("variant", sort=True)):
        g = g.sort_values("rate")
        ax.plot(
            g["rate"], g["predicted_p99_ms"], marker="o", ls="--", color=f"C{i}", label=f"{variant} predicted"
        )
        if "predicted_p99_low_ms" in g and g["predicted_p99_low_ms"].notna().all():  # queueing's own spread
            ax.fill_between(g["rate"], g["predicted_p99_low_ms"], g["predicted_p99_high_ms"], color=f"C{i}",
                            alpha=0.15, lw=0, label=f"{variant} predicted, 10-90% of runs")  # fmt: skip
        ax.plot(
            g["rate"], g["measured_p99_ms"], marker="s", ls="-", color=f"C{i}", label=f"{variant} measured"
        )
    if p99_ms is not None:
        ax.axhline(p99_ms, ls=":", color="grey", lw=1, label=f"p99 bound {p99_ms:g} ms")
    _label(
        ax, "offered load (requests/s)", "p99 latency (ms)", "Planner check: predicted against measured p99"
    )
    return fig
