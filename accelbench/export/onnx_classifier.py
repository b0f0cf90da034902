"""Export a bert-family sequence classifier to ONNX with dynamic axes, and check its logits against PyTorch.

The TorchScript exporter (``dynamo=False``) is used first: it is deprecated but still present, fast, and the
only one whose graph ONNX Runtime's attention fusion recognises. The model is exported from a copy switched to
``attn_implementation="eager"``: the SDPA path (and every dynamo-exported graph) carries a mask pattern
(IsNaN/Where, GatherND) that the fusion does not match, which leaves attention unfused. The dynamo exporter
(``dynamic_shapes``) is the fallback when the TorchScript one fails or is gone.

``torch``, ``onnx`` and ``onnxruntime`` are imported lazily.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ConfigError, ModelError
from ..runtimes.base import DEFAULT_MAX_LENGTH
from ..runtimes.onnxruntime import feeds_for, make_session
from .classifier import (
    CHECK_BATCHES,
    SAMPLE_TEXTS,
    eager_copy,
    export_input_names,
    first_line,
    logits_module,
    max_positions,
    torch_logits,
)

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
EXPORT_RTOL = 1e-4  # exported logits must match torch within 1e-4 * max(1, max |logit|)
EXPORTERS = ("auto", "torchscript", "dynamo")


def _export_torchscript(wrapper, args, path: Path, names: list[str], opset: int) -> None:
    import torch

    kw: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch"}
    torch.onnx.export(
        wrapper,
        args,
        str(path),
        input_names=names,
        output_names=["logits"],
        dynamic_axes=axes,
        opset_version=opset,
        do_constant_folding=True,
        **kw,
    )


def _export_dynamo(wrapper, args, path: Path, names: list[str], opset: int, max_length: int) -> None:
    import torch

    batch = torch.export.Dim("batch")
    seq = torch.export.Dim("sequence", max=max_length)
    torch.onnx.export(
        wrapper,
        args,
        str(path),
        input_names=names,
        output_names=["logits"],
        dynamic_shapes={n: {0: batch, 1: seq} for n in names},
        opset_version=max(opset, 18),  # the dynamo exporter's lowest supported opset
        dynamo=True,
        external_data=False,
        optimize=True,
    )


def export_classifier(
    model,
    tokenizer,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    rtol: float = EXPORT_RTOL,
) -> dict[str, Any]:
    """Export a sequence classifier to ONNX with dynamic batch and sequence axes, and check it.

    ``exporter``: ``"torchscript"`` (``torch.onnx.export(dynamo=False)``), ``"dynamo"``, or ``"auto"``:
    TorchScript, else dynamo. The graph's logits are compared with the PyTorch model's on batches of 1 and
    3 texts of other lengths than the traced ones; a difference above ``rtol * max(1, max |logit|)``
    raises ``ModelError``. Returns what was done (exporter, opset, inputs, the largest difference).
    """
    import torch

    if exporter not in EXPORTERS:
        raise ConfigError(f"exporter must be {', '.join(EXPORTERS)}, got {exporter!r}", "use exporter='auto'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = export_input_names(model, tokenizer)
    wrapper = logits_module(eager_copy(model), names)
    enc = tokenizer(list(SAMPLE_TEXTS), padding="longest", return_tensors="pt")
    args = tuple(enc[n] for n in names)
    tries = ["torchscript", "dynamo"] if exporter == "auto" else [exporter]
    errors = []
    used = None
    for name in tries:
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(io.StringIO()),
                torch.inference_mode(False),
            ):
                warnings.simplefilter(
                    "ignore"
                )  # TracerWarnings, the TorchScript exporter's deprecation notice
                if name == "torchscript":
                    _export_torchscript(wrapper, args, path, names, opset)
                else:
                    _export_dynamo(wrapper, args, path, names, opset, max_positions(model))
            used = name
            break
        except Exception as e:
            logger.info("ONNX export with the %s exporter failed: %s", name, e)
            errors.append(f"{name}: {type(e).__name__}: {first_line(e)}")
    if used is None:
        raise ModelError(
            f"cannot export the model to ONNX ({'; '.join(errors)})", "use the PyTorch methods for this model"
        )
    import onnx

    graph = onnx.load(str(path), load_external_data=False)
    graph_opset = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), opset)
    diff = check_export(model, tokenizer, path, rtol)
    return {
        "exporter": used,
        "opset": int(graph_opset),
        "inputs": [i.name for i in graph.graph.input],
        "max_abs_diff": diff,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
    }


def ort_logits(session, tokenizer, texts: list[str]) -> np.ndarray:
    """An ONNX Runtime session's logits for ``texts``, tokenized as ``torch_logits`` does."""
    enc = tokenizer(
        texts, padding="longest", truncation=True, max_length=DEFAULT_MAX_LENGTH, return_tensors="np"
    )
    return session.run(None, feeds_for(session, enc))[0]


def check_export(model, tokenizer, path: str | os.PathLike, rtol: float = EXPORT_RTOL) -> float:
    """Largest |ORT - torch| logit difference over the check batches; raises ModelError above tolerance."""
    session = make_session(path)
    worst = 0.0
    for texts in CHECK_BATCHES:
        ref = torch_logits(model, tokenizer, texts)
        out = ort_logits(session, tokenizer, texts)
        if out.shape != ref.shape:
            raise ModelError(
                f"the exported graph returns logits of shape {out.shape}, PyTorch {ref.shape}",
                "report this model; use the PyTorch methods for it meanwhile",
            )
        diff = float(np.abs(out - ref).max())
        worst = max(worst, diff)
        tol = rtol * max(1.0, float(np.abs(ref).max()))
        if diff > tol:
            raise ModelError(
                f"the exported ONNX graph disagrees with PyTorch: max |logit difference| {diff:.3g} > "
                f"{tol:.3g} on a batch of {len(texts)}",
                "report this model; use the PyTorch methods for it meanwhile",
            )
    return worst
