"""Model architectures accelbench adds to transformers' Auto classes: a structurally pruned BERT classifier
(``pruned_bert``) and a T5 with pruned feed-forward neurons (``pruned_t5``).

Importing either module imports transformers (seconds), so ``import accelbench`` does not. Everything that
reads a checkpoint through ``AutoConfig`` / ``AutoModelForSequenceClassification`` / ``AutoModelForSeq2SeqLM``
(``models.load_checkpoint``, ``models.planned_config``, ``models.model_family``, the CTranslate2 converter)
calls ``register()`` first. Code outside accelbench calls it (or imports ``accelbench.architectures.pruned_bert``
/ ``pruned_t5``) before ``from_pretrained`` on a pruned checkpoint.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

SEQ2SEQ_MODEL_TYPES = ("accelbench-pruned-t5",)  # the T5 family's
MODEL_TYPES = ("accelbench-pruned-bert", *SEQ2SEQ_MODEL_TYPES)  # config.json model_type values defined here


def register_auto(model_type: str, config_class: Any, auto_class: Any, model_class: Any) -> None:
    """Make ``AutoConfig`` and ``auto_class`` load saved checkpoints of ``model_type`` (idempotent)."""
    from transformers import AutoConfig

    try:
        AutoConfig.register(model_type, config_class)
        auto_class.register(config_class, model_class)
    except ValueError:  # already registered (a module reload)
        logger.debug("%s is registered already", model_type)


def register() -> None:
    """Register every architecture of this package with transformers' Auto classes (idempotent)."""
    from . import pruned_bert, pruned_t5  # noqa: F401  (each registers on import)


__all__ = ["MODEL_TYPES", "SEQ2SEQ_MODEL_TYPES", "register", "register_auto"]
