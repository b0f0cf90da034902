"""Busy points: which rows, and the warning line that names them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from accelbench.analysis.busy import busy_mask, busy_note, busy_warning


def _rows(flags, shares=None, threshold=None) -> pd.DataFrame:
    rows = pd.DataFrame({"variant": [f"m:v{i}" for i in range(len(flags))], "scenario": "batch",
                         "batch_size": [1, 8, 32, 32][: len(flags)], "padding": "dynamic", "busy": flags})  # fmt: skip
    if shares is not None:
        rows["busy_other_cpu_share"] = shares
    if threshold is not None:
        rows["busy_threshold"] = threshold
    return rows


def test_busy_mask_reads_flags_of_any_type_and_missing_ones_as_quiet():
    rows = _rows([True, np.bool_(True), None, np.nan])
    assert busy_mask(rows).tolist() == [True, True, False, False]
    assert not busy_mask(pd.DataFrame({"variant": ["a"]})).any()  # older records: no field


def test_warning_names_the_points_and_the_share():
    rows = _rows([False, True, False], shares=[0.01, 0.62, 0.02], threshold=0.3)
    text = busy_warning(rows)
    assert text.startswith("⚠ 1 of 3 speed points were measured on a busy machine")
    assert "over 30% of the CPU, up to 62%): m:v1 (batch 8)." in text
    assert busy_warning(_rows([False, False])) == ""
    assert "25%" in busy_note(_rows([True]))  # the benchmark's threshold when records carry none


def test_many_busy_points_are_counted_not_all_named():
    rows = pd.concat([_rows([True])] * 9, ignore_index=True).assign(variant=[f"m:v{i}" for i in range(9)])
    assert "m:v5 (batch 1) and 3 more" in busy_warning(rows)
