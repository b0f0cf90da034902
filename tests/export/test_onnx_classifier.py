"""A classifier exported to ONNX: dynamic axes, logits equal PyTorch's, the source model left as it was."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import torch  # noqa: E402

from accelbench.exceptions import ConfigError, ModelError  # noqa: E402
from accelbench.export import onnx_classifier as oc  # noqa: E402
from accelbench.export.classifier import export_input_names, torch_logits  # noqa: E402
from accelbench.models import load_checkpoint  # noqa: E402
from accelbench.runtimes.onnxruntime import make_session  # noqa: E402

TEXTS = [f"a {w} film , {v}" for w in ("good", "bad", "dull", "great") for v in ("really", "not", "so", "")]
LONG = "an overlong , meandering and yet strangely moving film about nothing in particular " * 3


@pytest.fixture(scope="module")
def loaded(tiny_bert):
    return load_checkpoint(str(tiny_bert))


@pytest.mark.slow  # measures a variant end to end (peaks, scenarios) or compiles
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_export_round_trip_dynamic_axes(loaded, tmp_path, exporter):
    attn = loaded.model.config._attn_implementation
    path = tmp_path / "m.onnx"
    info = oc.export_classifier(loaded.model, loaded.tokenizer, path, exporter=exporter)
    assert info["exporter"] == exporter and info["opset"] >= 17
    assert info["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert info["max_abs_diff"] < 1e-4
    session = make_session(path)
    for arg in session.get_inputs():  # batch and sequence are symbolic, not the traced sizes
        assert all(isinstance(d, str) for d in arg.shape), arg.shape
    for texts in (["good"], ["a good film", "bad", LONG], TEXTS[:7]):
        ref = torch_logits(loaded.model, loaded.tokenizer, texts)
        out = oc.ort_logits(session, loaded.tokenizer, texts)
        assert out.shape == (len(texts), 2)
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
    # export works on a copy switched to eager attention: the model keeps its attention and eval mode (the
    # TorchScript exporter restores the wrapper's train/eval mode afterwards, which can switch dropout on)
    assert loaded.model.config._attn_implementation == attn
    assert not loaded.model.training and not any(m.training for m in loaded.model.modules())
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())


def test_input_names(loaded):
    assert export_input_names(loaded.model, loaded.tokenizer) == [
        "input_ids",
        "attention_mask",
        "token_type_ids",
    ]

    class NoMask:
        def __call__(self, texts, return_tensors=None):
            return {"input_ids": [[1]]}

    with pytest.raises(ModelError, match="attention_mask"):
        export_input_names(loaded.model, NoMask())


def test_bad_exporter_and_failed_export(loaded, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="exporter must be"):
        oc.export_classifier(loaded.model, loaded.tokenizer, tmp_path / "m.onnx", exporter="tflite")

    def broken(*a, **k):
        raise RuntimeError("unsupported operator aten::something")

    monkeypatch.setattr(oc, "_export_torchscript", broken)
    monkeypatch.setattr(oc, "_export_dynamo", broken)
    with pytest.raises(ModelError, match="cannot export the model to ONNX") as e:
        oc.export_classifier(loaded.model, loaded.tokenizer, tmp_path / "m.onnx")
    assert "aten::something" in str(e.value) and "PyTorch methods" in e.value.fix
