"""Pareto mask, the current rows of a task and the frontier table on small hand-made records."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from accelbench.analysis import (
    available_objectives,
    frontier,
    objective_rows_or_none,
    pareto_mask,
    task_records,
)
from accelbench.exceptions import ConfigError, DataError, UnknownNameError
from accelbench.records import current_records

from .samples import VARIANTS

# ------------------------------------------------------------------------------------------------
# pareto_mask
# ------------------------------------------------------------------------------------------------


def test_mask_excludes_dominated_point_when_minimizing():
    points = [[1, 5], [2, 2], [3, 3], [5, 1]]
    assert pareto_mask(points, [False, False]).tolist() == [True, True, False, True]


def test_mask_direction_matters():
    points = [[1, 5], [2, 2], [3, 3], [5, 1]]
    assert pareto_mask(points, [True, True]).tolist() == [True, False, True, True]
    # cost (minimize) vs quality (maximize): (3, 3) loses to nothing that is cheaper and better
    assert pareto_mask(points, [False, True]).tolist() == [True, False, False, False]


def test_mask_keeps_exact_ties():
    points = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [1.0, 2.0]])
    assert pareto_mask(points, [False, False]).tolist() == [True, True, False, False]


def test_mask_three_objectives():
    # (2, 2, 2) is beaten by (1, 1, 1); (1, 3, 0) survives only because of the third objective
    points = pd.DataFrame({"a": [1, 2, 1, 0], "b": [1, 2, 3, 5], "c": [1, 2, 0, 9]})
    assert pareto_mask(points, [False, False, False]).tolist() == [True, False, True, True]
    assert pareto_mask(points[["a", "b"]], [False, False]).tolist() == [True, False, False, True]


def test_mask_matches_brute_force_on_random_points():
    rng = np.random.default_rng(0)
    points = rng.integers(0, 4, size=(40, 3)).astype(float)  # small range: many ties
    maximize = [True, False, True]
    signed = points * np.where(maximize, -1, 1)
    expected = [
        not any((signed[j] <= signed[i]).all() and (signed[j] < signed[i]).any() for j in range(len(points)))
        for i in range(len(points))
    ]
    assert pareto_mask(points, maximize).tolist() == expected


def test_mask_nan_points_are_off_the_front_and_dominate_nothing():
    points = [[np.nan, 0.0], [1.0, 1.0], [2.0, 0.5]]
    assert pareto_mask(points, [False, True]).tolist() == [False, True, False]


def test_mask_edge_cases():
    assert pareto_mask(np.empty((0, 2)), [False, True]).tolist() == []
    assert pareto_mask([[3.0, 0.5]], [False, True]).tolist() == [True]
    with pytest.raises(ConfigError):
        pareto_mask([[1, 2, 3], [4, 5, 6]], [False, True])


# ------------------------------------------------------------------------------------------------
# frontier
# ------------------------------------------------------------------------------------------------


def test_task_records_keep_last_duplicate(records):
    rows = task_records(records, "sst2")
    bf16 = rows[(rows["variant"] == "minilm-sst2:bf16") & (rows["scenario"] == "realtime")]
    assert bf16["latency_ms_p90"].tolist() == [8.0]


def test_current_rows_drop_error_fixed_by_rerun(records):
    failed_first = pd.concat(
        [
            pd.DataFrame(
                [
                    {
                        "key": "k-tiny-sst2:fp32",
                        "status": "error",
                        "error": "OOM",
                        "task": "sst2",
                        "variant": "tiny-sst2:fp32",
                    }
                ]
            ),
            records,
        ],
        ignore_index=True,
    )
    current = current_records(failed_first)
    errors = current[current["status"] == "error"]
    assert errors["variant"].tolist() == ["minilm-sst2:gptq-int4"]


def test_latency_frontier(records):
    table = frontier(records, "sst2", "latency")
    assert table["variant"].tolist() == [
        "tiny-sst2:fp32",
        "minilm-sst2:dynamic-int8",
        "minilm-sst2:static-int8",
        "minilm-sst2:bf16",
        "minilm-sst2:fp32",
    ]
    assert table["on_frontier"].tolist() == [True, True, False, True, True]
    assert "minilm-sst2:gptq-int4" not in set(table["variant"])
    assert table.loc[table["variant"] == "minilm-sst2:bf16", "latency_ms_p90"].item() == 8.0
    for column in ("model", "method", "metric", "metric_ci_low", "metric_ci_high", "size_mb", "cost"):
        assert column in table.columns


def test_throughput_frontier_falls_back_to_largest_batch(records, caplog):
    with caplog.at_level(logging.WARNING, logger="accelbench.analysis.objectives"):
        table = frontier(records, "sst2", "throughput", batch_size=32)
    static = table[table["variant"] == "minilm-sst2:static-int8"].iloc[0]
    assert static["batch_size"] == 16 and static["throughput"] == 220.0
    assert "largest recorded batch size 16" in caplog.text
    fp32 = table[table["variant"] == "minilm-sst2:fp32"].iloc[0]
    assert fp32["throughput"] == 100.0  # batch 32, not the batch 8 row
    assert table["throughput"].tolist() == sorted(table["throughput"], reverse=True)  # best first
    assert table.set_index("variant")["on_frontier"].to_dict() == {
        "tiny-sst2:fp32": True,
        "minilm-sst2:static-int8": True,
        "minilm-sst2:dynamic-int8": True,
        "minilm-sst2:bf16": True,
        "minilm-sst2:fp32": True,
    }


def test_size_frontier_one_row_per_variant(records):
    table = frontier(records, "sst2", "size")
    assert len(table) == len(VARIANTS)
    assert table["size_mb"].tolist() == sorted(table["size_mb"])


def test_frontier_errors(records):
    with pytest.raises(UnknownNameError, match="latency"):
        frontier(records, "sst2", "speed")
    with pytest.raises(DataError, match="sst2"):
        frontier(records, "mnli")
    only_errors = records[records["status"] == "error"]
    with pytest.raises(DataError, match="error"):
        frontier(only_errors, "sst2")


def test_frontier_uses_the_newest_model_key_only(records):
    old = records[records["variant"] == "tiny-sst2:fp32"].assign(model_key="old", metric=0.99)
    new = records.assign(model_key="new", timestamp="2025-02-01T00:00:00")
    table = frontier(pd.concat([old, new], ignore_index=True), "sst2")
    assert table.loc[table["variant"] == "tiny-sst2:fp32", "metric"].tolist() == [0.85]


def test_missing_objective_is_reported_not_raised(records):
    batch_only = records[records["scenario"] != "realtime"]
    assert available_objectives(batch_only, "sst2") == ["throughput", "size"]
    assert available_objectives(records, "sst2") == ["latency", "throughput", "size"]
    assert available_objectives(batch_only, "sst2", ["latency"]) == []
    assert objective_rows_or_none(batch_only, "sst2", "latency") is None
    with pytest.raises(DataError, match="no latency measurements in this run"):
        frontier(batch_only, "sst2", "latency")
    with pytest.raises(DataError, match="mnli"):  # a task-level problem still raises
        available_objectives(batch_only, "mnli")
    with pytest.raises(UnknownNameError):
        available_objectives(batch_only, "sst2", ["joules"])
