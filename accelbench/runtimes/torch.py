"""PyTorch eager runtime."""

from __future__ import annotations

import numpy as np

from .base import DEFAULT_MAX_LENGTH, Generation, Predictor


class TorchPredictor(Predictor):
    """Runs a transformers model in PyTorch eager mode under ``torch.inference_mode``."""

    runtime = "pytorch"
    tensor_type = "pt"

    def __init__(self, model, tokenizer, family: str, prefix: str = ""):
        super().__init__(tokenizer, family, prefix)
        self.model = model.eval()

    def classify(
        self, texts: list[str], padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        import torch

        enc = self.encode(texts, padding, max_length)
        with torch.inference_mode():
            logits = self.model(**enc).logits  # (B, num_labels)
        return logits.float().argmax(-1).numpy()

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


class CompiledPredictor(Predictor):
    """Classifies with a compiled callable (``torch.compile`` output): tokenizer output -> logits.

    The callable owns its argument order and gradient mode (see ``compress.pt2e_methods.CompiledClassifier``).
    """

    runtime = "pytorch-inductor"
    tensor_type = "pt"

    def __init__(self, fn, tokenizer, family: str = "bert", prefix: str = ""):
        super().__init__(tokenizer, family, prefix)
        self.fn = fn

    def classify(
        self, texts: list[str], padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        return self.fn(self.encode(texts, padding, max_length)).float().argmax(-1).numpy()

    def generate(
        self,
        texts: list[str],
        max_new_tokens: int = 64,
        num_beams: int = 1,
        padding: str = "dynamic",
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> Generation:
        raise NotImplementedError("CompiledPredictor only classifies (bert-family models)")

    def close(self) -> None:
        self.fn = None
