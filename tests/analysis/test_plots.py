"""Each notebook plot on hand-made records: a figure with the expected content, None when it has no data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure

from accelbench.analysis import plots

from .samples import make_records


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
    legend = sorted(t.get_text().replace("\n", " ") for t in fig.axes[0].get_legend().get_texts())
    assert legend == ["entropy", "floor 0.891 (99% of m:fp32)", "fp32", "minmax"]
    table = plots.calibration_table(records)
    assert list(table.index) == ["entropy", "minmax"] and list(table.columns) == ["32 samples", "128 samples"]
    assert table.loc["minmax", "128 samples"] == "0.880 [0.860, 0.900]"
    assert plots.calibration_sensitivity(records[records["method"] == "fp32"]) is None


def test_training_curve():
    assert plots.training_curve({}) is None
    fig = plots.training_curve({"training": {"loss_curve": [[1, 2.0], [10, 1.0]], "steps": 10, "wall_s": 3}})
    assert fig.axes[0].get_lines()[0].get_ydata().tolist() == [2.0, 1.0]


def _with_rounds(records: pd.DataFrame) -> pd.DataFrame:
    """The records with the fields of repeated rounds: intervals and the paired speed-up against fp32."""
    out = records.copy()
    for column in ("throughput", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99"):
        out[f"{column}_ci_low"], out[f"{column}_ci_high"] = out[column] * 0.9, out[column] * 1.1
    fp32 = out["method"] == "fp32"
    out["speedup_vs_fp32"] = np.where(fp32, 1.0, 1.9)  # paired medians differ from the ratio of medians (2.0)
    out["speedup_vs_fp32_ci_low"] = np.where(fp32, 1.0, 1.7)
    out["speedup_vs_fp32_ci_high"] = np.where(fp32, 1.0, 2.2)
    return out


def test_speedup_plot_draws_the_paired_speedup_with_its_interval(records):
    ax = plots.speedup_and_quality(_with_rounds(records)).axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    by_label = {c.get_label(): c for c in bars}
    int8 = by_label["dynamic-int8"]
    assert int8.has_yerr and list(int8.lines[0].get_ydata()) == [1.9, 1.9, 1.9]
    lows = sorted(float(seg[0][1]) for seg in int8.lines[2][0].get_segments())
    assert lows == pytest.approx([1.7, 1.7, 1.7])
    assert "paired" in ax.get_title()


def test_speedup_plot_of_old_records_is_the_ratio_of_throughputs(records):
    ax = plots.speedup_and_quality(records).axes[0]
    assert not [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    (int8,) = [line for line in ax.get_lines() if line.get_label() == "dynamic-int8"]
    assert list(int8.get_ydata()) == [2.0, 2.0, 2.0]


def test_latency_and_throughput_plots_draw_intervals(records):
    latency = plots.latency_bars(_with_rounds(records)).axes[0]
    bars = [c for c in latency.containers if isinstance(c, BarContainer)]
    assert len(bars) == 3 and all(b.errorbar is not None for b in bars)
    assert all(b.errorbar is None for b in plots.latency_bars(records).axes[0].containers)
    batch = plots.throughput_vs_batch(_with_rounds(records)).axes[0]
    assert all(c.has_yerr for c in batch.containers)
    assert not any(c.has_yerr for c in plots.throughput_vs_batch(records).axes[0].containers)


def test_speedup_plot_compares_each_model_with_its_own_fp32():
    ax = plots.speedup_and_quality(make_records()).axes[0]  # a teacher-sized and a tiny model
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert lines["tiny-sst2:fp32"] == [1.0] and lines["minilm-sst2:dynamic-int8"] == [2.1]


def test_the_offline_search_plot_draws_each_variant_s_probes_and_rings_the_chosen_size():
    import json

    import pandas as pd

    from accelbench.analysis.offline_plot import offline_search_plot

    def row(variant, chosen, curve):
        steps = [{"batch_size": b, "throughput": t, "status": "ok" if t else "over_memory"} for b, t in curve]
        return {
            "variant": variant,
            "scenario": "offline",
            "batch_size": chosen,
            "offline_curve": json.dumps(steps),
        }

    records = pd.DataFrame([row("m:fp32", 16, [(8, 100.0), (16, 120.0), (32, 121.0)]),
                            row("m:int8", 32, [(8, 200.0), (16, 260.0), (32, 300.0), (64, None)])])  # fmt: skip
    fig = offline_search_plot(records)
    ax = fig.axes[0]
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [3, 3]  # the failed 64 is not drawn
    assert [list(c.get_offsets()[:, 0]) for c in ax.collections] == [[16.0], [32.0]]  # the chosen sizes
    assert offline_search_plot(pd.DataFrame({"variant": ["m:fp32"], "scenario": ["batch"]})) is None
