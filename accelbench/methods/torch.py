"""PyTorch methods: fp32 (the baseline), tf32, bf16 and fp16 on the CPU or a CUDA GPU, eager or compiled
(``compile: true``); dynamic int8 Linear layers on the CPU."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from .. import devices as device_support
from ..devices import CPU, CUDA
from ..devices import matmul_precision as precision_scope
from ..environment import cxx_compiler, supports_bf16
from ..exceptions import ConfigError, MethodNotApplicableError
from ..runtimes.torch import torch_predictor
from .base import Method, Variant, check_bool, register_method, torch_size_mb
from .compiled import (
    COMPILE_MODES,
    COMPILED_RUNTIME,
    DEFAULT_COMPILE_MODE,
    compile_model,
    cuda_capability_below,
    loaded_device,
)
from .units import FallbackUnits, normalize_units_field, quantize_linear_names


def torch_variant(method: Method, loaded, model, context=None, **details) -> Variant:
    """A variant that runs ``model`` in PyTorch eager mode on ``loaded``'s device (every eager torch method
    ends here); ``context`` is entered around each of its calls."""
    device = loaded_device(loaded)
    predictor = torch_predictor(model, loaded.tokenizer, loaded.family, loaded.spec.prefix, device, context)
    return Variant(method.label, predictor, method.runtime, method.dtype, torch_size_mb(model), details)


@dataclass(frozen=True)
class PrecisionOptions:
    """``compile``: run the model through ``torch.compile`` (TorchInductor) in ``compile_mode``."""

    compile: bool = False
    compile_mode: str = DEFAULT_COMPILE_MODE

    def __post_init__(self) -> None:
        check_bool("compile", self.compile)
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(
                f"option compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}",
                f"use compile_mode: {DEFAULT_COMPILE_MODE} (or max-autotune on a GPU)",
            )


class PrecisionMethod(Method):
    """A model in one floating-point precision on the CPU or a GPU, eager or compiled (``PrecisionOptions``).

    ``torch_dtype`` converts weights and arithmetic (None: float32 as loaded); ``matmul_precision`` is the
    ``torch.set_float32_matmul_precision`` its calls run under (``highest``: true fp32 matmuls; ``high``:
    TF32 on a GPU). The compiled variants are warmed up in ``apply`` (a one-text and a two-text batch, dynamic
    shapes), so the benchmark never times a compile; ``details["compile_s"]`` keeps its time.
    """

    devices = (CPU, CUDA)
    Options = PrecisionOptions
    quiet_options = ("compile", "compile_mode")  # fp32 and bf16 records made before compile keep their keys
    torch_dtype: ClassVar[str | None] = None
    matmul_precision: ClassVar[str] = "highest"

    @property
    def runtime(self) -> str:  # type: ignore[override]
        return COMPILED_RUNTIME if self.opts.compile else "pytorch"

    def check(self, family: str, unavailable: str = "error", device: str = CPU) -> str | None:
        if self.opts.compile and family == "t5":  # a property of the method, not of the machine: refused
            raise MethodNotApplicableError(
                f"method {self.label!r}: compile applies to classifiers; T5's generate loop changes the cache "
                "length at every step and recompiles its forward past torch's recompile limit",
                f"use {self.name} eager for T5 (or ct2-fp16 / ct2-bf16 on a GPU)",
            )
        return super().check(family, unavailable, device)

    def unavailable_reason(self) -> str | None:
        if self.opts.compile and cxx_compiler() is None:
            return "torch.compile (TorchInductor) needs a C++ compiler on the CPU and none is on PATH (install g++)"
        return None

    def apply(self, loaded) -> Variant:
        import torch

        device = loaded_device(loaded)
        self.check(loaded.family, device=device)
        model = loaded.model
        if self.torch_dtype or device != CPU or self.opts.compile:
            model = copy.deepcopy(model)
        if self.torch_dtype:
            model = model.to(getattr(torch, self.torch_dtype))
        model = model.to(device_support.torch_device(device)).eval()
        context = partial(precision_scope, self.matmul_precision)
        variant = torch_variant(self, loaded, model, context, device=device,
                                matmul_precision=self.matmul_precision)  # fmt: skip
        if self.opts.compile:
            with context():
                variant.details.update(compile_model(variant.predictor, self.opts.compile_mode))
        return variant


@register_method
class FP32(PrecisionMethod):
    name = "fp32"
    description = "the unmodified model in float32: the baseline every variant is compared with"


@register_method
class TF32(PrecisionMethod):
    name = "tf32"
    description = "float32 weights, matmuls in TensorFloat-32 on the GPU's tensor cores (Ampere or newer)"
    dtype = "tf32"
    devices = (CUDA,)
    matmul_precision = "high"

    def cuda_unavailable_reason(self, device: str) -> str | None:
        return cuda_capability_below(device, (8, 0), "TensorFloat-32 matmuls")


@register_method
class BF16(PrecisionMethod):
    name = "bf16"
    description = (
        "weights and activations in bfloat16 (native on CPUs with AVX512-BF16 or AMX, GPUs from Ampere)"
    )
    dtype = "bf16"
    torch_dtype = "bfloat16"

    def unavailable_reason(self) -> str | None:
        if not supports_bf16():
            return (
                "this CPU has no native bfloat16 (avx512_bf16 / amx_bf16): PyTorch would emulate it, "
                "slower than fp32"
            )
        return super().unavailable_reason()

    def cuda_unavailable_reason(self, device: str) -> str | None:
        return device_support.cuda_bf16_unavailable(device)


@register_method
class FP16(PrecisionMethod):
    name = "fp16"
    description = "weights and activations in float16 on the GPU's tensor cores"
    dtype = "fp16"
    torch_dtype = "float16"
    devices = (CUDA,)  # CPUs without AVX512-FP16 emulate it: slower than fp32; use bf16 there


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
