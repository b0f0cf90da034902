"""Training the built-in models: fine-tune a BERT-family classifier, train a compact T5 from scratch.

Both run under a wall-clock budget so the default suite fits its time on a 2-core CPU, show a progress
bar, save with ``save_pretrained`` (safetensors) and write ``accelbench.json`` (recipe, steps, loss
curve, wall time) beside the weights; that file marks a finished checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .exceptions import ConfigError, UnknownNameError

logger = logging.getLogger(__name__)


def _positive(name: str, value: float | None, allow_none: bool = False, allow_zero: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(
            f"training setting {name} must be positive, got {value!r}", f"set {name} to a positive number"
        )


@dataclass
class ClassifierRecipe:
    """Fine-tune a sequence classifier on a classification task's train split."""

    kind: str = "classifier"
    task: str = "sst2"
    train_size: int | None = 20000  # None = the whole train split (67,349)
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 64
    time_budget_s: float = 480.0
    seed: int = 0

    def __post_init__(self) -> None:
        _positive("train_size", self.train_size, allow_none=True)
        for k in ("epochs", "batch_size", "lr", "max_length", "time_budget_s"):
            _positive(k, getattr(self, k))


@dataclass
class T5Recipe:
    """Train a compact T5 (and its unigram tokenizer) from scratch on a seq2seq task's train split."""

    kind: str = "t5-scratch"
    task: str = "multi30k"
    vocab_size: int = 6000
    d_model: int = 256
    num_layers: int = 3
    num_decoder_layers: int | None = None
    num_heads: int = 4
    d_ff: int = 1024
    dropout: float = 0.0
    batch_size: int = 64
    lr: float = 1e-2  # Adafactor's lr, scaled by each parameter's RMS (see optimizer)
    warmup_steps: int = 200
    max_steps: int | None = None
    max_length: int = 64
    time_budget_s: float = 780.0  # 600 s (3.8 epochs) gave 14.0 BLEU on test_2016_flickr
    bf16: bool | None = None  # None = use bf16 autocast where the CPU has native bf16
    # Adafactor (updates relative to each parameter's scale, as T5 was trained): in equal 300 s trials it
    # reached loss 3.58 / 7.2 BLEU where AdamW at 1e-3 reached 4.32 / 5.8 (AdamW at 3e-3: 2.6 BLEU).
    optimizer: str = "adafactor"
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}",
                              "use optimizer: adamw")  # fmt: skip
        for k in ("vocab_size", "d_model", "num_layers", "num_heads", "d_ff", "batch_size", "lr", "max_length",
                  "time_budget_s"):  # fmt: skip
            _positive(k, getattr(self, k))
        _positive("max_steps", self.max_steps, allow_none=True)
        if self.d_model % self.num_heads:
            raise ConfigError(
                f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}",
                "pick num_heads that divides d_model",
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}", "use e.g. 0.0 or 0.1")


OPTIMIZERS = ("adamw", "adafactor")


def _recipes() -> dict[str, type]:
    from .distill import DISTILL_RECIPES

    return {"classifier": ClassifierRecipe, "t5-scratch": T5Recipe, **DISTILL_RECIPES}


def recipe_class(kind: str) -> type:
    recipes = _recipes()
    try:
        return recipes[kind]
    except KeyError:
        raise UnknownNameError("training recipe", kind, list(recipes)) from None


