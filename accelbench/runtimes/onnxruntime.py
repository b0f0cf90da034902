"""ONNX Runtime: classification with an exported ``.onnx`` graph on the CPU execution provider.

``onnxruntime`` is imported lazily, when a predictor is built, so that the package imports without it.
Only sequence classification (bert family) runs here; T5 generation through ONNX Runtime is out of scope.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .base import DEFAULT_MAX_LENGTH, Generation, Predictor

PROVIDERS = ("CPUExecutionProvider",)
_NUMPY_INT = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def session_options(intra_op_num_threads: int | None = None, inter_op_num_threads: int | None = None):
    """Session options every accelbench ORT session uses: all graph optimizations, torch's thread count.

    ``intra_op_num_threads=None`` takes ``torch.get_num_threads()``, so that ORT and PyTorch variants are
    measured with the same number of threads.
    """
    import onnxruntime as ort

    if intra_op_num_threads is None:
        import torch

        intra_op_num_threads = torch.get_num_threads()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(intra_op_num_threads)
    if inter_op_num_threads is not None:
        so.inter_op_num_threads = int(inter_op_num_threads)
    so.log_severity_level = 3  # errors only: no warnings about unused initializers on every load
    return so


def make_session(path: str | os.PathLike, intra_op_num_threads: int | None = None, **kw):
    """An ``InferenceSession`` on ``path`` with ``session_options`` and the CPU execution provider."""
    import onnxruntime as ort

    so = session_options(intra_op_num_threads, **kw)
    return ort.InferenceSession(str(path), so, providers=list(PROVIDERS))


def feeds_for(session, enc) -> dict[str, np.ndarray]:
    """The inputs ``session`` declares, taken from a tokenizer output, in the dtype the graph wants.

    Inputs the tokenizer did not produce (``token_type_ids`` for some tokenizers) are zeros shaped like
    ``input_ids``; inputs the graph does not declare (an exporter drops unused ones) are left out.
    """
    feeds = {}
    for arg in session.get_inputs():
        dtype = _NUMPY_INT.get(arg.type, np.int64)
        if arg.name in enc:
            feeds[arg.name] = np.asarray(enc[arg.name]).astype(dtype, copy=False)
        elif arg.name == "token_type_ids":
            feeds[arg.name] = np.zeros_like(np.asarray(enc["input_ids"]), dtype=dtype)
        else:
            raise KeyError(f"the ONNX graph wants input {arg.name!r}, which the tokenizer does not produce")
    return feeds


class OrtPredictor(Predictor):
    """Runs an ONNX sequence classifier in an ``onnxruntime.InferenceSession`` (CPUExecutionProvider).

    ``workdir``: an object that owns the graph's files (a ``tempfile.TemporaryDirectory``); the predictor
    keeps it alive and cleans it up in ``close()``. ``graph_paths`` names the graphs a method built
    (``exported``, ``optimized``, ...) so that later checks such as ``onnx_methods.fusion_report`` can use
    them while the predictor lives. ``settings`` records the session's threads, providers and versions.
    """

    runtime = "onnxruntime"
    tensor_type = "np"

    def __init__(
        self,
        model_path: str | os.PathLike,
        tokenizer,
        family: str = "bert",
        prefix: str = "",
        intra_op_num_threads: int | None = None,
        inter_op_num_threads: int | None = None,
        workdir: Any = None,
        graph_paths: dict[str, str] | None = None,
    ):
        super().__init__(tokenizer, family, prefix)
        import onnxruntime as ort

        self.model_path = str(model_path)
        self.workdir = workdir
        self.graph_paths = dict(graph_paths or {})
        self.session = make_session(
            self.model_path, intra_op_num_threads, inter_op_num_threads=inter_op_num_threads
        )
        so = self.session.get_session_options()
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name = "logits" if "logits" in outputs else outputs[0]
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.settings = {
            "onnxruntime": ort.__version__,
            "providers": list(self.session.get_providers()),
            "intra_op_num_threads": int(so.intra_op_num_threads),
            "inter_op_num_threads": int(so.inter_op_num_threads),  # 0: ORT's default (unused when sequential)
            "execution_mode": "sequential",
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "inputs": list(self.input_names),
        }

    def logits(
        self, texts: list[str], padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        """Raw logits, shape (B, num_labels), float32."""
        if self.session is None:
            raise RuntimeError("this OrtPredictor is closed")
        enc = self.encode(texts, padding, max_length)
        return self.session.run([self.output_name], feeds_for(self.session, enc))[0]

    def classify(
        self, texts: list[str], padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        return self.logits(texts, padding, max_length).argmax(-1)

    def generate(
        self,
        texts: list[str],
        max_new_tokens: int = 64,
        num_beams: int = 1,
        padding: str = "dynamic",
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> Generation:
        raise NotImplementedError(
            "OrtPredictor only classifies (bert-family models); generation with T5 through ONNX Runtime "
            "is not supported: use a PyTorch method (fp32, bf16, dynamic-int8) for t5-family models"
        )

    def close(self) -> None:
        self.session = None  # release the session before its files go
        if self.workdir is not None and hasattr(self.workdir, "cleanup"):
            self.workdir.cleanup()
        self.workdir = None
