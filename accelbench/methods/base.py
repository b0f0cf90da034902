"""What a method is (settings, applicability, ``apply`` -> ``Variant``) and the method registry."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .. import devices as device_support
from ..devices import CPU, device_type
from ..exceptions import ConfigError, MethodNotApplicableError
from ..registry import Registry
from ..runtimes.base import Predictor


@dataclass
class Variant:
    """What a method returns: a predictor plus what the records need to know about it."""

    method: str
    predictor: Predictor
    runtime: str
    dtype: str
    size_mb: float
    details: dict[str, Any] = field(default_factory=dict)


UNAVAILABLE_POLICIES = ("error", "skip")  # what ``check`` does with a method this machine cannot run


@dataclass(frozen=True)
class NoOptions:
    """The settings of a method that has none."""


def check_bool(name: str, value: Any, allow_none: bool = False) -> None:
    if isinstance(value, bool) or (allow_none and value is None):
        return
    allowed = "true, false or null (auto)" if allow_none else "true or false"
    raise ConfigError(f"option {name} must be {allowed}, got {value!r}", f"set {name} to {allowed}")


def check_positive_int(name: str, value: Any, default: Any, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"option {name} must be a positive integer{' or null' if allow_none else ''}, got {value!r}",
            f"use {name}={default}",
        )


class Method(ABC):
    """A compression method. Subclasses set the class attributes, declare ``Options`` and implement ``apply``.

    ``Options`` is a frozen dataclass holding every setting, with defaults, validated in ``__post_init__``;
    the instance's settings are ``self.opts``, the only place a method reads them from. ``options`` (every
    setting, as a dict) and ``label`` (the name plus the settings that differ from the defaults) follow from
    it, so that each setting is part of what the records key a variant by.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    families: ClassVar[tuple[str, ...]] = ("bert", "t5")
    runtime: ClassVar[str] = "pytorch"
    dtype: ClassVar[str] = "fp32"
    devices: ClassVar[tuple[str, ...]] = (CPU,)  # the device types (``devices``) it has a path on
    Options: ClassVar[type] = NoOptions
    # options added after records existed: left out of ``options`` (and so of the key) at their defaults
    quiet_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any):
        known = option_names(type(self))
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(
                f"method {self.name!r}: bad option(s) {unknown}",
                f"its options are: {', '.join(sorted(known)) or 'none'}",
            )
        self.opts = self.Options(**options)

    @property
    def options(self) -> dict[str, Any]:
        """Every setting, defaults included (but ``quiet_options`` at their defaults)."""
        out = dataclasses.asdict(self.opts)
        if self.quiet_options:
            defaults = dataclasses.asdict(self.Options())
            out = {k: v for k, v in out.items() if k not in self.quiet_options or v != defaults[k]}
        return out

    @property
    def label(self) -> str:
        """The name records use: the registry name, plus the options that differ from the defaults."""
        defaults = dataclasses.asdict(self.Options())
        changed = {k: v for k, v in self.options.items() if defaults.get(k) != v}
        return (
            self.name
            if not changed
            else f"{self.name}[{','.join(f'{k}={v}' for k, v in sorted(changed.items()))}]"
        )

    def __repr__(self) -> str:
        return f"<method {self.label}>"

    def unavailable_reason(self) -> str | None:
        """Why this method cannot run on this machine's CPU (missing hardware or library), or None."""
        return None

    def cuda_unavailable_reason(self, device: str) -> str | None:
        """Why this method cannot run on this CUDA device, which is there (e.g. no native bf16), or None."""
        return None

    def check_device(self, device: str = CPU) -> None:
        """Refuse a method with no path on ``device``'s type (a property of the method, not of the machine)."""
        kind = device_type(device)
        if kind not in self.devices:
            on = [m for m in list_methods() if kind in METHODS.get(m).devices]
            raise MethodNotApplicableError(
                f"method {self.name!r} has no path on {kind} (it runs on: {', '.join(self.devices)})",
                f"on {kind} use one of: {', '.join(on)}; or set the benchmark's device to {self.devices[0]}",
            )

    def check(self, family: str, unavailable: str = "error", device: str = CPU) -> str | None:
        """Refuse, before any work, a method that does not apply to this model family, device or machine.

        A method this machine cannot run (no such GPU, missing hardware or library) raises too, unless
        ``unavailable="skip"``: then the reason is returned, for the caller to record the variant as skipped.
        None: the method can run.
        """
        if family not in self.families:
            applicable = [m for m in list_methods() if family in METHODS.get(m).families]
            raise MethodNotApplicableError(
                f"method {self.name!r} does not apply to {family}-family models (it supports "
                f"{', '.join(self.families)})",
                f"use one of: {', '.join(applicable)}",
            )
        self.check_device(device)
        fix = "drop it from the grid"
        if device_type(device) == CPU:
            reason = self.unavailable_reason()
        elif reason := device_support.cuda_unavailable(device):
            fix = "run on a machine with an NVIDIA GPU and a CUDA build of PyTorch, or set the device to cpu"
        else:
            reason = self.cuda_unavailable_reason(device)
        if reason and unavailable == "skip":
            return f"cannot run on this machine: {reason}"
        if reason:
            raise MethodNotApplicableError(f"method {self.name!r} cannot run here: {reason}", fix)
        return None

    @abstractmethod
    def apply(self, loaded) -> Variant:
        """Build the variant from a loaded model (``.model``, ``.tokenizer``, ``.family``, ``.spec``,
        ``.path``, ``.info``); never modify ``loaded.model`` in place."""


def option_names(cls: type[Method]) -> list[str]:
    """The settings a method class takes, in declaration order."""
    return [f.name for f in dataclasses.fields(cls.Options)]


METHODS: Registry[type[Method]] = Registry("method", "pick methods from the list above")


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register a method class under its ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"register_method takes a Method subclass, got {cls!r}", "subclass Method")
    if not (dataclasses.is_dataclass(cls.Options) and cls.Options.__dataclass_params__.frozen):
        raise ConfigError(
            f"method {cls.name!r}: Options must be a frozen dataclass",
            "decorate it with @dataclass(frozen=True)",
        )
    METHODS.register(cls.name, cls)
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
    return METHODS.get(name)(**options)


def list_methods() -> list[str]:
    return METHODS.names()


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


def folder_mb(folder: str | os.PathLike) -> float:
    """Size of every file under ``folder``: what a deployment of an exported or converted model ships."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 2**20
