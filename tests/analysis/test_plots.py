"""Each notebook plot on hand-made records: a figure with the expected content, None when it has no data."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from matplotlib.figure import Figure

from accelbench.analysis import plots


def _row(method, scenario, bs, padding="dynamic", metric=0.9, thr=100.0, **kw):
    return {"status": "ok", "task": "sst2", "model": "m", "method": method, "method_name": method.split("[")[0],
            "variant": f"m:{method}", "scenario": scenario, "batch_size": bs, "padding": padding,
            "metric_name": "accuracy", "metric": metric, "metric_ci_low": metric - 0.02, "metric_ci_high": metric + 0.02,
            "latency_ms_p50": 10.0, "latency_ms_p90": 12.0, "latency_ms_p99": 15.0, "throughput": thr,
            "pct_of_peak": 20.0, "achieved_gops": 40.0, "peak_gops": 200.0, **kw}  # fmt: skip


@pytest.fixture
def records():
    rows = []
    for method, speed in (("fp32", 1.0), ("dynamic-int8", 2.0)):
        rows.append(_row(method, "realtime", 1, thr=50 * speed))
        for bs in (1, 8, 32):
            rows.append(_row(method, "batch", bs, thr=bs * 10 * speed))
            if method == "fp32":
                rows.append(_row(method, "batch", bs, padding="max_length", thr=bs * 4))
    for cal, n, acc in (
        ("minmax", 32, 0.85),
        ("minmax", 128, 0.88),
        ("entropy", 32, 0.87),
        ("entropy", 128, 0.89),
    ):
        opts = json.dumps({"calibration": cal, "samples": n})
        label = f"ort-static-int8[calibration={cal},samples={n}]"
        rows.append(
            _row(label, "batch", 32, metric=acc, method_options=opts) | {"method_name": "ort-static-int8"}
        )
    return pd.DataFrame(rows)


def test_plots_return_figures(records):
    for fig in (plots.throughput_vs_batch(records), plots.latency_bars(records), plots.speedup_and_quality(records),
                plots.padding_comparison(records), plots.percent_of_peak(records)):  # fmt: skip
        assert isinstance(fig, Figure) and fig.axes
    pad = plots.padding_comparison(records)
    labels = [t.get_text() for t in pad.axes[0].texts]
    assert labels == ["2.5x", "2.5x", "2.5x"]  # dynamic / max_length throughput per batch size


def test_padding_comparison_needs_both_paddings(records):
    assert plots.padding_comparison(records[records["padding"] == "dynamic"]) is None


def test_calibration_sensitivity(records):
    fig = plots.calibration_sensitivity(records)
    assert isinstance(fig, Figure)
    assert sorted(t.get_text() for t in fig.axes[0].get_legend().get_texts()) == ["entropy", "fp32", "minmax"]
    table = plots.calibration_table(records)
    assert list(table.index) == ["entropy", "minmax"] and list(table.columns) == [32, 128]
    assert table.loc["minmax", 128] == "0.880 [0.860, 0.900]"
    assert plots.calibration_sensitivity(records[records["method"] == "fp32"]) is None


def test_training_curve():
    assert plots.training_curve({}) is None
    fig = plots.training_curve({"training": {"loss_curve": [[1, 2.0], [10, 1.0]], "steps": 10, "wall_s": 3}})
    assert fig.axes[0].get_lines()[0].get_ydata().tolist() == [2.0, 1.0]
