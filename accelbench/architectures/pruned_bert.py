"""A BERT classifier whose layers keep different numbers of attention heads and feed-forward neurons.

transformers 5 dropped ``prune_heads``: its ``BertSelfAttention`` sizes every layer from ``hidden_size //
num_attention_heads``, so a stock ``BertConfig`` cannot describe a structurally pruned model. Here
``num_attention_heads`` stays the unpruned model's (so the head size is unchanged) and two per-layer lists
say what each layer kept. The model is the stock classifier with smaller ``Linear`` layers swapped in, so
every tool that loads a ``BertForSequenceClassification`` (ONNX export, dynamic int8, PT2E) applies to it.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import BertSelfAttention, eager_attention_forward

from . import register_auto

MODEL_TYPE = "accelbench-pruned-bert"


class PrunedBertConfig(BertConfig):
    """A ``BertConfig`` with per-layer sizes.

    ``num_attention_heads`` and ``intermediate_size`` are those of the unpruned model: ``hidden_size //
    num_attention_heads`` is every head's size (``attention_head_size``). ``heads_per_layer[i]`` and
    ``intermediate_per_layer[i]`` are what layer i kept (None = unpruned).
    """

    model_type = MODEL_TYPE

    heads_per_layer: list[int] | None = None
    intermediate_per_layer: list[int] | None = None
    attention_head_size: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        n = self.num_hidden_layers
        if self.attention_head_size is None:
            self.attention_head_size = self.hidden_size // self.num_attention_heads
        if self.heads_per_layer is None:
            self.heads_per_layer = [self.num_attention_heads] * n
        if self.intermediate_per_layer is None:
            self.intermediate_per_layer = [self.intermediate_size] * n
        self.heads_per_layer = [int(h) for h in self.heads_per_layer]
        self.intermediate_per_layer = [int(f) for f in self.intermediate_per_layer]
        for name, sizes in (("heads_per_layer", self.heads_per_layer),
                            ("intermediate_per_layer", self.intermediate_per_layer)):  # fmt: skip
            if len(sizes) != n or min(sizes, default=1) < 1:
                raise ValueError(f"{name} must hold {n} sizes >= 1 (one per layer), got {sizes}")
        if max(self.heads_per_layer) > self.num_attention_heads:
            raise ValueError(f"heads_per_layer {self.heads_per_layer} exceeds num_attention_heads "
                             f"{self.num_attention_heads}")  # fmt: skip


def pruned_config(tcfg, n: int, heads: list[int], ffn: list[int]):
    """A ``PrunedBertConfig`` like the teacher's, with ``n`` layers of the given heads and FFN neurons."""
    d = tcfg.to_dict()
    for k in ("model_type", "architectures", "transformers_version", "heads_per_layer", "intermediate_per_layer",
              "attention_head_size", "num_hidden_layers"):  # fmt: skip
        d.pop(k, None)
    head_size = getattr(tcfg, "attention_head_size", None) or tcfg.hidden_size // tcfg.num_attention_heads
    return PrunedBertConfig(**d, num_hidden_layers=n, heads_per_layer=heads, intermediate_per_layer=ffn,
                            attention_head_size=head_size)  # fmt: skip


class PrunedBertSelfAttention(BertSelfAttention):
    """Stock self-attention with ``num_attention_heads`` written into the head reshape.

    The stock module reshapes to ``(batch, seq, -1, head_size)``; an exported graph then holds no head count,
    and ONNX Runtime's attention fusion falls back to one global ``num_heads``, wrong for some layers. With
    the count in the shape, it reads each layer's own. Encoder-only: no key/value cache.
    """

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, cache=None,
                **kwargs):  # fmt: skip
        if cache is not None:
            raise ValueError("a pruned BERT is an encoder: it keeps no key/value cache")
        input_shape = hidden_states.shape[:-1]
        shape = (*input_shape, self.num_attention_heads, self.attention_head_size)  # (B, T, h, d)
        q = self.query(hidden_states).view(shape).transpose(1, 2)  # (B, h, T, d)
        k = self.key(hidden_states).view(shape).transpose(1, 2)
        v = self.value(hidden_states).view(shape).transpose(1, 2)
        attend = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        out, weights = attend(self, q, k, v, attention_mask, dropout=0.0 if not self.training else self.dropout.p,
                              scaling=self.scaling, **kwargs)  # fmt: skip
        return out.reshape(*input_shape, -1).contiguous(), weights


def _shrink_layer(layer, config: PrunedBertConfig, heads: int, ffn: int) -> None:
    """Swap a stock ``BertLayer``'s projections for ones of ``heads`` heads and ``ffn`` neurons."""
    hidden, width = config.hidden_size, heads * config.attention_head_size
    old = layer.attention.self
    attn = PrunedBertSelfAttention(config, is_causal=old.is_causal, layer_idx=old.layer_idx)
    attn.num_attention_heads, attn.attention_head_size, attn.all_head_size = (
        heads,
        config.attention_head_size,
        width,
    )
    attn.query, attn.key, attn.value = (
        nn.Linear(hidden, width),
        nn.Linear(hidden, width),
        nn.Linear(hidden, width),
    )
    layer.attention.self = attn
    layer.attention.output.dense = nn.Linear(width, hidden)
    layer.intermediate.dense = nn.Linear(hidden, ffn)
    layer.output.dense = nn.Linear(ffn, hidden)


class PrunedBertForSequenceClassification(BertForSequenceClassification):
    """``BertForSequenceClassification`` with each layer sized by ``heads_per_layer`` / ``intermediate_per_layer``."""

    config_class = PrunedBertConfig

    def post_init(self):
        # the stock __init__ built full-size layers and calls this last: shrink them, then initialise
        for layer, h, f in zip(self.bert.encoder.layer, self.config.heads_per_layer,
                               self.config.intermediate_per_layer, strict=True):  # fmt: skip
            _shrink_layer(layer, self.config, h, f)
        super().post_init()


def _register() -> None:
    """Make ``AutoConfig`` / ``AutoModelForSequenceClassification`` load saved pruned checkpoints."""
    from transformers import AutoModelForSequenceClassification

    register_auto(
        MODEL_TYPE, PrunedBertConfig, AutoModelForSequenceClassification, PrunedBertForSequenceClassification
    )


_register()  # importing this module is what registers the architecture
