"""The recommendation: the fastest variant that keeps enough of the fp32 baseline's quality."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from accelbench.analysis import OBJECTIVES, Recommendation, recommend, recommendation_or_reason
from accelbench.exceptions import ConfigError, DataError, UnknownNameError


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
