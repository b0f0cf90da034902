"""Training recipes: the dataclasses that say how a model is made, checked before any work, and a registry.

A recipe's fields, with every default filled in, are hashed into the model's cache key: changing any of them
trains a new checkpoint. Six kinds: ``classifier`` (fine-tune a BERT-family checkpoint), ``t5-scratch``
(train a compact T5 and its tokenizer), and the students ``distill-classifier`` (copied teacher layers or a
smaller config), ``distill-t5`` (maximally spaced teacher blocks), ``prune-classifier`` (the teacher's
least important heads and FFN neurons removed, then recovered with KD) and ``prune-t5`` (a T5's least
important FFN neurons removed, then recovered as distill-t5 trains). A student's config is derived here from
its teacher's config, so a student that does not fit its teacher is refused before training.

Every recipe is budgeted in optimizer steps, so the same recipe, seed and thread count make the same weights
on any machine: ``max_steps``, and for the kinds with ``epochs`` also ``epochs`` passes over the training
examples; training stops at whichever comes first (``planned_steps``). ``time_budget_s`` is an explicit,
optional wall-clock cap on top: the result then depends on the machine's speed, and the checkpoint records
its budget as ``"time"`` instead of ``"steps"``.

The kinds live one concern to a module: ``base`` (the step budget, shared checks), ``training`` (the teacher
recipes), ``distill`` and ``prune`` (the students' recipes and layer/neuron plans), ``students`` (a student's
config) and ``registry`` (kind -> dataclass). Importing this package registers all six kinds.
"""

from .base import (
    T5_LOSSES,
    T5_TARGETS,
    budget,
    check_budget,
    n_layers,
    planned_steps,
    positive,
)
from .distill import (
    CLASSIFIER_LOSSES,
    DistillClassifierRecipe,
    DistillT5Recipe,
    default_layer_map,
    resolve_layers,
    spaced_layers,
)
from .prune import (
    IMPORTANCE_LOSSES,
    PRUNABLE_T5_TYPES,
    PRUNE_LOSSES,
    PRUNE_SCOPES,
    PruneClassifierRecipe,
    PruneT5Recipe,
    layer_sizes,
    prune_counts,
    prune_t5_counts,
    t5_ffn_sizes,
)
from .registry import RECIPES, build_recipe, full_recipe, recipe_class, student_recipe_class
from .students import layer_map, student_config
from .training import OPTIMIZERS, ClassifierRecipe, T5Recipe, t5_config

__all__ = [
    "CLASSIFIER_LOSSES",
    "IMPORTANCE_LOSSES",
    "OPTIMIZERS",
    "PRUNABLE_T5_TYPES",
    "PRUNE_LOSSES",
    "PRUNE_SCOPES",
    "RECIPES",
    "T5_LOSSES",
    "T5_TARGETS",
    "ClassifierRecipe",
    "DistillClassifierRecipe",
    "DistillT5Recipe",
    "PruneClassifierRecipe",
    "PruneT5Recipe",
    "T5Recipe",
    "budget",
    "build_recipe",
    "check_budget",
    "default_layer_map",
    "full_recipe",
    "layer_map",
    "layer_sizes",
    "n_layers",
    "planned_steps",
    "positive",
    "prune_counts",
    "prune_t5_counts",
    "recipe_class",
    "resolve_layers",
    "spaced_layers",
    "student_config",
    "student_recipe_class",
    "t5_config",
    "t5_ffn_sizes",
]
