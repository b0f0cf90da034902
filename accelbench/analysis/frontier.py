"""Pareto frontiers: the variants no other beats on both quality and an objective's cost."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..exceptions import ConfigError, DataError
from .formatting import row_interval
from .objectives import DEFAULT_BATCH_SIZE, DEFAULT_OBJECTIVE, OBJECTIVES, Objective, get_objective
from .selection import require_columns, task_records

logger = logging.getLogger(__name__)

# The paired test of a variant's metric against its model's fp32 (absent from older records).
DELTA_TEST_COLUMNS = (
    "metric_delta_ci_low",
    "metric_delta_ci_high",
    "metric_delta_p",
    "metric_delta_test",
    "metric_delta_significant",
)
# Per variant, the same on each of its rows.
QUALITY_COLUMNS = (
    "metric_name", "metric", "metric_ci_low", "metric_ci_high", "metric_delta", "agreement", *DELTA_TEST_COLUMNS,
)  # fmt: skip
COST_CI_COLUMNS = ("cost_ci_low", "cost_ci_high")  # a frontier table's copy of the objective's ci_columns
FRONTIER_COLUMNS = ("variant", "model", "method", "metric_name", "metric", "metric_ci_low", "metric_ci_high")
# Copied into a frontier table when the records hold them (repeated rounds, paired speed-ups, delta tests,
# the busy-machine flag of the row the cost came from).
OPTIONAL_COLUMNS = (
    "repeats", "speed_ci_level", "speedup_vs_fp32", "speedup_vs_fp32_ci_low", "speedup_vs_fp32_ci_high",
    "speedup_paired", "metric_delta", *DELTA_TEST_COLUMNS, "busy", "busy_other_cpu_share", "busy_threshold",
    "scenario", "teacher", "rotation", "throughput_rounds",
)  # fmt: skip


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


def objective_rows(
    records: pd.DataFrame,
    task: str,
    objective: str | Objective = DEFAULT_OBJECTIVE,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> pd.DataFrame:
    """One full record row per ok variant of ``task``: the row the objective's cost is read from.

    Only current records count (``records.current_records``). When a variant has several candidate rows
    (e.g. both padding modes) the best cost wins, since that is what a deployment would configure.
    Quality columns are filled from any row of the variant, as they are the same on all of them.
    Variants without a usable row are dropped with a warning; a run without any measurement of the
    objective raises DataError (``available_objectives`` says beforehand which objectives were measured).
    """
    obj = get_objective(objective)
    rows = task_records(records, task)
    require_columns(rows, ("model", "method", "metric", obj.column), f"the {obj.name} objective")
    selected = obj.select(rows, batch_size)
    missing = sorted(set(rows["variant"]) - set(selected["variant"]))
    if missing and not selected.empty:
        logger.warning("task %s: no %s measurement for %s; left out", task, obj.name, ", ".join(missing))
    if selected.empty:
        raise DataError(
            f"task {task!r}: {obj.missing_text().rstrip('.')}",
            f"run {obj.measured_by} of the benchmark, or choose another objective",
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


def objective_rows_or_none(
    records: pd.DataFrame,
    task: str,
    objective: str | Objective = DEFAULT_OBJECTIVE,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> pd.DataFrame | None:
    """``objective_rows``, or None when the run has no measurement of the objective for ``task``.

    Task-level problems (unknown task, every measurement failed) and unknown objectives still raise, so
    they are not reported as a missing objective.
    """
    obj = get_objective(objective)
    task_records(records, task)
    try:
        return objective_rows(records, task, obj, batch_size)
    except DataError as err:
        logger.info("task %s: no %s frontier: %s", task, obj.name, err.message)
        return None


def available_objectives(
    records: pd.DataFrame,
    task: str,
    objectives: Sequence[str | Objective] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[str]:
    """The names of the objectives (default: all registered) that this run measured for ``task``.

    A benchmark run without the real-time scenario has no latency, one without batch rows no throughput;
    callers use this to show the frontiers that exist and say which do not. An unknown task or objective,
    or a task whose every measurement failed, still raises.
    """
    objs = [get_objective(o) for o in (OBJECTIVES.names() if objectives is None else objectives)]
    return [o.name for o in objs if objective_rows_or_none(records, task, o, batch_size) is not None]


def cost_interval(row: pd.Series) -> tuple[float, float] | None:
    """The (low, high) interval of a frontier table row's cost; None when the records hold none."""
    return row_interval(row, COST_CI_COLUMNS)


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
    for end, source in zip(COST_CI_COLUMNS, obj.ci_columns or (None, None), strict=True):
        columns[end] = rows[source].astype(float) if source in rows.columns else np.nan
    columns["batch_size"] = rows["batch_size"] if "batch_size" in rows.columns else np.nan
    columns.update({c: rows[c] for c in OPTIONAL_COLUMNS if c in rows.columns})
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
    objective's column, so callers need not know its name), cost_ci_low / cost_ci_high (the cost's interval
    over the repeated rounds; NaN when not recorded), batch_size (of the row the cost came from; NaN for
    size) and on_frontier; and, where the records hold them, OPTIONAL_COLUMNS (repeats, the paired
    speed-up against the model's fp32, the metric delta's paired test, the busy-machine flag). Sorted by
    cost, best first.
    """
    obj = get_objective(objective)
    return frontier_table(objective_rows(records, task, obj, batch_size), obj)


__all__ = [
    "DELTA_TEST_COLUMNS",
    "FRONTIER_COLUMNS",
    "OPTIONAL_COLUMNS",
    "QUALITY_COLUMNS",
    "COST_CI_COLUMNS",
    "available_objectives",
    "cost_interval",
    "frontier",
    "frontier_table",
    "objective_rows",
    "objective_rows_or_none",
    "pareto_mask",
]
