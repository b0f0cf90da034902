"""The teacher recipes: ``classifier`` fine-tunes a BERT-family checkpoint, ``t5-scratch`` trains a compact
T5 and its tokenizer from scratch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..exceptions import ConfigError
from .base import check_budget, positive

OPTIMIZERS = ("adamw", "adafactor")


@dataclass
class ClassifierRecipe:
    """Fine-tune a sequence classifier on a classification task's train split, ``epochs`` passes over
    ``train_size`` examples (625 steps by default), or ``max_steps`` when that is fewer."""

    FAMILY: ClassVar[str] = "bert"
    STUDENT: ClassVar[bool] = False

    kind: str = "classifier"
    task: str = "sst2"
    train_size: int | None = 20000  # None = the whole train split (67,349)
    # steps: epochs x ceil(examples / batch_size) = 625 here, or max_steps if smaller (see planned_steps)
    epochs: float | None = 1.0
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 64
    time_budget_s: float | None = None  # an explicit wall-clock cap (budget "time"); None = steps only
    bf16: bool | None = None  # None = bf16 autocast where the CPU has native bf16 (the record says which)
    seed: int = 0

    def __post_init__(self) -> None:
        positive("train_size", self.train_size, allow_none=True)
        for k in ("batch_size", "lr", "max_length"):
            positive(k, getattr(self, k))
        check_budget(self)


@dataclass
class T5Recipe:
    """Train a compact T5 (and its unigram tokenizer) from scratch on a seq2seq task's train split, for
    ``max_steps`` optimizer steps."""

    FAMILY: ClassVar[str] = "t5"
    STUDENT: ClassVar[bool] = False

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
    max_steps: int | None = 1700  # the step budget (t5-scratch has no epochs: it stops here)
    max_length: int = 64
    time_budget_s: float | None = None  # an explicit wall-clock cap (budget "time"); None = steps only
    bf16: bool | None = None  # None = use bf16 autocast where the CPU has native bf16
    # Adafactor: updates relative to each parameter's scale, as T5 was trained (README: the comparison with AdamW)
    optimizer: str = "adafactor"
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}",
                              "use optimizer: adamw")  # fmt: skip
        for k in ("vocab_size", "d_model", "num_layers", "num_heads", "d_ff", "batch_size", "lr",
                  "max_length"):  # fmt: skip
            positive(k, getattr(self, k))
        check_budget(self)
        if self.d_model % self.num_heads:
            raise ConfigError(
                f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}",
                "pick num_heads that divides d_model",
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}", "use e.g. 0.0 or 0.1")


def t5_config(recipe: T5Recipe, vocab_size: int):
    """The compact T5's config (also what a student's teacher will look like before it is trained)."""
    from transformers import T5Config

    return T5Config(
        vocab_size=vocab_size, d_model=recipe.d_model, d_kv=recipe.d_model // recipe.num_heads, d_ff=recipe.d_ff,
        num_layers=recipe.num_layers, num_decoder_layers=recipe.num_decoder_layers or recipe.num_layers,
        num_heads=recipe.num_heads, dropout_rate=recipe.dropout, feed_forward_proj="relu",
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=True,
    )  # fmt: skip
