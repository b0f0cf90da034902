"""The pruned-BERT architecture: per-layer sizes, parameter counts, Auto-class loading, bad sizes refused."""

from __future__ import annotations

import pytest
import torch

from accelbench.architectures import register

register()

from accelbench.architectures.pruned_bert import (  # noqa: E402
    PrunedBertConfig,
    PrunedBertForSequenceClassification,
)

SIZES = {"vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 64, "max_position_embeddings": 32}  # fmt: skip


def _layer_params(hidden: int, width: int, ffn: int) -> int:
    """Q, K, V (hidden -> width), attention output (width -> hidden), intermediate and output dense."""
    return (
        3 * (hidden * width + width)
        + (width * hidden + hidden)
        + (hidden * ffn + ffn)
        + (ffn * hidden + hidden)
    )


def _n(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_follow_the_per_layer_sizes():
    from transformers import BertConfig, BertForSequenceClassification

    full = _n(BertForSequenceClassification(BertConfig(**SIZES)))
    cfg = PrunedBertConfig(**SIZES, heads_per_layer=[1, 3], intermediate_per_layer=[10, 64])
    m = PrunedBertForSequenceClassification(cfg)
    d = cfg.attention_head_size
    assert d == 8  # hidden_size // the unpruned head count
    removed = sum(_layer_params(32, 32, 64) - _layer_params(32, h * d, f) for h, f in ((1, 10), (3, 64)))
    assert _n(m) == full - removed
    att = m.bert.encoder.layer[0].attention.self
    assert (att.num_attention_heads, att.all_head_size, att.query.out_features) == (1, 8, 8)
    assert m.bert.encoder.layer[0].output.dense.in_features == 10


def test_unpruned_sizes_compute_what_stock_bert_computes():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    ref = BertForSequenceClassification(BertConfig(**SIZES)).eval()
    m = PrunedBertForSequenceClassification(PrunedBertConfig(**SIZES)).eval()
    m.load_state_dict(ref.state_dict())  # the same names and shapes when nothing is pruned
    x = torch.randint(1, 50, (3, 9))
    mask = torch.ones_like(x)
    mask[0, 5:] = 0
    assert torch.allclose(m(input_ids=x, attention_mask=mask).logits, ref(input_ids=x, attention_mask=mask).logits,
                          atol=1e-6)  # fmt: skip


def test_saved_checkpoint_loads_through_the_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    torch.manual_seed(0)
    m = PrunedBertForSequenceClassification(
        PrunedBertConfig(**SIZES, heads_per_layer=[2, 1], intermediate_per_layer=[7, 9])
    ).eval()
    m.save_pretrained(tmp_path)
    cfg = AutoConfig.from_pretrained(tmp_path)
    assert cfg.model_type == "accelbench-pruned-bert" and cfg.heads_per_layer == [2, 1]
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, PrunedBertForSequenceClassification)
    x = torch.randint(1, 50, (2, 6))
    assert torch.equal(loaded(input_ids=x).logits, m(input_ids=x).logits)
    loaded.set_attn_implementation("eager")  # attention maps have each layer's own head count
    maps = loaded(input_ids=x, output_attentions=True).attentions
    assert [a.shape[1] for a in maps] == [2, 1]


@pytest.mark.parametrize("kw", [
    {"heads_per_layer": [1]},  # one size for two layers
    {"heads_per_layer": [0, 1]},  # a layer without heads
    {"heads_per_layer": [5, 1]},  # more heads than the unpruned model had
    {"intermediate_per_layer": [0, 3]},
])  # fmt: skip
def test_bad_per_layer_sizes_are_refused(kw):
    with pytest.raises(ValueError):
        PrunedBertConfig(**SIZES, **kw)
