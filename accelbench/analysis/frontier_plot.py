"""Frontier figures: metric against each objective's cost, with the frontier, floor and recommendation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from ..devices import CPU
from ..exceptions import ConfigError, DataError
from ..records import BASELINE_METHOD
from .busy import busy_mask, busy_note
from .formatting import (
    SIGNIFICANCE_NOTE,
    SIGNIFICANT_MARK,
    delta_label,
    display_metric_name,
    format_metric,
    fraction_text,
    row_float,
)
from .frontier import frontier
from .labels import LabelJob, place_labels
from .objectives import DEFAULT_BATCH_SIZE, DEFAULT_OBJECTIVE, Objective, get_objective
from .recommend import DEFAULT_FRACTION, Recommendation, check_fraction, recommend_from_frontier
from .selection import task_records
from .style import BASELINE_MARKER, FLOOR_STYLE, METHOD_MARKERS, legend_beside, new_figure, readable, wrap

if TYPE_CHECKING:  # matplotlib is imported lazily so that importing the analysis stays cheap
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

FRONTIER_ROW_HEIGHT_IN = 5.0  # one objective per row, the page's width
BASELINE_RADIUS_PT = 7.0  # the baseline's star (s=180), which labels keep clear of
RING_RADIUS_PT = 10.0  # the red ring round the recommended variant (ms=17)
CI = ("metric_ci_low", "metric_ci_high")


def _error(row: pd.Series, value: str, low: str, high: str) -> list[list[float]] | None:
    """Matplotlib's asymmetric error [[below], [above]] of ``value`` from its interval; None without one."""
    centre, lo, hi = row_float(row, value), row_float(row, low), row_float(row, high)
    if any(pd.isna(v) for v in (centre, lo, hi)):
        return None
    return [[max(centre - lo, 0.0)], [max(hi - centre, 0.0)]]


def _point_label(row: pd.Series) -> str:
    """'m:dynamic-int8' over '+0.24 BLEU n.s.': the variant and, where tested, its metric change against fp32."""
    marker = delta_label(row)
    return (
        f"{row['variant']}\n{marker}"
        if marker and row.get("method") != BASELINE_METHOD
        else str(row["variant"])
    )


def _shape_key(row: pd.Series, several_devices: bool) -> str:
    """A point's marker key: its method, with its device where a table has points on several devices."""
    device = row.get("device") if isinstance(row.get("device"), str) else CPU
    return f"{row['method']} ({device})" if several_devices else str(row["method"])


def _speed_bars_note(table: pd.DataFrame) -> str:
    """The legend's line for the horizontal bars: what interval, over how many rounds."""
    rounds = table["repeats"].dropna().unique() if "repeats" in table.columns else []
    levels = table["speed_ci_level"].dropna().unique() if "speed_ci_level" in table.columns else []
    level = f"{100 * float(levels[0]):.3g}% " if len(levels) == 1 else ""
    over = f" over {int(rounds[0])} rounds" if len(rounds) == 1 else " over the rounds"
    return f"horizontal bars: {level}interval of the median{over}"


def _draw_recommendation(
    ax: Axes, table: pd.DataFrame, rec: Recommendation, metric_name: str, fraction: float
) -> list:
    """The floor line, the baseline star's legend entry and a red ring round the chosen variant."""
    from matplotlib.lines import Line2D

    label = f"floor {format_metric(rec.floor, metric_name)}"
    if not rec.floor_is_absolute:
        label += f" ({fraction_text(fraction)} of baseline)"
    ax.axhline(rec.floor, zorder=1, **FLOOR_STYLE)
    handles = [
        Line2D([], [], label=label, **FLOOR_STYLE),
        Line2D(
            [],
            [],
            ls="none",
            marker=BASELINE_MARKER,
            ms=11,
            color="grey",
            label=wrap(f"baseline {rec.baseline}"),
        ),
    ]
    if rec.chosen is not None:
        pick = table[table["variant"] == rec.chosen].iloc[0]
        ring = {"ls": "none", "marker": "o", "mfc": "none", "mec": "red", "mew": 2}
        ax.plot([pick["cost"]], [pick["metric"]], ms=17, zorder=4, **ring)
        handles.append(Line2D([], [], ms=11, label=wrap(f"deploy {rec.chosen}"), **ring))
    return handles


