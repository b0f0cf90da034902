"""Tables for people: named columns with units, rounded cells with their intervals, no constant or raw columns,
both deltas named where a teacher and its students share a run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from accelbench.analysis import onnx_tables, tables, teacher_tables

from .samples import make_crowded_records, make_records, make_records_with_intervals

RAW_NAMES = {"metric", "metric_ci_low", "metric_ci_high", "latency_ms_p90", "batch_size", "cost", "on_frontier",
             "metric_name", "throughput", "size_mb", "padding", "scenario"}  # fmt: skip


def _no_raw_names(table: pd.DataFrame) -> None:
    assert not RAW_NAMES & set(table.columns) and table.index.name in (None, "variant")
    cells = table.to_numpy().ravel().tolist()
    assert not [c for c in cells if str(c) in ("nan", "None", "NaN", "<NA>")]


def test_quality_table_names_the_metric_and_both_deltas():
    table = tables.quality_table(make_records_with_intervals())
    assert list(table.columns) == [
        "accuracy [95% CI]", "Δ vs own fp32", "Δ vs minilm-sst2:fp32", "agreement with own fp32", "size (MB)",
    ]  # fmt: skip
    row = table.loc["minilm-sst2:static-int8"]
    assert row["accuracy [95% CI]"] == "0.880 [0.860, 0.900]"  # 3 decimals for accuracy
    assert row["Δ vs own fp32"] == "-0.025* [-0.035, -0.015]"
    assert row["Δ vs minilm-sst2:fp32"] == "-0.025"
    assert table.loc["tiny-sst2:fp32", "Δ vs minilm-sst2:fp32"] == "-0.055"  # a smaller model vs the baseline
    assert table.loc["tiny-sst2:fp32", "Δ vs own fp32"] == "–"  # an fp32 is not compared with itself
    assert table.loc["minilm-sst2:fp32", "size (MB)"] == "90.0"
    _no_raw_names(table)


def test_one_model_has_one_delta_and_teachers_are_named():
    one = make_records_with_intervals()
    one = one[one["model"] != "tiny-sst2"]
    assert not [c for c in tables.quality_table(one).columns if c.startswith("Δ vs minilm")]
    crowded = tables.quality_table(make_crowded_records())
    assert "Δ vs teacher (teacher-sst2:fp32)" in crowded.columns and "Δ vs own fp32" in crowded.columns


def test_bleu_gets_two_decimals():
    records = make_records_with_intervals().assign(metric_name="bleu")
    for column in ("metric", "metric_ci_low", "metric_ci_high"):
        records[column] = records[column] * 40
    table = tables.quality_table(records)
    assert "BLEU [95% CI]" in table.columns
    assert table.loc["minilm-sst2:fp32", "BLEU [95% CI]"] == "36.20 [35.40, 36.96]"


def test_constant_and_empty_columns_are_dropped():
    frame = pd.DataFrame({"variant": ["a", "b"], "batch size": [32, 32], "empty": ["–", None], "x": [1, 2]})
    assert list(tables.drop_uninformative(frame).columns) == ["variant", "x"]
    one_row = pd.DataFrame({"variant": ["a"], "batch size": [32], "empty": [None]})
    assert list(tables.drop_uninformative(one_row).columns) == ["variant", "batch size"]  # one row: all kept
    # every variant measured at the same size: the size column tells nothing and goes
    records = make_records_with_intervals().assign(size_mb=50.0)
    assert "size (MB)" not in tables.quality_table(records).columns


def test_latency_table_rounds_ms_and_shows_no_batch_size():
    table = tables.latency_table(make_records_with_intervals())
    assert list(table.columns) == [
        "p50 latency (ms)",
        "p90 latency (ms)",
        "p99 latency (ms)",
        "speed-up vs own fp32",
    ]
    assert table.loc["minilm-sst2:dynamic-int8", "p90 latency (ms)"] == "5.0 [4.8–5.2]"
    assert table.loc["minilm-sst2:fp32", "speed-up vs own fp32"] == "–"
    _no_raw_names(table)


def test_throughput_table_has_a_column_per_batch_size_with_units():
    table = tables.throughput_table(make_records_with_intervals())
    assert list(table.columns) == [
        "throughput @8 (samples/s)", "throughput @16 (samples/s)", "throughput @32 (samples/s)",
    ]  # fmt: skip
    assert table.loc["minilm-sst2:dynamic-int8", "throughput @32 (samples/s)"] == "210 [200–220]"
    assert table.loc["minilm-sst2:fp32", "throughput @8 (samples/s)"] == "60.0 [57.0–63.0]"
    assert table.loc["minilm-sst2:dynamic-int8", "throughput @8 (samples/s)"] == "–"
    _no_raw_names(table)


def test_both_paddings_are_rows_not_a_constant_column():
    records = make_records_with_intervals()
    fixed = records[records["scenario"] == "batch"].assign(padding="max_length", throughput=50.0)
    table = tables.throughput_table(pd.concat([records, fixed], ignore_index=True))
    assert "minilm-sst2:fp32 (max_length padding)" in table.index
    assert "minilm-sst2:fp32 (dynamic padding)" in table.index


def test_speedup_table_paired_or_the_ratio_of_throughputs():
    paired = tables.speedup_table(make_records_with_intervals())
    assert paired.loc["minilm-sst2:dynamic-int8", "speed-up vs own fp32 @32"] == "2.10x [2.05–2.15]"
    assert "minilm-sst2:fp32" not in paired.index  # an fp32 against itself says nothing
    old = tables.speedup_table(make_records())
    assert old.loc["minilm-sst2:dynamic-int8", "speed-up vs own fp32 @32"] == "2.10x"


def test_frontier_people_table_replaces_the_raw_frontier():
    table = tables.frontier_people_table(make_records_with_intervals(), "sst2", "throughput")
    assert list(table.columns) == [
        "accuracy [95% CI]", "Δ vs own fp32", "throughput @32 (samples/s)", "speed-up vs minilm-sst2:fp32",
        "size (MB)", "on frontier",
    ]  # fmt: skip
    assert table.loc["minilm-sst2:static-int8", "throughput @32 (samples/s)"] == "220 [209–231] (batch 16)"
    assert table.loc["minilm-sst2:dynamic-int8", "on frontier"] == "✓"
    _no_raw_names(table)
    latency = tables.frontier_people_table(make_records_with_intervals(), "sst2", "latency")
    assert (
        "p90 latency (ms)" in latency.columns and latency.loc["minilm-sst2:static-int8", "on frontier"] == ""
    )


def test_busy_points_carry_a_warning_in_the_tables():
    records = make_records_with_intervals()
    busy = records["variant"] == "minilm-sst2:bf16"
    records["busy"], records["busy_other_cpu_share"] = busy, busy * 0.5
    latency = tables.latency_table(records)
    assert latency.loc["minilm-sst2:bf16", "busy machine"] == "⚠ others took 50% of the CPU"
    assert latency.loc["minilm-sst2:fp32", "busy machine"] == ""
    assert (
        tables.throughput_table(records).loc["minilm-sst2:bf16", "throughput @32 (samples/s)"].endswith("⚠")
    )
    assert "busy machine" not in tables.latency_table(make_records_with_intervals()).columns


def test_teacher_tables_name_both_deltas_and_the_ratios():
    records = make_crowded_records()
    quality = teacher_tables.teacher_table(records, "teacher-sst2")
    assert {"role", "Δ vs own fp32", "Δ vs teacher (teacher-sst2:fp32)", "% of teacher's accuracy"} <= set(
        quality.columns
    )
    assert quality.loc["teacher-sst2-l3:fp32", "Δ vs teacher (teacher-sst2:fp32)"] == "-0.025"
    assert quality.loc["teacher-sst2-l3:fp32", "Δ vs own fp32"] == "–"
    assert quality.loc["teacher-sst2-l3:fp32", "% of teacher's accuracy"] == "97.2%"
    speed = teacher_tables.teacher_speed_table(records, "teacher-sst2")
    assert speed.loc["teacher-sst2:fp32", "throughput vs teacher fp32"] == "1.00x"
    assert speed.loc["teacher-sst2-l3:fp32", "throughput vs teacher fp32"] == "1.80x"
    assert speed.loc["teacher-sst2-l3:fp32", "smaller than teacher fp32"] == "1.80x"
    assert len(speed.columns) <= 7
    _no_raw_names(quality)
    _no_raw_names(speed)


@pytest.fixture
def onnx_records() -> pd.DataFrame:
    details = {"optimizer": {"fusions": {"Attention": 6, "SkipLayerNormalization": 12, "Gelu": 0}},
               "fusion_check": {"unfused_ms": 12.345, "fused_ms": 9.87, "speedup": 1.2507, "fused_not_slower": True,
                                "max_abs_diff": 3.1e-6}}  # fmt: skip
    plain = {"optimizer": {"fusions": {}, "note": "no attention heads found"}}
    return pd.DataFrame(
        [
            {
                "status": "ok",
                "variant": "m:ort-fp32",
                "runtime": "onnxruntime",
                "variant_details": json.dumps(details),
            },
            {
                "status": "ok",
                "variant": "m:ort-int8",
                "runtime": "onnxruntime",
                "variant_details": json.dumps(plain),
            },
            {"status": "ok", "variant": "m:fp32", "runtime": "pytorch", "variant_details": None},
        ]
    )


def test_fusion_tables_have_no_truncated_text_or_missing_values(onnx_records):
    counts = onnx_tables.fusion_counts_table(onnx_records)
    assert list(counts.columns) == ["m:ort-fp32", "m:ort-int8"]
    assert counts.loc["Attention", "m:ort-fp32"] == "6" and counts.loc["Attention", "m:ort-int8"] == "–"
    assert counts.loc["nothing fused", "m:ort-int8"] == "none" and "Gelu" not in counts.index
    assert (
        onnx_tables.fusion_notes(onnx_records) == "m:ort-int8: no attention heads found"
    )  # long text: not a cell
    check = onnx_tables.fusion_check_table(onnx_records)
    assert check.loc["m:ort-fp32"].to_dict() == {
        "unfused (ms)": "12.3", "fused (ms)": "9.9", "fused speed-up": "1.25x", "fused not slower": "yes",
        "largest output difference": "3.1e-06",
    }  # fmt: skip
    _no_raw_names(check)
