"""What the precision methods (``methods.torch``) share: the variant's device, the float32 matmul precision
its calls run under, the GPU generation a precision needs, and ``torch.compile`` with its warm-up.

``torch.compile`` runs with ``dynamic=True``: dynamically padded batches change the sequence (and batch)
length on every call, and a graph specialised to each shape would recompile during the timed rounds. A
classifier compiles its whole forward. Seq2seq models are refused by the methods (``PrecisionMethod.check``):
compiling the ``forward`` that ``generate`` calls once per step recompiles as the cache grows, past torch's
recompile limit, after which the steps run eager. Every call of a compiled variant runs with
``backed_size_oblivious`` (``SHAPE_OPTIONS``, added to the predictor's per-call context): by default Dynamo
specialises a size of 1, so a batch of one compiled one graph and the first larger batch a second; now one
graph serves every batch (``compiled_graphs`` in the details). The warm-up calls a batch of one text, a
batch of two, and then a third shape, so that what the benchmark times is the compiled code, not its
compilation; their time is the variant's ``compile_s``. ``reduce-overhead`` (CUDA graphs) records a graph
per new shape: use ``paddings: [max_length]`` with it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from .. import devices
from ..devices import CPU, is_cuda
from ..runtimes.base import Classifier

logger = logging.getLogger(__name__)

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DEFAULT_COMPILE_MODE = "default"
COMPILED_RUNTIME = "pytorch-inductor"
# torch.fx.experimental._config, patched around every call of a compiled graph: a size of 1 is not specialised
SHAPE_OPTIONS = {"backed_size_oblivious": True}
# three shapes: batch 1, then two more (one graph for all of them under SHAPE_OPTIONS)
WARMUP_BATCHES = (
    ["a warm-up text"],
    ["a second warm-up text", "and a third, a little longer than the others, to vary the length"],
    ["four", "texts of", "different lengths to", "warm the compiled graph up once more"],
)


def loaded_device(loaded: Any) -> str:
    """The device a loaded model's variants run on (``LoadedModel.device``; cpu when it has none)."""
    return getattr(loaded, "device", None) or CPU


def cuda_capability_below(device: str, need: tuple[int, int], what: str) -> str | None:
    """Why ``what`` cannot run on this CUDA device (compute capability below ``need``), or None."""
    if reason := devices.cuda_unavailable(device):
        return reason
    import torch

    have = torch.cuda.get_device_capability(devices.torch_device(device))
    if tuple(have) < need:
        name = torch.cuda.get_device_name(devices.torch_device(device))
        return f"{name} (compute capability {have[0]}.{have[1]}) has no {what}: it needs {need[0]}.{need[1]}+"
    return None


def compiled_graphs() -> int:
    """Graphs Dynamo has compiled in this process so far (its ``unique_graphs`` counter)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def shape_oblivious(context=None):
    """A per-call context (``runtimes.torch.Context``): ``context``'s, if any, with ``SHAPE_OPTIONS`` patched in."""

    @contextlib.contextmanager
    def scope():
        import torch.fx.experimental._config as fx_config

        with contextlib.ExitStack() as stack:
            if context is not None:
                stack.enter_context(context())
            stack.enter_context(fx_config.patch(SHAPE_OPTIONS))
            yield

    return scope


def compile_model(predictor: Classifier, mode: str = DEFAULT_COMPILE_MODE) -> dict[str, Any]:
    """Compile a torch classifier's model in place and warm it up; returns the details its record keeps."""
    import torch

    t0 = time.perf_counter()
    graphs0 = compiled_graphs()
    predictor.model = torch.compile(predictor.model, mode=mode, dynamic=True)  # type: ignore[attr-defined]
    predictor.context = shape_oblivious(predictor.context)  # type: ignore[attr-defined]
    for texts in WARMUP_BATCHES:
        predictor.logits(texts)  # type: ignore[attr-defined]
        predictor.synchronize()
    compile_s = time.perf_counter() - t0
    logger.info("compiled (%s, %s) in %.1f s", mode, predictor.device, compile_s)
    return {
        "compiled": True,
        "compile_mode": mode,
        "compile_dynamic": True,
        "compile_s": round(compile_s, 2),
        "compiled_graphs": compiled_graphs() - graphs0,
        "shape_options": dict(SHAPE_OPTIONS),
        "cuda_graphs": is_cuda(predictor.device) and mode == "reduce-overhead",
    }
