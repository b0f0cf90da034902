"""PT2E int8 compiled by TorchInductor (bert family): ``pt2e-int8``.

PyTorch 2 export quantization, as torchao ships it (``torchao.quantization.pt2e``):

1. ``torch.export`` the classifier (logits only) with dynamic batch and sequence axes
   (``export.classifier.torch_export_classifier``);
2. ``prepare_pt2e`` with ``X86InductorQuantizer`` inserts observers: int8 weights (per output channel) and
   uint8 activations (per tensor) for every Linear;
3. calibration: the observers see ``samples`` training texts of the model's task, one unpadded text per
   forward;
4. ``convert_pt2e`` turns observers into quantize/dequantize pairs around int8 weights;
5. ``torch.compile`` (TorchInductor, ``freezing=True``) folds the weights and lowers each
   dequantize -> Linear -> quantize pattern to oneDNN's int8 kernels, which use VNNI or AMX where the CPU has
   them, and fuses the element-wise work between them into generated C++ loops.

Only the calibrated (static) activation scheme is offered: the dynamic one
(``get_default_x86_inductor_quantization_config(is_dynamic=True)``), compiled the same way, does not reproduce
fp32's predictions with the pinned torch and torchao releases.

The compiled graph is what is measured; compilation happens in ``apply`` (warm-up on a batch of one and a
batch of several texts, so that the benchmark never times a compile) and its time is recorded in
``details["compile_s"]``. Calls run with ``backed_size_oblivious`` (``SHAPE_OPTIONS``): a size of 1 is not
specialised, so one graph serves batch 1 and every other batch (by default Dynamo compiled a second graph
for the first batch of more than one: 57 s of cold compile for MiniLM-L6 on 2 cores, 31 s with one graph,
the same speed at batch 1 and 32); ``details["compiled_graphs"]`` counts them. TorchInductor generates C++ and needs a C++ compiler at run time: without one the
method says so before any work.

Size: the tensors the converted graph reads (``graph_tensors_mb``): int8 weights plus the float32 ones it
keeps (embeddings, LayerNorm, biases, scales). Its ``state_dict`` also still holds the original float32
weights, which the graph no longer uses.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..environment import cxx_compiler
from ..export.classifier import CHECK_BATCHES, max_positions, torch_export_classifier, torch_logits
from ..export.onnx_graph import split_pairs
from ..runtimes.torch import CompiledPredictor
from .base import Method, Variant, register_method
from .calibration import DEFAULT_SAMPLES, calibration_task, calibration_texts, check_calibration_options
from .compiled import SHAPE_OPTIONS, compiled_graphs
from .units import FallbackUnits, normalize_units_field, pt2e_linear_units, pt2e_roots

logger = logging.getLogger(__name__)

INSTALL = "pip install torchao==0.18.0"
INDUCTOR_OPTIONS = {"freezing": True}  # constant-fold the int8 weights into oneDNN's packed layout


def _pt2e_missing() -> str | None:
    try:
        import torchao  # noqa: F401  (first: a missing torchao is found even when its submodules are cached)
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e  # noqa: F401
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (  # noqa: F401
            X86InductorQuantizer,
        )
    except Exception as e:
        return f"torchao's PT2E quantization is not importable ({type(e).__name__}: {e}; {INSTALL})"
    if cxx_compiler() is None:
        return "TorchInductor needs a C++ compiler and none is on PATH (install g++, or set CXX)"
    return None


def graph_tensors_mb(gm) -> float:
    """MiB of the tensors a ``GraphModule``'s graph reads (used ``get_attr`` nodes), each counted once."""
    import torch

    seen: dict[int, int] = {}
    for node in gm.graph.nodes:
        if node.op != "get_attr" or not node.users:  # torch.export keeps unused parameters as dangling nodes
            continue
        obj = gm
        for part in str(node.target).split("."):
            obj = getattr(obj, part)
        if isinstance(obj, torch.Tensor):
            seen[id(obj)] = obj.numel() * obj.element_size()
    return sum(seen.values()) / 2**20


class CompiledClassifier:
    """A compiled classifier: positional token tensors in ``input_names`` order -> logits."""

    def __init__(self, fn, input_names: list[str]):
        self.fn = fn
        self.input_names = list(input_names)

    def __call__(self, enc):
        import torch

        args = [enc[n] for n in self.input_names]  # export_input_names: what the tokenizer produces
        # not inference_mode: the frozen graph's constants were made outside it. The options are set on each
        # call, not given to torch.compile (which ignores ``freezing`` there): a new input shape recompiles
        # lazily, inside a call, and must freeze too; the guards of the one graph are checked under the same
        # shape options it was compiled with; the global config is never changed.
        with (
            torch.no_grad(),
            torch._inductor.config.patch(INDUCTOR_OPTIONS),
            torch.fx.experimental._config.patch(SHAPE_OPTIONS),
        ):
            return self.fn(*args)


