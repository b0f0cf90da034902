"""T5 through ONNX Runtime on a tiny T5: export round trip, greedy and beam search equal PyTorch's, int8."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from accelbench.exceptions import ModelError  # noqa: E402
from accelbench.export import onnx_t5 as os2s  # noqa: E402
from accelbench.methods import get_method  # noqa: E402
from accelbench.models import load_checkpoint  # noqa: E402
from accelbench.runtimes import Classifier  # noqa: E402
from accelbench.runtimes.onnxruntime import OrtSeq2SeqPredictor, make_session  # noqa: E402
from accelbench.runtimes.torch import TorchGenerator  # noqa: E402

TEXTS = [
    "a man rides a bike .",
    "two dogs play in the snow .",
    "a dog",
    "a woman walks down the street with a red coat .",
]


@pytest.fixture(scope="module")
def loaded(tiny_t5):
    return load_checkpoint(str(tiny_t5))


@pytest.fixture(scope="module")
def torch_pred(loaded):
    return TorchGenerator(loaded.model, loaded.tokenizer, "t5")


def test_export_round_trip(loaded, tmp_path):
    info = os2s.export_t5(loaded.model, loaded.tokenizer, tmp_path)
    assert info["decoder_layers"] == 1 and info["check"]["greedy_tokens_equal"]
    assert info["check"]["max_abs_logit_diff"] < 1e-4
    dec = make_session(tmp_path / os2s.DECODER_FILE)
    shapes = {i.name: i.shape for i in dec.get_inputs()}
    assert shapes["past_key_0"][0] == "batch" and isinstance(shapes["past_key_0"][2], str)  # any cache length
    assert shapes["past_key_0"][1:4:2] == [2, 16]  # heads, d_kv of the tiny model
    assert [o.name for o in dec.get_outputs()] == ["logits", "present_key_0", "present_value_0"]
    enc = make_session(tmp_path / os2s.ENCODER_FILE)
    assert [o.name for o in enc.get_outputs()] == ["cross_key_0", "cross_value_0"]


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generation_equals_pytorch(loaded, torch_pred, tmp_path, num_beams):
    os2s.export_t5(loaded.model, loaded.tokenizer, tmp_path, check=False)
    pred = OrtSeq2SeqPredictor(tmp_path, loaded.tokenizer,
                               decoder_start_token_id=loaded.model.config.decoder_start_token_id)  # fmt: skip
    for batch in (TEXTS, TEXTS[2:3]):
        for limit in (1, 5, 20):
            a = pred.generate(batch, max_new_tokens=limit, num_beams=num_beams)
            b = torch_pred.generate(batch, max_new_tokens=limit, num_beams=num_beams)
            assert a.texts == b.texts, (limit, batch)
            assert a.new_tokens == b.new_tokens
    assert not isinstance(pred, Classifier) and not hasattr(pred, "classify")
    pred.close()
    with pytest.raises(RuntimeError, match="closed"):
        pred.generate(TEXTS)


def test_greedy_stops_each_sequence_at_eos(loaded, tmp_path):
    os2s.export_t5(loaded.model, loaded.tokenizer, tmp_path, check=False)
    pred = OrtSeq2SeqPredictor(tmp_path, loaded.tokenizer)
    ids = pred.greedy_ids(TEXTS, max_new_tokens=30)
    eos, pad = loaded.tokenizer.eos_token_id, loaded.tokenizer.pad_token_id
    for row in ids:
        if eos in row:
            assert (row[list(row).index(eos) + 1 :] == pad).all()  # after </s>: padding only


def test_methods_on_tiny_t5(loaded, torch_pred):
    ref = torch_pred.generate(TEXTS, max_new_tokens=12).texts
    fp32 = get_method("ort-fp32").apply(loaded)
    assert isinstance(fp32.predictor, OrtSeq2SeqPredictor) and fp32.runtime == "onnxruntime"
    assert fp32.predictor.generate(TEXTS, max_new_tokens=12).texts == ref
    assert fp32.details["export"]["check"]["greedy_tokens_equal"]
    assert fp32.details["session"]["decoder_layers"] == 1
    json.dumps(fp32.details)
    int8 = get_method("ort-dynamic-int8").apply(loaded)
    assert int8.dtype == "int8" and int8.size_mb < fp32.size_mb
    ops = int8.details["quantization"]["quantized_ops"]
    # weight MatMuls only: encoder q,k,v,o,wi,wo; cross k,v; decoder q,k,v,o, cross q,o, wi,wo; lm_head
    assert ops["MatMulInteger"] == 6 + 2 + 8 + 1
    _, ref_logits = fp32.predictor.greedy_ids(TEXTS, 1, return_first_logits=True)
    ids, logits = int8.predictor.greedy_ids(TEXTS, 12, return_first_logits=True)
    # int8 weights move the first-step logits by a few percent of their range at most
    assert np.abs(logits - ref_logits).max() <= 0.05 * np.abs(ref_logits).max()
    assert ids.shape[0] == len(TEXTS) and len(int8.predictor.generate(TEXTS, max_new_tokens=12).texts) == 4
    for v in (fp32, int8):
        folder = v.predictor.graph_paths["final"]
        v.predictor.close()
        assert not __import__("os").path.exists(folder)  # the variant's files go with it


def test_export_failure_is_a_model_error(loaded, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("unsupported operator aten::something")

    monkeypatch.setattr(os2s, "_onnx_export", broken)
    with pytest.raises(ModelError, match="cannot export the T5 model") as e:
        os2s.export_t5(loaded.model, loaded.tokenizer, tmp_path)
    assert "ct2-int8" in e.value.fix


def test_check_catches_a_wrong_graph(loaded, tmp_path, monkeypatch):
    """A decoder step that ignores the cache (a silent export bug) is caught by the check."""
    os2s.export_t5(loaded.model, loaded.tokenizer, tmp_path, check=False)
    real = OrtSeq2SeqPredictor._step

    def forgetful(self, tokens, mask, cross, past, t):
        logits, present = real(self, tokens, mask, cross, past, t)
        return logits + np.random.default_rng(t).normal(0, 5, logits.shape).astype(np.float32), present

    monkeypatch.setattr(OrtSeq2SeqPredictor, "_step", forgetful)
    with pytest.raises(ModelError, match="disagree|other tokens"):
        os2s.check_t5_export(loaded.model, loaded.tokenizer, tmp_path)


def test_t5_v1_1_layout(tiny_t5, tmp_path):
    """T5 v1.1 / flan-t5: gated-GELU feed-forward, untied head (no decoder-output scaling), 2 decoder blocks."""
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    torch.manual_seed(1)
    tok = AutoTokenizer.from_pretrained(tiny_t5)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2,
                   num_heads=4, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)  # fmt: skip
    model = T5ForConditionalGeneration(cfg).eval()
    assert not model.config.scale_decoder_outputs
    info = os2s.export_t5(model, tok, tmp_path)  # raises if tokens or logits differ from PyTorch
    assert info["decoder_layers"] == 2 and info["check"]["max_abs_logit_diff"] < 1e-4
    pred = OrtSeq2SeqPredictor(tmp_path, tok)
    ref = TorchGenerator(model, tok, "t5")
    assert (
        pred.generate(TEXTS, max_new_tokens=10, num_beams=2).texts
        == ref.generate(TEXTS, max_new_tokens=10, num_beams=2).texts
    )
