"""Sensitivity bars, the search table and plot, from made-up sensitivity and search tables."""

from __future__ import annotations

import math

import pandas as pd

from accelbench.analysis.formatting import MISSING
from accelbench.analysis.sensitivity_plots import search_plot, search_table, sensitivity_bars
from accelbench.analysis.style import FIGURE_DPI, MIN_FONT_SIZE, PAGE_WIDTH_PX


def _sensitivity() -> pd.DataFrame:
    units = [f"layer.{i}" for i in range(12)] + ["pooler", "classifier"]
    t = pd.DataFrame({
        "unit": units,
        "delta_quantized_alone": [-0.001 * i for i in range(14)],
        "delta_fp32_alone": [-0.02 + 0.001 * i for i in range(14)],
        "throughput_quantized_alone": [300.0 + i for i in range(14)],
        "throughput_fp32_alone": [500.0 - i for i in range(13)] + [math.nan],
        "speedup_quantized_alone": [1.1 + 0.01 * i for i in range(14)],
        "speedup_fp32_alone": [1.9 - 0.01 * i for i in range(13)] + [math.nan],
    })  # fmt: skip
    t.attrs.update(method="dynamic-int8", batch_size=32, full_int8_delta=-0.021, full_int8_speedup=2.0)
    return t


def _search(chosen: bool) -> pd.DataFrame:
    s = pd.DataFrame({
        "k": [0, 1, 2], "fp32_units": ["(none)", "layer.3", "layer.3, layer.0"],
        "metric": [0.85, 0.88, 0.905], "delta": [-0.06, -0.03, -0.005], "meets_floor": [False, False, chosen],
        "throughput": [520.0, 480.0, math.nan], "speedup": [1.9, 1.7, math.nan], "chosen": [False, False, chosen],
    })  # fmt: skip
    s.attrs.update(floor=0.9009, batch_size=32, message="one sentence")
    return s


def _fonts_ok(fig) -> bool:
    return all(t.get_fontsize() >= MIN_FONT_SIZE for t in fig.findobj(lambda a: hasattr(a, "get_fontsize")))


def test_sensitivity_bars_one_row_per_unit_with_reference_lines():
    fig = sensitivity_bars(_sensitivity())
    top, bottom = fig.axes[:2]
    assert [t.get_text() for t in top.get_yticklabels()] == list(_sensitivity()["unit"])
    assert len(top.patches) == 28 and len(bottom.patches) == 28  # two bars per unit in each panel
    labels = top.get_legend().get_texts()
    assert any("all units int8: -0.021" in t.get_text() for t in labels)
    assert any("all units int8: 2.00×" in t.get_text() for t in bottom.get_legend().get_texts())
    assert bottom.patches[0].get_width() == 1.1  # the first unit's speed-up, not its throughput
    assert fig.get_figwidth() * FIGURE_DPI <= PAGE_WIDTH_PX and _fonts_ok(fig)


def test_search_table_marks_the_chosen_attempt_and_missing_values():
    table = search_table(_search(chosen=True))
    assert list(table["k"]) == [0, 1, 2] and list(table["chosen"]) == ["", "", "✓"]
    assert list(table["meets floor 0.901"]) == ["no", "no", "yes"]
    assert table["throughput (batch 32)"].iloc[2] == MISSING and table["speed-up"].iloc[2] == MISSING
    assert table["change vs fp32"].iloc[0] == "-0.060" and table["speed-up"].iloc[0] == "1.90×"
    assert search_table(pd.DataFrame()).empty


def test_search_plot_draws_floor_and_rings_only_a_chosen_attempt():
    fig = search_plot(_search(chosen=True))
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "floor 0.901" in texts and "chosen" in texts and _fonts_ok(fig)
    none = search_plot(_search(chosen=False))
    assert "chosen" not in [t.get_text() for t in none.axes[0].get_legend().get_texts()]
