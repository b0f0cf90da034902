"""Compression methods, by name: ``get_method("dynamic-int8").apply(loaded)`` gives a ``Variant``."""

from . import ctranslate2_methods, onnx_methods, pt2e_methods, torch_methods, torchao_methods  # noqa: F401  (each registers its methods)
from .base import Method, Variant, get_method, list_methods, register_method

__all__ = ["Method", "Variant", "get_method", "list_methods", "register_method"]
