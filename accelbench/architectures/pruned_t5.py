"""A T5 whose encoder and decoder blocks keep different numbers of feed-forward neurons.

A stock ``T5Config`` sizes every block's feed-forward network by one ``d_ff``, so it cannot describe a model
whose FFN neurons were pruned block by block. Here ``d_ff`` stays the unpruned model's and two per-block lists
say what each block kept. The model is the stock ``T5ForConditionalGeneration`` with smaller ``wi`` / ``wo``
(``wi_0`` / ``wi_1`` / ``wo`` in the gated variants of T5 v1.1 and flan-t5) swapped in, so whatever reads a
T5 module by module applies to it: the ONNX export (which calls each block's own ``T5LayerFF``), dynamic int8
and CTranslate2 (whose T5 loader reads each ``Linear`` with its own shape).
"""

from __future__ import annotations

from torch import nn
from transformers import T5Config, T5ForConditionalGeneration

from . import register_auto

MODEL_TYPE = "accelbench-pruned-t5"


def _sizes(name: str, sizes: list | None, n: int, d_ff: int) -> list[int]:
    """One FFN size per block: None (the list or an entry) is the unpruned ``d_ff``."""
    out = [d_ff] * n if sizes is None else [d_ff if s is None else int(s) for s in sizes]
    if len(out) != n or min(out, default=1) < 1:
        raise ValueError(f"{name} must hold {n} sizes >= 1 (one per block), got {sizes}")
    return out


class PrunedT5Config(T5Config):
    """A ``T5Config`` with per-block FFN sizes.

    ``d_ff`` is the unpruned model's; ``encoder_ff_per_layer[i]`` / ``decoder_ff_per_layer[i]`` are the neurons
    encoder / decoder block i kept (None = ``d_ff``). ``scale_decoder_outputs`` is read back as saved (the stock
    config derives it from ``tie_word_embeddings``, which transformers 5 always saves as true).
    """

    model_type = MODEL_TYPE

    encoder_ff_per_layer: list[int | None] | None = None
    decoder_ff_per_layer: list[int | None] | None = None

    def __post_init__(self, **kwargs):
        scale = kwargs.pop("scale_decoder_outputs", None)
        super().__post_init__(**kwargs)
        if scale is not None:
            self.scale_decoder_outputs = bool(scale)
        self.encoder_ff_per_layer = _sizes("encoder_ff_per_layer", self.encoder_ff_per_layer, self.num_layers,
                                           self.d_ff)  # fmt: skip
        self.decoder_ff_per_layer = _sizes("decoder_ff_per_layer", self.decoder_ff_per_layer,
                                           self.num_decoder_layers, self.d_ff)  # fmt: skip


def pruned_config(tcfg, encoder_ff: list[int], decoder_ff: list[int]) -> PrunedT5Config:
    """A ``PrunedT5Config`` like the teacher's (stock or pruned T5), with the given FFN sizes per block."""
    d = tcfg.to_dict()
    for k in ("model_type", "architectures", "transformers_version", "encoder_ff_per_layer", "decoder_ff_per_layer",
              "dense_act_fn", "is_gated_act"):  # fmt: skip
        d.pop(k, None)
    d["scale_decoder_outputs"] = bool(getattr(tcfg, "scale_decoder_outputs", True))
    return PrunedT5Config(**d, encoder_ff_per_layer=list(encoder_ff), decoder_ff_per_layer=list(decoder_ff))


def ffn_modules(block) -> tuple[list[str], nn.Module]:
    """The names of a T5 block's FFN input projections (``wi``, or ``wi_0`` and ``wi_1`` when gated) and the
    module that holds them and ``wo``."""
    dense = block.layer[-1].DenseReluDense
    return (["wi_0", "wi_1"] if hasattr(dense, "wi_0") else ["wi"]), dense


def _shrink_ffn(block, d_model: int, n: int) -> None:
    names, dense = ffn_modules(block)
    for name in names:
        setattr(dense, name, nn.Linear(d_model, n, bias=False))
    dense.wo = nn.Linear(n, d_model, bias=False)


class PrunedT5ForConditionalGeneration(T5ForConditionalGeneration):
    """``T5ForConditionalGeneration`` with each block's FFN sized by ``encoder_ff_per_layer`` /
    ``decoder_ff_per_layer``."""

    config_class = PrunedT5Config

    def post_init(self):
        # the stock __init__ built full-size blocks and calls this last: shrink them, then initialise
        cfg = self.config
        for stack, sizes in (
            (self.encoder, cfg.encoder_ff_per_layer),
            (self.decoder, cfg.decoder_ff_per_layer),
        ):
            for block, n in zip(stack.block, sizes, strict=True):
                if n != block.layer[-1].DenseReluDense.wo.in_features:
                    _shrink_ffn(block, cfg.d_model, n)
        super().post_init()


def _register() -> None:
    """Make ``AutoConfig`` / ``AutoModelForSeq2SeqLM`` load saved pruned checkpoints."""
    from transformers import AutoModelForSeq2SeqLM

    register_auto(MODEL_TYPE, PrunedT5Config, AutoModelForSeq2SeqLM, PrunedT5ForConditionalGeneration)


_register()  # importing this module is what registers the architecture
