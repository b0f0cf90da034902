"""Compression methods turn a loaded model into a runnable variant; a registry finds them by name."""

from __future__ import annotations

import logging
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigError, MethodNotApplicableError, UnknownNameError
from ..runtimes.base import Predictor

logger = logging.getLogger(__name__)


@dataclass
class Variant:
    """What a method returns: a predictor plus what the records need to know about it."""

    method: str
    predictor: Predictor
    runtime: str
    dtype: str
    size_mb: float
    details: dict[str, Any] = field(default_factory=dict)


class Method(ABC):
    """A compression method. Subclasses set the class attributes and implement ``apply``."""

    name: str = ""
    description: str = ""
    families: tuple[str, ...] = ("bert", "t5")
    runtime: str = "pytorch"
    dtype: str = "fp32"
    options: dict[str, Any] = {}  # a method with settings keeps them here (set by its __init__)

    @property
    def label(self) -> str:
        """The name records use: the registry name, plus the options that differ from the defaults."""
        defaults = type(self)().options
        changed = {k: v for k, v in self.options.items() if defaults.get(k) != v}
        return (
            self.name
            if not changed
            else f"{self.name}[{','.join(f'{k}={v}' for k, v in sorted(changed.items()))}]"
        )

    def unavailable_reason(self) -> str | None:
        """Why this method cannot run on this machine (missing hardware or library), or None."""
        return None

    def check(self, family: str) -> None:
        """Refuse, before any work, a method that does not apply to this model family or machine."""
        if family not in self.families:
            applicable = [m for m in list_methods() if family in get_method(m).families]
            raise MethodNotApplicableError(
                f"method {self.name!r} does not apply to {family}-family models (it supports "
                f"{', '.join(self.families)})",
                f"use one of: {', '.join(applicable)}",
            )
        reason = self.unavailable_reason()
        if reason:
            raise MethodNotApplicableError(
                f"method {self.name!r} cannot run here: {reason}", "drop it from the grid"
            )

    @abstractmethod
    def apply(self, loaded) -> Variant:
        """Build the variant from a ``models.LoadedModel`` (never modify ``loaded.model`` in place)."""


_METHODS: dict[str, Method] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register a method under its ``name``."""
    _METHODS[cls.name] = cls()
    return cls


def get_method(spec: str | dict[str, Any] | Method) -> Method:
    """A method by name, or by ``{"name": ..., **options}`` for a method that takes options."""
    if isinstance(spec, Method):
        return spec
    options: dict[str, Any] = {}
    if isinstance(spec, dict):
        options = dict(spec)
        name = options.pop("name", None)
        if name is None:
            raise ConfigError(
                "a method entry has no `name`", "write e.g. `{name: ort-static-int8, calibration: entropy}`"
            )
    else:
        name = spec
    try:
        method = _METHODS[name]
    except (KeyError, TypeError):
        raise UnknownNameError(
            "method", str(name), list(_METHODS), "pick methods from the list above"
        ) from None
    if not options:
        return method
    try:
        return type(method)(**options)
    except TypeError as e:
        known = ", ".join(sorted(method.options)) or "none"
        raise ConfigError(
            f"method {name!r}: bad option(s) {sorted(options)} ({e})", f"its options are: {known}"
        ) from e


def list_methods() -> list[str]:
    return list(_METHODS)


def torch_size_mb(model) -> float:
    """Size of the model's state dict as torch.save writes it: what a deployment ships."""
    import torch

    fd, path = tempfile.mkstemp(suffix=".pt")
    os.close(fd)
    try:
        torch.save(model.state_dict(), path)
        return os.path.getsize(path) / 2**20
    finally:
        os.remove(path)
