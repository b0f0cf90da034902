"""torch.compile as an option of the precision methods: same predictions as eager, its time recorded, no
compile inside the timed calls."""

from __future__ import annotations

import time

import numpy as np
import pytest

from accelbench.environment import cxx_compiler
from accelbench.methods import get_method
from accelbench.methods.compiled import compiled_graphs
from accelbench.models import load_checkpoint

pytestmark = pytest.mark.skipif(
    cxx_compiler() is None, reason="TorchInductor needs a C++ compiler on the CPU"
)


@pytest.mark.slow  # compiles a graph (several seconds)
def test_compiled_fp32_matches_eager_and_is_warm(tiny_bert):
    import torch

    # a model of the same class compiled earlier in this process (another test) would be reused as it is:
    # dynamo keys compiled frames by code and guards, and treats parameters as inputs
    torch._dynamo.reset()
    loaded = load_checkpoint(str(tiny_bert))
    texts = ["a fine film", "dull and long, far too long for anyone", "ok"]
    eager = get_method("fp32").apply(loaded).predictor.logits(texts)
    variant = get_method({"name": "fp32", "compile": True}).apply(loaded)
    assert variant.runtime == "pytorch-inductor" and variant.details["compiled"] is True
    assert variant.details["compile_mode"] == "default" and variant.details["compile_s"] > 0
    np.testing.assert_allclose(variant.predictor.logits(texts), eager, atol=1e-5)
    # one graph for batch 1 and the larger batches (size 1 is not specialised)
    assert variant.details["compiled_graphs"] == 1
    # warm: new batch and sequence lengths reuse the dynamic graph instead of compiling again
    graphs = compiled_graphs()
    t0 = time.perf_counter()
    for n in (5, 7, 1):
        variant.predictor.logits([("word " * (3 * n)).strip()] * n)
    assert time.perf_counter() - t0 < 0.5 * variant.details["compile_s"]
    assert compiled_graphs() == graphs
