"""Units and the per-unit fp32 fallback (``fp32_units``) of the four int8 methods on the tiny models."""

from __future__ import annotations

import json

import pytest
import torch

from accelbench.exceptions import ConfigError
from accelbench.methods import get_method
from accelbench.methods.units import UnitList, model_units, onnx_float_weight_nodes, onnx_node_units, units
from accelbench.models import load_checkpoint

TEXTS = ["a good film , really", "a dull film", "not bad at all"]


@pytest.fixture(scope="module")
def bert(tiny_bert):
    return load_checkpoint(str(tiny_bert))


@pytest.fixture(scope="module")
def t5(tiny_t5):
    return load_checkpoint(str(tiny_t5))


def _runnable(name: str):
    reason = get_method(name).unavailable_reason()
    if reason:
        pytest.skip(f"{name}: {reason}")


def test_units_of_tiny_bert_and_t5(bert, t5):
    assert units(bert.model) == ["layer.0", "layer.1", "pooler", "classifier"]
    assert units(t5.model) == ["encoder.0", "decoder.0", "lm_head"]
    mu = model_units(bert.model)
    assert (
        mu.linears["layer.1"][0] == "bert.encoder.layer.1.attention.self.query"
        and len(mu.linears["layer.1"]) == 6
    )
    assert model_units(t5.model).roots["decoder.0"] == "decoder.block.0"


def test_option_is_sorted_hashable_compact_and_keeps_old_keys():
    m = get_method({"name": "dynamic-int8", "fp32_units": ["layer.1", "classifier", "layer.0", "layer.1"]})
    assert m.opts.fp32_units == ("classifier", "layer.0", "layer.1") and hash(m.opts)
    assert m.label == "dynamic-int8[fp32_units=classifier+layer.0-1]"
    assert str(UnitList(["layer.2", "layer.10", "layer.3", "pooler"])) == "layer.2-3+layer.10+pooler"
    # rebuilt from a record's JSON options: the same label and options (so the same key)
    again = get_method({"name": "dynamic-int8", **json.loads(json.dumps(m.options))})
    assert again.label == m.label and again.options == m.options
    for name in ("dynamic-int8", "ort-dynamic-int8", "ort-static-int8", "pt2e-int8"):
        assert "fp32_units" not in get_method(name).options and get_method(name).label == name  # old keys
    with pytest.raises(ConfigError, match="list of unit names"):
        get_method({"name": "pt2e-int8", "fp32_units": [3]})


