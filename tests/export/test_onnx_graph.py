"""ONNX graph tooling on the tiny BERT's export: fusions, fused-vs-unfused timing, calibration feeds."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from accelbench.exceptions import ConfigError  # noqa: E402
from accelbench.export import onnx_graph as og  # noqa: E402
from accelbench.export.onnx_classifier import export_classifier  # noqa: E402
from accelbench.models import load_checkpoint  # noqa: E402

TEXTS = ["a good film", "bad", "a dull , lifeless mess", "great acting and a clever script"]


@pytest.fixture(scope="module")
def loaded(tiny_bert):
    return load_checkpoint(str(tiny_bert))


@pytest.fixture(scope="module")
def graphs(loaded, tmp_path_factory):
    work = tmp_path_factory.mktemp("onnx-graph")
    paths = {"exported": work / "exported" / "model.onnx", "optimized": work / "optimized" / "model.onnx"}
    export_classifier(loaded.model, loaded.tokenizer, paths["exported"])
    paths["optimizer"] = og.optimize_graph(paths["exported"], paths["optimized"], loaded.model.config)
    return paths


def test_optimizer_fuses_with_the_models_shape(graphs):
    opt = graphs["optimizer"]
    assert (opt["num_heads"], opt["hidden_size"]) == (2, 32)  # the model's real shape, not defaults
    # two layers: one Attention each, two SkipLayerNormalization each, embeddings fused once
    assert opt["attention_fused"] and opt["fusions"]["Attention"] == 2
    assert opt["fusions"]["SkipLayerNormalization"] == 4 and opt["fusions"]["EmbedLayerNormalization"] == 1
    assert og.graph_inputs(graphs["optimized"]) == ["input_ids", "attention_mask", "token_type_ids"]
    assert og.quantized_ops(graphs["optimized"]) == {}


def test_fusion_report(loaded, graphs):
    enc = loaded.tokenizer(TEXTS, padding=True, return_tensors="np")
    r = og.fusion_report(graphs["exported"], graphs["optimized"], enc, runs=3, warmup=1)
    assert r["runs"] == 3 and r["batches"] == 1 and r["unfused_ms"] > 0 and r["fused_ms"] > 0
    assert isinstance(r["fused_not_slower"], bool) and r["max_abs_diff"] < 1e-4
    assert (
        og.fusion_report(graphs["exported"], graphs["optimized"], [enc, enc], runs=1, warmup=0)["batches"]
        == 2
    )
    with pytest.raises(ConfigError):
        og.fusion_report(graphs["exported"], graphs["optimized"], enc, runs=0)


def test_calibration_reader(loaded, graphs):
    texts = TEXTS * 2
    names = og.graph_inputs(graphs["optimized"])
    reader = og.calibration_reader(loaded.tokenizer, texts, names)
    assert len(reader) == len(texts)
    feeds = [reader.get_next() for _ in range(len(texts))]
    assert reader.get_next() is None
    for f in feeds:
        assert sorted(f) == sorted(names) and all(a.dtype == np.int64 and a.shape[0] == 1 for a in f.values())
        assert f["attention_mask"].all()  # one text per batch: no padding in the calibration ranges
    reader.set_range(2, 4)
    assert [reader.get_next()["input_ids"].tolist() for _ in range(2)] == [
        f["input_ids"].tolist() for f in feeds[2:4]
    ]
    assert reader.get_next() is None
    reader.rewind()
    assert reader.get_next()["input_ids"].tolist() == feeds[0]["input_ids"].tolist()
    with pytest.raises(KeyError, match="position_ids"):
        og.calibration_reader(loaded.tokenizer, texts, [*names, "position_ids"])
