"""Calibration texts for static quantization (ORT QDQ, PT2E): a seeded draw from a task's training split.

A pair task gives ``(text, text_pair)`` items (``tasks.task_inputs``), so that calibration sees what is evaluated.
"""

from __future__ import annotations

import random
from typing import Any

from ..exceptions import ConfigError, DataError
from ..tasks import get_task, load_task, task_inputs
from .base import check_positive_int

CALIBRATION_SEED = 0
DEFAULT_SAMPLES = 128
DEFAULT_TASK = "sst2"


def check_calibration_options(samples: Any, task: Any) -> None:
    """Validate the ``samples`` and ``task`` options of a calibrated method."""
    check_positive_int("samples", samples, DEFAULT_SAMPLES)
    if task is not None and (not isinstance(task, str) or not task):
        raise ConfigError(
            f"option task must be a task name or null, got {task!r}",
            "use task=null (the model's own task) or a classification task such as sst2",
        )


def calibration_task(loaded, task: str | None) -> str:
    """``task`` if given, else the task the model was trained for (its spec, then its recipe), else sst2."""
    if task:
        return task
    recipe = (loaded.info or {}).get("recipe") or {}
    return loaded.spec.task or recipe.get("task") or DEFAULT_TASK


def calibration_texts(task: str, samples: int, seed: int = CALIBRATION_SEED) -> list[str | tuple[str, str]]:
    """``samples`` inputs drawn (seeded) from the task's training split: never from what is evaluated."""
    t = get_task(task)
    if t.kind != "classification":
        raise ConfigError(
            f"static int8 calibrates on a classification task; {task!r} is {t.kind}",
            "pass task= a classification task (e.g. sst2)",
        )
    texts = task_inputs(t, load_task(task)[t.train_split])  # texts, or (text, text_pair) items
    if not texts:
        raise DataError(
            f"task {task!r} has no training texts to calibrate on", "check the task's train split"
        )
    rng = random.Random(seed)
    idx = sorted(rng.sample(range(len(texts)), min(samples, len(texts))))
    return [texts[i] for i in idx]
