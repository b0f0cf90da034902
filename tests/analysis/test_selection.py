"""The rows the analysis reads: current ok rows per task; skipped and timed-out rows ignored, errors raised."""

from __future__ import annotations

import pandas as pd
import pytest

from accelbench.analysis.selection import error_mask, not_run_mask, ok_mask, task_records
from accelbench.exceptions import DataError


def _status_row(key: str, status: str, variant: str = "m:x") -> dict:
    return {"key": key, "status": status, "error": f"{status}: reason", "task": "t", "variant": variant}


def test_masks_split_ok_errors_and_not_run():
    frame = pd.DataFrame(
        [_status_row(k, s) for k, s in (("a", "ok"), ("b", "error"), ("c", "skipped"), ("d", "timeout"))]
    )
    assert ok_mask(frame).tolist() == [True, False, False, False]
    assert error_mask(frame).tolist() == [False, True, False, False]
    assert not_run_mask(frame).tolist() == [False, False, True, True]
    no_status = frame.drop(columns="status")
    assert ok_mask(no_status).all() and not error_mask(no_status).any()


def test_skipped_rows_are_ignored(records):
    skipped = pd.DataFrame([_status_row("k-amx", "skipped", "minilm-sst2:amx") | {"task": "sst2"}])
    rows = task_records(pd.concat([records, skipped], ignore_index=True), "sst2")
    assert "minilm-sst2:amx" not in set(rows["variant"]) and (rows["status"] == "ok").all()


def test_only_skipped_rows_raise_a_clear_error():
    frame = pd.DataFrame([_status_row("a", "skipped"), _status_row("b", "timeout", "m:y")])
    with pytest.raises(DataError, match="skipped on this machine"):
        task_records(frame, "t")


def test_only_errors_still_raise():
    frame = pd.DataFrame([_status_row("a", "error"), _status_row("b", "skipped", "m:y")])
    with pytest.raises(DataError, match="are errors") as info:
        task_records(frame, "t")
    assert "1 more skipped" in info.value.message


def test_the_baseline_is_an_original_model_s_fp32_even_when_a_student_scores_higher():
    import pandas as pd

    from accelbench.analysis.selection import baseline_row

    rows = pd.DataFrame([
        {"variant": "big:fp32", "method": "fp32", "metric": 0.877, "teacher": None},
        {"variant": "pruned:fp32", "method": "fp32", "metric": 0.880, "teacher": "big"},
        {"variant": "pruned:int8", "method": "int8", "metric": 0.890, "teacher": "big"},
    ])  # fmt: skip
    assert baseline_row(rows)["variant"] == "big:fp32"
    assert baseline_row(rows[rows["teacher"].notna()])["variant"] == "pruned:fp32"  # students only: the best
    assert baseline_row(rows.drop(columns="teacher"))["variant"] == "pruned:fp32"  # older records: the best
    assert baseline_row(rows[rows["method"] != "fp32"]) is None


def test_with_cpu_and_gpu_variants_the_baseline_is_the_cpu_fp32():
    import pandas as pd

    from accelbench.analysis.selection import baseline_row

    rows = pd.DataFrame([
        {"variant": "m:fp32 (cuda)", "method": "fp32", "metric": 0.8785, "device": "cuda"},
        {"variant": "m:fp32", "method": "fp32", "metric": 0.8773, "device": "cpu"},
        {"variant": "m:bf16 (cuda)", "method": "bf16", "metric": 0.879, "device": "cuda"},
    ])  # fmt: skip
    assert baseline_row(rows)["variant"] == "m:fp32"
    assert baseline_row(rows.iloc[[0, 2]])["variant"] == "m:fp32 (cuda)"  # a GPU-only run: its own fp32
    older = rows.assign(device=[None, None, None])  # records from before the device field: as before
    assert baseline_row(older)["variant"] == "m:fp32 (cuda)"