@dataclass(frozen=True)
class Pt2eOptions:
    """``samples``: calibration texts, a seeded draw from ``task``'s training split (None: the model's);
    ``fp32_units``: units (``methods.units.units(model)``) left without a qconfig, so float32."""

    samples: int = DEFAULT_SAMPLES
    task: str | None = None
    fp32_units: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_calibration_options(self.samples, self.task)
        normalize_units_field(self)


@register_method
class Pt2eInt8(FallbackUnits, Method):
    """PT2E static int8 with ``X86InductorQuantizer``, compiled by TorchInductor."""

    name = "pt2e-int8"
    description = (
        "PyTorch 2 export quantization (torchao X86InductorQuantizer): int8 weights and activations calibrated "
        "on training texts, compiled by TorchInductor into oneDNN int8 kernels (VNNI/AMX)"
    )
    families = ("bert",)
    runtime = "pytorch-inductor"
    dtype = "int8"
    Options = Pt2eOptions

    def unavailable_reason(self) -> str | None:
        return _pt2e_missing()

    def apply(self, loaded) -> Variant:
        self.check(loaded.family)
        units, kept = self.fallback_units(loaded)
        import torch
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        model, tok, prefix = loaded.model, loaded.tokenizer, loaded.spec.prefix
        max_len = max_positions(model)
        t0 = time.perf_counter()
        exported, names = torch_export_classifier(model, tok, loaded.spec.name)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            torch.inference_mode(False),
        ):
            warnings.simplefilter("ignore")
            quantizer = xiq.X86InductorQuantizer()
            quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
            for root in pt2e_roots(units, kept, exported):  # no qconfig: the unit stays float32
                quantizer.set_module_name_qconfig(root, None)
            prepared = prepare_pt2e(exported, quantizer)
            task = calibration_task(loaded, self.opts.task)
            texts = calibration_texts(task, self.opts.samples)
            firsts, pairs = split_pairs(texts)  # a pair task: both sentences, with token type ids
            with torch.no_grad():
                for i, t in enumerate(
                    firsts
                ):  # one text per forward: no padding tokens in the activation ranges
                    e = tok([prefix + t], None if pairs is None else [pairs[i]], max_length=max_len,
                            truncation=True if pairs is None else "longest_first", return_tensors="pt")  # fmt: skip
                    prepared(*(e[n] for n in names))
            converted = convert_pt2e(prepared)
        quantize_s = time.perf_counter() - t0
        size_mb = graph_tensors_mb(converted)
        compiled = torch.compile(converted, dynamic=True)
        fn = CompiledClassifier(compiled, names)
        graphs0 = compiled_graphs()
        t0 = time.perf_counter()
        worst, agree, total = 0.0, 0, 0
        for b in CHECK_BATCHES:  # compile now (batch 1, then 3: one graph), and check against fp32
            e = tok([prefix + t for t in b], padding="longest", return_tensors="pt")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # inductor's own UserWarnings while lowering
                out = fn(e).float().numpy()
            ref = torch_logits(model, tok, [prefix + t for t in b])
            worst = max(worst, float(np.abs(out - ref).max()))
            agree += int((out.argmax(-1) == ref.argmax(-1)).sum())
            total += len(b)
        compile_s = time.perf_counter() - t0
        linears = pt2e_linear_units(converted, units)
        q_ops = sum(
            1 for n in converted.graph.nodes if str(n.target).split(".")[-2:-1] == ["quantize_per_tensor"]
        )
        details: dict[str, Any] = {
            **self.options,
            "calibration_task": task,
            "calibration_samples": len(texts),
            "quantizer": "X86InductorQuantizer(default: int8 per-channel weights, uint8 per-tensor activations)",
            "activation_quantize_ops": q_ops,
            "fp32_units": list(kept),
            "int8_linear_ops": sum(c["int8"] for c in linears.values()),
            "fp32_linear_ops": sum(c["fp32"] for c in linears.values()),
            "linear_ops_by_unit": linears,
            "inductor_options": dict(INDUCTOR_OPTIONS),
            "quantize_s": round(quantize_s, 2),
            "compile_s": round(compile_s, 2),
            "compiled_graphs": compiled_graphs() - graphs0,
            "shape_options": dict(SHAPE_OPTIONS),
            "check_max_abs_logit_diff": round(worst, 5),
            "check_agreement": f"{agree}/{total}",
            "cxx": cxx_compiler(),
        }
        predictor = CompiledPredictor(fn, tok, loaded.family, prefix)
        return Variant(self.label, predictor, self.runtime, self.dtype, size_mb, details)