def _batches(n: int, batch_size: int, lengths: list[int], rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches in random order: little padding, still shuffled."""
    order = sorted(range(n), key=lambda i: lengths[i] + rng.random() * 2)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    rng.shuffle(batches)
    return batches


def train_loop(
    model,
    batches: Callable[[], Iterator[dict]],
    total_steps: int,
    lr: float,
    warmup_steps: int,
    time_budget_s: float,
    weight_decay: float = 0.01,
    bf16: bool = False,
    progress: bool = True,
    desc: str = "train",
    optimizer: str = "adamw",
    loss_fn: Callable[[Any, dict], Any] | None = None,
    extra_params: list | None = None,
) -> dict[str, Any]:
    """AdamW (or Adafactor) with linear warm-up and linear decay, stopped by steps or wall-clock budget.

    The schedule decays towards the step count that the budget allows, re-estimated from the measured
    step time, so a budget-limited run still ends at a low learning rate. ``loss_fn(model, batch)``
    replaces ``model(**batch).loss`` and may return ``(loss, {part: value})``; the parts' running means
    are logged beside the total (``loss_parts``). ``extra_params`` (e.g. a projection) train alongside.
    """
    import torch
    from tqdm.auto import tqdm

    params = [p for p in model.parameters() if p.requires_grad] + list(extra_params or [])
    if optimizer == "adafactor":  # T5's own optimizer: updates relative to each parameter's scale
        from transformers.optimization import Adafactor

        opt = Adafactor(params, lr=lr, scale_parameter=True, relative_step=False, warmup_init=False,
                        weight_decay=weight_decay)  # fmt: skip
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    model.train()
    losses: list[tuple[int, float]] = []
    parts_curve: list[tuple[int, dict[str, float]]] = []
    parts_running: dict[str, float] = {}
    step, start, planned, running = 0, time.perf_counter(), total_steps, None
    bar = tqdm(
        total=total_steps if total_steps < 10**8 else None, desc=desc, disable=not progress, unit="step"
    )
    done = False
    while not done:
        for batch in batches():
            elapsed = time.perf_counter() - start
            if step >= 20:  # budget-aware schedule length
                planned = min(total_steps, max(step + 1, int(time_budget_s / (elapsed / step))))
                if step % 50 == 0:
                    bar.total = planned  # the bar shows the steps the budget allows
            warm = min(1.0, (step + 1) / max(1, warmup_steps))
            decay = max(0.0, 1 - step / max(1, planned)) if step >= warmup_steps else 1.0
            for g in opt.param_groups:
                g["lr"] = lr * warm * max(decay, 0.02)
            parts: dict[str, float] = {}
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss if loss_fn is None else loss_fn(model, batch)
            if isinstance(loss, tuple):
                loss, parts = loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            value = float(loss.detach())
            running = value if running is None else 0.95 * running + 0.05 * value
            for k, v in parts.items():
                parts_running[k] = v if k not in parts_running else 0.95 * parts_running[k] + 0.05 * v
            if step % 10 == 0 or step == 1:
                losses.append((step, round(running, 4)))
                if parts_running:
                    parts_curve.append((step, {k: round(v, 5) for k, v in parts_running.items()}))
                bar.set_postfix(loss=f"{running:.3f}", lr=f"{opt.param_groups[0]['lr']:.1e}")
            bar.update(1)
            if step >= total_steps or time.perf_counter() - start > time_budget_s:
                done = True
                break
    bar.close()
    model.eval()
    wall = time.perf_counter() - start
    stopped = "budget" if step < total_steps else "steps"
    logger.info("%s: %d steps in %.0f s (stopped by %s), final loss %.3f", desc, step, wall, stopped, running)
    return {"steps": step, "planned_steps": total_steps, "wall_s": round(wall, 1), "stopped_by": stopped,
            "final_loss": running, "loss_curve": losses, **({"loss_parts": parts_curve} if parts_curve else {})}  # fmt: skip


def _pad(seqs: list[list[int]], value: int):
    import torch

    n = max(map(len, seqs))
    return torch.tensor([s + [value] * (n - len(s)) for s in seqs])


def train_classifier(
    recipe: ClassifierRecipe, base: str, out_dir: Path, progress: bool = True
) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from .tasks import get_task, load_task

    task = get_task(recipe.task)
    if task.kind != "classification":
        raise ConfigError(f"a classifier recipe needs a classification task, {task.name!r} is {task.kind}")
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
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
    steps_per_epoch = math.ceil(len(ids) / recipe.batch_size)
    total = max(1, int(steps_per_epoch * recipe.epochs))

    def batches():
        for b in _batches(len(ids), recipe.batch_size, [len(x) for x in ids], rng):
            x = _pad([ids[i] for i in b], pad_id)
            yield {
                "input_ids": x,
                "attention_mask": (x != pad_id).long(),
                "labels": torch.tensor([labels[i] for i in b]),
            }

    log = train_loop(model, batches, total, recipe.lr, int(total * recipe.warmup_ratio), recipe.time_budget_s,
                     recipe.weight_decay, bf16=False, progress=progress, desc=f"fine-tune {task.name}")  # fmt: skip
    log["train_examples"] = len(ids)
    _save(model, tok, out_dir, recipe, log)
    return log


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


def t5_config(recipe: T5Recipe, vocab_size: int):
    """The compact T5's config (also what a student's teacher will look like before it is trained)."""
    from transformers import T5Config

    return T5Config(
        vocab_size=vocab_size, d_model=recipe.d_model, d_kv=recipe.d_model // recipe.num_heads, d_ff=recipe.d_ff,
        num_layers=recipe.num_layers, num_decoder_layers=recipe.num_decoder_layers or recipe.num_layers,
        num_heads=recipe.num_heads, dropout_rate=recipe.dropout, feed_forward_proj="relu",
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=True,
    )  # fmt: skip


def train_t5(recipe: T5Recipe, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    import torch
    from transformers import T5ForConditionalGeneration

    from .environment import supports_bf16
    from .tasks import get_task, load_task

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
        for b in _batches(len(src), recipe.batch_size, [len(x) for x in src], rng):
            x = _pad([src[i] for i in b], 0)
            yield {
                "input_ids": x,
                "attention_mask": (x != 0).long(),
                "labels": _pad([tgt[i] for i in b], -100),
            }

    bf16 = supports_bf16() if recipe.bf16 is None else recipe.bf16
    log = train_loop(model, batches, total, recipe.lr, recipe.warmup_steps, recipe.time_budget_s,
                     recipe.weight_decay, bf16=bf16, progress=progress, desc=f"train T5 on {task.name}",
                     optimizer=recipe.optimizer)  # fmt: skip
    log.update(
        train_examples=len(src), epochs=round(log["steps"] * recipe.batch_size / len(src), 2), bf16=bf16
    )
    model.generation_config.max_new_tokens = recipe.max_length
    _save(model, tok, out_dir, recipe, log)
    return log


def _save(model, tok, out_dir: Path, recipe, log: dict[str, Any]) -> None:
    """Write to a temporary folder and rename, so an interrupted run never leaves a half checkpoint."""
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "accelbench.json").write_text(json.dumps({"recipe": asdict(recipe), "training": log}, indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)


def train_from_recipe(
    recipe: dict[str, Any], base: str | None, out_dir: Path, progress: bool = True
) -> dict[str, Any]:
    """Dispatch a recipe dict (as stored in a ModelSpec) to its trainer."""
    from .distill import student_recipe_class, train_student

    r = recipe_class(recipe.get("kind", ""))(**recipe)
    if student_recipe_class(recipe) is not None:
        return train_student(recipe, Path(out_dir), progress)
    if isinstance(r, ClassifierRecipe):
        if base is None:
            raise ConfigError("a classifier recipe needs a base checkpoint", "set `base:` on the model")
        return train_classifier(r, base, Path(out_dir), progress)
    return train_t5(r, Path(out_dir), progress)
