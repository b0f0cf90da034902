"""Accuracy-vs-cost Pareto frontiers and the deployment recommendation that follows from them.

A variant is only worth deploying if no other variant is both at least as accurate and at least as
cheap; this module finds those variants per task and objective, picks the cheapest one that keeps
enough of the fp32 quality, and plots the trade-off so a reader can check the choice by eye.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from accelbench.exceptions import ConfigError, DataError, UnknownNameError

if TYPE_CHECKING:  # matplotlib is imported lazily so that importing this module stays cheap
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

DEFAULT_OBJECTIVE = "latency"
DEFAULT_BATCH_SIZE = 32
DEFAULT_FRACTION = 0.99
BASELINE_METHOD = "fp32"
OK_STATUS = "ok"
# A rerun appends rows; the last row for one measurement wins.
DEDUP_COLUMNS = ("key", "scenario", "batch_size", "padding")
QUALITY_COLUMNS = ("metric_name", "metric", "metric_ci_low", "metric_ci_high", "metric_delta", "agreement")
FRONTIER_COLUMNS = ("variant", "model", "method", "metric_name", "metric", "metric_ci_low", "metric_ci_high")
METRIC_DISPLAY_NAMES = {"bleu": "BLEU", "chrf": "chrF"}

FIGURE_WIDTH_IN = 6.4
FIGURE_HEIGHT_IN = 4.8
LABEL_FONT_SIZE = 7
# Candidate label offsets in points, in order of preference; each label takes the one that overlaps
# the other labels and markers least.
LABEL_OFFSETS = (
    (6, 4), (6, -4), (-6, 4), (-6, -4), (0, 9), (0, -9), (9, 0), (-9, 0),
    (6, 14), (6, -14), (-6, 14), (-6, -14), (0, 20), (0, -20),
)  # fmt: skip
LABEL_CHAR_WIDTH = 0.6  # average character width as a share of the font size
MARKER_RADIUS_PT = 5.0
METHOD_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">", "p", "d")
BASELINE_MARKER = "*"


# --------------------------------------------------------------------------------------------------
# Generic Pareto mask
# --------------------------------------------------------------------------------------------------


def pareto_mask(
    values: pd.DataFrame | np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool]
) -> np.ndarray:
    """Boolean mask of the non-dominated points, for any number of objectives.

    ``values`` has one row per point and one column per objective (a DataFrame's columns, or a 2-D
    array of shape ``(n_points, n_objectives)``); ``maximize[j]`` says whether objective ``j`` is better
    when higher. A point is dominated when another is at least as good in every objective and strictly
    better in one, so exact ties all stay on the front. Points with a NaN are never on the front and
    dominate nothing, because an unmeasured point cannot be compared.
    """
    if isinstance(values, pd.DataFrame | pd.Series):
        arr = values.to_numpy(dtype=float)
    else:
        arr = np.asarray(values, dtype=float)
    maximize = [bool(m) for m in maximize]
    if arr.size == 0:
        return np.zeros(arr.shape[0] if arr.ndim >= 1 else 0, dtype=bool)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ConfigError(
            f"pareto_mask needs a 2-D table of points, got an array with {arr.ndim} dimensions",
            "pass one row per point and one column per objective",
        )
    if len(maximize) != arr.shape[1]:
        raise ConfigError(
            f"pareto_mask got {arr.shape[1]} objective columns but {len(maximize)} maximize flags",
            "pass one maximize flag per column (values are points x objectives, not objectives x points)",
        )
    costs = arr * np.where(maximize, -1.0, 1.0)  # turn everything into "lower is better"
    valid = ~np.isnan(costs).any(axis=1)
    mask = valid.copy()
    points = costs[valid]
    for local, index in enumerate(np.flatnonzero(valid)):
        point = points[local]
        dominators = np.all(points <= point, axis=1) & np.any(points < point, axis=1)
        if dominators.any():
            mask[index] = False
    return mask


# --------------------------------------------------------------------------------------------------
# Records: de-duplication and per-task selection
# --------------------------------------------------------------------------------------------------


def latest_records(records: pd.DataFrame) -> pd.DataFrame:
    """Keep the last row per (key, scenario, batch_size, padding), and drop errors a later rerun fixed.

    Reruns append to the same records file, so older rows of the same measurement are stale. An error
    row is also dropped when a later ``ok`` row carries the same ``key``: the error rows of a failed
    config may lack scenario/batch columns, so the first rule alone would not retire them.
    """
    frame = records.reset_index(drop=True)
    subset = [c for c in DEDUP_COLUMNS if c in frame.columns]
    if "key" in subset:
        frame = frame.drop_duplicates(subset=subset, keep="last")
        if "status" in frame.columns:
            position = pd.Series(frame.index, index=frame.index)
            is_ok = frame["status"] == OK_STATUS
            last_ok = position[is_ok].groupby(frame.loc[is_ok, "key"]).max()
            superseded = ~is_ok & (frame["key"].map(last_ok) > position)
            if superseded.any():
                logger.debug("dropping %d error rows superseded by a later ok rerun", int(superseded.sum()))
            frame = frame[~superseded]
    return frame.reset_index(drop=True)


def ok_mask(records: pd.DataFrame) -> pd.Series:
    """Rows that measured something; a records table without ``status`` is taken as all ok."""
    if "status" not in records.columns:
        return pd.Series(True, index=records.index)
    return records["status"] == OK_STATUS


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"records lack the column(s) {', '.join(missing)} needed for {what}",
            "pass the DataFrame read from a records.jsonl written by accelbench",
        )


def task_records(records: pd.DataFrame, task: str) -> pd.DataFrame:
    """The de-duplicated ok rows of one task; raises DataError when the task has none."""
    _require_columns(records, ("task", "variant"), f"task {task!r}")
    frame = latest_records(records)
    rows = frame[frame["task"] == task]
    if rows.empty:
        known = sorted(str(t) for t in frame["task"].dropna().unique())
        raise DataError(
            f"no records for task {task!r}; tasks in these records: {', '.join(known) or '(none)'}",
            "check the task name, or run the benchmark for that task first",
        )
    ok = rows[ok_mask(rows)]
    if ok.empty:
        raise DataError(
            f"all {len(rows)} records for task {task!r} are errors",
            "read the error column (or the Failures section of summary.md) and rerun the failed configs",
        )
    return ok


# --------------------------------------------------------------------------------------------------
# Objectives
# --------------------------------------------------------------------------------------------------


def _best_row_per_variant(rows: pd.DataFrame, column: str, higher_is_better: bool) -> pd.DataFrame:
    """One row per variant: the best measurement of ``column`` (e.g. the faster padding mode)."""
    rows = rows[rows[column].notna()]
    if rows.empty:
        return rows
    order = rows.sort_values(column, ascending=not higher_is_better, kind="stable")
    return order.drop_duplicates("variant", keep="first")


def _select_latency(rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    if "scenario" in rows.columns:
        rows = rows[rows["scenario"] == "realtime"]
    return _best_row_per_variant(rows, "latency_ms_p90", higher_is_better=False)


def _select_throughput(rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    _require_columns(rows, ("batch_size",), "the throughput objective")
    if "scenario" in rows.columns:
        rows = rows[rows["scenario"] == "batch"]
    rows = rows[rows["throughput"].notna() & rows["batch_size"].notna()]
    chosen = []
    for variant, group in rows.groupby("variant", sort=True):
        at_size = group[group["batch_size"] == batch_size]
        if at_size.empty:
            fallback = int(group["batch_size"].max())
            logger.warning(
                "%s has no batch rows at batch size %d; using its largest recorded batch size %d",
                variant,
                batch_size,
                fallback,
            )
            at_size = group[group["batch_size"] == fallback]
        chosen.append(_best_row_per_variant(at_size, "throughput", higher_is_better=True))
    return pd.concat(chosen) if chosen else rows.iloc[0:0]


def _select_size(rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    rows = rows[rows["size_mb"].notna()]
    selected = rows.drop_duplicates("variant", keep="first").copy()
    selected["batch_size"] = np.nan  # size does not depend on a batch size
    return selected


@dataclass(frozen=True)
class Objective:
    """How to read one cost from the records: which rows, which column, and which direction is better.

    ``phrase`` and ``phrase_worse`` render the comparison in recommendation sentences (the latter when
    the chosen variant is worse than the baseline, which only an absolute floor can cause); they may use
    {ratio}, {baseline}, {chosen_cost}, {baseline_cost} and {batch}.
    """

    name: str
    column: str
    higher_is_better: bool
    label: str
    select: Callable[[pd.DataFrame, int], pd.DataFrame]
    phrase: str
    phrase_worse: str
    cost_format: str = "{:.1f}"

    def axis_label(self, batch_size: int = DEFAULT_BATCH_SIZE) -> str:
        """The x-axis label, with the batch size filled in where it matters."""
        return self.label.format(batch_size=batch_size)

    def speedup(self, baseline_cost: float, chosen_cost: float) -> float:
        """How many times better ``chosen`` is than the baseline (>1 = better)."""
        numerator, denominator = (
            (chosen_cost, baseline_cost) if self.higher_is_better else (baseline_cost, chosen_cost)
        )
        if not denominator or math.isnan(numerator) or math.isnan(denominator):
            return math.nan
        return float(numerator) / float(denominator)


OBJECTIVES: dict[str, Objective] = {}


def register_objective(objective: Objective) -> Objective:
    """Add an objective to the registry (replacing one of the same name) so every function accepts it."""
    OBJECTIVES[objective.name] = objective
    return objective


register_objective(
    Objective(
        name="latency",
        column="latency_ms_p90",
        higher_is_better=False,
        label="p90 latency per request (ms)",
        select=_select_latency,
        phrase="{ratio}x faster than {baseline} (p90 latency {chosen_cost} ms vs {baseline_cost} ms)",
        phrase_worse="{ratio}x slower than {baseline} (p90 latency {chosen_cost} ms vs {baseline_cost} ms)",
    )
)
register_objective(
    Objective(
        name="throughput",
        column="throughput",
        higher_is_better=True,
        label="throughput at batch {batch_size} (samples/s)",
        select=_select_throughput,
        phrase="{ratio}x the throughput of {baseline} at batch {batch} ({chosen_cost} vs {baseline_cost} samples/s)",
        phrase_worse="{ratio}x the throughput of {baseline} at batch {batch} "
        "({chosen_cost} vs {baseline_cost} samples/s)",
        cost_format="{:.0f}",
    )
)
register_objective(
    Objective(
        name="size",
        column="size_mb",
        higher_is_better=False,
        label="model size (MB)",
        select=_select_size,
        phrase="{ratio}x smaller than {baseline} ({chosen_cost} MB vs {baseline_cost} MB)",
        phrase_worse="{ratio}x larger than {baseline} ({chosen_cost} MB vs {baseline_cost} MB)",
    )
)


def get_objective(name: str | Objective) -> Objective:
    """Look an objective up by name; unknown names list the registered ones."""
    if isinstance(name, Objective):
        return name
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise UnknownNameError("objective", str(name), list(OBJECTIVES)) from None


# --------------------------------------------------------------------------------------------------
# Frontier
# --------------------------------------------------------------------------------------------------


def objective_rows(
    records: pd.DataFrame,
    task: str,
    objective: str | Objective = DEFAULT_OBJECTIVE,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> pd.DataFrame:
    """One full record row per ok variant of ``task``: the row the objective's cost is read from.

    When a variant has several candidate rows (e.g. both padding modes) the best cost wins, since that
    is what a deployment would configure. Quality columns are filled from any row of the variant, as
    they are the same on all of them. Variants without a usable row are dropped with a warning.
    """
    obj = get_objective(objective)
    rows = task_records(records, task)
    _require_columns(rows, ("model", "method", "metric", obj.column), f"the {obj.name} objective")
    selected = obj.select(rows, batch_size)
    missing = sorted(set(rows["variant"]) - set(selected["variant"]))
    if missing:
        logger.warning("task %s: no %s measurement for %s; left out", task, obj.name, ", ".join(missing))
    if selected.empty:
        raise DataError(
            f"task {task!r} has no ok rows with a {obj.column} value for the {obj.name} objective",
            "run the benchmark scenario that measures it, or choose another objective",
        )
    quality = [c for c in QUALITY_COLUMNS if c in rows.columns]
    first = rows.groupby("variant", sort=False)[quality].first()
    selected = selected.drop(columns=quality).join(first, on="variant")
    no_metric = selected["metric"].isna()
    if no_metric.any():
        logger.warning(
            "task %s: no metric for %s; left out", task, ", ".join(selected.loc[no_metric, "variant"])
        )
        selected = selected[~no_metric]
        if selected.empty:
            raise DataError(f"no variant of task {task!r} has a metric", "check the quality evaluation step")
    return selected.reset_index(drop=True)


def _sort_fastest_first(frame: pd.DataFrame, obj: Objective) -> pd.DataFrame:
    return frame.sort_values(
        ["cost", "metric", "variant"], ascending=[not obj.higher_is_better, False, True], kind="stable"
    ).reset_index(drop=True)


def frontier_table(rows: pd.DataFrame, objective: str | Objective) -> pd.DataFrame:
    """The frontier() table built from ``objective_rows`` output, for callers that need both."""
    obj = get_objective(objective)
    columns = {c: rows[c] if c in rows.columns else np.nan for c in FRONTIER_COLUMNS}
    columns[obj.column] = rows[obj.column]
    columns["size_mb"] = rows["size_mb"] if "size_mb" in rows.columns else np.nan
    columns["cost"] = rows[obj.column].astype(float)
    columns["batch_size"] = rows["batch_size"] if "batch_size" in rows.columns else np.nan
    table = pd.DataFrame(columns, index=rows.index)
    table["on_frontier"] = pareto_mask(table[["cost", "metric"]], [obj.higher_is_better, True])
    return _sort_fastest_first(table, obj)


def frontier(
    records: pd.DataFrame,
    task: str,
    objective: str | Objective = DEFAULT_OBJECTIVE,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> pd.DataFrame:
    """One row per ok variant of ``task`` with its metric, its cost and whether it is on the frontier.

    Columns: variant, model, method, metric_name, metric, metric_ci_low, metric_ci_high, the
    objective's column (latency_ms_p90 / throughput / size_mb), size_mb, ``cost`` (a copy of the
    objective's column, so callers need not know its name), batch_size (of the row the cost came from;
    NaN for size) and on_frontier. Sorted by cost, best (fastest) first.
    """
    obj = get_objective(objective)
    return frontier_table(objective_rows(records, task, obj, batch_size), obj)


# --------------------------------------------------------------------------------------------------
# Recommendation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    """The variant to deploy for one task and objective, and the evidence for it.

    ``closest`` is set whenever the rule falls short of a real gain: when no variant reaches the floor
    it is the variant with the highest metric (ties: the faster), i.e. the nearest miss; when only the
    baseline qualifies it is the highest-metric variant among those faster than the baseline (None if
    none is faster); when a faster variant is chosen it is None.
    """

    task: str
    objective: str
    fraction: float
    baseline: str
    baseline_metric: float
    floor: float
    chosen: str | None
    chosen_metric: float | None
    chosen_cost: float | None
    speedup: float | None
    qualified: bool
    closest: str | None
    text: str
    baseline_cost: float
    closest_metric: float | None
    metric_name: str
    batch_size: int
    floor_is_absolute: bool

    def __str__(self) -> str:
        return self.text


def check_fraction(fraction: float) -> float:
    """Validate a quality fraction: it must lie in (0, 1]."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 < value <= 1.0:  # also rejects NaN
        raise ConfigError(
            f"fraction must be in (0, 1], got {fraction!r}",
            "pass the share of the baseline metric to keep, e.g. 0.99 for 99%",
        )
    return value


