"""The pruned-T5 architecture: per-block FFN sizes, parameter counts, Auto-class and accelbench loading, bad
sizes refused."""

from __future__ import annotations

import pytest
import torch

from accelbench.architectures import register

register()

from accelbench.architectures.pruned_t5 import (  # noqa: E402
    PrunedT5Config,
    PrunedT5ForConditionalGeneration,
    pruned_config,
)

SIZES = {"vocab_size": 60, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 3,
         "num_heads": 4, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}  # fmt: skip
FFN = ["relu", "gated-gelu"]


def _n(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _inputs():
    x = torch.randint(2, 60, (3, 7))
    mask = torch.ones_like(x)
    mask[0, 4:] = 0
    return {"input_ids": x, "attention_mask": mask, "decoder_input_ids": torch.randint(2, 60, (3, 5))}


@pytest.mark.parametrize("ffn", FFN)
def test_unpruned_sizes_compute_what_stock_t5_computes(ffn):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    ref = T5ForConditionalGeneration(T5Config(**SIZES, feed_forward_proj=ffn)).eval()
    m = PrunedT5ForConditionalGeneration(PrunedT5Config(**SIZES, feed_forward_proj=ffn)).eval()
    assert m.config.encoder_ff_per_layer == [64, 64] and m.config.decoder_ff_per_layer == [64] * 3
    m.load_state_dict(ref.state_dict())  # the same names and shapes when nothing is pruned
    x = _inputs()
    with torch.no_grad():
        assert torch.allclose(m(**x).logits, ref(**x).logits, atol=1e-6)


@pytest.mark.parametrize("ffn", FFN)
def test_parameter_counts_follow_the_per_block_sizes(ffn):
    from transformers import T5Config, T5ForConditionalGeneration

    full = _n(T5ForConditionalGeneration(T5Config(**SIZES, feed_forward_proj=ffn)))
    cfg = PrunedT5Config(**SIZES, feed_forward_proj=ffn, encoder_ff_per_layer=[10, None],
                         decoder_ff_per_layer=[1, 64, 20])  # fmt: skip
    assert cfg.encoder_ff_per_layer == [10, 64]  # None is the unpruned d_ff
    m = PrunedT5ForConditionalGeneration(cfg)
    n_in = 2 if ffn.startswith("gated") else 1  # wi, or wi_0 and wi_1
    removed = sum(64 - f for f in (10, 64, 1, 64, 20)) * 32 * (n_in + 1)
    assert _n(m) == full - removed
    dense = m.decoder.block[2].layer[-1].DenseReluDense
    assert dense.wo.in_features == 20 and dense.wo.out_features == 32
    assert all(getattr(dense, w).out_features == 20 for w in (("wi_0", "wi_1") if n_in == 2 else ("wi",)))
    with torch.no_grad():
        assert m(**_inputs()).logits.shape == (3, 5, 60)


def test_saved_checkpoint_loads_through_the_auto_classes_and_accelbench(tiny_t5, tmp_path):
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, T5Config

    from accelbench import models

    torch.manual_seed(0)
    teacher_cfg = T5Config.from_pretrained(tiny_t5)
    m = PrunedT5ForConditionalGeneration(pruned_config(teacher_cfg, [40], [7])).eval()
    m.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_t5).save_pretrained(tmp_path)  # as a T5 student's folder holds it
    cfg = AutoConfig.from_pretrained(tmp_path)
    assert cfg.model_type == "accelbench-pruned-t5" and cfg.decoder_ff_per_layer == [7]
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, PrunedT5ForConditionalGeneration)
    x = {k: v.clamp(max=teacher_cfg.vocab_size - 1) for k, v in _inputs().items()}
    with torch.no_grad():
        assert torch.equal(loaded(**x).logits, m(**x).logits)
    ours = models.load_checkpoint(str(tmp_path))
    assert ours.family == "t5" and isinstance(ours.model, PrunedT5ForConditionalGeneration)
    assert models.model_family(models.resolve_model(str(tmp_path))) == "t5"
    with torch.no_grad():
        assert torch.equal(ours.model(**x).logits, m(**x).logits)
        out = ours.model.generate(x["input_ids"], max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 3


def test_unscaled_decoder_outputs_survive_a_save(tmp_path):
    """T5 v1.1 / flan-t5 do not scale decoder outputs by d_model ** -0.5; a pruned copy must not start to."""
    from transformers import AutoConfig, T5Config

    v11 = T5Config(**SIZES, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    assert v11.scale_decoder_outputs is False
    cfg = pruned_config(v11, [8, 8], [4, 4, 4])
    assert cfg.scale_decoder_outputs is False and cfg.is_gated_act
    cfg.save_pretrained(tmp_path)
    again = AutoConfig.from_pretrained(tmp_path)
    assert again.scale_decoder_outputs is False and again.encoder_ff_per_layer == [8, 8]
    assert pruned_config(T5Config(**SIZES), [8, 8], [4, 4, 4]).scale_decoder_outputs is True


@pytest.mark.parametrize("kw", [
    {"encoder_ff_per_layer": [8]},  # one size for two blocks
    {"decoder_ff_per_layer": [8, 0, 8]},  # a block without neurons
    {"decoder_ff_per_layer": [8, 8, 8, 8]},
])  # fmt: skip
def test_bad_per_block_sizes_are_refused(kw):
    with pytest.raises(ValueError, match="one per block"):
        PrunedT5Config(**SIZES, **kw)
