"""PyTorch runtimes: eager classifier and generator, and a classifier that calls a compiled function."""

from __future__ import annotations

import numpy as np

from .base import DEFAULT_MAX_LENGTH, Classifier, Generation, Generator, Predictor, Runtime, register_runtime


class TorchClassifier(Classifier):
    """Classifies with a transformers sequence classifier in PyTorch eager mode (``inference_mode``)."""

    runtime = "pytorch"
    tensor_type = "pt"

    def __init__(self, model, tokenizer, family: str = "bert", prefix: str = ""):
        super().__init__(tokenizer, family, prefix)
        self.model = model.eval()

    def logits(
        self, texts: list, padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        import torch

        enc = self.encode(texts, padding, max_length)
        with torch.inference_mode():
            logits = self.model(**enc).logits  # (B, num_labels)
        return logits.float().numpy()


class TorchGenerator(Generator):
    """Generates with a transformers seq2seq model's ``generate`` in PyTorch eager mode (greedy or beam)."""

    runtime = "pytorch"
    tensor_type = "pt"

    def __init__(self, model, tokenizer, family: str = "t5", prefix: str = ""):
        super().__init__(tokenizer, family, prefix)
        self.model = model.eval()

    def generate(
        self,
        texts: list[str],
        max_new_tokens: int = 64,
        num_beams: int = 1,
        padding: str = "dynamic",
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> Generation:
        import torch

        enc = self.encode(texts, padding, max_length)
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                num_beams=num_beams,
                do_sample=False,
                early_stopping=num_beams > 1,
            )  # (B, 1 + T): decoder start token, then generated tokens
        seq = out[:, 1:]  # (B, T) generated tokens
        is_eos = seq == self.tokenizer.eos_token_id
        # through the first end-of-sequence token: finished beams may be filled with </s> rather than <pad>
        per_row = torch.where(
            is_eos.any(1), is_eos.int().argmax(1) + 1, (seq != self.tokenizer.pad_token_id).sum(1)
        )
        new_tokens = int(per_row.sum())
        return Generation(self.tokenizer.batch_decode(out, skip_special_tokens=True), new_tokens)


def torch_predictor(model, tokenizer, family: str, prefix: str = "") -> Predictor:
    """The eager predictor for a model family: t5 generates, every other family classifies."""
    cls = TorchGenerator if family == "t5" else TorchClassifier
    return cls(model, tokenizer, family, prefix)


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