def format_metric(value: float | None, metric_name: str | None = None) -> str:
    """Metrics on a 0..1 scale get 3 decimals, BLEU-like 0..100 scores get 2."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
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


def _percent(share: float) -> str:
    return f"{100.0 * share:.1f}%"


def _fraction_text(fraction: float) -> str:
    return f"{100.0 * fraction:.10g}%"


def _ci_text(row: pd.Series, metric_name: str) -> str:
    low, high = row.get("metric_ci_low"), row.get("metric_ci_high")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    return f" (95% CI {format_metric(low, metric_name)}-{format_metric(high, metric_name)})"


def _batch_text(chosen_batch: float, baseline_batch: float) -> str:
    if pd.isna(chosen_batch):
        return "?"
    if pd.isna(baseline_batch) or chosen_batch == baseline_batch:
        return f"{int(chosen_batch)}"
    return f"{int(chosen_batch)} (baseline at {int(baseline_batch)})"


def _pick_baseline(table: pd.DataFrame, task: str, obj: Objective, baseline: str | None) -> pd.Series:
    if baseline is not None:
        hits = table[table["variant"] == baseline]
        if hits.empty:
            raise UnknownNameError(
                f"baseline variant for task {task!r} ({obj.name})",
                baseline,
                list(table["variant"]),
                "name an ok variant of this task that has a measurement for the objective",
            )
        return hits.iloc[0]
    fp32 = table[table["method"] == BASELINE_METHOD]
    if fp32.empty:
        raise DataError(
            f"task {task!r} has no {BASELINE_METHOD} variant with a {obj.name} measurement to compare against",
            f"benchmark the {BASELINE_METHOD} variant of the model too, or pass baseline='<model>:<method>'",
        )
    # highest metric; ties go to the faster one (table is sorted fastest first)
    return fp32.loc[fp32["metric"].idxmax()] if fp32["metric"].notna().any() else fp32.iloc[0]


def recommend_from_frontier(
    table: pd.DataFrame,
    task: str,
    objective: str | Objective,
    fraction: float = DEFAULT_FRACTION,
    batch_size: int = DEFAULT_BATCH_SIZE,
    baseline: str | None = None,
    floor: float | None = None,
) -> Recommendation:
    """recommend() on an already computed frontier() table, so a caller need not recompute it."""
    fraction = check_fraction(fraction)
    obj = get_objective(objective)
    base = _pick_baseline(table, task, obj, baseline)
    base_metric, base_cost = float(base["metric"]), float(base["cost"])
    metric_name = str(base["metric_name"]) if pd.notna(base.get("metric_name")) else "metric"
    shown_name = display_metric_name(metric_name)
    absolute = floor is not None
    floor_value = float(floor) if absolute else fraction * base_metric

    def fmt(value: float) -> str:
        return format_metric(value, metric_name)

    def share(value: float) -> str:
        return _percent(value / base_metric) if base_metric else "?"

    if absolute:
        floor_text = f"the {shown_name} floor {fmt(floor_value)}"
    else:
        floor_text = (
            f"{_fraction_text(fraction)} of {base['variant']}'s {shown_name} {fmt(base_metric)} "
            f"(floor {fmt(floor_value)})"
        )

    qualifying = table[table["metric"] >= floor_value]  # table is sorted fastest first
    chosen = qualifying.iloc[0] if not qualifying.empty else None
    closest = None
    if chosen is None:
        candidates = table
    elif chosen["variant"] == base["variant"]:
        better = table["cost"] > base_cost if obj.higher_is_better else table["cost"] < base_cost
        candidates = table[better]
    else:
        candidates = table.iloc[0:0]
    if not candidates.empty and candidates["metric"].notna().any():
        closest = candidates.loc[candidates["metric"].idxmax()]

    closest_text = (
        f"; the closest is {closest['variant']} at {fmt(closest['metric'])} ({share(closest['metric'])} of the baseline)"
        if closest is not None
        else ""
    )
    speedup = None
    if chosen is None:
        baseline_note = f" ({base['variant']} has {fmt(base_metric)})" if absolute else ""
        text = f"No variant reaches {floor_text}{baseline_note}{closest_text}."
    elif chosen["variant"] == base["variant"]:
        speedup = 1.0
        if len(table) == 1:
            text = f"Deploy {base['variant']} (the baseline): it is the only variant measured for {obj.name}."
        else:
            text = f"Deploy {base['variant']} (the baseline): no faster variant reaches {floor_text}{closest_text}."
    else:
        speedup = obj.speedup(base_cost, float(chosen["cost"]))
        worse = not math.isnan(speedup) and speedup < 1.0
        ratio = 1.0 / speedup if worse and not obj.higher_is_better else speedup
        template = obj.phrase_worse if worse else obj.phrase
        gain = template.format(
            ratio=format_ratio(ratio),
            baseline=base["variant"],
            chosen_cost=obj.cost_format.format(chosen["cost"]),
            baseline_cost=obj.cost_format.format(base_cost),
            batch=_batch_text(chosen["batch_size"], base["batch_size"]),
        )
        floor_note = f", above the floor {fmt(floor_value)}" if absolute else ""
        text = (
            f"Deploy {chosen['variant']}: {gain} with {shown_name} {fmt(chosen['metric'])}"
            f"{_ci_text(chosen, metric_name)}, {share(chosen['metric'])} of the baseline's {fmt(base_metric)}"
            f"{floor_note}."
        )

    return Recommendation(
        task=task,
        objective=obj.name,
        fraction=fraction,
        baseline=str(base["variant"]),
        baseline_metric=base_metric,
        floor=floor_value,
        chosen=None if chosen is None else str(chosen["variant"]),
        chosen_metric=None if chosen is None else float(chosen["metric"]),
        chosen_cost=None if chosen is None else float(chosen["cost"]),
        speedup=speedup,
        qualified=chosen is not None,
        closest=None if closest is None else str(closest["variant"]),
        text=text,
        baseline_cost=base_cost,
        closest_metric=None if closest is None else float(closest["metric"]),
        metric_name=metric_name,
        batch_size=int(batch_size),
        floor_is_absolute=absolute,
    )


def recommend(
    records: pd.DataFrame,
    task: str,
    fraction: float = DEFAULT_FRACTION,
    objective: str | Objective = DEFAULT_OBJECTIVE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    baseline: str | None = None,
    floor: float | None = None,
) -> Recommendation:
    """The fastest variant (by ``objective``) whose metric is at least the floor.

    The floor is ``fraction`` times the baseline's metric, or the absolute ``floor`` when given (then
    no variant may qualify). The baseline, unless named, is the best-scoring fp32 variant of the task,
    since compression is judged against the uncompressed model.
    """
    fraction = check_fraction(fraction)
    obj = get_objective(objective)
    table = frontier(records, task, obj, batch_size)
    return recommend_from_frontier(table, task, obj, fraction, batch_size, baseline, floor)


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------


def _new_figure(n_axes: int) -> tuple[Figure, list[Axes]]:
    # A bare Figure is not registered with pyplot: no backend choice, no GUI, no figure leak in loops.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGURE_WIDTH_IN * n_axes, FIGURE_HEIGHT_IN), layout="constrained")
    axes = fig.subplots(1, n_axes, squeeze=False)[0]
    return fig, list(axes)


def _box(x: float, y: float, dx: float, dy: float, width: float, height: float) -> tuple[float, ...]:
    """Display-space box of a label anchored at (x + dx, y + dy) with the alignment _align gives."""
    left = x + dx - (width if dx < 0 else width / 2 if dx == 0 else 0.0)
    bottom = y + dy - (height if dy < 0 else height / 2 if dy == 0 else 0.0)
    return left, bottom, left + width, bottom + height


def _align(dx: float, dy: float) -> tuple[str, str]:
    return (
        "left" if dx > 0 else "right" if dx < 0 else "center",
        "bottom" if dy > 0 else "top" if dy < 0 else "center",
    )


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _place_labels(ax: Axes, xs: np.ndarray, ys: np.ndarray, names: list[str]) -> None:
    """Annotate each point with its name, greedily picking the offset that collides least.

    Sizes are estimated from the font size, not measured, so this needs no renderer; the layout engine
    may still rescale the axes afterwards, which keeps it approximate but far better than fixed offsets.
    """
    ax.autoscale_view()
    scale = ax.figure.dpi / 72.0
    points = ax.transData.transform(np.column_stack([xs, ys]))
    radius = MARKER_RADIUS_PT * scale
    obstacles = [(px - radius, py - radius, px + radius, py + radius) for px, py in points]
    frame = tuple(ax.bbox.extents)
    height = LABEL_FONT_SIZE * 1.25 * scale
    for (px, py), x, y, name in zip(points, xs, ys, names, strict=True):
        width = len(name) * LABEL_FONT_SIZE * LABEL_CHAR_WIDTH * scale
        best, best_score = LABEL_OFFSETS[0], math.inf
        for dx, dy in LABEL_OFFSETS:
            box = _box(px, py, dx * scale, dy * scale, width, height)
            outside = width * height - _overlap(box, frame)
            score = sum(_overlap(box, other) for other in obstacles) + 2.0 * outside
            if score < best_score - 1e-9:
                best, best_score = (dx, dy), score
        obstacles.append(_box(px, py, best[0] * scale, best[1] * scale, width, height))
        ha, va = _align(*best)
        ax.annotate(
            name, (x, y), xytext=best, textcoords="offset points",
            fontsize=LABEL_FONT_SIZE, ha=ha, va=va, alpha=0.9,
        )  # fmt: skip


def _draw_frontier(
    ax: Axes,
    table: pd.DataFrame,
    task: str,
    obj: Objective,
    batch_size: int,
    rec: Recommendation | None,
    fraction: float,
) -> None:
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    models = sorted(str(m) for m in table["model"].dropna().unique())
    methods = sorted(str(m) for m in table["method"].dropna().unique())
    palette = colormaps["tab10"]
    colour = {m: palette(i % palette.N) for i, m in enumerate(models)}
    marker = {m: METHOD_MARKERS[i % len(METHOD_MARKERS)] for i, m in enumerate(methods)}
    metric_name = (
        str(table["metric_name"].dropna().iloc[0]) if table["metric_name"].notna().any() else "metric"
    )

    by_x = table.sort_values("cost", kind="stable").reset_index(drop=True)
    for _, row in by_x.iterrows():
        x, y = float(row["cost"]), float(row["metric"])
        c = colour.get(str(row["model"]), "grey")
        is_base = rec is not None and row["variant"] == rec.baseline
        low, high = row["metric_ci_low"], row["metric_ci_high"]
        if pd.notna(low) and pd.notna(high):
            ax.errorbar(
                [x],
                [y],
                yerr=[[max(y - low, 0.0)], [max(high - y, 0.0)]],
                fmt="none",
                ecolor=c,
                alpha=0.6,
                lw=1,
            )
        ax.scatter(
            [x],
            [y],
            color=c,
            marker=BASELINE_MARKER if is_base else marker.get(str(row["method"]), "o"),
            s=180 if is_base else 45,
            edgecolors="black" if row["on_frontier"] else "none",
            linewidths=0.8,
            zorder=3,
            label="_nolegend_",
            gid=f"variant:{row['variant']}",
        )

    front = by_x[by_x["on_frontier"]]
    if len(front) > 1:
        ax.step(
            front["cost"],
            front["metric"],
            where="pre" if obj.higher_is_better else "post",
            color="black",
            lw=1,
            alpha=0.7,
            zorder=2,
        )

    handles = (
        [Line2D([], [], color="black", lw=1, alpha=0.7, label="Pareto frontier")] if len(front) > 1 else []
    )
    if len(models) > 1:  # teachers and students (or several checkpoints): one colour each
        handles += [Line2D([], [], color=colour[m], marker="o", ls="none", label=m) for m in models]
    if rec is not None:
        label = f"floor {format_metric(rec.floor, metric_name)}"
        if not rec.floor_is_absolute:
            label += f" ({_fraction_text(fraction)} of baseline)"
        ax.axhline(rec.floor, ls="--", color="grey", lw=1, zorder=1)
        handles.append(Line2D([], [], ls="--", color="grey", lw=1, label=label))
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker=BASELINE_MARKER,
                ms=11,
                color="grey",
                label=f"baseline {rec.baseline}",
            )
        )
        if rec.chosen is not None:
            pick = table[table["variant"] == rec.chosen].iloc[0]
            ax.plot(
                [pick["cost"]],
                [pick["metric"]],
                ls="none",
                marker="o",
                ms=17,
                mfc="none",
                mec="red",
                mew=2,
                zorder=4,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    ls="none",
                    marker="o",
                    ms=11,
                    mfc="none",
                    mec="red",
                    mew=2,
                    label=f"deploy {rec.chosen}",
                )
            )
    ax.margins(x=0.12, y=0.12)
    _place_labels(ax, by_x["cost"].to_numpy(float), by_x["metric"].to_numpy(float), list(by_x["variant"]))
    ax.legend(handles=handles, fontsize=LABEL_FONT_SIZE, loc="best", framealpha=0.8)

    better = "higher" if obj.higher_is_better else "lower"
    ax.set_xlabel(f"{obj.axis_label(batch_size)} – {better} is better")
    ax.set_ylabel(f"{display_metric_name(metric_name)} – higher is better")
    ax.set_title(f"{task}: {display_metric_name(metric_name)} vs {obj.name}")
    ax.grid(True, alpha=0.3)


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

    Each variant is one scatter point (baseline as a star), so a reader can see how much quality each
    speed-up costs. Without an fp32 baseline the floor and recommendation are left out (logged).
    Draws into ``ax`` when given, else onto a new Figure that is not registered with pyplot.
    """
    fraction = check_fraction(fraction)
    obj = get_objective(objective)
    table = frontier(records, task, obj, batch_size)
    try:
        rec = recommend_from_frontier(table, task, obj, fraction, batch_size, baseline, floor)
    except DataError as err:
        logger.warning("task %s: plotting without floor and recommendation: %s", task, err.message)
        rec = None
    if ax is None:
        fig, (ax,) = _new_figure(1)
    else:
        fig = ax.figure
    _draw_frontier(ax, table, task, obj, batch_size, rec, fraction)
    return fig


