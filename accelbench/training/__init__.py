"""Training: make the weights a model spec's recipe describes, once, cached by the recipe's hash.

``ensure_trained`` trains what is not cached yet (a student's teacher first); ``load_model`` is
``ensure_trained`` followed by ``models.load_checkpoint``: what experiments and notebooks call. Every training
runs inside ``loop.reproducible(seed)``: the same recipe, seed and thread count give the same weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..models import (
    LoadedModel,
    ModelSpec,
    base_path,
    check_recipe,
    is_trained,
    load_checkpoint,
    resolve_model,
)
from ..recipes import ClassifierRecipe, build_recipe
from .classifier import train_classifier
from .loop import reproducible
from .students import train_student
from .t5 import train_t5

logger = logging.getLogger(__name__)

__all__ = ["ensure_trained", "load_model", "train_from_recipe"]


def train_from_recipe(
    recipe: dict[str, Any], base: str | None, out_dir: Path, progress: bool = True
) -> dict[str, Any]:
    """Dispatch a recipe dict (as stored in a ModelSpec) to its trainer, seeded; returns the training log."""
    r = build_recipe(recipe)
    if isinstance(r, ClassifierRecipe) and base is None:
        raise ConfigError("a classifier recipe needs a base checkpoint", "set `base:` on the model")
    with reproducible(r.seed):
        if r.STUDENT:
            return train_student(recipe, Path(out_dir), progress)
        if isinstance(r, ClassifierRecipe):
            return train_classifier(r, base, Path(out_dir), progress)
        return train_t5(r, Path(out_dir), progress)


def ensure_trained(spec: ModelSpec | str | dict[str, Any], progress: bool = True) -> Path | None:
    """Train the spec's recipe unless a checkpoint for exactly this recipe is cached; return its folder.

    A ready checkpoint (no recipe) needs no training: None. A student's teacher is trained first.
    """
    spec = spec if isinstance(spec, ModelSpec) else resolve_model(spec)
    if spec.recipe is None:
        return None
    out = spec.checkpoint_dir()
    if is_trained(spec):
        logger.info("using cached checkpoint %s", out)
        return out
    check_recipe(spec)  # a student that does not fit its teacher fails here, before any training
    r = build_recipe(spec.recipe)
    if r.STUDENT:
        ensure_trained(resolve_model(r.teacher), progress)
    logger.info("training %s (recipe %s) into %s", spec.name, spec.key, out)
    train_from_recipe(spec.full_recipe, base=base_path(spec) if spec.base else None, out_dir=out,
                      progress=progress)  # fmt: skip
    return out


def load_model(
    name: str | dict[str, Any] | ModelSpec, train: bool = True, progress: bool = True
) -> LoadedModel:
    """Load a model by config entry; built-ins are trained first when not cached (``train=False`` refuses)."""
    spec = name if isinstance(name, ModelSpec) else resolve_model(name)
    if train:
        ensure_trained(spec, progress=progress)
    return load_checkpoint(spec)
