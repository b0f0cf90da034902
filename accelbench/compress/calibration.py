"""Calibration texts for static quantization (ONNX Runtime QDQ, PT2E): a seeded draw from a task's training split."""

from __future__ import annotations

import random

from ..exceptions import ConfigError

CALIBRATION_SEED = 0


def calibration_task(loaded, task: str | None) -> str:
    if task:
        return task
    recipe = (loaded.info or {}).get("recipe") or {}
    return loaded.spec.task or recipe.get("task") or "sst2"


def calibration_texts(task: str, samples: int, seed: int = CALIBRATION_SEED) -> list[str]:
    """``samples`` texts drawn (seeded) from the task's training split: never from what is evaluated."""
    from ..tasks import get_task, load_task

    t = get_task(task)
    if t.kind != "classification":
        raise ConfigError(
            f"static int8 calibrates on a classification task; {task!r} is {t.kind}",
            "pass task= a classification task (e.g. sst2)",
        )
    texts = list(load_task(task)[t.train_split]["text"])
    if not texts:
        from ..exceptions import DataError

        raise DataError(
            f"task {task!r} has no training texts to calibrate on", "check the task's train split"
        )
    rng = random.Random(seed)
    idx = sorted(rng.sample(range(len(texts)), min(samples, len(texts))))
    return [texts[i] for i in idx]
