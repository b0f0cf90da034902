"""Telling the recommended variant from the runner-up: interval overlap, and which to prefer in a tie.

Both variants already meet the quality floor. Where both throughputs come from the same rotation of
the benchmark (the same ``rotation`` id: the same inputs, round by round), their speeds are compared paired:
the per-round ratio of their throughputs, told apart when its order-statistic interval (6 rounds: every
round) lies on one side of 1. This is far sharper than comparing the two intervals, which also hold how the
inputs of one round differ from those of another. Otherwise (different rotations, the latency objective,
whose p90 has no per-round pairing in the records) the speeds can be told apart when the intervals of the
objective's cost (each the interval of a median over the benchmark's repeated rounds) do not overlap;
their metrics when the 95% intervals of the metric do not overlap. Disjoint intervals are a conservative
test (two overlapping intervals may still differ significantly), which is the side to err on before
overturning the point estimates. Records without intervals (older runs, the size objective) give no
verdict and the fastest by point estimate is kept, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..measure.stats import median_interval, paired_ratios
from .formatting import (
    display_metric_name,
    format_interval,
    format_metric,
    intervals_overlap,
    row_float,
    row_interval,
)
from .frontier import cost_interval
from .objectives import Objective

SIZE_TOLERANCE = 0.05  # sizes within 5% of each other count as equal
METRIC_CI_COLUMNS = ("metric_ci_low", "metric_ci_high")
REASON_FASTEST = "fastest"
REASON_SMALLER = "smaller"
REASON_MORE_ACCURATE = "more accurate"
REASON_POINT_ESTIMATE = "faster point estimate"


@dataclass(frozen=True)
class Comparison:
    """The verdict on the two fastest variants meeting the floor.

    ``indistinguishable`` is True when neither the objective's intervals nor (where both are recorded)
    the metric's intervals tell the two apart; False when either does; None when the records hold no
    interval of the cost. ``speed_overlap`` and ``quality_overlap`` give each part (None: not recorded).
    ``reason`` says why ``chosen`` won: fastest (told apart, or no intervals), smaller, more accurate, or
    faster point estimate (a tie in everything). ``text`` is the sentence for the recommendation ('' when
    the records hold no intervals).
    """

    chosen: str
    other: str
    indistinguishable: bool | None
    speed_overlap: bool | None
    quality_overlap: bool | None
    reason: str
    text: str


def _cost_text(row: pd.Series, obj: Objective) -> str:
    cost = obj.cost_format.format(float(row["cost"]))
    interval = cost_interval(row)
    return f"{cost} {format_interval(*interval, obj.cost_format)}" if interval else cost


def _metric_text(row: pd.Series, metric_name: str) -> str:
    def fmt(value: float) -> str:
        return format_metric(value, metric_name)

    interval = row_interval(row, METRIC_CI_COLUMNS)
    text = fmt(row_float(row, "metric"))
    return f"{text} [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else text


def _rounds_text(a: pd.Series, b: pd.Series) -> str:
    ra, rb = row_float(a, "repeats"), row_float(b, "repeats")
    if math.isnan(ra) or math.isnan(rb):
        return ""
    return f" over {int(ra)} rounds" if ra == rb else f" over {int(ra)} and {int(rb)} rounds"


def paired_ratio(a: pd.Series, b: pd.Series, obj: Objective) -> tuple[float, float, float, int] | None:
    """``a``'s throughput over ``b``'s per round, as (median, low, high, rounds), where both rows were measured
    in the same rotation on the same inputs; None otherwise (or for a cost that is not a throughput)."""
    if obj.column != "throughput" or not obj.higher_is_better:
        return None
    ra, rb = a.get("rotation"), b.get("rotation")
    if not isinstance(ra, str) or ra != rb:
        return None
    xa, xb = a.get("throughput_rounds"), b.get("throughput_rounds")
    if (
        not isinstance(xa, list | tuple)
        or not isinstance(xb, list | tuple)
        or len(xa) != len(xb)
        or len(xa) < 2
    ):
        return None
    ratios = paired_ratios(list(xa), list(xb))
    if len(ratios) < 2:
        return None
    med, lo, hi, _ = median_interval(ratios)
    return med, lo, hi, len(ratios)


def _speeds(chosen: pd.Series, other: pd.Series, obj: Objective) -> str:
    unit = f" {obj.unit}" if obj.unit else ""
    text = f"{_cost_text(chosen, obj)} vs {_cost_text(other, obj)}{unit}{_rounds_text(chosen, other)}"
    paired = paired_ratio(chosen, other, obj)
    if paired is not None:
        med, lo, hi, n = paired
        # offline points run each variant's own batch size: the same rounds, not the same batches
        how = "round by round" if obj.name == "offline_throughput" else "on the same inputs"
        text += f"; paired {how}, {med:.2f}x [{lo:.2f}–{hi:.2f}] over {n} rounds"
    return text


def _tie_break(fastest: pd.Series, runner_up: pd.Series, metric_name: str) -> tuple[pd.Series, str, str]:
    """Of two indistinguishable variants: the smaller, else (sizes within 5%) the more accurate."""
    sa, sb = row_float(fastest, "size_mb"), row_float(runner_up, "size_mb")
    if not (math.isnan(sa) or math.isnan(sb)) and abs(sa - sb) > SIZE_TOLERANCE * max(sa, sb):
        pick, other = (fastest, runner_up) if sa < sb else (runner_up, fastest)
        evidence = f"{row_float(pick, 'size_mb'):.1f} vs {row_float(other, 'size_mb'):.1f} MB"
        return pick, REASON_SMALLER, evidence
    ma, mb = row_float(fastest, "metric"), row_float(runner_up, "metric")
    shown = display_metric_name(metric_name)
    if not (math.isnan(ma) or math.isnan(mb)) and ma != mb:
        pick, other = (fastest, runner_up) if ma > mb else (runner_up, fastest)
        values = f"{format_metric(row_float(pick, 'metric'), metric_name)} vs "
        values += format_metric(row_float(other, "metric"), metric_name)
        same_size = "" if math.isnan(sa) or math.isnan(sb) else "; sizes within 5%"
        return pick, REASON_MORE_ACCURATE, f"{shown} {values}{same_size}"
    sizes = "" if math.isnan(sa) or math.isnan(sb) else "size and "
    return fastest, REASON_POINT_ESTIMATE, f"equal in {sizes}{shown}"


def compare_leaders(
    fastest: pd.Series, runner_up: pd.Series, obj: Objective, metric_name: str, batch: str
) -> Comparison:
    """Compare the fastest variant meeting the floor with the next one, and pick the one to deploy.

    Both are rows of a frontier table (``cost``, cost_ci_low/high, metric and its interval, size_mb,
    repeats). Where the two are paired (one rotation), the per-round ratio decides which is faster: the
    one with the higher median throughput may lose every round to the other (the median of each variant's
    rounds need not come from the same round), and then the other is the fastest. Speeds told apart: the
    fastest is kept. Speeds not told apart but metrics told apart: the
    more accurate. Neither told apart: the smaller, or at sizes within 5% the more accurate.
    """
    noun = obj.describe(batch)
    paired = paired_ratio(fastest, runner_up, obj)
    if paired is not None and paired[2] < 1.0:
        # the faster median, yet slower in every round of the interval: the paired verdict orders them
        fastest, runner_up = runner_up, fastest
        paired = paired_ratio(fastest, runner_up, obj)
    if paired is not None:  # told apart when every ratio in the interval is on one side of 1
        speed = paired[1] <= 1.0 <= paired[2]
    else:
        speed = intervals_overlap(cost_interval(fastest), cost_interval(runner_up))
    quality = intervals_overlap(
        row_interval(fastest, METRIC_CI_COLUMNS), row_interval(runner_up, METRIC_CI_COLUMNS)
    )
    name_a, name_b = str(fastest["variant"]), str(runner_up["variant"])
    if speed is None:
        return Comparison(name_a, name_b, None, None, quality, REASON_FASTEST, "")
    if not speed:
        text = f"It is distinguishable from the runner-up {name_b} in {noun}: {_speeds(fastest, runner_up, obj)}."
        return Comparison(name_a, name_b, False, False, quality, REASON_FASTEST, text)
    if quality is False:
        pick, other = (
            (fastest, runner_up) if row_float(fastest, "metric") >= row_float(runner_up, "metric")
            else (runner_up, fastest)
        )  # fmt: skip
        text = (
            f"{pick['variant']} and {other['variant']} are indistinguishable in {noun} "
            f"({_speeds(pick, other, obj)}) but not in {display_metric_name(metric_name)} "
            f"({_metric_text(pick, metric_name)} vs {_metric_text(other, metric_name)}); "
            f"recommending {pick['variant']}, the {REASON_MORE_ACCURATE}."
        )
        return Comparison(
            str(pick["variant"]), str(other["variant"]), False, True, False, REASON_MORE_ACCURATE, text
        )
    pick, reason, evidence = _tie_break(fastest, runner_up, metric_name)
    other = runner_up if pick is fastest else fastest
    text = (
        f"{pick['variant']} and {other['variant']} are indistinguishable in {noun} "
        f"({_speeds(pick, other, obj)}); recommending {pick['variant']}, the {reason} ({evidence})."
    )
    return Comparison(str(pick["variant"]), str(other["variant"]), True, True, quality, reason, text)


__all__ = ["SIZE_TOLERANCE", "Comparison", "compare_leaders", "paired_ratio"]
