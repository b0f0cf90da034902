"""Crosscheck: which records it re-times, its arithmetic, its bad-input errors, and a real run in child processes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from accelbench.cli import main
from accelbench.crosscheck import (
    CROSSCHECK_FILE,
    TOP_VARIANTS,
    compare,
    crosscheck_table,
    length_sorted_batches,
    paired_speedup,
    read_run_records,
    run_crosscheck,
    select_cases,
)
from accelbench.exceptions import ConfigError
from accelbench.records import append_records

from .conftest import QUICK


def _row(
    model: str, method: str, throughput: float, batch_size: int = 32, task: str = "sst2", **extra
) -> dict:
    return {
        "run": "r", "key": f"{task}-{model}-{method}", "status": "ok", "task": task, "model": model,
        "method": method, "method_name": method.split("[")[0], "variant": f"{model}:{method}",
        "model_path": f"/ckpt/{model}", "model_key": f"key-{model}", "scenario": "batch",
        "batch_size": batch_size, "padding": "dynamic", "throughput": throughput,
        "throughput_ci_low": throughput * 0.9, "throughput_ci_high": throughput * 1.1,
        "setting_max_length": 96, "setting_max_new_tokens": 16, "setting_num_beams": 2, "setting_n_eval": 40,
        "threads": 2, "timestamp": "2025-01-01T00:00:00", **extra,
    }  # fmt: skip


def _records() -> pd.DataFrame:
    rows = [
        _row("teacher", "fp32", 100.0),
        _row(
            "teacher",
            "bf16",
            150.0,
            speedup_vs_fp32=1.48,
            speedup_vs_fp32_ci_low=1.4,
            speedup_vs_fp32_ci_high=1.6,
        ),
        _row("teacher", "dynamic-int8", 200.0),  # no speedup_vs_fp32: the throughput ratio is used
        _row(
            "teacher",
            "ort-static-int8[calibration=entropy]",
            180.0,
            method_options='{"calibration": "entropy"}',
        ),
        _row("teacher", "slow-int4", 50.0),
        _row("student", "fp32", 190.0),
        _row("student", "pt2e-int8", 500.0, speedup_vs_fp32=2.7),
        _row("teacher", "fp32", 30.0, batch_size=8),
        _row("teacher", "bf16", 999.0, padding="max_length"),  # another padding: not the dynamic point
        {**_row("teacher", "broken", 9999.0), "status": "error"},
        _row("t5", "fp32", 10.0, task="multi30k"),
        _row("t5", "ct2-int8", 40.0, task="multi30k", speedup_vs_fp32=3.9),
    ]
    return pd.DataFrame(rows)


def test_paired_speedup_and_agreement_arithmetic() -> None:
    assert paired_speedup([200, 210, 190], [100, 100, 100]) == (2.0, 1.9, 2.1)
    assert paired_speedup([300, 100], [100, 100]) == (2.0, 1.0, 3.0)  # median of the per-round ratios
    assert paired_speedup([100, 50], [0, 50]) == (1.0, 1.0, 1.0)  # a round without a baseline is no ratio
    with pytest.raises(ValueError):
        paired_speedup([], [])
    diff, agree = compare(2.0, 2.1)
    assert diff == pytest.approx(0.05) and agree is True
    diff, agree = compare(2.0, 1.7)
    assert diff == pytest.approx(-0.15) and agree is False
    assert compare(2.0, 2.2)[1] is True and compare(2.0, 1.8)[1] is True  # exactly 10% agrees
    assert compare(2.0, 2.21)[1] is False
    assert compare(None, 2.0) == (None, None) and compare(2.0, None) == (None, None)
    assert compare(2.0, 2.3, tolerance=0.2)[1] is True


def test_length_sorted_batches() -> None:
    batches = length_sorted_batches(["ccc", "a", "bbbb", "dd", "e"], 2)
    assert batches == [["a", "e"], ["dd", "ccc"], ["bbbb"]]
    assert sum(map(len, batches)) == 5


def test_default_selection_takes_the_fastest_per_task() -> None:
    cases = select_cases(_records(), batch_size=32)
    by_task: dict[str, list[str]] = {}
    for c in cases:
        by_task.setdefault(c.variant.task, []).append(c.variant.variant)
    # sst2: the 3 fastest non-fp32 ok rows at batch 32, dynamic padding (the error row and max_length row left out)
    assert by_task["sst2"] == [
        "student:pt2e-int8",
        "teacher:dynamic-int8",
        "teacher:ort-static-int8[calibration=entropy]",
    ]
    assert len(by_task["sst2"]) == TOP_VARIANTS
    assert by_task["multi30k"] == ["t5:ct2-int8"]
    for c in cases:  # each against its own model's fp32, with the same settings (paired)
        assert c.baseline.method == "fp32" and c.baseline.model == c.variant.model
        assert c.baseline.batch_size == c.variant.batch_size == 32


def test_record_speedups_and_jobs_from_records() -> None:
    records = _records()
    asked = ["teacher:bf16", "teacher:dynamic-int8", "student:pt2e-int8@teacher",
             "teacher:ort-static-int8[calibration=entropy]"]  # fmt: skip
    cases = {c.variant.variant: c for c in select_cases(records, 32, variants=asked)}
    bf16 = cases["teacher:bf16"]
    assert (bf16.record, bf16.record_ci_low, bf16.record_ci_high) == (1.48, 1.4, 1.6)
    assert bf16.record_source == "speedup_vs_fp32"
    int8 = cases["teacher:dynamic-int8"]  # no speedup_vs_fp32 field: throughput ratio, conservative interval
    assert int8.record == pytest.approx(2.0) and int8.record_source == "throughput ratio"
    assert int8.record_ci_low == pytest.approx(180 / 110) and int8.record_ci_high == pytest.approx(220 / 90)
    student = cases["student:pt2e-int8"]  # against the teacher's fp32, not its own speedup_vs_fp32 (2.7)
    assert student.record == pytest.approx(5.0) and student.baseline.variant == "teacher:fp32"
    assert student.baseline.model_path == "/ckpt/teacher" and student.variant.model_path == "/ckpt/student"
    job = cases["teacher:ort-static-int8[calibration=entropy]"].variant
    assert job.method_name == "ort-static-int8" and json.loads(job.method_options) == {
        "calibration": "entropy"
    }
    assert (job.max_length, job.max_new_tokens, job.num_beams, job.n_eval, job.threads) == (96, 16, 2, 40, 2)
    # a run recorded before speedup_vs_fp32 existed
    old = records.drop(columns=["speedup_vs_fp32", "speedup_vs_fp32_ci_low", "speedup_vs_fp32_ci_high"])
    (case,) = select_cases(old, 32, variants=["teacher:bf16"])
    assert case.record == pytest.approx(1.5) and case.record_source == "throughput ratio"
    # no fp32 record at all: the speed-up is re-timed, but there is no record figure to compare with
    (case,) = select_cases(records[records["method"] != "fp32"], 32, variants=["teacher:dynamic-int8"])
    assert case.record is None and case.baseline.variant == "teacher:fp32"


def test_bad_input_names_the_fix(tmp_path: Path) -> None:
    records = _records()
    with pytest.raises(ConfigError, match="no batch-inference records at batch size 16") as e:
        select_cases(records, 16)
    assert "8, 32" in e.value.fix
    with pytest.raises(ConfigError, match="'teacher:int3' has no ok batch record") as e:
        select_cases(records, 32, variants=["teacher:int3"])
    assert "teacher:bf16" in e.value.fix
    with pytest.raises(ConfigError, match="'teacher:broken'"):  # an error row is not a measured variant
        select_cases(records, 32, variants=["teacher:broken"])
    with pytest.raises(ConfigError, match="is the fp32"):
        select_cases(records, 32, variants=["teacher:fp32"])
    with pytest.raises(ConfigError, match="no record of model 'nobody'") as e:
        select_cases(records, 32, variants=["student:pt2e-int8@nobody"])
    assert "student, teacher" in e.value.fix
    with pytest.raises(ConfigError, match="task 'qqp' is not in this run") as e:
        select_cases(records, 32, task="qqp")
    assert "multi30k, sst2" in e.value.fix
    assert len(select_cases(records, 32, task="multi30k")) == 1
    with pytest.raises(ConfigError, match="no records in .*no such folder"):
        read_run_records(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no records in"):
        read_run_records(tmp_path / "empty")
    with pytest.raises(ConfigError, match="passes must be a positive integer"):
        run_crosscheck(tmp_path / "absent", passes=0)
    with pytest.raises(ConfigError, match="rounds must be a positive integer"):
        run_crosscheck(tmp_path / "absent", rounds=0)
    assert not (tmp_path / "absent").exists()


def test_cli_bad_input_exits_2_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    append_records(tmp_path / "run", _records().to_dict("records"))
    assert main(["crosscheck", "--run", str(tmp_path / "nowhere")]) == 2
    assert "fix: give the folder of a finished run" in capsys.readouterr().err
    assert main(["crosscheck", "--run", str(tmp_path / "run"), "--variants", "teacher:int3"]) == 2
    err = capsys.readouterr().err
    assert "error: variant 'teacher:int3'" in err and "fix: use model:method" in err
    assert not (tmp_path / "run" / CROSSCHECK_FILE).exists()


def test_table_shows_both_figures_side_by_side() -> None:
    rows = [
        {"task": "sst2", "variant": "m:bf16", "baseline": "m:fp32", "batch_size": 32, "record_speedup": 1.5,
         "record_ci_low": 1.4, "record_ci_high": 1.6, "crosscheck_speedup": 1.56, "crosscheck_min": 1.5,
         "crosscheck_max": 1.6, "crosscheck_ratios": [1.5, 1.56, 1.6], "relative_difference": 0.04, "agree": True,
         "error": None},
        {"task": "sst2", "variant": "m:int8", "baseline": "m:fp32", "batch_size": 32, "record_speedup": 2.0,
         "record_ci_low": None, "record_ci_high": None, "crosscheck_speedup": None, "crosscheck_min": None,
         "crosscheck_max": None, "crosscheck_ratios": [], "relative_difference": None, "agree": None,
         "error": "the child exited (code 1) before READY"},
    ]  # fmt: skip
    lines = crosscheck_table(rows).splitlines()
    assert "record speed-up" in lines[0] and "crosscheck speed-up" in lines[0] and "within 10%" in lines[0]
    assert (
        lines[2] == "| sst2 | m:bf16 | m:fp32 | 32 | 1.50x [1.40, 1.60] | 1.56x (1.50–1.60) | +4.0% | yes |"
    )
    assert lines[3].startswith("| sst2 | m:int8 | m:fp32 | 32 | 2.00x | – | – | error: the child exited")


@pytest.mark.slow  # starts child processes that import torch and load models
def test_a_child_that_fails_is_reported_not_raised(tmp_path: Path) -> None:
    run = tmp_path / "run"
    append_records(run, [_row("gone", "fp32", 100.0), _row("gone", "dynamic-int8", 150.0)])
    report = run_crosscheck(run, batch_size=32, passes=1, rounds=1, progress=False)
    (row,) = report["rows"]
    assert row["variant"] == "gone:dynamic-int8" and row["record_speedup"] == pytest.approx(1.5)
    assert row["crosscheck_speedup"] is None and row["agree"] is None
    assert "/ckpt/gone" in row["error"] and "is gone" in row["error"]
    assert json.loads((run / CROSSCHECK_FILE).read_text())["rows"][0]["error"] == row["error"]


@pytest.mark.slow  # measures two variants end to end, then re-times them in child processes
def test_real_crosscheck_of_a_tiny_run(tiny_bert, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from accelbench.experiment import run_experiment

    run = tmp_path / "run"
    run_experiment("sst2", str(tiny_bert), ["fp32", "dynamic-int8"], run, {**QUICK, "batch_sizes": [4]},
                   progress=False)  # fmt: skip
    record = read_run_records(run)
    int8 = record[(record["method"] == "dynamic-int8") & (record["batch_size"] == 4)].iloc[0]

    assert (
        main(["crosscheck", "--run", str(run), "--batch-size", "4", "--passes", "1", "--rounds", "2", "-q"])
        == 0
    )
    out = capsys.readouterr().out
    report = json.loads((run / CROSSCHECK_FILE).read_text())
    (row,) = report["rows"]
    assert row["variant"] == int8["variant"] and row["baseline"] == f"{int8['model']}:fp32"
    assert row["error"] is None
    assert row["crosscheck_speedup"] > 0 and len(row["crosscheck_ratios"]) == 2
    assert row["crosscheck_min"] <= row["crosscheck_speedup"] <= row["crosscheck_max"]
    v, b = row["variant_samples_per_s"], row["baseline_samples_per_s"]
    assert all(x > 0 for x in v + b) and row["crosscheck_ratios"][0] == pytest.approx(v[0] / b[0], rel=1e-3)
    expected = int8["speedup_vs_fp32"] if "speedup_vs_fp32" in record.columns else None
    if expected is not None:
        assert row["record_speedup"] == pytest.approx(expected)
    assert row["agree"] == (abs(row["crosscheck_speedup"] / row["record_speedup"] - 1) <= 0.10)
    assert (report["batch_size"], report["passes"], report["rounds"]) == (4, 1, 2)
    assert int8["variant"] in out and "agree within 10%" in out
