"""CTranslate2 methods for T5: convert the checkpoint, quantize the weights, run with ``Ct2Predictor``.

``ct2-int8`` / ``ct2-int8-float32`` / ``ct2-int16`` / ``ct2-fp32`` convert ``loaded.path`` with
``ctranslate2.converters.TransformersConverter`` and ``quantization=<compute type>``, into a temporary folder
that lives as long as the predictor. ctranslate2 is imported lazily: without it the methods are listed but
``unavailable_reason`` says why they cannot run.

Converter workaround (transformers 5): T5Config now always sets ``tie_word_embeddings=True`` and keeps
whether the decoder output is scaled by ``d_model ** -0.5`` (original T5: yes; T5 v1.1 / flan-t5: no) in
``scale_decoder_outputs``. The CTranslate2 T5 loader still reads ``tie_word_embeddings``, so it would scale
v1.1 checkpoints too; ``_T5Converter`` sets the converted ``scale_outputs`` from the flag the loaded model
really uses. Greedy outputs would not change (a constant factor on the logits), scores and beam search would.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ..exceptions import ModelError
from ..runtimes.ctranslate2 import Ct2Predictor
from .base import Method, Variant, register_method


def _ctranslate2():
    """The ctranslate2 module, or None when it is not installed (or fails to import)."""
    try:
        import ctranslate2
    except Exception:
        return None
    return ctranslate2


def _dir_size_mb(path: str) -> float:
    return (
        sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files) / 2**20
    )


def _t5_converter(ctranslate2, path: str):
    """A TransformersConverter for ``path`` that takes the decoder-output scaling from the loaded model."""
    from ctranslate2.specs import model_spec

    class _T5Converter(ctranslate2.converters.TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            self.model = super().load_model(model_class, model_name_or_path, **kwargs)
            return self.model

        def _load(self):
            spec = super()._load()
            config = self.model.config
            if getattr(config, "model_type", None) == "t5" and hasattr(config, "scale_decoder_outputs"):
                scale = config.scale_decoder_outputs  # transformers >= 5
                spec.decoder.scale_outputs = config.d_model**-0.5 if scale else model_spec.OPTIONAL
            self.model = None
            return spec

    return _T5Converter(path)


def _check_vocabulary(tokenizer, vocab_size: int) -> None:
    """The converter writes the tokenizer's vocabulary in id order: ids must be 0..n-1 and fit the model."""
    ids = sorted(tokenizer.get_vocab().values())
    if ids != list(range(len(ids))) or len(ids) > vocab_size:
        raise ModelError(
            f"the tokenizer's ids are not 0..{len(ids) - 1} within the model's {vocab_size} embeddings, so the "
            "CTranslate2 vocabulary would not line up with the weights",
            "use a T5 checkpoint whose tokenizer ids are contiguous (every T5 / mT5 on the hub is)",
        )


class _Ct2Method(Method):
    families = ("t5",)
    runtime = "ctranslate2"
    compute_type = "float32"

    def unavailable_reason(self) -> str | None:
        ct2 = _ctranslate2()
        if ct2 is None:
            return "the ctranslate2 package is not installed (pip install ctranslate2)"
        supported = ct2.get_supported_compute_types("cpu")
        if self.compute_type not in supported:
            return (
                f"CTranslate2 {ct2.__version__} has no {self.compute_type} on this CPU "
                f"(supported: {', '.join(sorted(supported))})"
            )
        return None

    def apply(self, loaded) -> Variant:
        self.check(loaded.family)
        import ctranslate2

        _check_vocabulary(loaded.tokenizer, loaded.model.config.vocab_size)
        tmp = tempfile.mkdtemp(prefix=f"accelbench-{self.name}-")
        try:
            _t5_converter(ctranslate2, loaded.path).convert(tmp, quantization=self.compute_type, force=True)
            gen = loaded.model.generation_config
            options = {
                "length_penalty": float(gen.length_penalty if gen.length_penalty is not None else 1.0),
                "repetition_penalty": float(gen.repetition_penalty or 1.0),
                "no_repeat_ngram_size": int(gen.no_repeat_ngram_size or 0),
            }
            predictor = Ct2Predictor(
                tmp, loaded.tokenizer, loaded.family, loaded.spec.prefix, compute_type=self.compute_type,
                owns_dir=True, options=options,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        details = {
            "compute_type": self.compute_type,
            "resolved_compute_type": predictor.compute_type,
            "ctranslate2": ctranslate2.__version__,
            "intra_threads": predictor.intra_threads,
            "inter_threads": predictor.inter_threads,
        }
        return Variant(self.name, predictor, self.runtime, self.dtype, _dir_size_mb(tmp), details)


@register_method
class Ct2Int8(_Ct2Method):
    name = "ct2-int8"
    description = "CTranslate2 with int8 weights and int8 GEMMs (T5 only)"
    dtype = "int8"
    compute_type = "int8"


@register_method
class Ct2Int8Float32(_Ct2Method):
    name = "ct2-int8-float32"
    description = "CTranslate2 with int8 weights and int8 GEMMs, other layers in float32 (T5 only)"
    dtype = "int8"
    compute_type = "int8_float32"


@register_method
class Ct2Int16(_Ct2Method):
    name = "ct2-int16"
    description = "CTranslate2 with int16 weights and int16 GEMMs (T5 only; needs an Intel MKL build)"
    dtype = "int16"
    compute_type = "int16"


@register_method
class Ct2FP32(_Ct2Method):
    name = "ct2-fp32"
    description = "CTranslate2 in float32: the runtime alone, without quantization (T5 only)"
    compute_type = "float32"
