"""Training a compact T5 and its unigram tokenizer from scratch on a seq2seq task's train split."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

from ..environment import supports_bf16
from ..exceptions import ConfigError
from ..recipes import T5Recipe, t5_config
from ..tasks import get_task, load_task
from .loop import length_batches, pad, save_checkpoint, train_loop

logger = logging.getLogger(__name__)


def train_tokenizer(texts: list[str], vocab_size: int):
    """A T5-style unigram tokenizer: <pad>=0, </s>=1, <unk>=2, and </s> appended to every sequence."""
    from tokenizers import SentencePieceUnigramTokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(texts, vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"],
                           unk_token="<unk>", show_progress=False)  # fmt: skip
    sp.post_processor = TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=sp._tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def train_t5(recipe: T5Recipe, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    import torch
    from transformers import T5ForConditionalGeneration

    task = get_task(recipe.task)
    if task.kind != "seq2seq":
        raise ConfigError(f"a t5-scratch recipe needs a seq2seq task, {task.name!r} is {task.kind}")
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    train = load_task(task.name)[task.train_split]
    t0 = time.perf_counter()
    sources, targets = list(train["source"]), list(train["target"])
    tok = train_tokenizer(sources + targets, recipe.vocab_size)
    logger.info("trained a %d-piece unigram tokenizer in %.0f s", len(tok), time.perf_counter() - t0)
    model = T5ForConditionalGeneration(t5_config(recipe, len(tok)))
    src = tok(sources, truncation=True, max_length=recipe.max_length)["input_ids"]
    tgt = tok(targets, truncation=True, max_length=recipe.max_length)["input_ids"]
    total = recipe.max_steps or 10**9

    def batches():
        for b in length_batches(len(src), recipe.batch_size, [len(x) for x in src], rng):
            x = pad([src[i] for i in b], 0)
            yield {
                "input_ids": x,
                "attention_mask": (x != 0).long(),
                "labels": pad([tgt[i] for i in b], -100),
            }

    bf16 = supports_bf16() if recipe.bf16 is None else recipe.bf16
    log = train_loop(model, batches, total, recipe.lr, recipe.warmup_steps, recipe.time_budget_s,
                     recipe.weight_decay, bf16=bf16, progress=progress, desc=f"train T5 on {task.name}",
                     optimizer=recipe.optimizer)  # fmt: skip
    log.update(
        train_examples=len(src), epochs=round(log["steps"] * recipe.batch_size / len(src), 2), bf16=bf16
    )
    model.generation_config.max_new_tokens = recipe.max_length
    save_checkpoint(model, tok, out_dir, recipe, log)
    return log
