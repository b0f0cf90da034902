"""Every figure drawn from crowded made-up records is readable where it is shown: labels that neither overlap
nor leave their axes (measured with the renderer), the page's width, fonts of at least 9 pt, batch sizes as
ticks, the quality floor on every quality plot, a legend for marker shapes, busy points marked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from accelbench.analysis import plot_frontier, plot_frontiers, plots
from accelbench.analysis.labels import label_texts
from accelbench.analysis.style import FIGURE_DPI, MIN_FONT_SIZE, PAGE_WIDTH_PX

from .samples import CROWDED_METHODS, make_crowded_records


def comparison(records: pd.DataFrame) -> pd.DataFrame:
    """What notebook.compare_with_teacher gives for the crowded records (batch 32, dynamic padding)."""
    batch = records[
        (records["scenario"] == "batch") & (records["batch_size"] == 32) & (records["padding"] == "dynamic")
    ]
    teacher = batch[batch["variant"] == "teacher-sst2:fp32"].iloc[0]
    return pd.DataFrame(
        {
            "variant": batch["variant"], "model": batch["model"], "method": batch["method"],
            "role": np.where(batch["model"] == "teacher-sst2", "teacher", "student"),
            "metric": batch["metric"], "share of teacher": batch["metric"] / teacher["metric"], "batch": 32,
            "throughput x": batch["throughput"] / teacher["throughput"],
        }
    ).reset_index(drop=True)  # fmt: skip


def calibration_records() -> pd.DataFrame:
    rows = make_crowded_records()
    rows = (
        rows[rows["variant"] == "teacher-sst2:fp32"].head(1).assign(method_name="fp32", method_options=None)
    )
    grid = []
    for i, cal in enumerate(("minmax", "entropy", "percentile")):
        for j, n in enumerate((32, 128, 512)):
            metric = 0.88 + 0.004 * i + 0.003 * j
            grid.append(rows.iloc[0].to_dict() | {
                "method": f"ort-static-int8[calibration={cal},samples={n}]", "method_name": "ort-static-int8",
                "variant": f"teacher-sst2:ort-static-int8[calibration={cal},samples={n}]", "metric": metric,
                "metric_ci_low": metric - 0.02, "metric_ci_high": metric + 0.02, "scenario": "batch", "batch_size": 32,
                "method_options": json.dumps({"calibration": cal, "samples": n}),
            })  # fmt: skip
    return pd.concat([rows, pd.DataFrame(grid)], ignore_index=True)


CROWDED = make_crowded_records()
FIGURES = {
    "frontiers": lambda: plot_frontiers(CROWDED, "sst2", ("latency", "throughput", "size")),
    "frontier": lambda: plot_frontier(CROWDED, "sst2", "throughput"),
    "throughput_vs_batch": lambda: plots.throughput_vs_batch(CROWDED),
    "latency_bars": lambda: plots.latency_bars(CROWDED),
    "speedup_and_quality": lambda: plots.speedup_and_quality(CROWDED),
    "padding_comparison": lambda: plots.padding_comparison(CROWDED),
    "percent_of_peak": lambda: plots.percent_of_peak(CROWDED),
    "teacher_vs_students": lambda: plots.teacher_vs_students(comparison(CROWDED)),
    "calibration_sensitivity": lambda: plots.calibration_sensitivity(calibration_records()),
}


@pytest.fixture(scope="module")
def figures() -> dict:
    return {name: draw() for name, draw in FIGURES.items()}


def _visible_texts(ax) -> list[Text]:
    return [t for t in ax.texts if t.get_visible() and t.get_text().strip()]


def overlaps_and_escapes(fig) -> list[str]:
    """Every pair of overlapping texts on an axes, and every text reaching outside its axes."""
    fig.draw_without_rendering()
    problems = []
    for ax in fig.axes:
        frame = ax.get_window_extent()
        boxes = [(t.get_text(), t.get_window_extent()) for t in _visible_texts(ax)]
        for i, (name, box) in enumerate(boxes):
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if not inside:
                problems.append(f"{name!r} leaves its axes")
            problems += [f"{name!r} overlaps {other!r}" for other, b in boxes[i + 1 :] if box.overlaps(b)]
    return problems


@pytest.mark.parametrize("name", list(FIGURES))
def test_labels_neither_overlap_nor_leave_their_axes(figures, name):
    fig = figures[name]
    assert fig is not None
    assert overlaps_and_escapes(fig) == []
    fig.set_dpi(2 * FIGURE_DPI)  # drawn again for a retina display: the same layout, scaled
    assert overlaps_and_escapes(fig) == []
    fig.set_dpi(FIGURE_DPI)
    fig.draw_without_rendering()


@pytest.mark.parametrize("name", list(FIGURES))
def test_figures_fit_the_page_with_readable_fonts(figures, name):
    fig = figures[name]
    assert fig.get_size_inches()[0] * fig.dpi <= PAGE_WIDTH_PX
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    small = {t.get_text() for t in texts if t.get_fontsize() < MIN_FONT_SIZE}
    assert not small


def test_the_overlap_check_can_fail():
    from accelbench.analysis.style import new_figure

    fig, (ax,) = new_figure()
    ax.annotate("first label", (0.5, 0.5))
    ax.annotate("second label", (0.5, 0.5))
    ax.annotate("outside", (1.2, 0.5), annotation_clip=False)
    problems = overlaps_and_escapes(fig)
    assert "'first label' overlaps 'second label'" in problems and "'outside' leaves its axes" in problems


def test_frontier_labels_the_frontier_and_baseline_and_keys_the_rest(figures):
    ax = figures["frontier"].axes[0]
    labels = [t.get_text().split("\n")[0] for t in label_texts(ax)]
    assert "teacher-sst2:fp32" in labels  # the baseline
    assert len(labels) < CROWDED["variant"].nunique()  # not every point: the rest by colour and shape
    legend = [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()]
    assert set(CROWDED_METHODS) <= set(legend)  # marker shapes are methods, and the legend says which
    assert {"teacher-sst2", "teacher-sst2-l3"} <= set(legend)  # colours are models
    assert any(text.startswith("floor 0.896") for text in legend)
    assert any(text.startswith("hollow: speed measured on a busy machine") for text in legend)
    busy = [c for c in ax.collections if (c.get_gid() or "").endswith(":busy")]
    assert busy and all(tuple(c.get_facecolor()[0][:3]) == (1.0, 1.0, 1.0) for c in busy)


def test_frontier_panels_are_one_per_row(figures):
    axes = figures["frontiers"].axes
    xs = {round(ax.get_position().x0, 3) for ax in axes}
    ys = [ax.get_position().y0 for ax in axes]
    assert len(xs) == 1 and ys == sorted(ys, reverse=True)


def _floor_lines(ax) -> list:
    return [line for line in ax.get_lines() if line.get_linestyle() == "--" and line.get_color() == "grey"]


@pytest.mark.parametrize(
    ("name", "panel"),
    [("frontier", 0), ("speedup_and_quality", 1), ("teacher_vs_students", 0), ("calibration_sensitivity", 0)],
)
def test_every_quality_plot_draws_the_floor(figures, name, panel):
    assert _floor_lines(figures[name].axes[panel])


@pytest.mark.parametrize(("name", "panel"), [("throughput_vs_batch", 0), ("speedup_and_quality", 0)])
def test_batch_size_axes_tick_the_batch_sizes(figures, name, panel):
    fig = figures[name]
    fig.draw_without_rendering()
    ax = fig.axes[panel]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "8", "32"]
    assert not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]


def test_teacher_plot_labels_stay_inside_on_the_right(figures):
    fig = figures["teacher_vs_students"]
    fig.draw_without_rendering()  # measured at the current dpi
    ax = fig.axes[0]
    frame = ax.get_window_extent()
    assert label_texts(ax) and all(t.get_window_extent().x1 <= frame.x1 for t in label_texts(ax))


def test_busy_points_are_hatched_in_latency_bars(figures):
    ax = figures["latency_bars"].axes[0]
    assert any(patch.get_hatch() for patch in ax.patches)
    assert any("busy machine" in t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts())