@pytest.mark.parametrize("name", ["dynamic-int8", "ort-dynamic-int8", "ort-static-int8", "pt2e-int8"])
def test_unknown_unit_fails_before_any_work(name, bert, monkeypatch):
    import accelbench.export.onnx_shared as osh
    import accelbench.methods.pt2e as pm

    _runnable(name)

    def no_work(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr(osh, "export_classifier", no_work)
    monkeypatch.setattr(osh, "_SHARED", {})  # no export of an earlier test to reuse: any work would show
    monkeypatch.setattr(pm, "torch_export_classifier", no_work)
    monkeypatch.setattr(torch.ao.quantization, "quantize_dynamic", no_work)
    with pytest.raises(ConfigError, match=r"no unit\(s\) layer.7.*layer.0, layer.1, pooler, classifier"):
        get_method({"name": name, "fp32_units": ["layer.7"]}).apply(bert)


def test_dynamic_int8_leaves_kept_units_float(bert, t5):
    v = get_method({"name": "dynamic-int8", "fp32_units": ["layer.0", "classifier"]}).apply(bert)
    floats = {n for n, m in v.predictor.model.named_modules() if type(m) is torch.nn.Linear}
    assert floats == set(model_units(bert.model).linears["layer.0"]) | {"classifier"}
    assert v.details["quantized_linear_layers"] == 7 and v.details["fp32_linear_layers"] == 7
    assert v.details["fp32_units"] == ["classifier", "layer.0"]
    out = get_method({"name": "dynamic-int8", "fp32_units": ["decoder.0"]}).apply(t5)
    floats = {n for n, m in out.predictor.model.named_modules() if type(m) is torch.nn.Linear}
    assert floats == set(model_units(t5.model).linears["decoder.0"])
    assert len(out.predictor.generate(["a man rides a bike ."], max_new_tokens=4).texts) == 1


def _float_units(path, loaded) -> dict[str, int]:
    """unit -> weight-bearing nodes still float in the graph at ``path``."""
    by_unit = onnx_node_units(path, loaded.model)
    counts: dict[str, int] = {}
    for n in onnx_float_weight_nodes(path):
        counts[by_unit.get(n, "?")] = counts.get(by_unit.get(n, "?"), 0) + 1
    return counts


def _ort_pair(name: str, loaded, kept: list[str], **opts):
    """The final graphs (copied) and quantized-op counts of ``name`` without and with ``fp32_units``."""
    out = []
    for units_ in ([], kept):
        v = get_method({"name": name, "fp32_units": units_, **opts}).apply(loaded)
        try:
            paths = v.predictor.graph_paths
            out.append((paths["final"], v.details["quantization"], _float_units_of(paths["final"], loaded)))
        finally:
            v.predictor.close()
    return out


def _float_units_of(final: str, loaded):
    from pathlib import Path

    p = Path(final)
    if p.is_dir():  # t5: encoder and decoder graphs
        totals: dict[str, int] = {}
        for g in sorted(p.glob("*.onnx")):
            for u, c in _float_units(g, loaded).items():
                totals[u] = totals.get(u, 0) + c
        return totals
    return _float_units(p, loaded)


@pytest.mark.slow
def test_ort_dynamic_int8_leaves_exactly_the_kept_layer_float(bert):
    _runnable("ort-dynamic-int8")
    (_, q_all, f_all), (_, q_kept, f_kept) = _ort_pair("ort-dynamic-int8", bert, ["layer.0", "classifier"])
    # every weight-bearing node is quantized by default; the kept ones: layer.0's fused attention and 3 MatMuls,
    # the classifier's Gemm
    assert f_all == {}
    assert f_kept == {"layer.0": 4, "classifier": 1}
    ops_all, ops_kept = q_all["quantized_ops"], q_kept["quantized_ops"]
    assert ops_all["QAttention"] - ops_kept["QAttention"] == 1
    matmuls = ("MatMulInteger", "DynamicQuantizeMatMul")
    assert sum(ops_all.get(k, 0) for k in matmuls) - sum(ops_kept.get(k, 0) for k in matmuls) == 4
    assert (
        q_kept["fp32_units"] == ["classifier", "layer.0"] and q_kept["excluded_node_names"] == 6
    )  # 5 nodes; the Gemm under its rewritten name too


@pytest.mark.slow
def test_ort_static_int8_leaves_exactly_the_kept_layer_float(bert):
    _runnable("ort-static-int8")
    (_, _, f_all), (_, q_kept, f_kept) = _ort_pair("ort-static-int8", bert, ["layer.1"], samples=4)
    # static QDQ quantizes MatMul/Gemm only: the fused attentions stay float either way
    assert f_all == {"layer.0": 1, "layer.1": 1}
    assert f_kept == {"layer.0": 1, "layer.1": 4}
    assert q_kept["fp32_units"] == ["layer.1"]


@pytest.mark.slow
def test_ort_dynamic_int8_t5_leaves_the_kept_block_float(t5):
    _runnable("ort-dynamic-int8")
    (_, _, f_all), (_, q_kept, f_kept) = _ort_pair("ort-dynamic-int8", t5, ["encoder.0"])
    assert "encoder.0" not in f_all
    assert f_kept["encoder.0"] == 6 and {k: v for k, v in f_kept.items() if k != "encoder.0"} == f_all
    assert q_kept["fp32_units"] == ["encoder.0"] and "fp32_units_without_nodes" not in q_kept


@pytest.mark.slow  # compiles
def test_pt2e_int8_leaves_the_kept_layer_float(bert):
    _runnable("pt2e-int8")
    v = get_method({"name": "pt2e-int8", "fp32_units": ["layer.0"], "samples": 4}).apply(bert)
    by_unit = v.details["linear_ops_by_unit"]
    assert by_unit["layer.0"] == {"int8": 0, "fp32": 6}
    assert by_unit["layer.1"] == {"int8": 6, "fp32": 0} and by_unit["classifier"] == {"int8": 1, "fp32": 0}
    assert v.details["fp32_linear_ops"] == 6 and v.details["int8_linear_ops"] == 8
    assert len(v.predictor.classify(TEXTS)) == len(TEXTS)
