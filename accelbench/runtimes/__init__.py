"""Runtimes: the predictors that run a variant (classify or generate a batch of texts), registered by name.

Measurement code only talks to ``Classifier.classify`` and ``Generator.generate``; a runtime implements one or
both and registers a ``Runtime`` under its name (``RUNTIMES``): PyTorch eager, PyTorch compiled by
TorchInductor, ONNX Runtime and CTranslate2. Each imports its library lazily, when a predictor is built.
"""

from . import ctranslate2, onnxruntime, torch  # noqa: F401  (each registers its runtime)
from .base import (
    DEFAULT_MAX_LENGTH,
    PADDINGS,
    RUNTIMES,
    Classifier,
    Generation,
    Generator,
    Predictor,
    Runtime,
    get_runtime,
    list_runtimes,
    register_runtime,
)
from .torch import CompiledPredictor, TorchClassifier, TorchGenerator, torch_predictor

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "PADDINGS",
    "RUNTIMES",
    "Classifier",
    "CompiledPredictor",
    "Generation",
    "Generator",
    "Predictor",
    "Runtime",
    "TorchClassifier",
    "TorchGenerator",
    "get_runtime",
    "list_runtimes",
    "register_runtime",
    "torch_predictor",
]
