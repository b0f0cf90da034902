"""The deployment recommendation: the cheapest variant that keeps enough of the fp32 baseline's quality."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import pandas as pd

from ..exceptions import ConfigError, DataError, UnknownNameError
from ..records import BASELINE_METHOD
from .comparison import Comparison, compare_leaders
from .formatting import (
    delta_significance,
    display_metric_name,
    format_interval,
    format_metric,
    format_p,
    format_ratio,
    fraction_text,
    intervals_overlap,
    percent_text,
    row_float,
    row_interval,
)
from .frontier import cost_interval, frontier, frontier_table, objective_rows_or_none
from .objectives import BATCH_SCENARIO, DEFAULT_BATCH_SIZE, DEFAULT_OBJECTIVE, Objective, get_objective
from .selection import baseline_row, task_records

logger = logging.getLogger(__name__)

DEFAULT_FRACTION = 0.99
OFFLINE_OBJECTIVE = "offline_throughput"


@dataclass(frozen=True)
class Recommendation:
    """The variant to deploy for one task and objective, and the evidence for it.

    ``closest`` is set whenever the rule falls short of a real gain: when no variant reaches the floor
    it is the variant with the highest metric (ties: the faster), i.e. the nearest miss; when only the
    baseline qualifies it is the highest-metric variant among those faster than the baseline (None if
    none is faster); when a faster variant is chosen it is None.

    When a second variant meets the floor, ``runner_up`` names the one the choice was weighed against
    (the next fastest; or the fastest, when it was passed over) and ``indistinguishable`` says whether
    the records tell the two apart (``comparison.compare_leaders``: None without intervals); ``reason``
    says why ``chosen`` won: "fastest", "smaller", "more accurate" or "faster point estimate".
    ``speedup_ci`` and ``speedup_paired`` are set when the speed-up is the record's paired one against
    the model's own fp32 (median of per-round ratios); ``delta_p``, ``delta_test`` and
    ``delta_significant`` are the chosen variant's paired test of its metric against its own fp32.
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
    runner_up: str | None = None
    indistinguishable: bool | None = None
    reason: str | None = None
    comparison: str = ""
    chosen_cost_ci: tuple[float, float] | None = None
    speedup_ci: tuple[float, float] | None = None
    speedup_paired: bool | None = None
    delta_p: float | None = None
    delta_test: str | None = None
    delta_significant: bool | None = None

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


def _delta_phrase(row: pd.Series, metric_name: str) -> str:
    """'its loss of 0.004 against m:fp32 is not significant (p=0.62, mcnemar-exact)'; '' without a test."""
    significant = delta_significance(row)
    delta = row_float(row, "metric_delta")
    if significant is None or math.isnan(delta) or row.get("method") == BASELINE_METHOD:
        return ""
    kind = "loss" if delta < 0 else "gain" if delta > 0 else "difference"
    test = row.get("metric_delta_test")
    test_text = f", {test}" if isinstance(test, str) and test else ""
    verdict = "significant" if significant else "not significant"
    own = f"{row['model']}:{BASELINE_METHOD}" if pd.notna(row.get("model")) else BASELINE_METHOD
    return (
        f"its {kind} of {format_metric(abs(delta), metric_name)} against {own} is {verdict} "
        f"({format_p(row_float(row, 'metric_delta_p'))}{test_text})"
    )


def _cost_text(row: pd.Series, obj: Objective) -> str:
    """'312' or, with the record's interval, '312 [290, 330]'."""
    interval = cost_interval(row)
    cost = obj.cost_format.format(float(row["cost"]))
    return f"{cost} {format_interval(*interval, obj.cost_format)}" if interval else cost


def paired_speedup(
    obj: Objective, chosen: pd.Series, base: pd.Series
) -> tuple[float, tuple[float, float] | None, bool] | None:
    """(value, interval, paired) of the record's speed-up of ``chosen`` against its own model's fp32.

    None unless the objective has such a column (throughput), ``base`` is that model's fp32 and the record
    holds the value; ``paired`` is False where the record says fp32 was measured in an earlier session.
    """
    if len(obj.speedup_columns) != 3 or base.get("method") != BASELINE_METHOD:
        return None
    if chosen.get("model") != base.get("model"):  # against a teacher: only the ratio of the two medians
        return None
    scenarios = chosen.get("scenario"), base.get("scenario")
    if all(isinstance(x, str) for x in scenarios) and scenarios[0] != scenarios[1]:
        return None  # the record's speed-up is against fp32 at its own point, not the baseline's cost
    value = row_float(chosen, obj.speedup_columns[0])
    if math.isnan(value):
        return None
    paired = chosen.get("speedup_paired")
    paired = True if paired is None or isinstance(paired, str) or pd.isna(paired) else bool(paired)
    return value, row_interval(chosen, obj.speedup_columns[1:]), paired


