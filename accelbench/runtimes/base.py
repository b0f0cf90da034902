"""The predictor protocols every runtime implements (classify or generate) and the runtime registry."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .. import devices
from ..devices import CPU
from ..exceptions import ConfigError
from ..registry import Registry

PADDINGS = ("dynamic", "max_length")
DEFAULT_MAX_LENGTH = 128


@dataclass
class Generation:
    texts: list[str]
    new_tokens: int  # generated tokens over the batch, end-of-sequence included, padding excluded


class Predictor:
    """A model ready to run on a batch of raw texts; tokenization is part of what is measured.

    ``padding='dynamic'`` pads a batch to its longest text; ``'max_length'`` pads every batch to
    ``max_length`` tokens (what a naive deployment does). A predictor is a ``Classifier`` or a ``Generator``.
    """

    runtime: str = "base"
    tensor_type: str | None = "np"  # what the tokenizer returns: "np", "pt", or None (python lists)
    device: str = CPU  # where the model runs (``devices``); a GPU predictor sets its own
    torch_allocator: bool = True  # its GPU memory is torch's (the peaks ``devices.DeviceMemory`` reads)

    def __init__(self, tokenizer, family: str, prefix: str = ""):
        self.tokenizer = tokenizer
        self.family = family
        self.prefix = prefix

    def encode(self, texts: list, padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH):
        """Tokenizer output for a batch. An item may be a text or a ``(text, text_pair)`` pair, which the
        tokenizer joins as the model family expects (BERT: ``[CLS] a [SEP] b [SEP]`` with token type ids)."""
        if padding not in PADDINGS:
            raise ConfigError(
                f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}", "use padding='dynamic'"
            )
        pairs = None
        if texts and not isinstance(texts[0], str):
            texts, pairs = [t[0] for t in texts], [t[1] for t in texts]
        if self.prefix:
            texts = [self.prefix + t for t in texts]
        return self.tokenizer(
            texts,
            pairs,
            padding="longest" if padding == "dynamic" else "max_length",
            truncation=True if pairs is None else "longest_first",
            max_length=max_length,
            return_tensors=self.tensor_type,
        )

    def synchronize(self) -> None:
        """Wait for the work this predictor queued on its device (timers call it around each timed call)."""
        if self.device != CPU:  # called around every timed call: nothing to parse on the CPU
            devices.synchronize(self.device)

    def park(self) -> None:
        """Release, between its turns, what would slow other predictors of this process (a no-op by default).

        The interleaved rounds park every predictor and wake each for its own turn (``unpark``), so a variant
        is timed with only its own runtime's threads alive, as it runs when deployed. A parked predictor
        wakes by itself on its next call, so parking is never wrong, only a cost to the next call."""

    def unpark(self) -> None:
        """Take back what ``park`` released (a no-op by default)."""

    def close(self) -> None:
        """Release what the runtime holds (sessions, threads, files)."""


class Classifier(Predictor, ABC):
    """A predictor for classification tasks: texts (or text pairs) -> logits, label indices, scores."""

    @abstractmethod
    def logits(
        self, texts: list, padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        """Raw logits, shape (B, num_labels), float32."""

    def classify(
        self, texts: list, padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        """Predicted label indices, shape (B,)."""
        return np.asarray(self.logits(texts, padding, max_length)).argmax(-1)

    def scores(
        self, texts: list, padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        """Class probabilities (softmax of the logits), shape (B, num_labels), float32."""
        z = np.asarray(self.logits(texts, padding, max_length), dtype=np.float32)
        z = np.exp(z - z.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)


class Generator(Predictor, ABC):
    """A predictor for sequence-to-sequence tasks: source texts -> generated texts."""

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


@dataclass(frozen=True)
class Runtime:
    """A runtime by name: its classifier and generator predictors (None where it has none).

    ``libraries``: the modules the predictors import when they are built (lazily, so that the package imports
    without them); ``unavailable_reason`` says which one is missing.
    """

    name: str
    description: str
    classifier: type[Classifier] | None = None
    generator: type[Generator] | None = None
    libraries: tuple[str, ...] = ()

    def predictor_class(self, kind: str) -> type[Predictor]:
        """The predictor for a task kind: ``classification`` or ``seq2seq``."""
        cls = {"classification": self.classifier, "seq2seq": self.generator}.get(kind)
        if cls is None:
            raise ConfigError(
                f"runtime {self.name!r} has no predictor for {kind!r} tasks",
                f"use a runtime with a {'classifier' if kind == 'classification' else 'generator'}",
            )
        return cls

    def unavailable_reason(self) -> str | None:
        for module in self.libraries:
            try:
                importlib.import_module(module)
            except Exception as e:
                return f"{module} is not importable ({type(e).__name__}: {e}); pip install {module}"
        return None


RUNTIMES: Registry[Runtime] = Registry("runtime", "use one of the runtimes above")


def register_runtime(runtime: Runtime, overwrite: bool = False) -> Runtime:
    return RUNTIMES.register(runtime.name, runtime, overwrite=overwrite)


def get_runtime(name: str) -> Runtime:
    return RUNTIMES.get(name)


def list_runtimes() -> list[str]:
    return RUNTIMES.names()
