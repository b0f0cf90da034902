"""Compression methods on tiny models: registry, applicability, and agreement with fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from accelbench.compress import Method, get_method, list_methods, register_method
from accelbench.compress.base import _METHODS
from accelbench.exceptions import MethodNotApplicableError, UnknownNameError
from accelbench.models import load_model


def test_registry_names():
    assert {"fp32", "bf16", "dynamic-int8"} <= set(list_methods())
    with pytest.raises(UnknownNameError) as e:
        get_method("int3")
    assert "dynamic-int8" in str(e.value)


def test_method_refused_for_other_family():
    @register_method
    class BertOnly(Method):
        name = "bert-only-test"
        families = ("bert",)

        def apply(self, loaded):
            raise AssertionError("never reached")

    try:
        with pytest.raises(MethodNotApplicableError) as e:
            get_method("bert-only-test").check("t5")
        assert "t5-family" in str(e.value) and "dynamic-int8" in e.value.fix
    finally:
        _METHODS.pop("bert-only-test")


def _logits(variant, loaded, texts):
    enc = variant.predictor.encode(texts)
    with torch.inference_mode():
        return variant.predictor.model(**enc).logits.float().numpy()


def test_int8_and_bf16_agree_with_fp32_on_tiny_bert(tiny_bert):
    loaded = load_model(str(tiny_bert))
    texts = [
        f"a {w} film , {v}" for w in ("good", "bad", "dull", "great") for v in ("really", "not", "so", "")
    ]
    ref = _logits(get_method("fp32").apply(loaded), loaded, texts)
    fp32 = get_method("fp32").apply(loaded)
    for name, tol in (("dynamic-int8", 0.05), ("bf16", 0.05)):
        v = get_method(name).apply(loaded)
        out = _logits(v, loaded, texts)
        spread = np.abs(ref).max()
        assert np.abs(out - ref).max() <= tol * spread + 1e-3, name  # logits within a few % of their range
        assert v.size_mb < fp32.size_mb, name
    int8 = get_method("dynamic-int8").apply(loaded)
    assert (
        int8.details["quantized_linear_layers"] == 2 * 6 + 2
    )  # q,k,v,o,ffn-in,ffn-out per layer + pooler + classifier
    # the source model is untouched: still float32 Linear layers
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())


def test_methods_generate_on_tiny_t5(tiny_t5):
    loaded = load_model(str(tiny_t5))
    texts = ["a man rides a bike .", "two dogs play in the snow ."]
    ref = get_method("fp32").apply(loaded).predictor.generate(texts, max_new_tokens=6)
    for name in ("bf16", "dynamic-int8"):
        out = get_method(name).apply(loaded).predictor.generate(texts, max_new_tokens=6)
        assert len(out.texts) == 2 and out.new_tokens >= 0
    assert len(ref.texts) == 2


def test_methods_with_options_get_their_own_label():
    from accelbench.exceptions import ConfigError

    @register_method
    class WithOptions(Method):
        name = "with-options-test"

        def __init__(self, calibration: str = "minmax", samples: int = 128):
            self.options = {"calibration": calibration, "samples": samples}

        def apply(self, loaded):
            raise AssertionError

    try:
        assert get_method("with-options-test").label == "with-options-test"
        m = get_method({"name": "with-options-test", "calibration": "entropy"})
        assert m.label == "with-options-test[calibration=entropy]" and m.options["samples"] == 128
        with pytest.raises(ConfigError, match="its options are: calibration, samples"):
            get_method({"name": "with-options-test", "colour": "red"})
        with pytest.raises(ConfigError, match="has no `name`"):
            get_method({"calibration": "entropy"})
    finally:
        _METHODS.pop("with-options-test")
