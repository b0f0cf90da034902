"""torchao methods on tiny models: agreement with fp32, generation, refusal when unavailable, options."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("torchao")

import accelbench.methods.torchao as tm  # noqa: E402
from accelbench.exceptions import ConfigError, MethodNotApplicableError  # noqa: E402
from accelbench.methods import get_method, list_methods  # noqa: E402
from accelbench.models import load_checkpoint  # noqa: E402

# each method, with options that fit the 32-wide tiny models, and its tolerance: the largest logit difference
# from fp32 as a fraction of the largest fp32 logit (int4 rounds coarser than int8, so it gets twice the room)
METHODS = [
    ("torchao-int8-dynamic", 0.05),
    ("torchao-int8-weight", 0.05),
    ({"name": "torchao-int4-weight", "group_size": 32}, 0.10),
]
TEXTS = [f"a {w} film , {v}" for w in ("good", "bad", "dull", "great") for v in ("really", "not", "so", "")]


def _available():
    """The methods that run here, or a skip that names why none does."""
    ok, why = [], {}
    for spec, tol in METHODS:
        m = get_method(spec)
        reason = m.unavailable_reason()
        if reason:
            why[m.label] = reason
        else:
            ok.append((m, tol))
    if not ok:
        pytest.skip(f"no torchao method runs here: {why}")
    return ok


def _logits(variant, texts):
    enc = variant.predictor.encode(texts)
    with torch.inference_mode():
        return variant.predictor.model(**enc).logits.float().numpy()


def test_methods_are_registered():
    assert {"torchao-int8-dynamic", "torchao-int8-weight", "torchao-int4-weight"} <= set(list_methods())
    assert get_method("torchao-int8-dynamic").dtype == "int8"
    assert get_method("torchao-int8-weight").dtype == "fp32"  # weight-only: the matmuls run in float32


def test_agree_with_fp32_on_tiny_bert(tiny_bert):
    loaded = load_checkpoint(str(tiny_bert))
    fp32 = get_method("fp32").apply(loaded)
    ref = _logits(fp32, TEXTS)
    spread = np.abs(ref).max()
    for method, tol in _available():
        v = method.apply(loaded)
        out = _logits(v, TEXTS)
        assert np.abs(out - ref).max() <= tol * spread + 1e-3, method.label
        assert v.size_mb < fp32.size_mb, method.label
        d = v.details
        assert d["torchao"] and d["config"], method.label
        query = v.predictor.model.bert.encoder.layer[0].attention.self.query
        assert type(query.weight) not in (torch.Tensor, torch.nn.Parameter), (
            method.label
        )  # torchao's subclass
        if method.name == "torchao-int4-weight":
            # q,k,v,o,ffn-in,ffn-out per layer + pooler; the 2-label classifier cannot be packed for int4
            assert d["quantized_linear_layers"] == 2 * 6 + 1 and list(d["skipped_layers"]) == ["classifier"]
            assert d["group_size"] == 32 and d["weights"] == "int4"
        else:
            assert d["quantized_linear_layers"] == 2 * 6 + 2 and d["skipped_layers"] == {}, method.label
    # the source model is untouched: still float32 nn.Linear weights
    assert all(type(p) is torch.nn.Parameter and p.dtype == torch.float32 for p in loaded.model.parameters())


def test_generate_on_tiny_t5(tiny_t5):
    loaded = load_checkpoint(str(tiny_t5))
    tied = loaded.model.lm_head.weight is loaded.model.shared.weight
    texts = ["a man rides a bike .", "two dogs play in the snow ."]
    for method, _ in _available():
        v = method.apply(loaded)
        out = v.predictor.generate(texts, max_new_tokens=6)
        assert len(out.texts) == 2 and 0 <= out.new_tokens <= 2 * 6, method.label
        d = v.details
        # lm_head is either quantized (then no longer tied to the float32 embedding) or left in float32
        assert ("lm_head" in d["untied"]) == (tied and "lm_head" not in d["skipped_layers"]), method.label
    assert (loaded.model.lm_head.weight is loaded.model.shared.weight) == tied  # the source keeps its tying
    assert all(type(p) is torch.nn.Parameter and p.dtype == torch.float32 for p in loaded.model.parameters())


def test_no_layer_fits_the_group_size(tiny_bert):
    loaded = load_checkpoint(str(tiny_bert))
    m = get_method("torchao-int4-weight")  # group_size 128 > the tiny model's 32 / 64 inputs
    if m.unavailable_reason():
        pytest.skip(m.unavailable_reason())
    with pytest.raises(MethodNotApplicableError, match="no Linear layer") as e:
        m.apply(loaded)
    assert "group_size" in e.value.fix


def test_unavailable_without_torchao(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao", None)  # `import torchao` now raises ImportError
    for name in ("torchao-int8-dynamic", "torchao-int8-weight", "torchao-int4-weight"):
        m = get_method(name)
        assert "pip install torchao" in m.unavailable_reason()
        with pytest.raises(MethodNotApplicableError, match="pip install torchao"):
            m.check("bert")


def test_unavailable_when_the_config_fails_here(monkeypatch):
    """A config whose kernels this machine lacks is refused by check(), with torchao's own error."""
    from torchao.quantization import Int4WeightOnlyConfig

    monkeypatch.setattr(tm, "_PROBES", {})
    # torchao 0.18's stable int4 config: its default packing needs mslk (CUDA kernels)
    monkeypatch.setattr(
        tm.TorchaoInt4Weight, "_config", lambda self: Int4WeightOnlyConfig(set_inductor_config=False)
    )
    m = get_method("torchao-int4-weight")
    reason = m.unavailable_reason()
    if reason is None:
        pytest.skip("this machine runs Int4WeightOnlyConfig's default packing")
    assert "Int4WeightOnlyConfig" in reason
    with pytest.raises(MethodNotApplicableError) as e:
        m.check("t5")
    assert reason in e.value.message


def test_int4_group_size_option():
    assert get_method("torchao-int4-weight").label == "torchao-int4-weight"
    assert get_method("torchao-int4-weight").options == {"group_size": 128}
    m = get_method({"name": "torchao-int4-weight", "group_size": 32})
    assert m.label == "torchao-int4-weight[group_size=32]" and m.options["group_size"] == 32
    assert get_method({"name": "torchao-int4-weight", "group_size": 128}).label == "torchao-int4-weight"
    with pytest.raises(ConfigError, match="group_size must be one of 32, 64, 128"):
        get_method({"name": "torchao-int4-weight", "group_size": 256})
    with pytest.raises(ConfigError, match="group_size must be one of"):
        get_method({"name": "torchao-int4-weight", "group_size": True})
    with pytest.raises(ConfigError, match="its options are: group_size"):
        get_method({"name": "torchao-int4-weight", "groups": 32})