def plot_frontiers(
    records: pd.DataFrame,
    task: str,
    objectives: Sequence[str | Objective] = ("latency", "throughput", "size"),
    batch_size: int = DEFAULT_BATCH_SIZE,
    fraction: float = DEFAULT_FRACTION,
    baseline: str | None = None,
    floor: float | None = None,
) -> Figure:
    """One subplot per objective for one task, side by side.

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
    fig, axes = _new_figure(len(objs))
    for ax, obj in zip(axes, objs, strict=True):
        try:
            plot_frontier(
                records, task, obj, batch_size, ax=ax, fraction=fraction, baseline=baseline, floor=floor
            )
        except DataError as err:
            logger.warning("task %s: no %s panel: %s", task, obj.name, err.message)
            ax.text(
                0.5, 0.5, f"no {obj.name} data\nfor {task}", ha="center", va="center", transform=ax.transAxes
            )
            ax.set_title(f"{task}: {obj.name}")
            ax.set_axis_off()
    return fig


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FRACTION",
    "DEFAULT_OBJECTIVE",
    "OBJECTIVES",
    "Objective",
    "Recommendation",
    "check_fraction",
    "display_metric_name",
    "format_metric",
    "format_ratio",
    "frontier",
    "frontier_table",
    "get_objective",
    "latest_records",
    "objective_rows",
    "ok_mask",
    "pareto_mask",
    "plot_frontier",
    "plot_frontiers",
    "recommend",
    "recommend_from_frontier",
    "register_objective",
    "task_records",
]
