"""The recommended variant against the runner-up: interval overlap, then the smaller or the more accurate."""

from __future__ import annotations

import pandas as pd
import pytest

from accelbench.analysis import get_objective
from accelbench.analysis.comparison import compare_leaders


def _row(
    variant: str,
    cost: float,
    spread: float | None,
    metric: float,
    size: float,
    metric_ci: float | None = 0.02,
):
    return pd.Series(
        {
            "variant": variant,
            "cost": cost,
            "cost_ci_low": cost - spread if spread is not None else float("nan"),
            "cost_ci_high": cost + spread if spread is not None else float("nan"),
            "metric": metric,
            "metric_ci_low": metric - metric_ci if metric_ci is not None else float("nan"),
            "metric_ci_high": metric + metric_ci if metric_ci is not None else float("nan"),
            "size_mb": size,
            "repeats": 6,
        }
    )


THROUGHPUT = get_objective("throughput")


def test_disjoint_speeds_keep_the_fastest():
    fast, slow = _row("m:pt2e-int8", 321, 10, 0.90, 50), _row("m:ort-dynamic-int8", 280, 10, 0.90, 25)
    verdict = compare_leaders(fast, slow, THROUGHPUT, "accuracy", "32")
    assert verdict.chosen == "m:pt2e-int8" and verdict.other == "m:ort-dynamic-int8"
    assert verdict.indistinguishable is False and verdict.reason == "fastest"
    assert verdict.text == (
        "It is distinguishable from the runner-up m:ort-dynamic-int8 in throughput at batch 32: "
        "321 [311, 331] vs 280 [270, 290] samples/s over 6 rounds."
    )


def test_overlapping_speeds_prefer_the_smaller():
    fast, slow = _row("m:pt2e-int8", 321, 22, 0.90, 50), _row("m:ort-dynamic-int8", 312, 20, 0.90, 25)
    verdict = compare_leaders(fast, slow, THROUGHPUT, "accuracy", "32")
    assert verdict.chosen == "m:ort-dynamic-int8" and verdict.other == "m:pt2e-int8"
    assert verdict.indistinguishable is True and verdict.reason == "smaller"
    assert verdict.text == (
        "m:ort-dynamic-int8 and m:pt2e-int8 are indistinguishable in throughput at batch 32 "
        "(312 [292, 332] vs 321 [299, 343] samples/s over 6 rounds); "
        "recommending m:ort-dynamic-int8, the smaller (25.0 vs 50.0 MB)."
    )


def test_overlapping_speeds_keep_the_fastest_when_it_is_also_smaller():
    fast, slow = _row("m:a", 321, 22, 0.90, 25), _row("m:b", 312, 20, 0.91, 50)
    verdict = compare_leaders(fast, slow, THROUGHPUT, "accuracy", "32")
    assert (verdict.chosen, verdict.reason, verdict.indistinguishable) == ("m:a", "smaller", True)


def test_sizes_within_five_percent_prefer_the_more_accurate():
    fast, slow = _row("m:a", 321, 22, 0.900, 50), _row("m:b", 312, 20, 0.905, 48.5)
    verdict = compare_leaders(fast, slow, THROUGHPUT, "accuracy", "32")
    assert verdict.chosen == "m:b" and verdict.reason == "more accurate"
    assert "the more accurate (accuracy 0.905 vs 0.900; sizes within 5%)." in verdict.text


def test_a_tie_in_everything_keeps_the_faster_point_estimate():
    fast, slow = _row("m:a", 321, 22, 0.90, 50), _row("m:b", 312, 20, 0.90, 50)
    verdict = compare_leaders(fast, slow, THROUGHPUT, "accuracy", "32")
    assert verdict.chosen == "m:a" and verdict.reason == "faster point estimate"


def test_overlapping_speeds_but_disjoint_metrics_prefer_the_more_accurate():
    fast, slow = _row("m:a", 321, 22, 0.86, 25), _row("m:b", 312, 20, 0.92, 50, metric_ci=0.01)
    verdict = compare_leaders(fast, slow, THROUGHPUT, "accuracy", "32")
    assert verdict.chosen == "m:b" and verdict.reason == "more accurate"
    assert (
        verdict.indistinguishable is False
        and verdict.speed_overlap is True
        and verdict.quality_overlap is False
    )
    assert "but not in accuracy (0.920 [0.910, 0.930] vs 0.860 [0.840, 0.880])" in verdict.text


@pytest.mark.parametrize("spreads", [(None, None), (22, None)])
def test_no_verdict_unless_both_have_an_interval(spreads):
    """Older records (or one variant measured before repeats existed): the fastest, and nothing said."""
    fast, slow = _row("m:a", 321, spreads[0], 0.90, 50), _row("m:b", 312, spreads[1], 0.90, 25)
    verdict = compare_leaders(fast, slow, THROUGHPUT, "accuracy", "32")
    assert verdict.chosen == "m:a" and verdict.indistinguishable is None and verdict.text == ""
    assert verdict.reason == "fastest"


def test_latency_is_worded_in_ms():
    fast, slow = _row("m:a", 5.0, 1.0, 0.90, 50), _row("m:b", 5.5, 1.0, 0.90, 25)
    verdict = compare_leaders(fast, slow, get_objective("latency"), "accuracy", "1")
    assert (
        "indistinguishable in p90 latency (5.5 [4.5, 6.5] vs 5.0 [4.0, 6.0] ms over 6 rounds)" in verdict.text
    )


