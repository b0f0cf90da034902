"""Runtimes: one predictor interface (classify a batch of texts, generate for a batch of texts).

Evaluation and benchmark code only talk to ``Predictor``; a runtime (PyTorch eager here; ONNX Runtime
and CTranslate2 plug in the same way) only has to implement it.
"""

from .base import Predictor
from .torch import TorchPredictor

__all__ = ["Predictor", "TorchPredictor"]
