"""torchao methods: ``torchao.quantization.quantize_`` on the nn.Linear layers of a copy of the model.

- ``torchao-int8-dynamic``: ``Int8DynamicActivationInt8WeightConfig``: int8 weights per output channel,
  activations quantized to int8 per token at run time, int8 x int8 -> int32 matmuls (``torch._int_mm``)
  rescaled to float32 (dtype "int8"). ``reduce_range`` (7-bit) is set where torchao's
  ``should_reduce_range`` says the CPU has no VNNI, as the ONNX Runtime methods do.
- ``torchao-int8-weight``: ``Int8WeightOnlyConfig``: int8 weights per output channel; activations stay
  float32 and each call converts the int8 weight to float32 for a float32 matmul, so dtype is "fp32" (the
  precision the arithmetic runs in, which ``peak`` compares with); ``details["weights"]`` says int8.
- ``torchao-int4-weight`` (option ``group_size``, 32, 64 or 128; default 128): int4 weights, asymmetric,
  one scale and zero point per ``group_size`` inputs, packed for the CPU kernel
  ``aten._weight_int4pack_mm_for_cpu``; float32 activations and arithmetic (dtype "fp32").

  torchao 0.18's stable ``Int4WeightOnlyConfig`` has no CPU format: its packing formats need mslk (``plain``),
  CUDA and bfloat16 (``tile_packed_to_4d``), or XPU/NPU (``plain_int32``), and ``opaque`` (the CPU format of
  earlier releases) is gone from it. The CPU path moved to ``torchao.prototype.quantization.int4``
  (``PrototypeInt4WeightOnlyConfig`` -> ``Int4OpaqueTensor``), a prototype API that may move again.

torchao is imported lazily: without it the methods are listed but ``unavailable_reason`` says
``pip install torchao``. Whether a config runs on this machine is found by a real attempt: quantize and run a
small Linear layer, once per process and config; the error, if any, is the reason.

Layers: every nn.Linear whose shape the config takes. int4 needs ``in_features`` divisible by ``group_size``
and ``out_features`` divisible by 16 (the CPU packing), so e.g. a 2-label classifier head stays float32;
layers left in float32 are listed in ``details["skipped_layers"]``. A tied output projection (T5's
``lm_head`` shares the embedding matrix) is quantized like any Linear: ``quantize_`` gives ``lm_head`` its own
quantized weight and the embeddings keep the float32 matrix, so the variant holds both (as ``dynamic-int8``
does) and ``details["untied"]`` names it.

Every config is built with ``set_inductor_config=False``: the variants run in eager mode, and torchao's
recommended-inductor settings would otherwise change torch._inductor's global config for the whole process.

Size: ``torch_size_mb`` (``torch.save`` of the state dict), which serializes torchao's tensor subclasses
(int8 / packed int4 data plus their scales) as they are held in memory.
"""

from __future__ import annotations

import copy
import logging
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigError, MethodNotApplicableError
from .base import Method, Variant, register_method
from .torch import torch_variant

logger = logging.getLogger(__name__)

INSTALL = "pip install torchao==0.18.0"
INT4_GROUP_SIZES = (32, 64, 128)  # what Int4OpaqueTensor (the CPU int4 packing) accepts
INT4_N_MULTIPLE = 16  # _convert_weight_to_int4pack_for_cpu: "expect N to be dividable by 16"
PROBE_SHAPE = (256, 64)  # in, out features of the test layer: fits every config and group size here

_PROBES: dict[str, str | None] = {}


def _torchao():
    """The torchao module, or None when it is not installed (or fails to import)."""
    ao_logger = logging.getLogger("torchao")
    level = ao_logger.level
    # the torchao wheel's own C++ extensions are CUDA kernels that a CPU-only torch cannot load; torchao logs a
    # warning for each at import. These methods use none of them (their CPU kernels are in torch itself).
    ao_logger.setLevel(logging.ERROR)
    try:
        import torchao
        import torchao.quantization  # noqa: F401
    except Exception as e:
        logger.debug("torchao cannot be imported: %s", e)
        return None
    finally:
        ao_logger.setLevel(level)
    return torchao


def _probe(config) -> str | None:
    """Quantize and run a small Linear layer with ``config``: None if that works, else why not (cached)."""
    key = repr(config)
    if key not in _PROBES:
        import torch
        from torchao.quantization import quantize_

        reason = None
        try:
            generator = torch.Generator().manual_seed(0)
            layer = torch.nn.Sequential(torch.nn.Linear(*PROBE_SHAPE))
            x = torch.randn(3, PROBE_SHAPE[0], generator=generator)
            quantize_(layer, config)
            with torch.inference_mode():
                out = layer(x)
            if out.shape != (3, PROBE_SHAPE[1]) or not bool(torch.isfinite(out).all()):
                reason = f"torchao {type(config).__name__} gives a wrong or non-finite output on a test layer"
        except Exception as e:  # what fails here varies with the version: ImportError, AssertionError, ...
            text = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
            reason = f"torchao {type(config).__name__} fails on this CPU ({type(e).__name__}: {text})"
        _PROBES[key] = reason
    return _PROBES[key]


