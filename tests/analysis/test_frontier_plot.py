"""Frontier figures: every variant drawn, the frontier, labels, and a panel per objective."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from accelbench.analysis import plot_frontier, plot_frontiers
from accelbench.analysis.formatting import SIGNIFICANCE_NOTE
from accelbench.exceptions import DataError

from .samples import VARIANTS, make_records_with_intervals


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
    labels = {t.get_text().split("\n")[0] for t in ax.texts}
    # the frontier and the baseline are named beside their points; the dominated static-int8 by its shape
    assert labels == set(VARIANTS) - {"minilm-sst2:static-int8"}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"fp32", "bf16", "dynamic-int8", "static-int8"} <= set(legend)  # a legend for the marker shapes
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


def test_skipped_variants_are_not_plotted(records):
    skipped = records.iloc[[1]].assign(key="k-amx", status="skipped", error="needs AMX", variant="m:amx")
    fig = plot_frontier(pd.concat([records, skipped], ignore_index=True), "sst2", "latency")
    assert "m:amx" not in {t.get_text() for t in fig.axes[0].texts}
    assert _scatter_points(fig.axes[0]) == len(VARIANTS)


def _bars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def _horizontal_extent(bar: ErrorbarContainer) -> tuple[float, float]:
    """The x range of an error bar container's horizontal bar (the first of its line collections)."""
    segments = bar.lines[2][0].get_segments()[0]
    return float(segments[0][0]), float(segments[1][0])


@pytest.mark.parametrize(
    ("objective", "low", "high"), [("latency", 4.75, 5.25), ("throughput", 199.5, 220.5)]
)
def test_speed_intervals_are_drawn_as_horizontal_bars(objective, low, high):
    ax = plot_frontier(make_records_with_intervals(), "sst2", objective).axes[0]
    bars = _bars(ax)
    assert len(bars) == len(VARIANTS) and all(b.has_xerr and b.has_yerr for b in bars)
    assert (low, high) in [pytest.approx(_horizontal_extent(b)) for b in bars]  # dynamic-int8's interval
    legend = [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()]
    assert "horizontal bars: 96.9% interval of the median over 6 rounds" in legend


def test_old_records_get_metric_bars_only(records):
    ax = plot_frontier(records, "sst2", "throughput").axes[0]
    bars = _bars(ax)
    assert len(bars) == len(VARIANTS) and all(b.has_yerr and not b.has_xerr for b in bars)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert not any(t.startswith("horizontal bars") for t in legend) and SIGNIFICANCE_NOTE not in legend
    assert {t.get_text() for t in ax.texts} == set(VARIANTS)  # labels without markers


def test_labels_mark_the_significance_of_the_metric_change():
    ax = plot_frontier(make_records_with_intervals(), "sst2", "throughput").axes[0]
    labels = {t.get_text() for t in ax.texts}
    assert "minilm-sst2:dynamic-int8\n-0.4 pts n.s." in labels
    assert "minilm-sst2:static-int8\n-2.5 pts*" in labels
    assert "minilm-sst2:fp32" in labels  # the baseline is not tested against itself
    assert SIGNIFICANCE_NOTE in [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()]


def test_points_measured_on_a_busy_machine_are_hollow():
    records = make_records_with_intervals()
    records["busy"] = records["variant"] == "minilm-sst2:bf16"
    records["busy_other_cpu_share"] = records["busy"] * 0.6
    ax = plot_frontier(records, "sst2", "latency").axes[0]
    busy = [c.get_gid() for c in ax.collections if (c.get_gid() or "").endswith(":busy")]
    assert busy == ["variant:minilm-sst2:bf16:busy"]
    legend = [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()]
    assert any(t.startswith("hollow: speed measured on a busy machine") and "25%" in t for t in legend)
    size = plot_frontier(records, "sst2", "size").axes[0]  # size is not a speed: nothing to flag
    assert not [c for c in size.collections if (c.get_gid() or "").endswith(":busy")]
