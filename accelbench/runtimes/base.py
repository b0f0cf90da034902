"""The predictor interface every runtime implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

PADDINGS = ("dynamic", "max_length")
DEFAULT_MAX_LENGTH = 128


@dataclass
class Generation:
    texts: list[str]
    new_tokens: int  # generated tokens over the batch, end-of-sequence included, padding excluded


class Predictor(ABC):
    """Classify or generate for a batch of raw texts; tokenization is part of what is measured.

    ``padding='dynamic'`` pads a batch to its longest text; ``'max_length'`` pads every batch to
    ``max_length`` tokens (what a naive deployment does).
    """

    runtime: str = "base"

    def __init__(self, tokenizer, family: str, prefix: str = ""):
        self.tokenizer = tokenizer
        self.family = family
        self.prefix = prefix

    def encode(self, texts: list[str], padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH):
        if padding not in PADDINGS:
            from ..exceptions import ConfigError

            raise ConfigError(
                f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}", "use padding='dynamic'"
            )
        if self.prefix:
            texts = [self.prefix + t for t in texts]
        return self.tokenizer(
            texts,
            padding="longest" if padding == "dynamic" else "max_length",
            truncation=True,
            max_length=max_length,
            return_tensors=self.tensor_type,
        )

    tensor_type = "np"

    @abstractmethod
    def classify(
        self, texts: list[str], padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        """Predicted label indices, shape (B,)."""

    @abstractmethod
    def generate(
        self,
        texts: list[str],
        max_new_tokens: int = 64,
        num_beams: int = 1,
        padding: str = "dynamic",
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> Generation:
        """Decoded outputs for a batch of source texts."""

    def close(self) -> None:
        """Release what the runtime holds (sessions, threads)."""
        return None
