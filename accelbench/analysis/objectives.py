"""The cost objectives a frontier can use (latency, throughput, size) and their registry."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..registry import Registry
from .selection import require_columns

logger = logging.getLogger(__name__)

DEFAULT_OBJECTIVE = "latency"
DEFAULT_BATCH_SIZE = 32
REALTIME_SCENARIO = "realtime"
BATCH_SCENARIO = "batch"


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
    {ratio}, {baseline}, {chosen_cost}, {baseline_cost} and {batch}. ``measured_by`` names what records
    the cost, for the sentence that says a run has no measurement of it.
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
        measured_by="the batch scenario",
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
