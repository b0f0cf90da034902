"""The cost objectives a frontier can use (latency, throughput, offline throughput, size) and their registry."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..registry import Registry
from .formatting import row_interval
from .selection import require_columns

logger = logging.getLogger(__name__)

DEFAULT_OBJECTIVE = "latency"
DEFAULT_BATCH_SIZE = 32
REALTIME_SCENARIO = "realtime"
BATCH_SCENARIO = "batch"
OFFLINE_SCENARIO = "offline"


def _best_row_per_variant(rows: pd.DataFrame, column: str, higher_is_better: bool) -> pd.DataFrame:
    """One row per variant: the best measurement of ``column`` (e.g. the faster padding mode)."""
    rows = rows[rows[column].notna()]
    if rows.empty:
        return rows
    order = rows.sort_values(column, ascending=not higher_is_better, kind="stable")
    return order.drop_duplicates("variant", keep="first")


def _select_latency(rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    if "scenario" in rows.columns:
        rows = rows[rows["scenario"] == REALTIME_SCENARIO]
    return _best_row_per_variant(rows, "latency_ms_p90", higher_is_better=False)


def _select_throughput(rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    require_columns(rows, ("batch_size",), "the throughput objective")
    if "scenario" in rows.columns:
        rows = rows[rows["scenario"] == BATCH_SCENARIO]
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


def _select_offline(rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """Each variant's offline row (its own batch size; ``batch_size`` plays no part). A forced rerun may have
    chosen another size, leaving two current rows of one key: the later one counts."""
    if "scenario" not in rows.columns:
        return rows.iloc[0:0]
    rows = rows[(rows["scenario"] == OFFLINE_SCENARIO) & rows["throughput"].notna()]
    if "key" in rows.columns:
        rows = rows.drop_duplicates("key", keep="last")
    return _best_row_per_variant(rows, "throughput", higher_is_better=True)


def _select_size(rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    rows = rows[rows["size_mb"].notna()]
    selected = rows.drop_duplicates("variant", keep="first").copy()
    selected["batch_size"] = np.nan  # size does not depend on a batch size
    return selected


@dataclass(frozen=True)
class Objective:
    """How to read one cost from the records: which rows, which column, and which direction is better.

    ``phrase`` and ``phrase_worse`` render the comparison in recommendation sentences (the latter when
    the chosen variant is worse than the baseline: an absolute floor, or a slower variant preferred over an
    indistinguishable faster one); they may use {ratio}, {ratio_ci} (' [1.9–2.2]' or ''), {baseline},
    {chosen_cost}, {baseline_cost} and {batch}. ``measured_by`` names what records the cost, for the
    sentence that says a run has no measurement of it.

    ``ci_columns`` name the (low, high) interval of the cost in a record (the repeated rounds' interval of
    the median; empty when the cost has none, as size), ``noun`` and ``unit`` word it ("throughput at batch
    {batch}", "samples/s"). ``speedup_columns`` name the record's paired speed-up against the model's own
    fp32 (value, low, high) where that is the same ratio as ``speedup`` (throughput, not p90 latency).
    """

    name: str
    column: str
    higher_is_better: bool
    label: str
    select: Callable[[pd.DataFrame, int], pd.DataFrame]
    phrase: str
    phrase_worse: str
    cost_format: str = "{:.1f}"
    measured_by: str = "the benchmark"
    ci_columns: tuple[str, ...] = ()
    noun: str = ""
    unit: str = ""
    speedup_columns: tuple[str, ...] = ()

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

    def speedup_interval(
        self, baseline_ci: tuple[float, float] | None, chosen_ci: tuple[float, float] | None
    ) -> tuple[float, float] | None:
        """A conservative interval of ``speedup`` from the two costs' own intervals (unpaired measurements).

        Its ends pair the far ends of the two intervals, so it covers at least what both intervals cover
        together; None when either is missing or an end is not positive.
        """
        if baseline_ci is None or chosen_ci is None or min(*baseline_ci, *chosen_ci) <= 0:
            return None
        (b_lo, b_hi), (c_lo, c_hi) = baseline_ci, chosen_ci
        if self.higher_is_better:
            return c_lo / b_hi, c_hi / b_lo
        return b_lo / c_hi, b_hi / c_lo

    def interval(self, row: pd.Series | dict) -> tuple[float, float] | None:
        """The (low, high) interval of this cost in a record or frontier row; None when not recorded."""
        return row_interval(row, self.ci_columns)

    def describe(self, batch_size: int | str = DEFAULT_BATCH_SIZE) -> str:
        """What is compared, for sentences: 'p90 latency', 'throughput at batch 32'."""
        return (self.noun or self.name).format(batch=batch_size, batch_size=batch_size)

    def missing_text(self) -> str:
        """What summary.md and notebook 04 say when a run has no measurement of this objective."""
        return f"no {self.name} measurements in this run ({self.measured_by} recorded none)."


OBJECTIVES: Registry[Objective] = Registry("objective")


def register_objective(objective: Objective, overwrite: bool = False) -> Objective:
    """Add an objective so that every function accepts its name; a taken name needs ``overwrite=True``."""
    return OBJECTIVES.register(objective.name, objective, overwrite=overwrite)


def get_objective(name: str | Objective) -> Objective:
    """Look an objective up by name (an Objective is returned as is); unknown names list the known ones."""
    if isinstance(name, Objective):
        return name
    return OBJECTIVES.get(name)


register_objective(
    Objective(
        name="latency",
        column="latency_ms_p90",
        higher_is_better=False,
        label="p90 latency per request (ms)",
        select=_select_latency,
        phrase="{ratio}x faster than {baseline} (p90 latency {chosen_cost} ms vs {baseline_cost} ms)",
        phrase_worse="{ratio}x slower than {baseline} (p90 latency {chosen_cost} ms vs {baseline_cost} ms)",
        measured_by="the real-time (batch 1) scenario",
        ci_columns=("latency_ms_p90_ci_low", "latency_ms_p90_ci_high"),
        noun="p90 latency",
        unit="ms",
    )
)
register_objective(
    Objective(
        name="throughput",
        column="throughput",
        higher_is_better=True,
        label="throughput at batch {batch_size} (samples/s)",
        select=_select_throughput,
        phrase="{ratio}x{ratio_ci} the throughput of {baseline} at batch {batch} "
        "({chosen_cost} vs {baseline_cost} samples/s)",
        phrase_worse="{ratio}x{ratio_ci} the throughput of {baseline} at batch {batch} "
        "({chosen_cost} vs {baseline_cost} samples/s)",
        cost_format="{:.0f}",
        measured_by="the batch scenario",
        ci_columns=("throughput_ci_low", "throughput_ci_high"),
        noun="throughput at batch {batch}",
        unit="samples/s",
        speedup_columns=("speedup_vs_fp32", "speedup_vs_fp32_ci_low", "speedup_vs_fp32_ci_high"),
    )
)
register_objective(
    Objective(
        name="offline_throughput",
        column="throughput",
        higher_is_better=True,
        label="offline throughput (samples/s, batch size chosen per variant)",
        select=_select_offline,
        phrase="{ratio}x{ratio_ci} the offline throughput of {baseline} at batch {batch} "
        "({chosen_cost} vs {baseline_cost} samples/s)",
        phrase_worse="{ratio}x{ratio_ci} the offline throughput of {baseline} at batch {batch} "
        "({chosen_cost} vs {baseline_cost} samples/s)",
        cost_format="{:.0f}",
        measured_by="the offline scenario (benchmark: offline: true)",
        ci_columns=("throughput_ci_low", "throughput_ci_high"),
        noun="offline throughput",
        unit="samples/s",
        speedup_columns=("speedup_vs_fp32", "speedup_vs_fp32_ci_low", "speedup_vs_fp32_ci_high"),
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
        measured_by="the size measurement",
        noun="size",
        unit="MB",
    )
)


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_OBJECTIVE",
    "OBJECTIVES",
    "Objective",
    "get_objective",
    "register_objective",
]