def _label_order(table: pd.DataFrame, rec: Recommendation | None) -> pd.DataFrame:
    """The rows labelled on the plot, most important first: baseline, chosen, then the frontier by cost."""
    first = [rec.baseline, rec.chosen] if rec is not None else []
    keep = table["on_frontier"].astype(bool) | table["variant"].isin([v for v in first if v])
    rank = table["variant"].map({v: i for i, v in enumerate(first) if v}).fillna(len(first))
    return (
        table[keep]
        .assign(_rank=rank[keep])
        .sort_values(["_rank", "cost"], kind="stable")
        .drop(columns="_rank")
    )


def _draw_frontier(
    ax: Axes,
    table: pd.DataFrame,
    task: str,
    obj: Objective,
    batch_size: int,
    rec: Recommendation | None,
    fraction: float,
) -> LabelJob:
    """Draw one objective's panel; returns the labels to place once the whole figure is laid out."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    models = sorted(str(m) for m in table["model"].dropna().unique())
    # marker shapes are methods, and their device where the table has several (fp32 on cpu and on cuda)
    several = "device" in table.columns and table["device"].fillna(CPU).nunique() > 1
    methods = sorted({_shape_key(row, several) for _, row in table.iterrows() if pd.notna(row["method"])})
    palette = colormaps["tab10"]
    colour = {m: palette(i % palette.N) for i, m in enumerate(models)}
    marker = {m: METHOD_MARKERS[i % len(METHOD_MARKERS)] for i, m in enumerate(methods)}
    metric_name = (
        str(table["metric_name"].dropna().iloc[0]) if table["metric_name"].notna().any() else "metric"
    )

    by_x = table.sort_values("cost", kind="stable").reset_index(drop=True)
    busy = busy_mask(by_x) if obj.ci_columns else pd.Series(False, index=by_x.index)  # size: no speed
    speed_bars = False
    for i, row in by_x.iterrows():
        x, y = float(row["cost"]), float(row["metric"])
        c = colour.get(str(row["model"]), "grey")
        is_base = rec is not None and row["variant"] == rec.baseline
        xerr, yerr = _error(row, "cost", "cost_ci_low", "cost_ci_high"), _error(row, "metric", *CI)
        if xerr is not None or yerr is not None:
            ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="none", ecolor=c, alpha=0.6, lw=1)
            speed_bars = speed_bars or xerr is not None
        hollow = bool(busy.iloc[i])
        ax.scatter(
            [x],
            [y],
            color="white" if hollow else c,
            marker=BASELINE_MARKER if is_base else marker.get(_shape_key(row, several), "o"),
            s=180 if is_base else 50,
            edgecolors=c if hollow else ("black" if row["on_frontier"] else "none"),
            linewidths=1.6 if hollow else 0.8,
            zorder=3,
            label="_nolegend_",
            gid=f"variant:{row['variant']}" + (":busy" if hollow else ""),
        )

    front = by_x[by_x["on_frontier"]]
    handles = []
    if len(front) > 1:
        where = "pre" if obj.higher_is_better else "post"
        ax.step(front["cost"], front["metric"], where=where, color="black", lw=1, alpha=0.7, zorder=2)
        handles.append(Line2D([], [], color="black", lw=1, alpha=0.7, label="Pareto frontier"))
    if len(models) > 1:  # teachers and students (or several checkpoints): one colour each
        handles += [Line2D([], [], color=colour[m], marker="o", ls="none", label=m) for m in models]
    # marker shapes are methods; the star replaces the baseline's own shape
    handles += [Line2D([], [], color="dimgrey", marker=marker[m], ls="none", label=wrap(m)) for m in methods]
    if rec is not None:
        handles += _draw_recommendation(ax, table, rec, metric_name, fraction)
    labelled = _label_order(by_x, rec)
    labels = [_point_label(row) for _, row in labelled.iterrows()]
    if busy.any():
        handles.append(
            Line2D([], [], ls="none", marker="o", mfc="white", mec="dimgrey", label=wrap(busy_note(by_x)))
        )
    if speed_bars:
        handles.append(Line2D([], [], ls="none", label=wrap(_speed_bars_note(by_x))))
    if any(label.endswith(SIGNIFICANT_MARK) for label in labels):
        handles.append(Line2D([], [], ls="none", label=wrap(SIGNIFICANCE_NOTE)))
    if len(labelled) < len(by_x):
        handles.append(
            Line2D([], [], ls="none", label=wrap("unlabelled points: by colour (model) and shape (method)"))
        )
    ax.margins(x=0.08, y=0.12)
    legend_beside(ax, handles)

    better = "higher" if obj.higher_is_better else "lower"
    ax.set_xlabel(f"{obj.axis_label(batch_size)} – {better} is better")
    ax.set_ylabel(f"{display_metric_name(metric_name)} – higher is better")
    ax.set_title(f"{task}: {display_metric_name(metric_name)} vs {obj.name}")
    ax.grid(True, alpha=0.3)
    rest = by_x[~by_x["variant"].isin(labelled["variant"])]
    radius = {rec.baseline: BASELINE_RADIUS_PT, rec.chosen: RING_RADIUS_PT} if rec is not None else {}
    return LabelJob(
        ax,
        labelled["cost"].to_numpy(float),
        labelled["metric"].to_numpy(float),
        labels,
        list(zip(rest["cost"].astype(float), rest["metric"].astype(float), strict=True)),
        [radius.get(v, 0.0) for v in labelled["variant"]],
    )


def _frontier_panel(
    records: pd.DataFrame,
    task: str,
    obj: Objective,
    batch_size: int,
    ax: Axes,
    fraction: float,
    baseline: str | None,
    floor: float | None,
) -> LabelJob:
    table = frontier(records, task, obj, batch_size)
    try:
        rec = recommend_from_frontier(table, task, obj, fraction, batch_size, baseline, floor)
    except DataError as err:
        logger.warning("task %s: plotting without floor and recommendation: %s", task, err.message)
        rec = None
    return _draw_frontier(ax, table, task, obj, batch_size, rec, fraction)


@readable
def plot_frontier(
    records: pd.DataFrame,
    task: str,
    objective: str | Objective = DEFAULT_OBJECTIVE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    ax: Axes | None = None,
    fraction: float = DEFAULT_FRACTION,
    baseline: str | None = None,
    floor: float | None = None,
) -> Figure:
    """Scatter metric against cost for every ok variant, with the frontier, floor and recommendation.

    Each variant is one scatter point, coloured by model and shaped by method (the baseline a star; the
    legend beside the plot names both), so a reader can see how much quality each speed-up costs. Labels
    name the baseline, the recommended variant and the frontier's points, each beside its point and clear
    of the others (``labels.place_labels``); a label's second line is the metric's change against the
    model's fp32 and its significance (``*``: p < 0.05, paired test) where the records hold that test.
    Vertical bars are the metric's 95% interval, horizontal bars the cost's interval over the benchmark's
    rounds (where recorded); a hollow marker is a speed measured on a busy machine. Without an fp32
    baseline the floor and recommendation are left out (logged). Draws into ``ax`` when given (labels are
    placed for the figure's layout at that moment: draw other panels first), else onto a new Figure that
    is not registered with pyplot.
    """
    fraction = check_fraction(fraction)
    obj = get_objective(objective)
    if ax is None:
        fig, (ax,) = new_figure(1, row_height_in=FRONTIER_ROW_HEIGHT_IN)
    else:
        fig = ax.figure
    place_labels([_frontier_panel(records, task, obj, batch_size, ax, fraction, baseline, floor)])
    return fig


@readable
def plot_frontiers(
    records: pd.DataFrame,
    task: str,
    objectives: Sequence[str | Objective] = ("latency", "throughput", "size"),
    batch_size: int = DEFAULT_BATCH_SIZE,
    fraction: float = DEFAULT_FRACTION,
    baseline: str | None = None,
    floor: float | None = None,
) -> Figure:
    """One panel per objective for one task, one per row at the page's width (see ``plot_frontier``).

    An objective without measurements (e.g. no batch rows) gets a panel that says so instead of failing
    the whole figure; an unknown objective or task still raises.
    """
    fraction = check_fraction(fraction)
    objs = [get_objective(o) for o in objectives]
    if not objs:
        raise ConfigError(
            "plot_frontiers needs at least one objective", f"e.g. objectives=({DEFAULT_OBJECTIVE!r},)"
        )
    task_records(records, task)  # unknown or all-failed task: raise before drawing anything
    fig, axes = new_figure(len(objs), row_height_in=FRONTIER_ROW_HEIGHT_IN)
    jobs = []
    for ax, obj in zip(axes, objs, strict=True):
        try:
            jobs.append(_frontier_panel(records, task, obj, batch_size, ax, fraction, baseline, floor))
        except DataError as err:
            logger.warning("task %s: no %s panel: %s", task, obj.name, err.message)
            ax.text(
                0.5, 0.5, f"no {obj.name} data\nfor {task}", ha="center", va="center", transform=ax.transAxes
            )
            ax.set_title(f"{task}: {obj.name}")
            ax.set_axis_off()
    place_labels(jobs)  # once every panel is drawn, so that the layout no longer moves
    return fig


__all__ = ["FRONTIER_ROW_HEIGHT_IN", "plot_frontier", "plot_frontiers"]
