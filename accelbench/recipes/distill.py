"""The distillation recipes (``distill-classifier``, ``distill-t5``) and which teacher layers a student keeps
or is matched with."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from ..exceptions import ConfigError
from .base import T5_LOSSES, T5_TARGETS, check_common, check_indices, check_losses

CLASSIFIER_LOSSES = ("kd", "ce", "hidden", "attention")


@dataclass
class DistillClassifierRecipe:
    """A BERT-family student of a sequence-classifier teacher, trained ``max_steps`` steps (or ``epochs``
    passes over its examples when that is fewer)."""

    FAMILY: ClassVar[str] = "bert"  # the family of its teacher and of itself
    STUDENT: ClassVar[bool] = True
    kind: str = "distill-classifier"
    teacher: str = "minilm-sst2"
    task: str | None = None  # None = the teacher's task
    layers: list[int] | None = field(
        default_factory=lambda: [0, 2, 4]
    )  # teacher layers copied; None = config
    num_layers: int | None = None  # a student built from a smaller config (used when layers is None)
    hidden_size: int | None = None  # None = the teacher's
    intermediate_size: int | None = None  # None = 4x hidden_size
    num_heads: int | None = None  # None = the teacher's
    layer_map: list[int] | None = (
        None  # teacher layer matched by each student layer (hidden/attention losses)
    )
    losses: dict[str, float] = field(default_factory=lambda: {"kd": 1.0, "ce": 0.5})
    temperature: float = 2.0
    # the teacher's soft targets are computed for these examples only: 35,200 = one pass of 1,100 steps of 32
    # (None = the whole train split, 67,349; soft targets need no extra labels)
    train_size: int | None = 35200
    # steps: max_steps, or epochs x ceil(examples / batch_size) if smaller (see planned_steps)
    epochs: float | None = 1.0
    max_steps: int | None = 1100
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 64
    time_budget_s: float | None = None  # an explicit wall-clock cap (budget "time"); None = steps only
    bf16: bool | None = None  # None = bf16 autocast where the CPU has native bf16 (the record says which)
    seed: int = 0

    def __post_init__(self) -> None:
        check_common(self)
        check_losses(self.losses, CLASSIFIER_LOSSES, "distill-classifier")
        if self.layers is None and self.num_layers is None:
            raise ConfigError("a student needs `layers` (teacher layers to copy) or `num_layers` (a new config)",
                              "write e.g. `layers: [0, 2, 4]` or `num_layers: 3`")  # fmt: skip
        if self.layers is not None and (not isinstance(self.layers, list) or not self.layers):
            raise ConfigError(f"layers must be a non-empty list of teacher layer indices, got {self.layers!r}",
                              "write e.g. `layers: [0, 2, 4]`")  # fmt: skip
        if self.layers is not None and self.num_layers is not None:
            raise ConfigError("set either `layers` (teacher layers to copy) or `num_layers` (a new config), not both",
                              "write `layers: null` beside num_layers for a student built from a config")  # fmt: skip
        if self.layers is not None and (self.hidden_size or self.num_heads or self.intermediate_size):
            raise ConfigError("copied layers keep the teacher's width; hidden_size/num_heads/intermediate_size "
                              "apply only to a student built from a config",
                              "drop `layers` (and set num_layers) for a narrower student")  # fmt: skip

    @property
    def student_layers(self) -> int:
        return len(self.layers) if self.layers is not None else int(self.num_layers)


@dataclass
class DistillT5Recipe:
    """A T5 student: maximally spaced blocks of the teacher, fine-tuned with word-level KD for ``max_steps``
    steps (or ``epochs`` passes over its examples when set and fewer)."""

    FAMILY: ClassVar[str] = "t5"
    STUDENT: ClassVar[bool] = True
    kind: str = "distill-t5"
    teacher: str = "t5-multi30k"
    task: str | None = None
    encoder_layers: list[int] | None = None  # None = keep every encoder block
    decoder_layers: list[int] | str | None = "half"  # "half" = n // 2 maximally spaced blocks; None = all
    losses: dict[str, float] = field(default_factory=lambda: {"kd": 1.0, "ce": 1.0})
    temperature: float = 1.0
    targets: str = "gold"  # or "pseudo": the teacher's greedy translations of the train sources
    train_size: int | None = None
    # steps: max_steps, or epochs x ceil(examples / batch_size) if smaller; epochs None = no epoch cap
    epochs: float | None = None
    max_steps: int | None = 1000  # 919 steps lost 1.44 BLEU against a 1.5 target: a little margin
    batch_size: int = 64
    lr: float = 3e-3  # Adafactor, fine-tuning copied weights (the teacher trained at 1e-2)
    warmup_steps: int = 50
    max_length: int = 64
    time_budget_s: float | None = None  # an explicit wall-clock cap (budget "time"); None = steps only
    bf16: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_common(self)
        check_losses(self.losses, T5_LOSSES, "distill-t5")
        if self.targets not in T5_TARGETS:
            raise ConfigError(f"targets must be one of {', '.join(T5_TARGETS)}, got {self.targets!r}",
                              "use `targets: gold` or `targets: pseudo`")  # fmt: skip
        for name in ("encoder_layers", "decoder_layers"):
            v = getattr(self, name)
            if v is not None and v != "half" and (not isinstance(v, list) or not v):
                raise ConfigError(f"{name} must be a non-empty list of teacher block indices, 'half' or null, "
                                  f"got {v!r}", f"write e.g. `{name}: [0, 2]`")  # fmt: skip


def spaced_layers(n: int, k: int) -> list[int]:
    """k of n layer indices, maximally spaced, first and last kept (DistilBART's shrink-and-fine-tune)."""
    if not 1 <= k <= n:
        raise ConfigError(f"cannot keep {k} of {n} layers", f"keep between 1 and {n}")
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def default_layer_map(n_student: int, n_teacher: int) -> list[int]:
    """Student layer i matched with teacher layer ceil((i+1) * n_teacher / n_student) - 1 (last with last)."""
    return [math.ceil((i + 1) * n_teacher / n_student) - 1 for i in range(n_student)]


def resolve_layers(r: DistillT5Recipe, tcfg) -> tuple[list[int], list[int]]:
    """The encoder and decoder blocks a T5 student keeps (validated against the teacher's config)."""
    n_enc, n_dec = tcfg.num_layers, tcfg.num_decoder_layers
    enc = list(range(n_enc)) if r.encoder_layers is None else list(r.encoder_layers)
    dec = r.decoder_layers
    dec = (list(range(n_dec)) if dec is None else spaced_layers(n_dec, max(1, n_dec // 2)) if dec == "half"
           else list(dec))  # fmt: skip
    check_indices("encoder_layers", enc, n_enc, r.teacher)
    check_indices("decoder_layers", dec, n_dec, r.teacher)
    return enc, dec