def _gain_note(chosen: pd.Series, base: pd.Series, speedup_ci: tuple[float, float] | None) -> str:
    """A sentence when the chosen variant's speed cannot be told from the baseline's; '' otherwise."""
    if speedup_ci is not None:
        within = speedup_ci[0] <= 1.0 <= speedup_ci[1]
        why = "its paired speed-up interval includes 1"
    else:
        within = bool(intervals_overlap(cost_interval(chosen), cost_interval(base)))
        why = "the intervals overlap"
    return f" Its speed is not distinguishable from {base['variant']}'s ({why})." if within else ""


def _ci_text(row: pd.Series, metric_name: str) -> str:
    low, high = row.get("metric_ci_low"), row.get("metric_ci_high")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    return f" (95% CI {format_metric(low, metric_name)}-{format_metric(high, metric_name)})"


def _batch_text(chosen_batch: float, other_batch: float, other: str = "baseline at") -> str:
    """'32', or '16 (baseline at 32)' when the two costs come from different batch sizes."""
    if pd.isna(chosen_batch):
        return "?"
    if pd.isna(other_batch) or chosen_batch == other_batch:
        return f"{int(chosen_batch)}"
    return f"{int(chosen_batch)} ({other} {int(other_batch)})"


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
    # an original model's best fp32; ties go to the faster one (table is sorted fastest first)
    best = baseline_row(fp32)
    return best if best is not None else fp32.iloc[0]


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
    versus: Comparison | None = None
    if len(qualifying) > 1:
        fastest, runner_up = qualifying.iloc[0], qualifying.iloc[1]
        batch = _batch_text(fastest["batch_size"], runner_up["batch_size"], "vs")
        versus = compare_leaders(fastest, runner_up, obj, metric_name, batch)
        chosen = qualifying[qualifying["variant"] == versus.chosen].iloc[0]
    # the baseline kept over a faster variant it cannot be told from: no "no faster variant" sentence
    passed_over = versus is not None and versus.chosen != str(qualifying.iloc[0]["variant"])
    closest = None
    if chosen is None:
        candidates = table
    elif chosen["variant"] == base["variant"] and not passed_over:
        better = table["cost"] > base_cost if obj.higher_is_better else table["cost"] < base_cost
        candidates = table[better]
    else:
        candidates = table.iloc[0:0]
    if not candidates.empty and candidates["metric"].notna().any():
        closest = candidates.loc[candidates["metric"].idxmax()]

    closest_text = ""
    if closest is not None:
        delta = _delta_phrase(closest, metric_name)
        closest_text = (
            f"; the closest is {closest['variant']} at {fmt(closest['metric'])} ({share(closest['metric'])} "
            f"of the baseline{'; ' + delta if delta else ''})"
        )
    comparison_text = f" {versus.text}" if versus is not None and versus.text else ""
    speedup, speedup_ci, speedup_paired = None, None, None
    if chosen is None:
        baseline_note = f" ({base['variant']} has {fmt(base_metric)})" if absolute else ""
        text = f"No variant reaches {floor_text}{baseline_note}{closest_text}."
    elif chosen["variant"] == base["variant"]:
        speedup = 1.0
        if len(table) == 1:
            text = f"Deploy {base['variant']} (the baseline): it is the only variant measured for {obj.name}."
        elif passed_over:
            text = f"Deploy {base['variant']} (the baseline)."
        else:
            text = f"Deploy {base['variant']} (the baseline): no faster variant reaches {floor_text}{closest_text}."
        text += comparison_text
    else:
        speedup = obj.speedup(base_cost, float(chosen["cost"]))
        paired = paired_speedup(obj, chosen, base)
        if paired is not None:
            speedup, speedup_ci, speedup_paired = paired
        worse = not math.isnan(speedup) and speedup < 1.0
        ratio = 1.0 / speedup if worse and not obj.higher_is_better else speedup
        template = obj.phrase_worse if worse else obj.phrase
        gain = template.format(
            ratio=format_ratio(ratio),
            ratio_ci=(f" {format_interval(*speedup_ci, '{:.2f}', '–')}" if speedup_ci else "")
            + (" (not paired: fp32 from an earlier session)" if speedup_paired is False else ""),
            baseline=base["variant"],
            chosen_cost=_cost_text(chosen, obj),
            baseline_cost=_cost_text(base, obj),
            batch=_batch_text(chosen["batch_size"], base["batch_size"]),
        )
        floor_note = f", above the floor {fmt(floor_value)}" if absolute else ""
        delta = _delta_phrase(chosen, metric_name)
        text = (
            f"Deploy {chosen['variant']}: {gain} with {shown_name} {fmt(chosen['metric'])}"
            f"{_ci_text(chosen, metric_name)}, {share(chosen['metric'])} of the baseline's {fmt(base_metric)}"
            f"{floor_note}{'; ' + delta if delta else ''}.{_gain_note(chosen, base, speedup_ci)}{comparison_text}"
        )

    delta_p = None if chosen is None else row_float(chosen, "metric_delta_p")
    test = None if chosen is None else chosen.get("metric_delta_test")
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
        runner_up=None if versus is None else versus.other,
        indistinguishable=None if versus is None else versus.indistinguishable,
        reason=None if chosen is None else (versus.reason if versus is not None else "fastest"),
        comparison="" if versus is None else versus.text,
        chosen_cost_ci=None if chosen is None else cost_interval(chosen),
        speedup_ci=speedup_ci,
        speedup_paired=speedup_paired,
        delta_p=None if delta_p is None or math.isnan(delta_p) else delta_p,
        delta_test=test if isinstance(test, str) else None,
        delta_significant=None if chosen is None else delta_significance(chosen),
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


