"""Operator-share table and chart: from records with op shares (flat or as dicts), nothing without them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from accelbench.analysis import op_tables
from accelbench.measure.opprofile import OP_CLASSES, record_fields
from accelbench.records import append_records, read_records

from .samples import make_records

FP32 = {"matmul": 0.6, "attention": 0.1, "softmax": 0.0, "layernorm": 0.2, "other": 0.1}
INT8 = {"matmul": 0.3, "attention": 0.1, "softmax": 0.0, "layernorm": 0.35, "quantize": 0.15, "other": 0.1}


def _with_shares(records: pd.DataFrame, variant: str, batch: int, shares: dict, ms: float) -> pd.DataFrame:
    at = (records["variant"] == variant) & (records["scenario"] == "batch") & (records["batch_size"] == batch)
    assert at.sum() == 1
    for name, value in shares.items():
        records.loc[at, f"op_shares_{name}"] = value
    records.loc[at, ["op_ms_per_batch", "op_profiler"]] = [ms, "torch.profiler"]
    return records


@pytest.fixture
def profiled() -> pd.DataFrame:
    records = make_records()
    records = _with_shares(records, "minilm-sst2:fp32", 32, FP32, 12.0)
    records = _with_shares(records, "minilm-sst2:fp32", 8, {**FP32, "matmul": 0.5, "other": 0.2}, 4.0)
    records = _with_shares(records, "minilm-sst2:dynamic-int8", 32, INT8, 7.5)
    return _with_shares(records, "minilm-sst2:static-int8", 16, INT8, 6.0)  # profiled at 16 only


def test_without_op_shares_there_is_no_table_and_no_figure(records):
    assert op_tables.op_share_table(records).empty
    assert op_tables.op_share_rows(records).empty
    assert op_tables.op_share_plot(records) is None


def test_table_has_a_row_per_profiled_variant_at_batch_32_or_its_largest(profiled):
    table = op_tables.op_share_table(profiled, "sst2")
    assert list(table.index) == ["minilm-sst2:fp32", "minilm-sst2:dynamic-int8", "minilm-sst2:static-int8"]
    assert "softmax" not in table.columns  # 0% everywhere
    assert table.loc["minilm-sst2:fp32", "matmul"] == "60.0%"  # batch 32, not batch 8's 50%
    assert table.loc["minilm-sst2:dynamic-int8", "quantize"] == "15.0%"
    assert table.loc["minilm-sst2:fp32", op_tables.BOUND_BY] == "matmul"
    assert table.loc["minilm-sst2:dynamic-int8", op_tables.BOUND_BY] == "layernorm"
    assert table.loc["minilm-sst2:static-int8", "batch"] == "16"
    assert table.loc["minilm-sst2:dynamic-int8", op_tables.OP_MS] == "7.5"
    assert "profiler" not in table.columns  # the same for every row: says nothing
    assert list(table.columns[:3]) == ["matmul", "attention", "layernorm"] and "other" in table.columns


def test_shares_kept_as_one_dict_per_row_are_expanded(records):
    rows = records.copy()
    rows["op_shares"] = None
    at = (rows["variant"] == "tiny-sst2:fp32") & (rows["scenario"] == "batch")
    rows.loc[at, "op_shares"] = [FP32]
    table = op_tables.op_share_table(rows)
    assert list(table.index) == ["tiny-sst2:fp32"] and table.loc["tiny-sst2:fp32", "layernorm"] == "20.0%"


def test_plot_stacks_each_variant_to_100_percent(profiled):
    fig = op_tables.op_share_plot(profiled, "sst2")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["minilm-sst2:static-int8 (6.0 ms)", "minilm-sst2:dynamic-int8 (7.5 ms)",
                      "minilm-sst2:fp32 (12.0 ms)"]  # fmt: skip
    widths = np.zeros(len(labels))
    for container in ax.containers:
        widths += [bar.get_width() for bar in container]
    assert widths == pytest.approx([100.0] * 3)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["matmul", "attention", "layernorm",
                                                                     "quantize", "other"]  # fmt: skip


def test_profiles_written_to_records_read_back_into_the_table(tmp_path):
    shares = dict.fromkeys(OP_CLASSES, 0.0) | {"matmul": 0.7, "other": 0.3}
    profile = {"available": True, "profiler": "onnxruntime", "shares": shares, "op_ms_per_batch": 2.0,
               "wall_ms_per_batch": 3.0, "top_ops": [], "other_ops": []}  # fmt: skip
    base = {"key": "k1", "status": "ok", "task": "sst2", "variant": "m:ort-fp32", "scenario": "batch",
            "batch_size": 32, "padding": "dynamic"}  # fmt: skip
    append_records(tmp_path, [{**base, **record_fields(profile)},
                              {**base, "key": "k2", "variant": "m:ct2-int8",
                               **record_fields({"available": False, "reason": "no profiler"})}])  # fmt: skip
    records = read_records(tmp_path)
    table = op_tables.op_share_table(records)
    assert list(table.index) == ["m:ort-fp32"]
    assert (
        table.loc["m:ort-fp32", "matmul"] == "70.0%" and table.loc["m:ort-fp32", "profiler"] == "onnxruntime"
    )
    assert op_tables.op_share_plot(records) is not None


def test_a_crowded_chart_is_readable():
    from accelbench.analysis.style import MIN_FONT_SIZE, PAGE_WIDTH_PX

    from .samples import make_crowded_records
    from .test_figures_readable import overlaps_and_escapes

    records = make_crowded_records()
    batch = records.index[(records["scenario"] == "batch") & (records["batch_size"] == 32)]
    rng = np.random.default_rng(0)
    shares = rng.dirichlet(np.ones(len(OP_CLASSES)), size=len(batch))
    for j, name in enumerate(OP_CLASSES):
        records.loc[batch, f"op_shares_{name}"] = shares[:, j]
    records.loc[batch, "op_ms_per_batch"] = rng.uniform(1, 100, len(batch))
    fig = op_tables.op_share_plot(records)
    assert len(fig.axes[0].get_yticklabels()) == records.loc[batch, "variant"].nunique() > 10
    assert overlaps_and_escapes(fig) == []
    assert fig.get_size_inches()[0] * fig.dpi <= PAGE_WIDTH_PX
    assert min(t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize"))) >= MIN_FONT_SIZE
