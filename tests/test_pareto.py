"""Pareto mask, frontier, recommendation and plots on small hand-made records."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from accelbench.exceptions import ConfigError, DataError, UnknownNameError
from accelbench.pareto import (
    OBJECTIVES,
    frontier,
    latest_records,
    pareto_mask,
    plot_frontier,
    plot_frontiers,
    recommend,
)

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
# Records fixture
# ------------------------------------------------------------------------------------------------

# variant -> (metric, ci_low, ci_high, p90 ms, {batch size: throughput}, size MB)
VARIANTS = {
    "minilm-sst2:fp32": (0.905, 0.885, 0.924, 10.0, {8: 60.0, 32: 100.0}, 90.0),
    "minilm-sst2:bf16": (0.904, 0.884, 0.923, 8.0, {32: 150.0}, 45.0),
    "minilm-sst2:dynamic-int8": (0.901, 0.881, 0.920, 5.0, {32: 210.0}, 25.0),
    "minilm-sst2:static-int8": (0.880, 0.860, 0.900, 6.0, {8: 190.0, 16: 220.0}, 24.0),
    "tiny-sst2:fp32": (0.850, 0.828, 0.871, 2.0, {32: 400.0}, 10.0),
}


def _row(variant: str, scenario: str, batch_size: int, **values) -> dict:
    model, method = variant.split(":")
    metric, low, high, p90, _, size = VARIANTS[variant]
    row = {
        "run": "unit",
        "key": f"k-{variant}",
        "status": "ok",
        "error": None,
        "timestamp": "2025-01-01T00:00:00",
        "task": "sst2",
        "task_kind": "classification",
        "model": model,
        "model_family": "bert",
        "method": method,
        "variant": variant,
        "runtime": "pytorch",
        "scenario": scenario,
        "batch_size": batch_size,
        "padding": "dynamic",
        "metric_name": "accuracy",
        "metric": metric,
        "metric_ci_low": low,
        "metric_ci_high": high,
        "metric_delta": metric - 0.905,
        "agreement": 0.99,
        "latency_ms_p50": np.nan,
        "latency_ms_p90": np.nan,
        "latency_ms_p99": np.nan,
        "throughput": np.nan,
        "size_mb": size,
        "peak_rss_mb": 300.0,
    }
    row.update(values)
    return row


def make_records() -> pd.DataFrame:
    rows = []
    for variant, (_, _, _, p90, batches, _) in VARIANTS.items():
        rows.append(
            _row(
                variant,
                "realtime",
                1,
                latency_ms_p50=p90 * 0.8,
                latency_ms_p90=p90,
                latency_ms_p99=p90 * 1.2,
                throughput=1000 / p90,
            )
        )
        for batch, throughput in batches.items():
            rows.append(
                _row(variant, "batch", batch, latency_ms_p90=1000 * batch / throughput, throughput=throughput)
            )
    # a stale, impossibly fast bf16 row that a later rerun of the same key replaced
    stale = _row("minilm-sst2:bf16", "realtime", 1, latency_ms_p50=0.5, latency_ms_p90=1.0, throughput=1000.0)
    rows.insert(0, stale)
    # a failed variant: no metrics, only the error
    rows.append(
        {
            "run": "unit",
            "key": "k-gptq",
            "status": "error",
            "error": "RuntimeError: no int4 kernel\nTraceback ...",
            "task": "sst2",
            "model": "minilm-sst2",
            "method": "gptq-int4",
            "variant": "minilm-sst2:gptq-int4",
        }
    )
    return pd.DataFrame(rows)


@pytest.fixture
def records() -> pd.DataFrame:
    return make_records()


# ------------------------------------------------------------------------------------------------
# frontier
# ------------------------------------------------------------------------------------------------


def test_latest_records_keeps_last_duplicate(records):
    latest = latest_records(records)
    bf16 = latest[(latest["variant"] == "minilm-sst2:bf16") & (latest["scenario"] == "realtime")]
    assert bf16["latency_ms_p90"].tolist() == [8.0]


def test_latest_records_drops_error_fixed_by_rerun(records):
    failed_first = pd.concat(
        [
            pd.DataFrame(
                [{"key": "k-tiny-sst2:fp32", "status": "error", "error": "OOM", "variant": "tiny-sst2:fp32"}]
            ),
            records,
        ],
        ignore_index=True,
    )
    latest = latest_records(failed_first)
    errors = latest[latest["status"] == "error"]
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
    with caplog.at_level(logging.WARNING, logger="accelbench.pareto"):
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


def test_objectives_registry():
    assert {"latency", "throughput", "size"} <= set(OBJECTIVES)
    assert OBJECTIVES["throughput"].axis_label(32) == "throughput at batch 32 (samples/s)"


# ------------------------------------------------------------------------------------------------
# recommend
# ------------------------------------------------------------------------------------------------


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
    assert info.value.known == sorted(OBJECTIVES)


def test_recommend_needs_fp32_baseline(records):
    no_fp32 = records[records["method"] != "fp32"]
    with pytest.raises(DataError) as info:
        recommend(no_fp32, "sst2")
    assert info.value.fix


# ------------------------------------------------------------------------------------------------
# plots
# ------------------------------------------------------------------------------------------------


def _scatter_points(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def test_plot_frontier_draws_every_variant_and_saves(records, tmp_path):
    fig = plot_frontier(records, "sst2", "latency")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert _scatter_points(ax) == len(VARIANTS)
    steps = [line for line in ax.get_lines() if line.get_drawstyle().startswith("steps")]
    assert len(steps) == 1 and list(steps[0].get_xdata()) == [2.0, 5.0, 8.0, 10.0]
    assert "p90 latency per request (ms)" in ax.get_xlabel()
    assert "sst2" in ax.get_title() and "latency" in ax.get_title()
    labels = {t.get_text() for t in ax.texts}
    assert set(VARIANTS) <= labels
    path = tmp_path / "frontier.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_frontier_single_point_and_given_axes(records, tmp_path):
    import matplotlib.pyplot as plt

    one = records[records["variant"] == "minilm-sst2:fp32"]
    fig, ax = plt.subplots()
    try:
        assert plot_frontier(one, "sst2", "size", ax=ax) is fig
        assert _scatter_points(ax) == 1
        fig.savefig(tmp_path / "one.png")
    finally:
        plt.close(fig)
    assert (tmp_path / "one.png").stat().st_size > 0


def test_plot_frontiers_one_panel_per_objective(records, tmp_path):
    no_batch = records[records["scenario"] != "batch"]
    fig = plot_frontiers(no_batch, "sst2", ("latency", "throughput", "size"))
    assert len(fig.axes) == 3
    assert _scatter_points(fig.axes[0]) == len(VARIANTS)
    assert _scatter_points(fig.axes[1]) == 0  # no throughput rows: an explanatory panel, not a crash
    fig.savefig(tmp_path / "all.png")
    with pytest.raises(DataError):
        plot_frontiers(records, "mnli")
