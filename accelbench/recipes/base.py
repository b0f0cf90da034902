"""What every recipe shares: the step budget and its checks, the checks of a student's losses and teacher,
and layer counts and indices read from a teacher's config."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from ..exceptions import ConfigError

T5_LOSSES = ("kd", "ce")
T5_TARGETS = ("gold", "pseudo")


def positive(name: str, value: float | None, allow_none: bool = False, allow_zero: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(
            f"training setting {name} must be positive, got {value!r}", f"set {name} to a positive number"
        )


def check_budget(r: Any) -> None:
    """max_steps a positive whole number, epochs and time_budget_s positive, and a step rule to stop at.

    A whole float (``max_steps: 1000.0``) becomes an int, so both spellings share one cache key.
    """
    steps = r.max_steps
    if isinstance(steps, float) and steps.is_integer():
        r.max_steps = steps = int(steps)
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0):
        raise ConfigError(f"training setting max_steps must be a positive whole number of optimizer steps, "
                          f"got {steps!r}", "set max_steps to e.g. 1000")  # fmt: skip
    has_epochs = "epochs" in {f.name for f in fields(r)}
    if has_epochs:
        positive("epochs", r.epochs, allow_none=True)
    positive("time_budget_s", r.time_budget_s, allow_none=True)
    if steps is None and (not has_epochs or r.epochs is None):
        rule = "max_steps and epochs are" if has_epochs else "max_steps is"
        raise ConfigError(f"{r.kind}: {rule} null, so no step count ends this training",
                          "set max_steps (optimizer steps, e.g. 1000); for a wall-clock budget set "
                          "time_budget_s as well, with max_steps as a cap")  # fmt: skip


def planned_steps(r: Any, n_examples: int) -> int:
    """The steps a recipe trains on ``n_examples``: ``max_steps``, or ``epochs`` x ceil(n_examples / batch_size)
    when that is smaller (at least 1). A ``time_budget_s`` may stop it earlier."""
    caps = [] if r.max_steps is None else [r.max_steps]
    epochs = getattr(r, "epochs", None)
    if epochs is not None:
        caps.append(max(1, int(math.ceil(n_examples / r.batch_size) * epochs)))
    return min(caps)


def budget(r: Any) -> str:
    """``"time"`` when the recipe sets an explicit wall-clock budget (machine-dependent), else ``"steps"``."""
    return "steps" if r.time_budget_s is None else "time"


def check_losses(losses: dict[str, float], allowed: tuple[str, ...], kind: str) -> None:
    if not isinstance(losses, dict) or not losses:
        raise ConfigError(f"{kind}: losses must be a mapping of loss name to weight, got {losses!r}",
                          "write e.g. `losses: {kd: 1.0, ce: 0.5}`")  # fmt: skip
    unknown = sorted(set(losses) - set(allowed))
    if unknown:
        raise ConfigError(f"{kind}: unknown loss(es) {', '.join(unknown)}", f"use only: {', '.join(allowed)}")
    for name, w in losses.items():
        if not isinstance(w, int | float) or w < 0:
            raise ConfigError(f"{kind}: weight of loss {name!r} must be a number >= 0, got {w!r}",
                              "give each loss a non-negative weight")  # fmt: skip
    if not any(losses.values()):
        raise ConfigError(f"{kind}: every loss weight is 0", "give at least one loss a positive weight")


def check_common(r: Any) -> None:
    for k in ("batch_size", "lr", "max_length", "temperature"):
        positive(k, getattr(r, k))
    check_budget(r)
    positive("train_size", r.train_size, allow_none=True)
    if not isinstance(r.teacher, str) or not r.teacher:
        raise ConfigError(
            "a distillation recipe needs a `teacher` model name", "write e.g. `teacher: minilm-sst2`"
        )


def n_layers(config) -> int:
    return int(getattr(config, "num_hidden_layers", None) or config.num_layers)


def check_indices(name: str, idx: list[Any], n: int, teacher: str) -> None:
    bad = [i for i in idx if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n]
    if bad:
        raise ConfigError(f"{name} {idx} does not fit teacher {teacher!r}: it has {n} layers (0..{n - 1}), "
                          f"so {', '.join(map(str, bad))} is out of range",
                          f"use indices between 0 and {n - 1}")  # fmt: skip
    if len(set(idx)) != len(idx) or list(idx) != sorted(idx):
        raise ConfigError(f"{name} {idx} must list distinct teacher layers in increasing order",
                          "write e.g. [0, 2, 4]")  # fmt: skip
