"""Fine-tuning a BERT-family sequence classifier on a classification task's train split.

The task is read through ``tasks.task_inputs``: one text, several columns joined, or a sentence pair (encoded
``[CLS] a [SEP] b [SEP]`` with token type ids, as every predictor encodes it). The number of labels and their
names come from the task's label map (given, mapped or inferred), and are saved in the checkpoint's config.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ..architectures import register as register_architectures
from ..exceptions import ConfigError
from ..recipes import ClassifierRecipe, planned_steps
from ..tasks import get_task, load_task, task_inputs
from .loop import length_batches, pad, save_checkpoint, train_loop, use_bf16


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
    items = task_inputs(task, train)  # texts, or (text, text_pair) for a pair task
    register_architectures()  # a pruned checkpoint as base
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(task.label_names), id2label=dict(enumerate(task.label_names)),
        label2id={n: i for i, n in enumerate(task.label_names)},
        ignore_mismatched_sizes=True,  # a classifier base with another label count gets a fresh head
    )  # fmt: skip
    pairs = [p for _, p in items] if items and isinstance(items[0], tuple) else None
    texts = [t[0] for t in items] if pairs is not None else items
    enc = tok(
        texts, pairs, truncation=True if pairs is None else "longest_first", max_length=recipe.max_length
    )
    ids = enc["input_ids"]
    types = enc.get("token_type_ids") if pairs is not None else None  # segment B is type 1
    labels = list(train["label"])
    pad_id = tok.pad_token_id or 0
    total = planned_steps(recipe, len(ids))

    def batches():
        for b in length_batches(len(ids), recipe.batch_size, [len(x) for x in ids], rng):
            x = pad([ids[i] for i in b], pad_id)
            batch = {
                "input_ids": x,
                "attention_mask": (x != pad_id).long(),
                "labels": torch.tensor([labels[i] for i in b]),
            }
            if types is not None:
                batch["token_type_ids"] = pad([types[i] for i in b], 0)
            yield batch

    bf16 = use_bf16(recipe)
    log = train_loop(model, batches, total, recipe.lr, int(total * recipe.warmup_ratio), recipe.time_budget_s,
                     recipe.weight_decay, bf16=bf16, progress=progress, desc=f"fine-tune {task.name}",
                     seed=recipe.seed)  # fmt: skip
    log.update(train_examples=len(ids), bf16=bf16)
    save_checkpoint(model, tok, out_dir, recipe, log)
    return log
