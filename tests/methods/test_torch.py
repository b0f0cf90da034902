"""PyTorch eager methods on tiny models: int8 and bf16 agree with fp32, generate, leave the source alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from accelbench.exceptions import MethodNotApplicableError
from accelbench.methods import get_method
from accelbench.models import load_checkpoint
from accelbench.runtimes import Classifier, Generator, TorchClassifier, TorchGenerator

TEXTS = [f"a {w} film , {v}" for w in ("good", "bad", "dull", "great") for v in ("really", "not", "so", "")]


def _logits(variant, texts):
    enc = variant.predictor.encode(texts)
    with torch.inference_mode():
        return variant.predictor.model(**enc).logits.float().numpy()


def _runnable(name: str):
    method = get_method(name)
    reason = method.unavailable_reason()
    if reason:
        pytest.skip(f"{name}: {reason}")
    return method


def test_int8_agrees_with_fp32_on_tiny_bert(tiny_bert):
    loaded = load_checkpoint(str(tiny_bert))
    fp32 = get_method("fp32").apply(loaded)
    assert isinstance(fp32.predictor, TorchClassifier) and not isinstance(fp32.predictor, Generator)
    ref = _logits(fp32, TEXTS)
    int8 = get_method("dynamic-int8").apply(loaded)
    # int8 logits within 5% of the logit range: the quantization error of a 32-wide model
    assert np.abs(_logits(int8, TEXTS) - ref).max() <= 0.05 * np.abs(ref).max() + 1e-3
    assert int8.size_mb < fp32.size_mb
    # q,k,v,o,ffn-in,ffn-out per layer + pooler + classifier
    assert int8.details["quantized_linear_layers"] == 2 * 6 + 2
    # the source model is untouched: still float32 Linear layers
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())


def test_bf16_agrees_with_fp32_on_tiny_bert(tiny_bert):
    method = _runnable("bf16")
    loaded = load_checkpoint(str(tiny_bert))
    fp32 = get_method("fp32").apply(loaded)
    ref = _logits(fp32, TEXTS)
    v = method.apply(loaded)
    assert np.abs(_logits(v, TEXTS) - ref).max() <= 0.05 * np.abs(ref).max() + 1e-3
    assert v.size_mb < fp32.size_mb and v.dtype == "bf16"


def test_bf16_is_refused_without_native_bf16(monkeypatch, tiny_bert):
    import accelbench.methods.torch as torch_methods

    monkeypatch.setattr(torch_methods, "supports_bf16", lambda: False)
    method = get_method("bf16")
    assert "bfloat16" in method.unavailable_reason()
    with pytest.raises(MethodNotApplicableError, match="bfloat16"):
        method.apply(load_checkpoint(str(tiny_bert)))


def test_methods_generate_on_tiny_t5(tiny_t5):
    loaded = load_checkpoint(str(tiny_t5))
    texts = ["a man rides a bike .", "two dogs play in the snow ."]
    ref = get_method("fp32").apply(loaded).predictor
    assert isinstance(ref, TorchGenerator) and not isinstance(ref, Classifier)
    assert len(ref.generate(texts, max_new_tokens=6).texts) == 2
    names = ["dynamic-int8"] + (["bf16"] if get_method("bf16").unavailable_reason() is None else [])
    for name in names:
        out = get_method(name).apply(loaded).predictor.generate(texts, max_new_tokens=6)
        assert len(out.texts) == 2 and out.new_tokens >= 0, name
