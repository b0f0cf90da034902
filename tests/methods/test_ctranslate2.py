"""CTranslate2 methods on a tiny T5: conversion round-trip, quantized variants, beam search, applicability."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("ctranslate2")

from accelbench.exceptions import MethodNotApplicableError, ModelError  # noqa: E402
from accelbench.export.ctranslate2 import check_vocabulary  # noqa: E402
from accelbench.methods import get_method, list_methods  # noqa: E402
from accelbench.models import load_checkpoint  # noqa: E402
from accelbench.runtimes import Classifier, TorchGenerator  # noqa: E402
from accelbench.training.loop import pad  # noqa: E402

from ..conftest import DE, EN  # noqa: E402

CT2_METHODS = ("ct2-int8", "ct2-int8-float32", "ct2-int16", "ct2-fp32")
TEXTS = EN + ["a dog rides the snow .", "two women play a book .", "children eat ."]
MAX_NEW = 12


@pytest.fixture(scope="module")
def trained_t5(tiny_t5, tmp_path_factory):
    """The tiny T5 trained 100 steps on EN->DE (a second), so greedy outputs differ by source and end."""
    loaded = load_checkpoint(str(tiny_t5))
    torch.manual_seed(0)
    model = copy.deepcopy(loaded.model).train()
    tok = loaded.tokenizer
    x = pad(tok([loaded.spec.prefix + s for s in EN])["input_ids"], 0)
    y = pad(tok(DE)["input_ids"], -100)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = model(input_ids=x, attention_mask=(x != 0).long(), labels=y).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = tmp_path_factory.mktemp("tiny-t5-trained")
    model.eval().save_pretrained(out)
    tok.save_pretrained(out)
    trained = load_checkpoint(str(out))
    assert trained.spec.prefix == loaded.spec.prefix  # trained with the prefix the predictors prepend
    return trained


def _available(name: str) -> bool:
    return get_method(name).unavailable_reason() is None


def _torch_ref(loaded, **kw):
    return TorchGenerator(loaded.model, loaded.tokenizer, "t5", loaded.spec.prefix).generate(TEXTS, **kw)


def test_registered_for_t5_only():
    assert set(CT2_METHODS) <= set(list_methods())
    for name in CT2_METHODS:
        method = get_method(name)
        assert method.families == ("t5",) and method.runtime == "ctranslate2"
        with pytest.raises(MethodNotApplicableError) as e:
            method.check("bert")
        assert "bert-family" in str(e.value)
    assert _available("ct2-fp32")  # every CPU build of ctranslate2 runs float32


def test_unavailable_reasons(monkeypatch):
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_supported_compute_types", lambda device: {"float32"})
    assert "no int16 on this CPU" in get_method("ct2-int16").unavailable_reason()
    assert get_method("ct2-fp32").unavailable_reason() is None
    with pytest.raises(MethodNotApplicableError):
        get_method("ct2-int8").check("t5")
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # import now fails
    assert "not installed" in get_method("ct2-fp32").unavailable_reason()


def test_vocabulary_must_line_up_with_the_weights(trained_t5):
    tok = trained_t5.tokenizer
    check_vocabulary(tok, len(tok))
    with pytest.raises(ModelError, match="vocabulary would not line up"):
        check_vocabulary(tok, len(tok) - 1)


def test_package_imports_without_ctranslate2():
    code = (
        "import sys; sys.modules['ctranslate2'] = None\n"
        "import accelbench.methods.ctranslate2\n"
        "from accelbench.methods import get_method\n"
        "print(get_method('ct2-fp32').unavailable_reason())"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "not installed" in out.stdout


def test_fp32_greedy_equals_torch(trained_t5):
    ref = _torch_ref(trained_t5, max_new_tokens=MAX_NEW)
    # the check can fail: outputs depend on the source and some end before the limit
    assert len(set(ref.texts)) >= 4 and len(TEXTS) < ref.new_tokens < len(TEXTS) * MAX_NEW
    variant = get_method("ct2-fp32").apply(trained_t5)
    try:
        assert variant.runtime == "ctranslate2" and variant.dtype == "fp32" and variant.size_mb > 0
        assert variant.details["compute_type"] == "float32" and variant.details["intra_threads"] >= 1
        out = variant.predictor.generate(TEXTS, max_new_tokens=MAX_NEW)
        assert out.texts == ref.texts
        assert out.new_tokens == ref.new_tokens  # same counting rule as the torch predictor
        padded = variant.predictor.generate(
            TEXTS, max_new_tokens=MAX_NEW, padding="max_length", max_length=48
        )
        assert padded.texts == ref.texts
        # truncation of the source at max_length tokens, </s> kept, as in the torch predictor
        short = _torch_ref(trained_t5, max_new_tokens=MAX_NEW, max_length=10)
        assert variant.predictor.generate(TEXTS, max_new_tokens=MAX_NEW, max_length=10).texts == short.texts
        assert variant.predictor.generate(TEXTS, max_new_tokens=1).new_tokens == len(TEXTS)
        assert not isinstance(variant.predictor, Classifier) and not hasattr(variant.predictor, "classify")
    finally:
        variant.predictor.close()
    assert not os.path.exists(variant.predictor.model_dir)  # the converted model goes with the predictor
    variant.predictor.close()  # idempotent


@pytest.mark.parametrize("name", ["ct2-int8", "ct2-int8-float32", "ct2-int16"])
def test_quantized_variants_generate(trained_t5, name):
    if not _available(name):
        pytest.skip(get_method(name).unavailable_reason())
    fp32 = get_method("ct2-fp32").apply(trained_t5)
    variant = get_method(name).apply(trained_t5)
    try:
        assert variant.details["compute_type"] == get_method(name).compute_type
        assert variant.size_mb < fp32.size_mb
        ref = fp32.predictor.generate(TEXTS, max_new_tokens=MAX_NEW)
        out = variant.predictor.generate(TEXTS, max_new_tokens=MAX_NEW)
        assert len(out.texts) == len(TEXTS) and all(isinstance(t, str) for t in out.texts)
        assert len(TEXTS) <= out.new_tokens <= len(TEXTS) * MAX_NEW
        assert (
            sum(a == b for a, b in zip(out.texts, ref.texts, strict=True)) >= len(TEXTS) // 2
        )  # quantization keeps most
    finally:
        variant.predictor.close()
        fp32.predictor.close()


@pytest.mark.parametrize("name", ["ct2-fp32", "ct2-int8"])
def test_beam_search(trained_t5, name):
    if not _available(name):
        pytest.skip(get_method(name).unavailable_reason())
    variant = get_method(name).apply(trained_t5)
    try:
        out = variant.predictor.generate(TEXTS, max_new_tokens=MAX_NEW, num_beams=2)
        assert len(out.texts) == len(TEXTS)
        assert len(TEXTS) <= out.new_tokens <= len(TEXTS) * MAX_NEW
        assert variant.predictor.generate([], num_beams=2).texts == []
    finally:
        variant.predictor.close()


def test_untied_t5_scores_match_torch(tiny_t5, tmp_path):
    """A T5 v1.1-style checkpoint (no decoder-output scaling): the converter workaround keeps logits exact."""
    from transformers import T5Config, T5ForConditionalGeneration

    tok = load_checkpoint(str(tiny_t5)).tokenizer
    torch.manual_seed(1)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2, pad_token_id=0,
                   eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False,
                   feed_forward_proj="gated-gelu")  # fmt: skip
    T5ForConditionalGeneration(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded = load_checkpoint(str(tmp_path))
    assert loaded.model.config.scale_decoder_outputs is False
    variant = get_method("ct2-fp32").apply(loaded)
    try:
        predictor = variant.predictor
        sources = [loaded.spec.prefix + s for s in EN[:3]]
        targets = tok(DE[:3])["input_ids"]
        results = predictor.translator.score_batch(
            predictor._source_tokens(EN[:3], "dynamic", 128),
            [tok.convert_ids_to_tokens(t[:-1]) for t in targets],  # score_batch appends </s> itself
        )
        for src, tgt, res in zip(sources, targets, results, strict=True):
            enc = tok([src], return_tensors="pt")
            labels = torch.tensor([tgt])
            with torch.inference_mode():
                logits = loaded.model(**enc, labels=labels).logits[0]
            ref = torch.log_softmax(logits, -1).gather(-1, labels[0][:, None])[:, 0]
            assert torch.allclose(torch.tensor(res.log_probs), ref, atol=1e-4), (res.log_probs, ref.tolist())
    finally:
        variant.predictor.close()


def test_park_ends_the_translator_threads_and_the_next_call_wakes_it(trained_t5):
    """Parked, a CPU translator's threads are gone (they would cut PyTorch's OpenMP spin-waits); the next
    call re-makes it with the same compute type and gives the same outputs."""
    import psutil

    proc = psutil.Process()
    variant = get_method("ct2-fp32").apply(trained_t5)
    predictor = variant.predictor
    try:
        ref = predictor.generate(TEXTS, max_new_tokens=MAX_NEW)
        busy = proc.num_threads()
        predictor.park()
        assert predictor.parked and predictor.translator is None and predictor.parks == 1
        assert proc.num_threads() < busy  # the translator's worker (and its OpenMP team) ended
        predictor.park()  # parking twice is a no-op
        assert predictor.parks == 1
        out = predictor.generate(TEXTS, max_new_tokens=MAX_NEW)  # wakes by itself
        assert not predictor.parked and out.texts == ref.texts and out.new_tokens == ref.new_tokens
        assert predictor.translator.compute_type == predictor.compute_type == "float32"
        predictor.park()
        predictor.unpark()
        assert not predictor.parked and predictor.generate(TEXTS, max_new_tokens=MAX_NEW).texts == ref.texts
        predictor.park()
    finally:
        predictor.close()  # closing a parked predictor still removes its converted model
    assert not os.path.exists(predictor.model_dir)
    with pytest.raises(RuntimeError, match="closed"):
        predictor.generate(TEXTS)
