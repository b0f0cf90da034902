"""Model architectures accelbench adds to transformers' Auto classes: a structurally pruned BERT classifier.

Importing ``pruned_bert`` imports transformers (seconds), so ``import accelbench`` does not. Everything that
reads a checkpoint through ``AutoConfig`` / ``AutoModelForSequenceClassification`` (``models.load_checkpoint``,
``models.planned_config``, ``models.model_family``) calls ``register()`` first. Code outside accelbench calls
it (or imports ``accelbench.architectures.pruned_bert``) before ``from_pretrained`` on a pruned checkpoint.
"""

from __future__ import annotations

MODEL_TYPES = ("accelbench-pruned-bert",)  # config.json model_type values defined here


def register() -> None:
    """Register every architecture of this package with transformers' Auto classes (idempotent)."""
    from . import pruned_bert  # noqa: F401  (registers on import)


__all__ = ["MODEL_TYPES", "register"]