class _TorchaoMethod(Method):
    families = ("bert", "t5")
    runtime = "pytorch"
    weights = "int8"
    activations = "fp32"

    @abstractmethod
    def _config(self):
        """The torchao config object (called only when torchao imports)."""

    def _skip_reason(self, module) -> str | None:
        """Why this nn.Linear stays in float32, or None to quantize it."""
        return None

    def unavailable_reason(self) -> str | None:
        if _torchao() is None:
            return f"the torchao package is not installed ({INSTALL})"
        try:
            config = self._config()
        except Exception as e:  # an API this torchao version lacks
            return f"torchao {_torchao().__version__} has no such config ({type(e).__name__}: {e}; {INSTALL})"
        return _probe(config)

    def apply(self, loaded) -> Variant:
        import torch

        self.check(loaded.family)
        torchao = _torchao()
        from torchao.quantization import quantize_

        model = copy.deepcopy(loaded.model).eval()
        names: dict[int, int] = {}  # parameter id -> how many names it has (more than one: tied)
        for _, p in model.named_parameters(remove_duplicate=False):
            names[id(p)] = names.get(id(p), 0) + 1
        tied = {
            n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and names[id(m.weight)] > 1
        }
        quantized: list[str] = []
        skipped: dict[str, str] = {}

        def filter_fn(module, fqn: str) -> bool:  # quantize_ asks this of every module
            if not isinstance(module, torch.nn.Linear):
                return False
            why = self._skip_reason(module)
            if why:
                skipped[fqn] = why
                return False
            quantized.append(fqn)
            return True

        config = self._config()
        quantize_(model, config, filter_fn=filter_fn)
        modules = dict(model.named_modules())
        for fqn in list(quantized):  # a config may still leave a layer as it is: count what really changed
            if type(modules[fqn].weight) in (torch.Tensor, torch.nn.Parameter):
                quantized.remove(fqn)
                skipped[fqn] = f"torchao left it in float32 (shape {tuple(modules[fqn].weight.shape)})"
        if not quantized:
            first = next(iter(skipped.items()), None)
            raise MethodNotApplicableError(
                f"method {self.label!r} finds no Linear layer of {loaded.spec.name!r} it can quantize"
                + (f" (e.g. {first[0]}: {first[1]})" if first else ""),
                "use a smaller group_size"
                if hasattr(self.opts, "group_size")
                else "drop this method for this model",
            )
        details: dict[str, Any] = {
            **self.options,
            "weights": self.weights,
            "activations": self.activations,
            "quantized_linear_layers": len(quantized),
            "skipped_layers": skipped,
            "untied": sorted(t for t in tied if t in quantized),
            "torchao": torchao.__version__,
            "config": repr(config),
        }
        return torch_variant(self, loaded, model, **details)


@register_method
class TorchaoInt8Dynamic(_TorchaoMethod):
    name = "torchao-int8-dynamic"
    description = "torchao: int8 weights per channel, int8 activations per token (dynamic), int8 matmuls"
    dtype = "int8"
    activations = "int8 (dynamic, per token)"

    def _config(self):
        import torch
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig
        from torchao.utils import should_reduce_range

        return Int8DynamicActivationInt8WeightConfig(
            reduce_range=should_reduce_range(torch.device("cpu")), set_inductor_config=False
        )


@register_method
class TorchaoInt8Weight(_TorchaoMethod):
    name = "torchao-int8-weight"
    description = "torchao: int8 weights per channel; float32 activations and matmuls (weight-only)"

    def _config(self):
        from torchao.quantization import Int8WeightOnlyConfig

        return Int8WeightOnlyConfig(set_inductor_config=False)


@dataclass(frozen=True)
class Int4Options:
    """``group_size``: inputs per int4 scale and zero point (32, 64 or 128)."""

    group_size: int = 128

    def __post_init__(self) -> None:
        if isinstance(self.group_size, bool) or self.group_size not in INT4_GROUP_SIZES:
            raise ConfigError(
                f"option group_size must be one of {', '.join(map(str, INT4_GROUP_SIZES))}, "
                f"got {self.group_size!r}",
                "use group_size 32, 64 or 128 (what torchao's CPU int4 packing accepts)",
            )
        object.__setattr__(self, "group_size", int(self.group_size))


@register_method
class TorchaoInt4Weight(_TorchaoMethod):
    name = "torchao-int4-weight"
    description = (
        "torchao: int4 weights in groups of group_size (32/64/128) packed for the CPU int4 kernel; "
        "float32 activations and matmuls (weight-only)"
    )
    weights = "int4"
    Options = Int4Options

    def _config(self):
        from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig

        return PrototypeInt4WeightOnlyConfig(group_size=self.opts.group_size, set_inductor_config=False)

    def _skip_reason(self, module) -> str | None:
        g = self.opts.group_size
        if module.in_features % g:
            return f"in_features {module.in_features} is not a multiple of group_size {g}"
        if module.out_features % INT4_N_MULTIPLE:
            return f"out_features {module.out_features} is not a multiple of {INT4_N_MULTIPLE} (int4 packing)"
        return None