def _paired(row: pd.Series, rounds: list[float], rotation: str = "r1") -> pd.Series:
    return pd.concat([row, pd.Series({"rotation": rotation, "throughput_rounds": rounds})])


def test_same_rotation_compares_speeds_paired_round_by_round():
    # rounds of different inputs: raw intervals wide and overlapping, yet the fast one wins every round by ~1.4x
    base = [100.0, 300.0, 150.0, 250.0, 120.0, 280.0]
    fast = _paired(_row("t:ort-dynamic-int8", 282, 140, 23.8, 9.9, metric_ci=1.3), [1.4 * b for b in base])
    slow = _paired(
        _row("t:ct2-int8", 200, 100, 23.9, 6.9, metric_ci=1.3),
        [b * (1 + 0.01 * i) for i, b in enumerate(base)],
    )
    verdict = compare_leaders(fast, slow, THROUGHPUT, "bleu", "32")
    assert verdict.chosen == "t:ort-dynamic-int8" and verdict.indistinguishable is False
    assert "paired on the same inputs, 1.3" in verdict.text and "over 6 rounds" in verdict.text
    # measured in different rotations (other inputs per round): the intervals are all there is, and overlap
    other = _paired(
        _row("t:ct2-int8", 200, 100, 23.9, 6.9, metric_ci=1.3), slow["throughput_rounds"], rotation="r2"
    )
    unpaired = compare_leaders(fast, other, THROUGHPUT, "bleu", "32")
    assert (
        unpaired.indistinguishable is True
        and unpaired.chosen == "t:ct2-int8"
        and "paired" not in unpaired.text
    )
    # a ratio whose rounds fall on both sides of 1: not told apart, paired or not
    mixed = _paired(
        _row("t:ct2-int8", 280, 100, 23.9, 6.9, metric_ci=1.3),
        [b * (1.5 if i % 2 else 1.3) for i, b in enumerate(base)],
    )
    assert compare_leaders(fast, mixed, THROUGHPUT, "bleu", "32").indistinguishable is True


def test_a_higher_median_that_loses_the_paired_rounds_is_not_the_fastest():
    # 10 rounds: ct2-int8 is 0.9x ort-dynamic-int8 in 9 of them and 2x in one, which lifts its median
    # above ort's (235 vs 200 samples/s): the frontier lists it first, yet the paired ratio's interval
    # lies below 1
    ort = [100.0] * 5 + [300.0] * 5
    ct2 = [200.0] + [0.9 * o for o in ort[1:]]
    ort_row = _paired(_row("t:ort-dynamic-int8", 200.0, 100, 23.8, 9.9, metric_ci=1.3), ort)
    ct2_row = _paired(_row("t:ct2-int8", 235.0, 100, 23.9, 6.9, metric_ci=1.3), ct2)
    verdict = compare_leaders(ct2_row, ort_row, THROUGHPUT, "bleu", "32")
    assert verdict.chosen == "t:ort-dynamic-int8" and verdict.other == "t:ct2-int8"
    assert verdict.indistinguishable is False and verdict.reason == "fastest"
    assert (
        "distinguishable from the runner-up t:ct2-int8" in verdict.text
        and "1.11x [1.11–1.11]" in verdict.text
    )
    # the same rows with the odd round twice: the interval spans 1, indistinguishable, the smaller kept
    ct2_two = _paired(_row("t:ct2-int8", 235.0, 100, 23.9, 6.9, metric_ci=1.3), [200.0, 200.0] + ct2[2:])
    tie = compare_leaders(ct2_two, ort_row, THROUGHPUT, "bleu", "32")
    assert tie.indistinguishable is True and tie.chosen == "t:ct2-int8"


def test_rows_of_one_rotation_carry_its_id():
    from accelbench.measure.scenarios import run_interleaved
    from accelbench.measure.settings import BenchmarkSettings
    from tests.measure.test_scenarios import SleepyPredictor

    s = BenchmarkSettings(batch_sizes=[2], realtime=False, min_time_s=0.02, repeats=2, warmup=1)
    texts = ["a b", "c d e"] * 4
    one = run_interleaved({"x": SleepyPredictor(0.001), "y": SleepyPredictor(0.001)}, "classification", texts, s,
                          progress=False)  # fmt: skip
    two = run_interleaved({"x": SleepyPredictor(0.001)}, "classification", texts, s, progress=False)
    assert one.rows["x"][0]["rotation"] == one.rows["y"][0]["rotation"] != two.rows["x"][0]["rotation"]


def test_offline_leaders_are_paired_round_by_round_not_on_the_same_batches():
    base = [100.0, 300.0, 150.0, 250.0, 120.0, 280.0]
    fast = _paired(_row("m:pt2e-int8", 280, 140, 0.88, 56), [1.2 * b for b in base])
    slow = _paired(_row("m:ort-dynamic-int8", 230, 100, 0.87, 22), base)
    verdict = compare_leaders(fast, slow, get_objective("offline_throughput"), "accuracy", "16 vs 8")
    assert verdict.indistinguishable is False and "paired round by round, 1.20x" in verdict.text
