"""The recipe registry: a recipe's ``kind`` to its dataclass, and a recipe dict built, validated and filled in."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from ..exceptions import ConfigError
from ..registry import Registry
from .distill import DistillClassifierRecipe, DistillT5Recipe
from .prune import PruneClassifierRecipe, PruneT5Recipe
from .training import ClassifierRecipe, T5Recipe

RECIPES: Registry[type] = Registry(
    "training recipe",
    "use kind: classifier, t5-scratch, distill-classifier, distill-t5, prune-classifier or prune-t5",
)
for _cls in (ClassifierRecipe, T5Recipe, DistillClassifierRecipe, DistillT5Recipe, PruneClassifierRecipe,
             PruneT5Recipe):  # fmt: skip
    RECIPES.register(_cls.kind, _cls)


def recipe_class(kind: str) -> type:
    """The recipe dataclass of a ``kind``; an unknown kind lists the known ones."""
    return RECIPES.get(kind)


def build_recipe(recipe: dict[str, Any]):
    """A recipe dict (as a ModelSpec or a record stores it) as its validated dataclass."""
    if not isinstance(recipe, dict):
        raise ConfigError(
            f"a training recipe must be a mapping, got {recipe!r}", "write e.g. `recipe: {kind: classifier}`"
        )
    return recipe_class(recipe.get("kind", ""))(**recipe)


def full_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe with every default filled in, numbers normalised (600 and 600.0 are one budget, one key)."""
    r = build_recipe(recipe)
    for f in fields(r):
        v = getattr(r, f.name)
        if isinstance(v, int) and not isinstance(v, bool) and str(f.type).startswith("float"):
            setattr(r, f.name, float(v))
    return asdict(r)


def student_recipe_class(recipe: dict[str, Any] | None) -> type | None:
    """The distillation recipe class of a model's recipe, or None when the model is not a student."""
    kind = (recipe or {}).get("kind")
    cls = RECIPES.get(kind) if kind in RECIPES else None
    return cls if cls is not None and cls.STUDENT else None
