"""Training a compact T5 and its unigram tokenizer from scratch on a seq2seq task's train split."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..recipes import T5Recipe, planned_steps, t5_config
from ..tasks import get_task, load_task
from .loop import (
    T5_TRAINING_ATTENTION,
    length_batches,
    pad,
    pair_lengths,
    save_checkpoint,
    train_loop,
    use_bf16,
)

logger = logging.getLogger(__name__)


SPECIALS = ["<pad>", "</s>", "<unk>"]
SCORE_DECIMALS = 6  # far above the last-bit noise of the trainer's float sums, far below real score gaps
ADDED_STEP = 1e-4  # the trainer's score step between the characters it adds at the bottom of the vocabulary


def canonical_unigram(tokenizer_json: str) -> str:
    """The unigram vocabulary in an order and with scores that do not depend on the trainer's hash order.

    The ``tokenizers`` trainer iterates hash sets seeded per process: piece ids come out in another order
    in each run, scores differ in their last bits, and the characters it must add (seen in the texts but not
    learned as pieces) get the scores lowest, lowest + 1e-4, lowest + 2e-4, ... in hash order. Here those
    characters share the lowest score, every score is rounded, and the pieces follow the specials by score,
    then text.
    """
    data = json.loads(tokenizer_json)
    vocab = data["model"]["vocab"]
    special, rest = vocab[: len(SPECIALS)], vocab[len(SPECIALS) :]
    low = min(s for _, s in rest)
    rungs: dict[int, set[str]] = {}  # single characters on the added characters' score ladder
    for p, s in rest:
        k = round((s - low) / ADDED_STEP)
        if len(p) == 1 and abs(s - low - k * ADDED_STEP) < 1e-9:
            rungs.setdefault(k, set()).add(p)
    added: set[str] = set()
    k = 0
    while k in rungs:  # the ladder climbs one step per added character, without gaps
        added |= rungs[k]
        k += 1
    pieces = [(p, round(low if p in added else s, SCORE_DECIMALS)) for p, s in rest]
    pieces.sort(key=lambda ps: (-ps[1], ps[0]))
    data["model"]["vocab"] = special + [list(ps) for ps in pieces]
    return json.dumps(data, ensure_ascii=False)


def train_tokenizer(texts: list[str], vocab_size: int):
    """A T5-style unigram tokenizer: <pad>=0, </s>=1, <unk>=2, and </s> appended to every sequence.

    The same texts give the same tokenizer in every process (``canonical_unigram``).
    """
    from tokenizers import SentencePieceUnigramTokenizer, Tokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(texts, vocab_size=vocab_size, special_tokens=SPECIALS, unk_token="<unk>",
                           show_progress=False)  # fmt: skip
    tk = Tokenizer.from_str(canonical_unigram(sp._tokenizer.to_str()))
    tk.post_processor = TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def train_t5(recipe: T5Recipe, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    from transformers import T5ForConditionalGeneration

    task = get_task(recipe.task)
    if task.kind != "seq2seq":
        raise ConfigError(f"a t5-scratch recipe needs a seq2seq task, {task.name!r} is {task.kind}")
    rng = random.Random(recipe.seed)  # the batches' order; torch is seeded by the caller (loop.reproducible)
    train = load_task(task.name)[task.train_split]
    t0 = time.perf_counter()
    sources, targets = list(train["source"]), list(train["target"])
    tok = train_tokenizer(sources + targets, recipe.vocab_size)
    logger.info("trained a %d-piece unigram tokenizer in %.0f s", len(tok), time.perf_counter() - t0)
    model = T5ForConditionalGeneration(t5_config(recipe, len(tok)))
    src = tok(sources, truncation=True, max_length=recipe.max_length)["input_ids"]
    tgt = tok(targets, truncation=True, max_length=recipe.max_length)["input_ids"]
    total = planned_steps(recipe, len(src))

    def batches():
        for b in length_batches(len(src), recipe.batch_size, pair_lengths(src, tgt), rng):
            x = pad([src[i] for i in b], 0)
            yield {
                "input_ids": x,
                "attention_mask": (x != 0).long(),
                "labels": pad([tgt[i] for i in b], -100),
            }

    bf16 = use_bf16(recipe)
    log = train_loop(model, batches, total, recipe.lr, recipe.warmup_steps, recipe.time_budget_s,
                     recipe.weight_decay, bf16=bf16, progress=progress, desc=f"train T5 on {task.name}",
                     optimizer=recipe.optimizer, seed=recipe.seed, attention=T5_TRAINING_ATTENTION)  # fmt: skip
    log.update(
        train_examples=len(src), epochs=round(log["steps"] * recipe.batch_size / len(src), 2), bf16=bf16
    )
    model.generation_config.max_new_tokens = recipe.max_length
    save_checkpoint(model, tok, out_dir, recipe, log)
    return log
