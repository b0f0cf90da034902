"""PyTorch eager methods: the fp32 baseline, bf16 weights and arithmetic, dynamic int8 Linear layers."""

from __future__ import annotations

import copy
import warnings

from ..environment import supports_bf16
from ..runtimes.torch import torch_predictor
from .base import Method, Variant, register_method, torch_size_mb


def torch_variant(method: Method, loaded, model, **details) -> Variant:
    """A variant that runs ``model`` in PyTorch eager mode (every eager torch method ends here)."""
    predictor = torch_predictor(model, loaded.tokenizer, loaded.family, loaded.spec.prefix)
    return Variant(method.label, predictor, method.runtime, method.dtype, torch_size_mb(model), details)


@register_method
class FP32(Method):
    name = "fp32"
    description = "the unmodified model in float32: the baseline every variant is compared with"

    def apply(self, loaded) -> Variant:
        self.check(loaded.family)
        return torch_variant(self, loaded, loaded.model)


@register_method
class BF16(Method):
    name = "bf16"
    description = "weights and activations in bfloat16 (native on CPUs with AVX512-BF16 or AMX)"
    dtype = "bf16"

    def unavailable_reason(self) -> str | None:
        if supports_bf16():
            return None
        return (
            "this CPU has no native bfloat16 (avx512_bf16 / amx_bf16): PyTorch would emulate it, "
            "slower than fp32"
        )

    def apply(self, loaded) -> Variant:
        import torch

        self.check(loaded.family)
        return torch_variant(self, loaded, copy.deepcopy(loaded.model).to(torch.bfloat16))


@register_method
class DynamicInt8(Method):
    name = "dynamic-int8"
    description = (
        "PyTorch dynamic quantization: int8 weights for every nn.Linear, activations quantized per batch"
    )
    dtype = "int8"

    def apply(self, loaded) -> Variant:
        import torch

        self.check(loaded.family)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notice
            model = torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(loaded.model), {torch.nn.Linear}, dtype=torch.qint8
            )
        n = sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in model.modules())
        return torch_variant(
            self, loaded, model, quantized_linear_layers=n, engine=torch.backends.quantized.engine
        )
