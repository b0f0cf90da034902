"""PyTorch runtimes: eager classifier and generator (on the CPU or a CUDA device), and a classifier that calls
a compiled function.

A predictor on a GPU moves each tokenized batch to its device and the outputs back; ``context`` (a callable
giving a context manager, e.g. ``tf32_matmuls``) is entered around every forward or ``generate``, so a
per-variant switch such as TF32 matmuls holds for that variant's calls only, whoever else takes turns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import devices
from .base import DEFAULT_MAX_LENGTH, Classifier, Generation, Generator, Predictor, Runtime, register_runtime

Context = Callable[[], contextlib.AbstractContextManager[Any]]


class _TorchPredictor:
    """Device placement and the per-call context shared by the eager classifier and generator."""

    device: str
    context: Context | None

    def _place(self, device: str, context: Context | None) -> None:
        self.device, self.context = device, context

    def _inputs(self, enc):
        return enc if self.device == "cpu" else enc.to(devices.torch_device(self.device))

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        return self.context() if self.context is not None else contextlib.nullcontext()


class TorchClassifier(_TorchPredictor, Classifier):
    """Classifies with a transformers sequence classifier in PyTorch eager mode (``inference_mode``)."""

    runtime = "pytorch"
    tensor_type = "pt"

    def __init__(self, model, tokenizer, family: str = "bert", prefix: str = "", device: str = "cpu",
                 context: Context | None = None):  # fmt: skip
        super().__init__(tokenizer, family, prefix)
        self.model = model.eval()
        self._place(device, context)

    def logits(
        self, texts: list, padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        import torch

        enc = self._inputs(self.encode(texts, padding, max_length))
        with torch.inference_mode(), self._scope():
            logits = self.model(**enc).logits  # (B, num_labels)
        return logits.float().cpu().numpy()


class TorchGenerator(_TorchPredictor, Generator):
    """Generates with a transformers seq2seq model's ``generate`` in PyTorch eager mode (greedy or beam)."""

    runtime = "pytorch"
    tensor_type = "pt"

    def __init__(self, model, tokenizer, family: str = "t5", prefix: str = "", device: str = "cpu",
                 context: Context | None = None):  # fmt: skip
        super().__init__(tokenizer, family, prefix)
        self.model = model.eval()
        self._place(device, context)

    def generate(
        self,
        texts: list[str],
        max_new_tokens: int = 64,
        num_beams: int = 1,
        padding: str = "dynamic",
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> Generation:
        import torch

        enc = self._inputs(self.encode(texts, padding, max_length))
        with torch.inference_mode(), self._scope():
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                num_beams=num_beams,
                do_sample=False,
                early_stopping=num_beams > 1,
            ).cpu()  # (B, 1 + T): decoder start token, then generated tokens
        seq = out[:, 1:]  # (B, T) generated tokens
        is_eos = seq == self.tokenizer.eos_token_id
        # through the first end-of-sequence token: finished beams may be filled with </s> rather than <pad>
        per_row = torch.where(
            is_eos.any(1), is_eos.int().argmax(1) + 1, (seq != self.tokenizer.pad_token_id).sum(1)
        )
        new_tokens = int(per_row.sum())
        return Generation(self.tokenizer.batch_decode(out, skip_special_tokens=True), new_tokens)


def torch_predictor(model, tokenizer, family: str, prefix: str = "", device: str = "cpu",
                    context: Context | None = None) -> Predictor:  # fmt: skip
    """The eager predictor for a model family: t5 generates, every other family classifies."""
    cls = TorchGenerator if family == "t5" else TorchClassifier
    return cls(model, tokenizer, family, prefix, device, context)


class CompiledPredictor(Classifier):
    """Classifies with a compiled callable (``torch.compile`` output): tokenizer output -> logits.

    The callable owns its argument order and gradient mode (see ``methods.pt2e.CompiledClassifier``).
    """

    runtime = "pytorch-inductor"
    tensor_type = "pt"

    def __init__(self, fn, tokenizer, family: str = "bert", prefix: str = ""):
        super().__init__(tokenizer, family, prefix)
        self.fn = fn

    def logits(
        self, texts: list, padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        if self.fn is None:
            raise RuntimeError("this CompiledPredictor is closed")
        return self.fn(self.encode(texts, padding, max_length)).float().numpy()

    def close(self) -> None:
        self.fn = None


register_runtime(
    Runtime("pytorch", "PyTorch eager mode", TorchClassifier, TorchGenerator, libraries=("torch",))
)
register_runtime(
    Runtime(
        "pytorch-inductor",
        "a graph compiled by torch.compile (TorchInductor)",
        classifier=CompiledPredictor,
        libraries=("torch",),
    )
)
