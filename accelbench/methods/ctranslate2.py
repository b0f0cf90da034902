"""CTranslate2 methods for T5: convert the checkpoint with a compute type, run it with ``Ct2Predictor``.

``ct2-int8`` / ``ct2-int8-float32`` / ``ct2-int16`` / ``ct2-fp32`` convert ``loaded.path`` with
``export.ctranslate2.convert_t5`` and ``quantization=<compute type>``, into a temporary folder that lives as
long as the predictor. ctranslate2 is imported lazily: without it, or on a CPU whose CTranslate2 build lacks
the compute type, the methods are listed but ``unavailable_reason`` says why they cannot run.
"""

from __future__ import annotations

import shutil
import tempfile

from ..devices import CPU, CUDA, device_type, torch_device_index
from ..export.ctranslate2 import check_vocabulary, convert_t5
from ..runtimes.ctranslate2 import Ct2Predictor
from .base import Method, Variant, folder_mb, register_method
from .compiled import loaded_device


def _ctranslate2():
    """The ctranslate2 module, or None when it is not installed (or fails to import)."""
    try:
        import ctranslate2
    except Exception:
        return None
    return ctranslate2


class _Ct2Method(Method):
    families = ("t5",)
    devices = (CPU, CUDA)  # the PyPI wheels are built with CUDA; each compute type is checked per device
    runtime = "ctranslate2"
    compute_type = "float32"  # fixed per registered method: each compute type is its own method

    def unavailable_reason(self) -> str | None:
        return self._unsupported(CPU)

    def cuda_unavailable_reason(self, device: str) -> str | None:
        return self._unsupported(device)

    def _unsupported(self, device: str) -> str | None:
        ct2 = _ctranslate2()
        if ct2 is None:
            return "the ctranslate2 package is not installed (pip install ctranslate2)"
        kind, index = device_type(device), torch_device_index(device)
        if kind == CUDA and ct2.get_cuda_device_count() <= index:
            return (f"CTranslate2 {ct2.__version__} sees {ct2.get_cuda_device_count()} CUDA device(s): its wheel "
                    "needs the CUDA 12 runtime and cuBLAS libraries")  # fmt: skip
        supported = (
            ct2.get_supported_compute_types(kind, index)
            if kind == CUDA
            else ct2.get_supported_compute_types(kind)
        )
        if self.compute_type not in supported:
            return (
                f"CTranslate2 {ct2.__version__} has no {self.compute_type} on this {kind.upper()} "
                f"(supported: {', '.join(sorted(supported))})"
            )
        return None

    def apply(self, loaded) -> Variant:
        device = loaded_device(loaded)
        self.check(loaded.family, device=device)
        import ctranslate2

        check_vocabulary(loaded.tokenizer, loaded.model.config.vocab_size)
        tmp = tempfile.mkdtemp(prefix=f"accelbench-{self.name}-")
        try:
            convert_t5(loaded.path, tmp, self.compute_type)
            gen = loaded.model.generation_config
            options = {
                "length_penalty": float(gen.length_penalty if gen.length_penalty is not None else 1.0),
                "repetition_penalty": float(gen.repetition_penalty or 1.0),
                "no_repeat_ngram_size": int(gen.no_repeat_ngram_size or 0),
            }
            predictor = Ct2Predictor(
                tmp, loaded.tokenizer, loaded.family, loaded.spec.prefix, compute_type=self.compute_type,
                owns_dir=True, options=options, device=device,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        details = {
            "compute_type": self.compute_type,
            "device": device,
            "resolved_compute_type": predictor.compute_type,
            "ctranslate2": ctranslate2.__version__,
            "intra_threads": predictor.intra_threads,
            "inter_threads": predictor.inter_threads,
        }
        return Variant(self.label, predictor, self.runtime, self.dtype, folder_mb(tmp), details)


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


@register_method
class Ct2FP16(_Ct2Method):
    name = "ct2-fp16"
    description = "CTranslate2 in float16 on a GPU (T5 only)"
    dtype = "fp16"
    compute_type = "float16"
    devices = (CUDA,)


@register_method
class Ct2BF16(_Ct2Method):
    name = "ct2-bf16"
    description = "CTranslate2 in bfloat16 on a GPU (T5 only; Ampere or newer)"
    dtype = "bf16"
    compute_type = "bfloat16"
    devices = (CUDA,)
