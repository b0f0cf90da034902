"""Compression methods, by name: ``get_method("dynamic-int8").apply(loaded)`` gives a ``Variant``."""

from . import torch_methods  # noqa: F401  (registers fp32, bf16, dynamic-int8)
from .base import Method, Variant, get_method, list_methods, register_method

__all__ = ["Method", "Variant", "get_method", "list_methods", "register_method"]
from . import ctranslate2_methods  # noqa: F401,E402
