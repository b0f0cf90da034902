"""pt2e-int8 (PT2E int8 compiled by TorchInductor) on a tiny BERT: agreement, size, refusals, options."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import accelbench.methods.pt2e as pm
from accelbench.exceptions import ConfigError, MethodNotApplicableError
from accelbench.export.classifier import torch_logits
from accelbench.methods import get_method
from accelbench.models import load_checkpoint
from accelbench.runtimes import Classifier, CompiledPredictor

TEXTS = [f"a {w} film , {v}" for w in ("good", "bad", "dull", "great") for v in ("really", "not", "so", "")]


def _method(**options):
    m = get_method({"name": "pt2e-int8", **options} if options else "pt2e-int8")
    if m.unavailable_reason():
        pytest.skip(m.unavailable_reason())
    return m


@pytest.mark.slow  # measures a variant end to end (peaks, scenarios) or compiles
def test_agrees_with_fp32_and_is_smaller(tiny_bert):
    loaded = load_checkpoint(str(tiny_bert))
    v = _method(samples=16).apply(loaded)
    assert (v.runtime, v.dtype, v.method) == ("pytorch-inductor", "int8", "pt2e-int8[samples=16]")
    assert isinstance(v.predictor, CompiledPredictor) and isinstance(v.predictor, Classifier)
    enc = v.predictor.encode(TEXTS)
    out = v.predictor.fn(enc).float().numpy()
    ref = torch_logits(loaded.model, loaded.tokenizer, TEXTS)
    # static int8 of a 32-wide model: logits within 5% of their range
    assert np.abs(out - ref).max() <= 0.05 * np.abs(ref).max() + 1e-3
    assert (v.predictor.classify(TEXTS) == ref.argmax(-1)).mean() >= 0.9
    assert v.predictor.classify(TEXTS[:1]).shape == (1,)  # a batch of one (compiled in apply)
    d = v.details
    assert d["calibration_samples"] == 16 and d["calibration_task"] == "sst2"
    # each layer: one activation quantize shared by q/k/v, one each for attention output, FFN in and out;
    # then the pooler and the classifier
    assert d["activation_quantize_ops"] == 4 * 2 + 2
    assert d["compile_s"] > 0 and d["check_agreement"] == "4/4"
    assert d["compiled_graphs"] == 1  # batch 1 is not specialised: one graph for every batch
    graphs = pm.compiled_graphs()
    for texts in (TEXTS[:1], TEXTS[:2], TEXTS + TEXTS, ["a much longer text than any of the others " * 3]):
        v.predictor.classify(texts)
    assert pm.compiled_graphs() == graphs  # new batch sizes and lengths run the same graph, no recompile
    fp32_mb = sum(p.numel() * 4 for p in loaded.model.parameters()) / 2**20
    linear_mb = (
        sum(m.weight.numel() for m in loaded.model.modules() if isinstance(m, torch.nn.Linear)) / 2**20
    )
    # int8 weights: every Linear shrinks 4x; the rest (embeddings, LayerNorm, biases) stays float32
    assert v.size_mb == pytest.approx(fp32_mb - 3 * linear_mb, rel=0.02)
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())  # the source is untouched
    v.predictor.close()
    with pytest.raises(RuntimeError, match="closed"):
        v.predictor.classify(TEXTS)


def test_refused_for_t5_and_without_a_compiler(monkeypatch):
    with pytest.raises(MethodNotApplicableError, match="does not apply to t5") as e:
        get_method("pt2e-int8").check("t5")
    assert "ct2-int8" in e.value.fix  # names the methods that do apply
    pytest.importorskip("torchao")  # without it, that is the reason given, not the compiler
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    assert "C++ compiler" in get_method("pt2e-int8").unavailable_reason()
    with pytest.raises(MethodNotApplicableError, match="C\\+\\+ compiler"):
        get_method("pt2e-int8").check("bert")


def test_unavailable_without_torchao(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao", None)  # `import torchao` now raises ImportError
    reason = get_method("pt2e-int8").unavailable_reason()
    assert "torchao" in reason and "pip install" in reason
    with pytest.raises(MethodNotApplicableError, match="torchao"):
        get_method("pt2e-int8").check("bert")


def test_options():
    assert get_method("pt2e-int8").options == {"samples": 128, "task": None}
    assert get_method({"name": "pt2e-int8", "samples": 64}).label == "pt2e-int8[samples=64]"
    with pytest.raises(ConfigError, match="bad option"):
        get_method({"name": "pt2e-int8", "dynamic": True})
    for bad in (0, -3, 1.5, True):
        with pytest.raises(ConfigError, match="samples"):
            get_method({"name": "pt2e-int8", "samples": bad})


def test_graph_tensors_mb_counts_what_the_graph_reads_once():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w", torch.zeros(256, 1024, dtype=torch.int8))  # 0.25 MiB
            self.unused = torch.nn.Parameter(torch.zeros(1024, 1024))  # 4 MiB, never read

        def forward(self, x):
            return x @ self.w.float().t() + x @ self.w.float().t()

    gm = torch.export.export(M(), (torch.ones(2, 1024),)).module()
    assert pm.graph_tensors_mb(gm) == pytest.approx(0.25)