def batch_inference_objective(records: pd.DataFrame, task: str) -> tuple[str, int]:
    """(objective, batch size) that batch inference is judged by: ``offline_throughput`` when the task has
    offline points, its fp32 baseline's among them (the batch size is then each variant's own); otherwise
    ``throughput`` at the largest fixed batch size measured. Raises DataError for a task without ok rows."""
    rows = task_records(records, task)
    offline = objective_rows_or_none(records, task, OFFLINE_OBJECTIVE)
    if offline is not None and (offline["method"] == BASELINE_METHOD).any():
        return OFFLINE_OBJECTIVE, DEFAULT_BATCH_SIZE
    if offline is not None:
        logger.warning("task %s: offline points but none of %s; batch inference judged at a fixed batch size",
                       task, BASELINE_METHOD)  # fmt: skip
    fixed = rows[rows["scenario"] == BATCH_SCENARIO] if "scenario" in rows.columns else rows.iloc[0:0]
    sizes = fixed["batch_size"].dropna() if "batch_size" in fixed.columns else fixed.iloc[0:0]
    return "throughput", int(sizes.max()) if len(sizes) else DEFAULT_BATCH_SIZE


def recommend_batch_inference(
    records: pd.DataFrame,
    task: str,
    fraction: float = DEFAULT_FRACTION,
    baseline: str | None = None,
    floor: float | None = None,
) -> Recommendation:
    """The variant for batch inference: the fastest by offline throughput meeting the floor, at the batch
    size its search chose (said in the text), or, without offline points, by throughput at the largest fixed
    batch size. ``batch_size`` of the result is the size the chosen variant runs at."""
    name, batch_size = batch_inference_objective(records, task)
    table = frontier(records, task, name, batch_size)
    rec = recommend_from_frontier(table, task, name, fraction, batch_size, baseline, floor)
    if name == OFFLINE_OBJECTIVE and rec.chosen is not None:
        size = table.loc[table["variant"] == rec.chosen, "batch_size"].iloc[0]
        rec = dataclasses.replace(rec, batch_size=int(size))
    return rec


__all__ = [
    "DEFAULT_FRACTION",
    "OFFLINE_OBJECTIVE",
    "Recommendation",
    "batch_inference_objective",
    "check_fraction",
    "paired_speedup",
    "recommend",
    "recommend_batch_inference",
    "recommend_from_frontier",
    "recommendation_or_reason",
]
