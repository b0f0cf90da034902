"""The deployment recommendation: the cheapest variant that keeps enough of the fp32 baseline's quality."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..exceptions import ConfigError, DataError, UnknownNameError
from ..records import BASELINE_METHOD
from .formatting import display_metric_name, format_metric, format_ratio, fraction_text, percent_text
from .frontier import frontier, frontier_table, objective_rows_or_none
from .objectives import DEFAULT_BATCH_SIZE, DEFAULT_OBJECTIVE, Objective, get_objective

DEFAULT_FRACTION = 0.99


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
        return percent_text(value / base_metric) if base_metric else "?"

    if absolute:
        floor_text = f"the {shown_name} floor {fmt(floor_value)}"
    else:
        floor_text = (
            f"{fraction_text(fraction)} of {base['variant']}'s {shown_name} {fmt(base_metric)} "
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
    since compression is judged against the uncompressed model. Raises DataError when the run has no
    measurement of the objective; ``recommendation_or_reason`` says so in words instead.
    """
    fraction = check_fraction(fraction)
    obj = get_objective(objective)
    table = frontier(records, task, obj, batch_size)
    return recommend_from_frontier(table, task, obj, fraction, batch_size, baseline, floor)


def recommendation_or_reason(
    records: pd.DataFrame | None,
    task: str,
    fraction: float = DEFAULT_FRACTION,
    objective: str | Objective = DEFAULT_OBJECTIVE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    table: pd.DataFrame | None = None,
) -> Recommendation | str:
    """A Recommendation, or the sentence that says why there is none, for summary.md and notebook 04.

    Pass ``records`` (the frontier is computed) or an already computed frontier ``table``. A run with no
    measurement of the objective gives "no <objective> measurements in this run (...)", a task without
    an fp32 baseline "no recommendation: ...". An unknown task or objective, or a bad fraction, still raise.
    """
    fraction = check_fraction(fraction)
    obj = get_objective(objective)
    if table is None:
        if records is None:
            raise ConfigError("recommendation_or_reason needs records or a frontier table", "pass either")
        rows = objective_rows_or_none(records, task, obj, batch_size)
        if rows is None:
            return obj.missing_text()
        table = frontier_table(rows, obj)
    try:
        return recommend_from_frontier(table, task, obj, fraction, batch_size, None, None)
    except DataError as err:
        return f"no recommendation: {err.message}."


__all__ = [
    "DEFAULT_FRACTION",
    "Recommendation",
    "check_fraction",
    "recommend",
    "recommend_from_frontier",
    "recommendation_or_reason",
]
