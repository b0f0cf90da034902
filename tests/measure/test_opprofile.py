"""Operator profiles of tiny models: classes from op names, torch and ORT profilers, clean-up, no profiler."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from accelbench.measure import opprofile
from accelbench.measure.opprofile import OP_CLASSES, classify_op, profile_ops, record_fields
from accelbench.methods import get_method
from accelbench.models import load_checkpoint
from accelbench.records import flatten

TEXTS = ["a wonderful , moving film", "boring and far too long", "a joy to watch", "flat and tedious"]
GEN = {"max_new_tokens": 4}

KNOWN = {
    "aten::addmm": "matmul", "aten::mm": "matmul", "aten::linear": "matmul", "aten::matmul": "matmul",
    "aten::_int_mm": "matmul", "quantized::linear_dynamic": "matmul", "onednn::qlinear_pointwise": "matmul",
    "mkldnn::_linear_pointwise": "matmul", "aten::bmm": "attention", "aten::baddbmm": "attention",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "attention", "aten::scaled_dot_product_attention":
    "attention", "aten::softmax": "softmax", "aten::_softmax": "softmax", "aten::_safe_softmax": "softmax",
    "aten::layer_norm": "layernorm", "aten::native_layer_norm": "layernorm", "accelbench::norm::T5LayerNorm":
    "layernorm", "aten::gelu": "activation", "aten::relu": "activation", "aten::tanh": "activation",
    "aten::quantize_per_tensor_dynamic": "quantize", "aten::dequantize": "quantize",
    "quantized_decomposed::quantize_per_tensor": "quantize", "torchao::quantize_affine": "quantize",
    "torchao::choose_qparams_affine": "quantize", "## Call CompiledFxGraph None ##": "fused",
    "cpp_fused_add_native_layer_norm_0": "fused", "aten::index_select": "other", "aten::view": "other",
    "aten::copy_": "other", "TorchDynamo Cache Lookup": "other",
    "MatMul": "matmul", "Gemm": "matmul", "FusedGemm": "matmul", "MatMulInteger": "matmul",
    "MatMulIntegerToFloat": "matmul", "DynamicQuantizeMatMul": "matmul", "QLinearMatMul": "matmul",
    "QGemm": "matmul", "FusedMatMul": "matmul", "Attention": "attention", "QAttention": "attention",
    "MultiHeadAttention": "attention", "DecoderMaskedMultiHeadAttention": "attention", "Softmax": "softmax",
    "LayerNormalization": "layernorm", "SkipLayerNormalization": "layernorm",
    "EmbedLayerNormalization": "layernorm", "QEmbedLayerNormalization": "layernorm",
    "SimplifiedLayerNormalization": "layernorm", "SkipSimplifiedLayerNormalization": "layernorm",
    "Gelu": "activation", "FastGelu": "activation", "BiasGelu": "activation", "Relu": "activation",
    "QuantizeLinear": "quantize", "DequantizeLinear": "quantize", "DynamicQuantizeLinear": "quantize",
    "Gather": "other", "Transpose": "other", "Cast": "other", "Reshape": "other", "SomethingNew": "other",
}  # fmt: skip


@pytest.mark.parametrize("name, expected", sorted(KNOWN.items()))
def test_the_table_maps_known_names_to_their_class(name, expected):
    assert classify_op(name) == expected


def test_ort_matmuls_of_two_activations_are_attention_and_norm_scopes_are_norms():
    weight = [{"float": [32, 7, 32]}, {"float": [32, 32]}]
    batched = [{"float": [32, 2, 7, 16]}, {"float": [32, 2, 16, 7]}]
    assert opprofile._ort_class("MatMul", weight) == "matmul"
    assert opprofile._ort_class("FusedMatMul", batched) == "attention"
    assert (
        opprofile._ort_class("Pow", [], "/encoder/block.0/layer.0/layer_norm/Pow_kernel_time") == "layernorm"
    )
    assert opprofile._ort_class("Div", [], "/decoder/Div_kernel_time") == "other"


def _check_shares(result: dict, profiler: str) -> None:
    assert result["available"] and result["profiler"] == profiler
    assert list(result["shares"]) == list(OP_CLASSES)
    assert sum(result["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    assert (
        result["op_ms_per_batch"] > 0 and result["wall_ms_per_batch"] > 0 and 0 < result["op_coverage"] <= 1
    )
    assert result["top_ops"] and all(
        o["class"] in OP_CLASSES for o in result["top_ops"] + result["other_ops"]
    )
    assert all(o["class"] == "other" for o in result["other_ops"])


@pytest.fixture(scope="module")
def bert(tiny_bert):
    return load_checkpoint(str(tiny_bert))


@pytest.fixture(scope="module")
def t5(tiny_t5):
    return load_checkpoint(str(tiny_t5))


def test_torch_fp32_spends_time_in_matmuls_and_leaves_no_hooks(bert):
    predictor = get_method("fp32").apply(bert).predictor
    result = profile_ops(predictor, "classification", TEXTS, batch_size=8, calls=2, warmup=1)
    _check_shares(result, "torch.profiler")
    assert result["shares"]["matmul"] > 0 and result["shares"]["layernorm"] > 0
    assert result["batch_size"] == 8 and result["calls"] == 2
    classes = {o["op"]: o["class"] for o in result["top_ops"]}
    assert classes.get("aten::addmm") == "matmul"
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in predictor.model.modules())


def test_dynamic_int8_linear_kernels_count_as_matmul(bert):
    predictor = get_method("dynamic-int8").apply(bert).predictor
    result = profile_ops(predictor, "classification", TEXTS, batch_size=8, calls=2, warmup=1)
    _check_shares(result, "torch.profiler")
    ops = {o["op"]: o for o in result["top_ops"]}
    assert ops["quantized::linear_dynamic"]["class"] == "matmul"
    assert result["shares"]["matmul"] >= ops["quantized::linear_dynamic"]["share"] > 0


def test_torch_t5_generation_counts_its_rmsnorm(t5):
    predictor = get_method("fp32").apply(t5).predictor
    result = profile_ops(predictor, "seq2seq", TEXTS, batch_size=4, calls=1, warmup=1, **GEN)
    _check_shares(result, "torch.profiler")
    assert result["shares"]["layernorm"] > 0 and result["shares"]["matmul"] > 0


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("accelbench-ortprof-*")}


def test_ort_classifier_profiles_op_types_and_cleans_up(bert, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    before = _leftovers()
    variant = get_method({"name": "ort-fp32", "check_fusion": False}).apply(bert)  # no timing: faster
    predictor = variant.predictor
    try:
        session = predictor.session
        result = profile_ops(predictor, "classification", TEXTS, batch_size=8, calls=2, warmup=1)
        _check_shares(result, "onnxruntime")
        ops = {o["op"]: o["class"] for o in result["top_ops"] + result["other_ops"]}
        assert {"Attention", "MatMul"} & set(ops) and ops.get("Attention", "attention") == "attention"
        assert all("::" not in op for op in ops)  # op types, not torch names
        assert predictor.session is session  # the profiling copy is gone, the measured session is back
        assert predictor.logits(TEXTS).shape == (len(TEXTS), 2)
        encode, encoded = predictor.encode, []

        def fail_after_warmup(
            *args,
        ):  # the warm-up on the profiling copy passes, the first profiled call fails
            encoded.append(args)
            if len(encoded) > 1:
                raise RuntimeError("mid-profile")
            return encode(*args)

        monkeypatch.setattr(predictor, "encode", fail_after_warmup)
        failed = profile_ops(predictor, "classification", TEXTS, batch_size=8, calls=2, warmup=1)
        assert failed["available"] is False and "RuntimeError: mid-profile" in failed["reason"]
        assert predictor.session is session  # restored after a failure too
    finally:
        predictor.close()
    assert not list(tmp_path.glob("*.json")) and _leftovers() <= before


def test_ort_seq2seq_profiles_both_sessions(t5):
    pytest.importorskip("onnxruntime")
    predictor = get_method("ort-fp32").apply(t5).predictor
    try:
        result = profile_ops(predictor, "seq2seq", TEXTS, batch_size=4, calls=2, warmup=1, **GEN)
        _check_shares(result, "onnxruntime")
        sessions = result["sessions_ms_per_batch"]
        assert set(sessions) == {"encoder", "decoder"} and min(sessions.values()) > 0
        assert sum(sessions.values()) == pytest.approx(result["op_ms_per_batch"], rel=1e-3)
        assert {o["op"].split(":")[0] for o in result["top_ops"] + result["other_ops"]} == {
            "encoder",
            "decoder",
        }
        assert result["shares"]["matmul"] > 0 and result["shares"]["attention"] > 0
    finally:
        predictor.close()


def test_ctranslate2_has_no_profiler(t5):
    pytest.importorskip("ctranslate2")
    predictor = get_method("ct2-int8").apply(t5).predictor
    try:
        result = profile_ops(predictor, "seq2seq", TEXTS, **GEN)
    finally:
        predictor.close()
    assert result["available"] is False and "CTranslate2" in result["reason"]
    assert record_fields(result) == {"op_profile_note": result["reason"]}


class _Broken:
    runtime = "pytorch"

    def logits(self, texts, padding, max_length):
        raise RuntimeError("boom")


def test_a_failed_profile_is_a_reason_not_an_error():
    result = profile_ops(_Broken(), "classification", TEXTS, batch_size=2, calls=1, warmup=0)
    assert result == {"available": False, "reason": "profiling failed: RuntimeError: boom"}
    other = type("Other", (), {"runtime": "tvm"})()
    assert "no per-operator profiler" in profile_ops(other, "classification", TEXTS)["reason"]
    with pytest.raises(ValueError, match="kind"):
        profile_ops(_Broken(), "detection", TEXTS)


def test_record_fields_flatten_to_one_column_per_class():
    result = {"available": True, "profiler": "onnxruntime", "shares": dict.fromkeys(OP_CLASSES, 0.125),
              "op_ms_per_batch": 1.5, "wall_ms_per_batch": 2.0, "top_ops": [{"op": "MatMul"}], "other_ops": []}  # fmt: skip
    flat = flatten(record_fields(result))
    assert {f"op_shares_{c}" for c in OP_CLASSES} <= set(flat)
    assert flat["op_profiler"] == "onnxruntime" and flat["op_ms_per_batch"] == 1.5
    assert '"MatMul"' in flat["op_top"]


@pytest.mark.slow  # compiles with TorchInductor
def test_pt2e_int8_shows_onednn_matmuls_and_inductor_kernels(bert):
    method = get_method("pt2e-int8")
    if method.unavailable_reason():
        pytest.skip(method.unavailable_reason())
    predictor = method.apply(bert).predictor
    result = profile_ops(predictor, "classification", TEXTS, batch_size=8, calls=2, warmup=1)
    _check_shares(result, "torch.profiler")
    ops = {o["op"]: o["class"] for o in result["top_ops"]}
    assert ops.get("onednn::qlinear_pointwise") == "matmul"
    assert (
        result["shares"]["fused"] > 0
    )  # TorchInductor's C++ kernels, inside its "## Call CompiledFxGraph" scope


class _Stub:
    """A 'PyTorch predictor' whose batch is one matmul and one softmax: shares of two known classes only."""

    runtime = "pytorch"

    def __init__(self):
        self.calls = []

    def logits(self, texts, padding, max_length):
        import torch

        self.calls.append((len(texts), padding, max_length))
        x = torch.randn(64, 64)
        return torch.softmax(x @ x, -1)


def test_only_the_profiled_ops_count_and_the_benchmark_options_reach_the_predictor():
    stub = _Stub()
    result = profile_ops(stub, "classification", TEXTS, batch_size=5, calls=2, warmup=1, padding="max_length",
                         max_length=16)  # fmt: skip
    assert stub.calls == [(5, "max_length", 16)] * 4  # warm-up, the profiler's own warm-up step, 2 calls
    shares = {c: v for c, v in result["shares"].items() if v > 0}
    assert set(shares) <= {"matmul", "softmax", "other"} and shares["matmul"] > 0 and shares["softmax"] > 0
    assert {o["op"] for o in result["top_ops"]} >= {"aten::mm", "aten::_softmax"}
