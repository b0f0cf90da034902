"""Convert a T5 checkpoint to a CTranslate2 model folder, quantized by CTranslate2 on the way.

Converter workaround (transformers 5): T5Config now always sets ``tie_word_embeddings=True`` and keeps
whether the decoder output is scaled by ``d_model ** -0.5`` (original T5: yes; T5 v1.1 / flan-t5: no) in
``scale_decoder_outputs``. The CTranslate2 T5 loader still reads ``tie_word_embeddings``, so it would scale
v1.1 checkpoints too; the converter here sets the converted ``scale_outputs`` from the flag the loaded model
really uses. Greedy outputs would not change (a constant factor on the logits), scores and beam search would.

A pruned T5 (``prune-t5``, ``architectures.pruned_t5``): the converter picks its loader by the config's class
name, so ``PrunedT5Config`` gets CTranslate2's own T5 loader, loading ``PrunedT5ForConditionalGeneration``. The
loader reads every ``Linear`` with its own shape, so each block keeps its own FFN size in the converted model.

``ctranslate2`` is imported lazily.
"""

from __future__ import annotations

import os

from ..architectures import SEQ2SEQ_MODEL_TYPES
from ..architectures import register as register_architectures
from ..exceptions import ModelError

T5_TYPES = ("t5", *SEQ2SEQ_MODEL_TYPES)  # whose decoder-output scaling is read from scale_decoder_outputs


def register_pruned_t5_loader() -> None:
    """Make the converter load ``PrunedT5Config`` checkpoints with its T5 loader (idempotent)."""
    from ctranslate2.converters import transformers as ct2_transformers

    register_architectures()  # AutoConfig reads the pruned model_type

    class PrunedT5Loader(ct2_transformers.T5Loader):
        def get_model_class(self, config, model_class):
            from ..architectures.pruned_t5 import PrunedT5ForConditionalGeneration

            return PrunedT5ForConditionalGeneration

    ct2_transformers.register_loader("PrunedT5Config")(PrunedT5Loader)


def t5_converter(path: str | os.PathLike):
    """A ``TransformersConverter`` for ``path`` taking the decoder-output scaling from the loaded model."""
    import ctranslate2
    from ctranslate2.specs import model_spec

    register_pruned_t5_loader()

    class _T5Converter(ctranslate2.converters.TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            self.model = super().load_model(model_class, model_name_or_path, **kwargs)
            return self.model

        def _load(self):
            spec = super()._load()
            config = self.model.config
            if getattr(config, "model_type", None) in T5_TYPES and hasattr(config, "scale_decoder_outputs"):
                scale = config.scale_decoder_outputs  # transformers >= 5
                spec.decoder.scale_outputs = config.d_model**-0.5 if scale else model_spec.OPTIONAL
            self.model = None
            return spec

    return _T5Converter(str(path))


def check_vocabulary(tokenizer, vocab_size: int) -> None:
    """The converter writes the tokenizer's vocabulary in id order: ids must be 0..n-1 and fit the model."""
    ids = sorted(tokenizer.get_vocab().values())
    if ids != list(range(len(ids))) or len(ids) > vocab_size:
        raise ModelError(
            f"the tokenizer's ids are not 0..{len(ids) - 1} within the model's {vocab_size} embeddings, "
            "so the CTranslate2 vocabulary would not line up with the weights",
            "use a T5 checkpoint whose tokenizer ids are contiguous (every T5 / mT5 on the hub is)",
        )


def convert_t5(path: str | os.PathLike, out_dir: str | os.PathLike, quantization: str) -> str:
    """Convert the checkpoint at ``path`` into ``out_dir``, weights in ``quantization``; returns out_dir."""
    t5_converter(path).convert(str(out_dir), quantization=quantization, force=True)
    return str(out_dir)
