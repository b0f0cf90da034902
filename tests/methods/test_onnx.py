"""ONNX Runtime methods on the tiny BERT: fused fp32, int8 agreement, calibration, options, cleanup."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import torch  # noqa: E402

import accelbench.export.onnx_shared as osh  # noqa: E402
import accelbench.methods.onnx as om  # noqa: E402
from accelbench.exceptions import ConfigError, MethodNotApplicableError  # noqa: E402
from accelbench.export.classifier import torch_logits  # noqa: E402
from accelbench.methods import get_method, list_methods  # noqa: E402
from accelbench.methods.calibration import calibration_texts  # noqa: E402
from accelbench.models import load_checkpoint  # noqa: E402
from accelbench.runtimes import Classifier, Generator  # noqa: E402
from accelbench.runtimes.onnxruntime import OrtPredictor  # noqa: E402

ORT_METHODS = ("ort-fp32", "ort-dynamic-int8", "ort-static-int8")
TEXTS = [
    f"a {w} film , {v}"
    for w in ("good", "bad", "dull", "great", "boring")
    for v in ("really", "not", "so", "")
]


@pytest.fixture(scope="module")
def loaded(tiny_bert):
    return load_checkpoint(str(tiny_bert))


@pytest.fixture(scope="module")
def reference(loaded):
    return torch_logits(loaded.model, loaded.tokenizer, TEXTS)


@pytest.fixture(scope="module")
def fp32(loaded):
    v = get_method("ort-fp32").apply(loaded)
    yield v
    v.predictor.close()


def _assert_model_untouched(loaded):
    assert not loaded.model.training and not any(m.training for m in loaded.model.modules())
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())


def test_registered_families():
    assert set(ORT_METHODS) <= set(list_methods())
    for name in ORT_METHODS:
        m = get_method(name)
        assert m.unavailable_reason() is None and m.runtime == "onnxruntime"
        m.check("bert")
    for name in ("ort-fp32", "ort-dynamic-int8"):  # T5 through export.onnx_t5 (tests/export/test_onnx_t5.py)
        get_method(name).check("t5")
    with pytest.raises(MethodNotApplicableError) as e:  # static int8 calibrates classifier inputs only
        get_method("ort-static-int8").check("t5")
    assert "t5-family" in str(e.value) and "ort-dynamic-int8" in e.value.fix


def test_ort_fp32_matches_torch_and_fuses(loaded, reference, fp32):
    p = fp32.predictor
    assert isinstance(p, OrtPredictor) and fp32.runtime == "onnxruntime" and fp32.dtype == "fp32"
    np.testing.assert_allclose(p.logits(TEXTS), reference, atol=1e-4, rtol=0)
    assert (p.classify(TEXTS) == reference.argmax(-1)).all()
    # padding every batch to max_length changes nothing: the fused Attention honours the mask
    np.testing.assert_allclose(
        p.logits(TEXTS[:4], padding="max_length", max_length=32), reference[:4], atol=1e-4
    )
    opt = fp32.details["optimizer"]
    assert (opt["num_heads"], opt["hidden_size"]) == (2, 32)  # the model's real shape, not defaults
    assert isinstance(opt["fusions"], dict) and opt["attention_fused"]
    # two layers: one Attention each, two SkipLayerNormalization each, embeddings fused once
    assert opt["fusions"]["Attention"] == 2
    assert opt["fusions"]["SkipLayerNormalization"] == 4
    assert opt["fusions"]["EmbedLayerNormalization"] == 1
    assert fp32.details["opset"] >= 17
    s = fp32.details["session"]
    assert s["providers"] == ["CPUExecutionProvider"] and s["intra_op_num_threads"] == torch.get_num_threads()
    assert s["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert s["allow_spinning"] is False  # worker threads sleep between runs (onnxruntime.ALLOW_SPINNING)
    json.dumps(fp32.details)  # records store details as JSON
    assert fp32.size_mb == pytest.approx(os.path.getsize(p.graph_paths["optimized"]) / 2**20, rel=0.01)
    assert isinstance(p, Classifier) and not isinstance(p, Generator) and not hasattr(p, "generate")
    _assert_model_untouched(loaded)


def test_close_removes_the_graph_files(loaded):
    v = get_method("ort-dynamic-int8").apply(loaded)
    folder = v.predictor.workdir.name
    assert os.path.exists(v.predictor.model_path) and v.predictor.model_path.startswith(folder)
    v.predictor.close()
    assert not os.path.exists(folder)
    with pytest.raises(RuntimeError, match="closed"):
        v.predictor.classify(["good"])


def test_ort_variants_of_one_loaded_model_share_its_export(tiny_bert, monkeypatch):
    calls = []
    real = osh.export_classifier
    monkeypatch.setattr(osh, "export_classifier", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(osh, "_SHARED", {})
    first = load_checkpoint(str(tiny_bert))
    a = get_method({"name": "ort-fp32", "check_fusion": False}).apply(first)
    b = get_method("ort-dynamic-int8").apply(first)
    assert len(calls) == 1 and a.details["export"] == b.details["export"]
    shared = a.predictor.graph_paths["optimized"]
    assert shared == b.predictor.graph_paths["optimized"] == a.predictor.model_path
    a.predictor.close()  # the int8 variant keeps working: its own graph, and the shared ones are kept
    assert os.path.exists(shared)
    np.testing.assert_allclose(b.predictor.logits(TEXTS[:3]), b.predictor.logits(TEXTS[:3]))
    again = load_checkpoint(str(tiny_bert))  # another load of the same checkpoint: exported anew
    c = get_method({"name": "ort-fp32", "check_fusion": False}).apply(again)
    assert len(calls) == 2 and c.predictor.model_path != shared
    for v in (b, c):
        v.predictor.close()


def _check_int8(v, reference, fp32):
    out = v.predictor.logits(TEXTS)
    spread = np.abs(reference).max()
    diff = np.abs(out - reference).max()
    assert diff <= 0.1 * spread, (v.method, diff, spread)  # within 10% of the logit range
    # and really quantized: further from the fp32 graph than float rounding could move it
    assert np.abs(out - fp32.predictor.logits(TEXTS)).max() > 1e-3 * spread, v.method
    assert (out.argmax(-1) == reference.argmax(-1)).mean() >= 0.9
    json.dumps(v.details)
    assert v.details["optimizer"]["attention_fused"]


@pytest.mark.parametrize("per_channel", [False, True])
def test_dynamic_int8(loaded, reference, fp32, per_channel):
    v = om.OrtDynamicInt8(per_channel=per_channel).apply(loaded)
    try:
        _check_int8(v, reference, fp32)
        q = v.details["quantization"]
        assert q["per_channel"] is per_channel and isinstance(q["reduce_range"], bool)
        assert q["quantized_ops"]["QAttention"] == 2 and q["quantized_ops"]["MatMulInteger"] > 0
        assert v.size_mb < 0.5 * fp32.size_mb  # embeddings quantized too (QEmbedLayerNormalization)
    finally:
        v.predictor.close()


@pytest.mark.parametrize("calibration", ["minmax", "entropy", "percentile"])
def test_static_int8_calibrations(loaded, reference, fp32, calibration):
    v = om.OrtStaticInt8(calibration=calibration, samples=16).apply(loaded)
    try:
        _check_int8(v, reference, fp32)
        q = v.details["quantization"]
        assert (q["calibration"], q["samples"], q["calibration_task"]) == (calibration, 16, "sst2")
        assert q["format"] == "QDQ" and q["quantized_ops"]["QuantizeLinear"] > 0
        assert v.size_mb < fp32.size_mb  # int8 linear weights; embeddings stay float in static QDQ
    finally:
        v.predictor.close()


def test_static_int8_defaults_and_per_channel(loaded, reference, fp32):
    default = get_method("ort-static-int8")
    assert default.options == {
        "calibration": "minmax", "samples": 128, "per_channel": False, "task": None, "reduce_range": None,
        "require_fusion": False, "intra_op_num_threads": None,
    }  # fmt: skip
    v = om.OrtStaticInt8(per_channel=True, task="sst2").apply(loaded)
    try:
        _check_int8(v, reference, fp32)
        assert v.details["quantization"]["per_channel"] is True
        assert v.details["quantization"]["samples"] == 64  # the tiny train split has 64 texts: all of them
    finally:
        v.predictor.close()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"calibration": "kl"}, "minmax, entropy, percentile"),
        ({"samples": 0}, "samples"),
        ({"samples": -3}, "samples"),
        ({"samples": 2.5}, "samples"),
    ],
)
def test_static_int8_bad_options(kw, match):
    with pytest.raises(ConfigError, match=match):
        om.OrtStaticInt8(**kw)


def test_calibration_texts_come_from_training_texts():
    from accelbench.tasks import get_task, load_task

    texts = calibration_texts("sst2", 10)
    assert texts == calibration_texts("sst2", 10)  # seeded
    assert len(texts) == 10 and set(texts) <= set(load_task("sst2")[get_task("sst2").train_split]["text"])
    with pytest.raises(ConfigError, match="classification"):
        calibration_texts("multi30k", 4)


def test_ort_fp32_records_the_fused_vs_unfused_check(loaded, fp32):
    from accelbench.analysis import plots

    check = fp32.details["fusion_check"]  # on by default for ort-fp32, on two batches of task texts
    assert check["batches"] == 2 and check["unfused_ms"] > 0 and check["max_abs_diff"] < 1e-4
    assert get_method({"name": "ort-fp32", "check_fusion": False}).label != "ort-fp32"
    dyn = get_method("ort-dynamic-int8")
    assert "check_fusion" not in dyn.options  # the int8 methods share the graph: checked once
    import pandas as pd

    rec = pd.DataFrame([{"status": "ok", "variant": "m:ort-fp32", "runtime": "onnxruntime",
                         "variant_details": json.dumps(fp32.details)}])  # fmt: skip
    table = plots.fusion_table(rec)
    assert table.loc[0, "fused ms"] == check["fused_ms"] and "Attention" in table.loc[0, "fusions"]


def test_package_imports_without_onnxruntime():
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "import accelbench.methods as c\n"
        "from accelbench.methods import onnx\n"
        "from accelbench.exceptions import MethodNotApplicableError\n"
        "m = c.get_method('ort-fp32')\n"
        "assert 'onnxruntime' in m.unavailable_reason()\n"
        "try:\n    m.check('bert')\nexcept MethodNotApplicableError:\n    print('refused')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "refused"


def test_require_fusion_refuses_an_unfused_graph(loaded, monkeypatch):
    real = osh.optimize_graph

    def unfused(src, dst, config):
        return {**real(src, dst, config), "attention_fused": False, "fusions": {}}

    monkeypatch.setattr(osh, "optimize_graph", unfused)
    monkeypatch.setattr(osh, "_SHARED", {})  # not the graphs an earlier test's variant optimized
    with pytest.raises(MethodNotApplicableError, match="fused no attention"):
        get_method({"name": "ort-dynamic-int8", "require_fusion": True}).apply(loaded)
    v = get_method({"name": "ort-dynamic-int8", "intra_op_num_threads": 1}).apply(loaded)  # warns, runs
    try:
        assert v.method == "ort-dynamic-int8[intra_op_num_threads=1]"
        assert (
            v.details["session"]["intra_op_num_threads"] == 1
            and not v.details["optimizer"]["attention_fused"]
        )
    finally:
        v.predictor.close()
