"""The recommendation: the fastest variant that keeps enough of the fp32 baseline's quality."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from accelbench.analysis import OBJECTIVES, Recommendation, recommend, recommendation_or_reason
from accelbench.exceptions import ConfigError, DataError, UnknownNameError

from .samples import make_records_with_intervals


def test_recommend_picks_fastest_qualifying(records):
    rec = recommend(records, "sst2", fraction=0.99, objective="latency")
    assert rec.baseline == "minilm-sst2:fp32"
    assert rec.floor == pytest.approx(0.99 * 0.905)
    assert (
        rec.qualified and rec.chosen == "minilm-sst2:dynamic-int8"
    )  # tiny-sst2 is faster but too inaccurate
    assert rec.speedup == pytest.approx(2.0)
    assert rec.closest is None
    assert rec.text.startswith("Deploy minilm-sst2:dynamic-int8: 2x faster than minilm-sst2:fp32")
    assert "0.901 (95% CI 0.881-0.920)" in rec.text
    assert "99.6% of the baseline's 0.905" in rec.text


def test_recommend_throughput(records):
    rec = recommend(records, "sst2", objective="throughput", batch_size=32)
    assert rec.chosen == "minilm-sst2:dynamic-int8"
    assert rec.speedup == pytest.approx(2.1)
    assert "2.1x the throughput of minilm-sst2:fp32 at batch 32" in rec.text


def test_recommend_size(records):
    rec = recommend(records, "sst2", objective="size")
    assert rec.chosen == "minilm-sst2:dynamic-int8"
    assert rec.speedup == pytest.approx(90 / 25)


def test_recommend_absolute_floor_nothing_qualifies(records):
    rec = recommend(records, "sst2", floor=0.95)
    assert not rec.qualified
    assert rec.chosen is None and rec.speedup is None
    assert rec.closest == "minilm-sst2:fp32"
    assert rec.floor == 0.95
    assert rec.text.startswith("No variant reaches")
    assert "0.950" in rec.text and "minilm-sst2:fp32 at 0.905" in rec.text


def test_recommend_absolute_floor_can_pick_fast_variant(records):
    rec = recommend(records, "sst2", floor=0.84)
    assert rec.chosen == "tiny-sst2:fp32"
    assert rec.speedup == pytest.approx(5.0)


def test_recommend_baseline_only_names_closest_faster_variant(records):
    rec = recommend(records, "sst2", fraction=1.0)
    assert rec.chosen == "minilm-sst2:fp32" and rec.speedup == 1.0
    assert rec.closest == "minilm-sst2:bf16"
    assert "(the baseline)" in rec.text and "minilm-sst2:bf16" in rec.text


def test_recommend_named_baseline(records):
    rec = recommend(records, "sst2", baseline="tiny-sst2:fp32")
    assert rec.baseline == "tiny-sst2:fp32" and rec.chosen == "tiny-sst2:fp32"
    with pytest.raises(UnknownNameError):
        recommend(records, "sst2", baseline="nope:fp32")


@pytest.mark.parametrize("fraction", [1.5, 0.0, -0.1, math.nan])
def test_recommend_rejects_bad_fraction(records, fraction):
    with pytest.raises(ConfigError, match="fraction"):
        recommend(records, "sst2", fraction=fraction)


def test_recommend_rejects_unknown_objective(records):
    with pytest.raises(UnknownNameError) as info:
        recommend(records, "sst2", objective="energy")
    assert info.value.known == sorted(OBJECTIVES.names())


def test_recommend_needs_fp32_baseline(records):
    no_fp32 = records[records["method"] != "fp32"]
    with pytest.raises(DataError) as info:
        recommend(no_fp32, "sst2")
    assert info.value.fix


def test_recommendation_or_reason_without_the_objective(records):
    batch_only = records[records["scenario"] != "realtime"]  # a benchmark run with realtime: false
    with pytest.raises(DataError):
        recommend(batch_only, "sst2", objective="latency")
    text = recommendation_or_reason(batch_only, "sst2", 0.99, "latency", 32)
    assert text.startswith("no latency measurements in this run")
    rec = recommendation_or_reason(batch_only, "sst2", 0.99, "throughput", 32)
    assert isinstance(rec, Recommendation) and rec.chosen == "minilm-sst2:dynamic-int8"
    assert recommendation_or_reason(records, "sst2", objective="latency") == recommend(records, "sst2")


def test_recommendation_or_reason_without_fp32(records):
    text = recommendation_or_reason(records[records["method"] != "fp32"], "sst2")
    assert text.startswith("no recommendation:") and "fp32" in text


def test_recommendation_ignores_skipped_rows(records):
    skipped = records.iloc[[0]].assign(
        key="k-amx", status="skipped", error="needs AMX", variant="minilm-sst2:amx-int8", method="amx-int8",
        latency_ms_p90=0.1, metric=0.95,
    )  # fmt: skip
    timeout = skipped.assign(key="k-slow", status="timeout", variant="minilm-sst2:slow", method="slow")
    rec = recommend(pd.concat([records, skipped, timeout], ignore_index=True), "sst2")
    assert rec.chosen == "minilm-sst2:dynamic-int8"


# Records with repeated rounds: intervals of every speed figure, paired speed-ups, delta tests.
LEADERS = {"minilm-sst2:bf16": 0.3, "minilm-sst2:dynamic-int8": 0.3}  # wide intervals: the two overlap


def test_old_records_name_the_runner_up_but_give_no_verdict(records):
    rec = recommend(records, "sst2")
    assert rec.runner_up == "minilm-sst2:bf16" and rec.indistinguishable is None and rec.reason == "fastest"
    assert rec.comparison == "" and "distinguishable" not in rec.text
    assert rec.speedup_ci is None and rec.delta_p is None and rec.delta_significant is None


def test_disjoint_intervals_keep_the_fastest_and_say_so():
    rec = recommend(make_records_with_intervals(spread=0.05), "sst2")
    assert rec.chosen == "minilm-sst2:dynamic-int8" and rec.runner_up == "minilm-sst2:bf16"
    assert rec.indistinguishable is False and rec.reason == "fastest"
    assert rec.chosen_cost_ci == pytest.approx((4.75, 5.25))
    assert "(p90 latency 5.0 [4.8, 5.2] ms vs 10.0 [9.5, 10.5] ms)" in rec.text
    assert rec.text.endswith(
        "It is distinguishable from the runner-up minilm-sst2:bf16 in p90 latency: "
        "5.0 [4.8, 5.2] vs 8.0 [7.6, 8.4] ms over 6 rounds."
    )


def test_overlapping_intervals_prefer_the_smaller():
    records = make_records_with_intervals(spread=LEADERS)
    records.loc[records["variant"] == "minilm-sst2:dynamic-int8", "size_mb"] = 60.0  # now bf16 is smaller
    rec = recommend(records, "sst2")
    assert rec.chosen == "minilm-sst2:bf16" and rec.runner_up == "minilm-sst2:dynamic-int8"
    assert rec.indistinguishable is True and rec.reason == "smaller"
    assert rec.speedup == pytest.approx(1.25)
    assert rec.text.startswith("Deploy minilm-sst2:bf16: 1.25x faster than minilm-sst2:fp32")
    assert (
        "minilm-sst2:bf16 and minilm-sst2:dynamic-int8 are indistinguishable in p90 latency "
        "(8.0 [5.6, 10.4] vs 5.0 [3.5, 6.5] ms over 6 rounds); recommending minilm-sst2:bf16, the smaller "
        "(45.0 vs 60.0 MB)." in rec.text
    )
    # bf16's own interval overlaps fp32's: the sentence does not sell that as a clear gain
    assert "Its speed is not distinguishable from minilm-sst2:fp32's (the intervals overlap)." in rec.text


def test_overlapping_intervals_keep_the_fastest_when_it_is_smaller():
    rec = recommend(make_records_with_intervals(spread=LEADERS), "sst2")
    assert (
        rec.chosen == "minilm-sst2:dynamic-int8" and rec.indistinguishable is True and rec.reason == "smaller"
    )
    assert "recommending minilm-sst2:dynamic-int8, the smaller (25.0 vs 45.0 MB)." in rec.text


def test_the_floor_check_says_whether_the_loss_is_significant():
    rec = recommend(make_records_with_intervals(), "sst2")
    assert (
        "99.6% of the baseline's 0.905; its loss of 0.004 against minilm-sst2:fp32 is not significant "
        "(p=0.62, mcnemar-exact)." in rec.text
    )
    assert rec.delta_p == 0.62 and rec.delta_test == "mcnemar-exact" and rec.delta_significant is False
    missed = recommend(make_records_with_intervals(), "sst2", floor=0.95)
    assert missed.chosen is None and "the closest is minilm-sst2:fp32" in missed.text
    static = recommend(make_records_with_intervals(spread=0.01), "sst2", objective="throughput", floor=0.87)
    assert static.chosen == "minilm-sst2:static-int8"
    assert "its loss of 0.025 against minilm-sst2:fp32 is significant (p=0.003, mcnemar-exact)" in static.text


def test_throughput_uses_the_paired_speedup_against_its_own_fp32():
    records = make_records_with_intervals()
    batch32 = (records["variant"] == "minilm-sst2:dynamic-int8") & (records["batch_size"] == 32)
    records.loc[batch32, ["speedup_vs_fp32", "speedup_vs_fp32_ci_low", "speedup_vs_fp32_ci_high"]] = [
        2.04,
        1.95,
        2.21,
    ]
    rec = recommend(records, "sst2", objective="throughput")
    assert rec.speedup == 2.04 and rec.speedup_ci == (1.95, 2.21) and rec.speedup_paired is True
    assert (
        "2.04x [1.95–2.21] the throughput of minilm-sst2:fp32 at batch 32 (210 [200, 220] vs 100" in rec.text
    )
    records.loc[batch32, "speedup_paired"] = False  # fp32 measured in an earlier session
    unpaired = recommend(records, "sst2", objective="throughput")
    assert unpaired.speedup_paired is False
    assert "2.04x [1.95–2.21] (not paired: fp32 from an earlier session) the throughput of" in unpaired.text
    # against another model's fp32 (a teacher) there is no paired figure: the ratio of the medians
    other = recommend(records, "sst2", objective="throughput", baseline="tiny-sst2:fp32", floor=0.9)
    assert other.chosen == "minilm-sst2:dynamic-int8" and other.speedup_ci is None
    assert other.speedup == pytest.approx(210 / 400)


def test_the_baseline_kept_over_a_faster_variant_it_cannot_be_told_from():
    """fp32 more accurate at the same size and an overlapping speed: no "no faster variant" claim."""
    records = make_records_with_intervals(spread={"minilm-sst2:fp32": 0.3, "minilm-sst2:bf16": 0.3})
    records = records[~records["variant"].isin(["minilm-sst2:dynamic-int8", "tiny-sst2:fp32"])]
    records.loc[records["variant"] == "minilm-sst2:bf16", "size_mb"] = 88.0
    rec = recommend(records, "sst2")
    assert rec.chosen == "minilm-sst2:fp32" and rec.runner_up == "minilm-sst2:bf16" and rec.speedup == 1.0
    assert rec.reason == "more accurate" and rec.closest is None
    assert rec.text.startswith(
        "Deploy minilm-sst2:fp32 (the baseline). minilm-sst2:fp32 and minilm-sst2:bf16"
    )
    assert "no faster variant" not in rec.text


# variant -> (batch size its offline search chose, offline throughput, paired speed-up against fp32's offline)
OFFLINE = {
    "minilm-sst2:fp32": (64, 120.0, 1.0),
    "minilm-sst2:bf16": (32, 160.0, 1.33),
    "minilm-sst2:dynamic-int8": (128, 300.0, 2.5),
    "minilm-sst2:static-int8": (16, 330.0, 2.75),  # fast but under the floor
    "tiny-sst2:fp32": (256, 600.0, 5.0),
}


def _with_offline(records: pd.DataFrame, variants=OFFLINE) -> pd.DataFrame:
    from .samples import _row

    rows = [_row(v, "offline", size, throughput=thr, throughput_ci_low=0.95 * thr, throughput_ci_high=1.05 * thr,
                 speedup_vs_fp32=up, speedup_vs_fp32_ci_low=0.97 * up, speedup_vs_fp32_ci_high=1.03 * up,
                 speedup_paired=True) for v, (size, thr, up) in variants.items()]  # fmt: skip
    return pd.concat([records, pd.DataFrame(rows)], ignore_index=True)


def test_batch_inference_is_judged_by_offline_throughput_at_each_variants_size(records):
    from accelbench.analysis.recommend import batch_inference_objective, recommend_batch_inference

    with_offline = _with_offline(records)
    assert batch_inference_objective(with_offline, "sst2") == ("offline_throughput", 32)
    rec = recommend_batch_inference(with_offline, "sst2", fraction=0.99)
    assert rec.objective == "offline_throughput" and rec.chosen == "minilm-sst2:dynamic-int8"
    assert rec.batch_size == 128 and rec.chosen_cost == 300.0
    assert rec.speedup == pytest.approx(2.5) and rec.speedup_ci == pytest.approx(
        (2.425, 2.575)
    )  # the paired one
    assert "the offline throughput of minilm-sst2:fp32 at batch 128 (baseline at 64)" in rec.text


def test_batch_inference_falls_back_to_the_largest_fixed_batch_without_offline_points(records):
    from accelbench.analysis.recommend import batch_inference_objective, recommend_batch_inference

    assert batch_inference_objective(records, "sst2") == ("throughput", 32)
    rec = recommend_batch_inference(records, "sst2")
    assert rec.objective == "throughput" and rec.chosen == "minilm-sst2:dynamic-int8" and rec.batch_size == 32
    bigger = pd.concat([records, _with_offline(records.iloc[0:0]).assign(scenario="batch", batch_size=64)])
    assert batch_inference_objective(bigger, "sst2") == ("throughput", 64)
    # offline points without the fp32 baseline's cannot be compared with it: the fixed batch decides
    no_fp32 = {v: x for v, x in OFFLINE.items() if not v.endswith(":fp32")}
    assert batch_inference_objective(_with_offline(records, no_fp32), "sst2") == ("throughput", 32)


def test_the_offline_objective_draws_a_frontier_and_a_rerun_replaces_its_size(records):
    from accelbench.analysis import available_objectives, frontier, recommend

    assert "offline_throughput" not in available_objectives(records, "sst2")
    with_offline = _with_offline(records)
    assert "offline_throughput" in available_objectives(with_offline, "sst2")
    table = frontier(with_offline, "sst2", "offline_throughput")
    assert list(table["variant"])[0] == "tiny-sst2:fp32" and table["batch_size"].tolist()[0] == 256
    assert table.set_index("variant").loc["minilm-sst2:fp32", "on_frontier"]
    # a forced rerun of fp32 chose 32 this time: its later row counts, not the faster of the two
    rerun = _with_offline(with_offline, {"minilm-sst2:fp32": (32, 110.0, 1.0)})
    rec = recommend(rerun, "sst2", objective="offline_throughput", fraction=1.0)
    assert rec.baseline_cost == 110.0
