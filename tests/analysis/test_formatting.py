"""How significance, intervals and p-values are written: short, and empty where nothing was tested."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from accelbench.analysis.formatting import (
    delta_label,
    delta_significance,
    format_interval,
    format_p,
    intervals_overlap,
    row_float,
)


@pytest.mark.parametrize(
    ("row", "label"),
    [
        (
            {"metric_name": "bleu", "metric": 25.02, "metric_delta": 0.24, "metric_delta_p": 0.41},
            "+0.24 BLEU n.s.",
        ),
        (
            {"metric_name": "accuracy", "metric": 0.88, "metric_delta": -0.012, "metric_delta_p": 0.003},
            "-1.2 pts*",
        ),
        ({"metric_name": "accuracy", "metric": 0.88, "metric_delta": -0.012}, ""),  # no test recorded
        ({"metric_name": "accuracy", "metric": 0.88, "metric_delta": -0.012, "metric_delta_p": np.nan}, ""),
    ],
)
def test_delta_label(row, label):
    assert delta_label(row) == label
    assert delta_label(pd.Series(row)) == label


def test_the_recorded_verdict_wins_over_the_p_value():
    row = {"metric_delta": 0.1, "metric_delta_p": 0.04, "metric_delta_significant": False}
    assert delta_significance(row) is False
    assert delta_significance({**row, "metric_delta_significant": np.bool_(True)}) is True
    assert delta_significance({**row, "metric_delta_significant": None}) is True  # p < 0.05
    assert delta_significance({"metric_delta": 0.1}) is None


def test_small_formats():
    assert format_p(0.6234) == "p=0.62" and format_p(0.0312) == "p=0.031" and format_p(2e-5) == "p<0.001"
    assert format_interval(290.0, 330.4, "{:.0f}") == "[290, 330]"
    assert format_interval(math.nan, 3.0) == ""
    assert intervals_overlap((1, 2), (2, 3)) is True and intervals_overlap((1, 2), (2.1, 3)) is False
    assert intervals_overlap(None, (1, 2)) is None
    assert math.isnan(row_float({"a": "text"}, "a")) and math.isnan(row_float({}, "a"))
    assert row_float(pd.Series({"a": 3}), "a") == 3.0
