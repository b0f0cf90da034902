"""Methods by name: ``get_method("dynamic-int8").apply(loaded)`` gives a ``Variant`` (a predictor plus facts).

One module per runtime: ``torch`` (eager PyTorch), ``onnx`` (ONNX Runtime), ``ctranslate2``, ``torchao``,
``pt2e`` (PyTorch 2 export, compiled by TorchInductor). Importing this package registers them all in
``METHODS``; each imports its libraries lazily and says in ``unavailable_reason`` what this machine lacks.
"""

from . import ctranslate2, onnx, pt2e, torch, torchao  # noqa: F401  (each registers its methods)
from .base import (
    METHODS,
    Method,
    NoOptions,
    Variant,
    get_method,
    list_methods,
    option_names,
    register_method,
)

__all__ = [
    "METHODS",
    "Method",
    "NoOptions",
    "Variant",
    "get_method",
    "list_methods",
    "option_names",
    "register_method",
]
