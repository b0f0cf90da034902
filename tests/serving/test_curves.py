"""Service curves: seeded batches, the record of a point, a real measurement on a tiny model, co-location."""

from __future__ import annotations

import argparse

import pytest

from accelbench.exceptions import ConfigError
from accelbench.serving.curve_records import CURVES_FILE, read_curves
from accelbench.serving.curves import (
    CurveSettings,
    _overlap,
    add_subcommand,
    draw_batch,
    measure_curves,
    point_record,
)
from accelbench.serving.planner import PlanOptions, plan
from accelbench.serving.prices import Machine
from accelbench.serving.traffic import Traffic

QUICK = {"budget_s": 0.05, "min_rounds": 3, "max_rounds": 20}


def test_batches_are_drawn_the_same_way_every_time():
    pool = [f"text {i}" for i in range(50)]
    assert draw_batch(pool, 8, 3) == draw_batch(pool, 8, 3)
    assert draw_batch(pool, 8, 3) != draw_batch(pool, 8, 4) and len(draw_batch(pool, 8, 3)) == 8
    assert draw_batch(pool, 8, 3, seed=1) != draw_batch(pool, 8, 3)


def test_point_record_and_thinned_samples():
    times = [float(i) for i in range(1, 1001)]
    r = point_record(times, batch=4, threads=1, colocated=2)
    assert (
        r["service_ms_p50"] == pytest.approx(500.5)
        and r["service_ms_p50_ci_low"] < 500.5 < r["service_ms_p50_ci_high"]
    )
    assert r["service_ms_p90"] == pytest.approx(900.1) and r["n_samples"] == 1000
    assert (
        len(r["service_ms_samples"]) == 200
        and r["service_ms_samples"][0] == 1.0
        and r["service_ms_samples"][-1] == 1000.0
    )


def test_overlap_keeps_only_batches_timed_while_all_replicas_ran():
    a = [(1, 0.0, 0.010), (1, 0.010, 0.020), (1, 0.020, 0.030)]
    b = [(1, 0.0, 0.012), (1, 0.012, 0.025)]  # stopped at 0.025: a's last batch ran alone
    assert sorted(_overlap([a, b])[1]) == pytest.approx([10.0, 10.0, 12.0, 13.0])


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="--batch-sizes"):
        CurveSettings(batch_sizes=[0, 2])
    with pytest.raises(ConfigError, match="--colocated"):
        CurveSettings(colocated=[])
    with pytest.raises(ConfigError, match="budget"):
        CurveSettings(budget_s=0)


def test_real_curves_of_a_tiny_model_feed_the_planner(tiny_bert, tmp_path):
    s = CurveSettings(batch_sizes=(1, 4), threads=(1,), colocated=(1,), **QUICK)
    records = measure_curves("sst2", str(tiny_bert), ["fp32"], tmp_path, s)
    assert len(records) == 2
    df = read_curves(tmp_path)
    assert (tmp_path / CURVES_FILE).is_file() and len(df) == 2
    row = df.set_index("batch_size").loc[4]
    assert row["method"] == "fp32" and row["threads"] == 1 and row["colocated"] == 1
    assert row["n_samples"] >= 3 and len(row["service_ms_samples"]) == row["n_samples"]
    assert 0 < row["service_ms_p50"] <= row["service_ms_p90"] and row["env_cpu_model"] is not None
    assert row["replica_rss_mb"] > 0 and row["key"]
    machine = Machine("box", cores=2, memory_gb=8, price_per_hour=0.1)
    out = plan(df, Traffic((20.0,)), [machine],
               PlanOptions(p99_ms=1000, search_requests=500, final_requests=1000, waits_ms=(0.0,)))  # fmt: skip
    assert out.iloc[0]["feasible"] and out.iloc[0]["max_batch_size"] in (1, 4)


def test_curves_command_parses(tmp_path):
    parser = argparse.ArgumentParser()
    add_subcommand(parser.add_subparsers())
    args = parser.parse_args(["curves", "--task", "sst2", "--model", "m", "--methods", "fp32", "dynamic-int8",
                              "--batch-sizes", "1", "8", "--colocated", "1", "2", "--run", str(tmp_path)])  # fmt: skip
    assert (
        args.methods == ["fp32", "dynamic-int8"] and args.batch_sizes == [1, 8] and args.colocated == [1, 2]
    )
    assert args.fn.__name__ == "cmd_curves"


@pytest.mark.slow
def test_colocated_replicas_run_as_processes_at_the_same_time(tiny_bert, tmp_path):
    s = CurveSettings(
        batch_sizes=(1, 8), threads=(1,), colocated=(2,), budget_s=0.3, min_rounds=3, max_rounds=50
    )
    records = measure_curves("sst2", str(tiny_bert), ["fp32"], tmp_path, s)
    assert {r["colocated"] for r in records} == {2}
    assert all(r["n_samples"] >= 3 for r in records)  # pooled over both replicas, overlap only
