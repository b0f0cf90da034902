"""PyTorch eager methods: the fp32 baseline, bf16 weights and arithmetic, dynamic int8 Linear layers."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

from ..environment import supports_bf16
from ..runtimes.torch import torch_predictor
from .base import Method, Variant, register_method, torch_size_mb
from .units import FallbackUnits, normalize_units_field, quantize_linear_names


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


@dataclass(frozen=True)
class DynamicInt8Options:
    """``fp32_units``: units (``methods.units.units(model)``) whose Linear layers stay float32."""

    fp32_units: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        normalize_units_field(self)


@register_method
class DynamicInt8(FallbackUnits, Method):
    name = "dynamic-int8"
    description = (
        "PyTorch dynamic quantization: int8 weights for every nn.Linear (but those of fp32_units), activations "
        "quantized per batch"
    )
    dtype = "int8"
    Options = DynamicInt8Options

    def apply(self, loaded) -> Variant:
        import torch

        self.check(loaded.family)
        units, kept = self.fallback_units(loaded)
        # no unit kept: every nn.Linear, as before the option existed; else the Linear modules by name
        spec = {torch.nn.Linear} if not kept else quantize_linear_names(units, kept)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notice
            model = torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(loaded.model), spec, dtype=torch.qint8
            )
        n = sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in model.modules())
        fp32 = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
        return torch_variant(self, loaded, model, quantized_linear_layers=n, fp32_linear_layers=fp32,
                             fp32_units=list(kept), engine=torch.backends.quantized.engine)  # fmt: skip
