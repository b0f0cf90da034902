"""Fine-tuning a BERT-family sequence classifier on a classification task's train split."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..recipes import ClassifierRecipe, planned_steps
from ..tasks import get_task, load_task
from .loop import length_batches, pad, save_checkpoint, train_loop


def train_classifier(
    recipe: ClassifierRecipe, base: str, out_dir: Path, progress: bool = True
) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    task = get_task(recipe.task)
    if task.kind != "classification":
        raise ConfigError(f"a classifier recipe needs a classification task, {task.name!r} is {task.kind}")
    rng = random.Random(recipe.seed)  # the batches' order; torch is seeded by the caller (loop.reproducible)
    train = load_task(task.name)[task.train_split].shuffle(seed=recipe.seed)
    if recipe.train_size:
        train = train.select(range(min(recipe.train_size, len(train))))
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(task.label_names), id2label=dict(enumerate(task.label_names)),
        label2id={n: i for i, n in enumerate(task.label_names)},
    )  # fmt: skip
    ids = tok(list(train["text"]), truncation=True, max_length=recipe.max_length)["input_ids"]
    labels = list(train["label"])
    pad_id = tok.pad_token_id or 0
    total = planned_steps(recipe, len(ids))

    def batches():
        for b in length_batches(len(ids), recipe.batch_size, [len(x) for x in ids], rng):
            x = pad([ids[i] for i in b], pad_id)
            yield {
                "input_ids": x,
                "attention_mask": (x != pad_id).long(),
                "labels": torch.tensor([labels[i] for i in b]),
            }

    log = train_loop(model, batches, total, recipe.lr, int(total * recipe.warmup_ratio), recipe.time_budget_s,
                     recipe.weight_decay, bf16=False, progress=progress, desc=f"fine-tune {task.name}",
                     seed=recipe.seed)  # fmt: skip
    log["train_examples"] = len(ids)
    save_checkpoint(model, tok, out_dir, recipe, log)
    return log
