"""Where the time went: per-model sums of the variants' timings, time-outs included, nothing for old records."""

from __future__ import annotations

import pytest

from accelbench.analysis import time_spent

from .samples import make_records_with_intervals


def test_time_spent_sums_each_variant_once_per_model():
    records = make_records_with_intervals()
    records.loc[records["variant"] == "minilm-sst2:bf16", "time_speed_s"] = 90.0  # on each of its rows
    gptq = records["variant"] == "minilm-sst2:gptq-int4"
    records.loc[gptq, ["status", "elapsed_s"]] = ["timeout", 612.0]
    table = time_spent(records, "sst2").set_index("model")
    assert list(table.columns) == ["variants", "apply_s", "quality_s", "speed_s", "total_s", "timed_out"]
    assert table.loc["minilm-sst2"].to_dict() == pytest.approx(
        {
            "variants": 5,
            "apply_s": 10.0,
            "quality_s": 50.0,
            "speed_s": 210.0,
            "total_s": 792.0,
            "timed_out": 1,
        }
    )
    assert table.loc["all", "variants"] == 6 and table.loc["all", "total_s"] == 837.0


def test_total_falls_back_to_the_parts_and_old_records_give_nothing(records):
    assert time_spent(records, "sst2").empty
    newer = make_records_with_intervals().drop(columns="elapsed_s")
    table = time_spent(newer, "sst2").set_index("model")
    assert table.loc["tiny-sst2", "total_s"] == 42.0 and "all" in table.index
