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
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from .exceptions import ConfigError
from .registry import Registry

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adamw", "adafactor")
CLASSIFIER_LOSSES = ("kd", "ce", "hidden", "attention")
PRUNE_LOSSES = ("kd", "ce")
PRUNE_SCOPES = ("global", "layer")  # heads/neurons ranked across layers (Michel et al.) or within each layer
IMPORTANCE_LOSSES = ("ce", "pseudo")  # gold labels, or the teacher's own predicted labels
T5_LOSSES = ("kd", "ce")
T5_TARGETS = ("gold", "pseudo")


def positive(name: str, value: float | None, allow_none: bool = False, allow_zero: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(
            f"training setting {name} must be positive, got {value!r}", f"set {name} to a positive number"
        )


def check_budget(r: Any) -> None:
    """max_steps a positive whole number, epochs and time_budget_s positive, and a step rule to stop at.

    A whole float (``max_steps: 1000.0``) becomes an int, so both spellings share one cache key.
    """
    steps = r.max_steps
    if isinstance(steps, float) and steps.is_integer():
        r.max_steps = steps = int(steps)
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0):
        raise ConfigError(f"training setting max_steps must be a positive whole number of optimizer steps, "
                          f"got {steps!r}", "set max_steps to e.g. 1000")  # fmt: skip
    has_epochs = "epochs" in {f.name for f in fields(r)}
    if has_epochs:
        positive("epochs", r.epochs, allow_none=True)
    positive("time_budget_s", r.time_budget_s, allow_none=True)
    if steps is None and (not has_epochs or r.epochs is None):
        rule = "max_steps and epochs are" if has_epochs else "max_steps is"
        raise ConfigError(f"{r.kind}: {rule} null, so no step count ends this training",
                          "set max_steps (optimizer steps, e.g. 1000); for a wall-clock budget set "
                          "time_budget_s as well, with max_steps as a cap")  # fmt: skip


def planned_steps(r: Any, n_examples: int) -> int:
    """The steps a recipe trains on ``n_examples``: ``max_steps``, or ``epochs`` x ceil(n_examples / batch_size)
    when that is smaller (at least 1). A ``time_budget_s`` may stop it earlier."""
    caps = [] if r.max_steps is None else [r.max_steps]
    epochs = getattr(r, "epochs", None)
    if epochs is not None:
        caps.append(max(1, int(math.ceil(n_examples / r.batch_size) * epochs)))
    return min(caps)


def budget(r: Any) -> str:
    """``"time"`` when the recipe sets an explicit wall-clock budget (machine-dependent), else ``"steps"``."""
    return "steps" if r.time_budget_s is None else "time"


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


def _check_losses(losses: dict[str, float], allowed: tuple[str, ...], kind: str) -> None:
    if not isinstance(losses, dict) or not losses:
        raise ConfigError(f"{kind}: losses must be a mapping of loss name to weight, got {losses!r}",
                          "write e.g. `losses: {kd: 1.0, ce: 0.5}`")  # fmt: skip
    unknown = sorted(set(losses) - set(allowed))
    if unknown:
        raise ConfigError(f"{kind}: unknown loss(es) {', '.join(unknown)}", f"use only: {', '.join(allowed)}")
    for name, w in losses.items():
        if not isinstance(w, int | float) or w < 0:
            raise ConfigError(f"{kind}: weight of loss {name!r} must be a number >= 0, got {w!r}",
                              "give each loss a non-negative weight")  # fmt: skip
    if not any(losses.values()):
        raise ConfigError(f"{kind}: every loss weight is 0", "give at least one loss a positive weight")


def _check_common(r: Any) -> None:
    for k in ("batch_size", "lr", "max_length", "temperature"):
        positive(k, getattr(r, k))
    check_budget(r)
    positive("train_size", r.train_size, allow_none=True)
    if not isinstance(r.teacher, str) or not r.teacher:
        raise ConfigError(
            "a distillation recipe needs a `teacher` model name", "write e.g. `teacher: minilm-sst2`"
        )


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
    seed: int = 0

    def __post_init__(self) -> None:
        _check_common(self)
        _check_losses(self.losses, CLASSIFIER_LOSSES, "distill-classifier")
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
        _check_common(self)
        _check_losses(self.losses, T5_LOSSES, "distill-t5")
        if self.targets not in T5_TARGETS:
            raise ConfigError(f"targets must be one of {', '.join(T5_TARGETS)}, got {self.targets!r}",
                              "use `targets: gold` or `targets: pseudo`")  # fmt: skip
        for name in ("encoder_layers", "decoder_layers"):
            v = getattr(self, name)
            if v is not None and v != "half" and (not isinstance(v, list) or not v):
                raise ConfigError(f"{name} must be a non-empty list of teacher block indices, 'half' or null, "
                                  f"got {v!r}", f"write e.g. `{name}: [0, 2]`")  # fmt: skip


def _share(name: str, value: Any, kind: str = "prune-classifier") -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ConfigError(f"{kind}: {name} is the share of {name} to remove, in [0, 1); got {value!r}",
                          f"write e.g. `{name}: 0.5` (remove half), or `{name}: 0` to keep all")  # fmt: skip


def _check_pruning(r: Any) -> None:
    """scope, importance_loss and importance_batches of a prune recipe."""
    if r.scope not in PRUNE_SCOPES:
        raise ConfigError(f"{r.kind}: scope must be one of {', '.join(PRUNE_SCOPES)}, got {r.scope!r}",
                          "use `scope: global` or `scope: layer`")  # fmt: skip
    if r.importance_loss not in IMPORTANCE_LOSSES:
        raise ConfigError(f"{r.kind}: importance_loss must be one of {', '.join(IMPORTANCE_LOSSES)}, got "
                          f"{r.importance_loss!r} (KD against the scored model's own outputs has a zero gradient)",
                          "use `importance_loss: ce` (gold targets) or `pseudo` (the model's own argmax)")  # fmt: skip
    n = r.importance_batches
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ConfigError(f"{r.kind}: importance_batches must be a positive whole number, got {n!r}",
                          "write e.g. `importance_batches: 32`")  # fmt: skip


@dataclass
class PruneClassifierRecipe:
    """Structured pruning of a BERT classifier (Michel et al. 2019): score every attention head and FFN neuron
    by |d loss / d mask| over ``importance_batches`` batches, remove the lowest ``heads`` / ``ffn`` shares (and
    the encoder layers not in ``layers``), then recover with KD from the unpruned teacher, as a student is
    trained. The plan (what each layer keeps) is known only after scoring; see ``prune_counts``."""

    FAMILY: ClassVar[str] = "bert"
    STUDENT: ClassVar[bool] = True
    kind: str = "prune-classifier"
    teacher: str = "minilm-sst2"
    task: str | None = None  # None = the teacher's task
    heads: float = 0.5  # share of attention heads removed
    ffn: float = 0.5  # share of feed-forward neurons removed
    layers: list[int] | None = None  # teacher layers kept (None = all)
    scope: str = "global"  # "global": ranked across layers (scores normalised per layer); "layer": per layer
    importance_batches: int = 32  # train-split batches (of batch_size) the importance scores sum over
    importance_loss: str = "ce"  # "ce": gold labels; "pseudo": the teacher's own labels (KD's gradient is 0)
    losses: dict[str, float] = field(default_factory=lambda: {"kd": 1.0, "ce": 0.5})  # recovery
    temperature: float = 2.0
    train_size: int | None = 35200  # as distill-classifier: one pass of 1,100 steps of 32
    epochs: float | None = 1.0
    max_steps: int | None = 1100
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 64
    time_budget_s: float | None = None  # an explicit wall-clock cap (budget "time"); None = steps only
    seed: int = 0

    def __post_init__(self) -> None:
        _check_common(self)
        _check_losses(self.losses, PRUNE_LOSSES, "prune-classifier")
        _share("heads", self.heads)
        _share("ffn", self.ffn)
        _check_pruning(self)
        if self.layers is not None and (not isinstance(self.layers, list) or not self.layers):
            raise ConfigError(f"layers must be a non-empty list of teacher layer indices or null, got {self.layers!r}",
                              "write e.g. `layers: [0, 2, 4]`, or `layers: null` to keep every layer")  # fmt: skip


@dataclass
class PruneT5Recipe:
    """Structured pruning of a T5's feed-forward neurons (Michel et al. 2019's importance, as prune-classifier):
    score each neuron of every decoder (and encoder) block by |d loss / d mask| over ``importance_batches``
    batches, remove the lowest ``decoder_ffn`` / ``encoder_ffn`` shares, then recover exactly as ``distill-t5``
    trains its student (word-level KD from the unpruned teacher and CE, Adafactor)."""

    FAMILY: ClassVar[str] = "t5"
    STUDENT: ClassVar[bool] = True
    kind: str = "prune-t5"
    teacher: str = "t5-multi30k"
    task: str | None = None  # None = the teacher's task
    decoder_ffn: float = 0.5  # share of the decoder's FFN neurons removed
    encoder_ffn: float = 0.0  # share of the encoder's FFN neurons removed
    scope: str = "global"  # "global": ranked across blocks (scores normalised per block); "layer": per block
    importance_batches: int = 32  # train-split batches (of batch_size) the importance scores sum over
    importance_loss: str = "ce"  # "ce": gold targets; "pseudo": the teacher's own argmax next tokens
    losses: dict[str, float] = field(default_factory=lambda: {"kd": 1.0, "ce": 1.0})  # recovery
    temperature: float = 1.0
    targets: str = "gold"  # or "pseudo": the teacher's greedy translations of the train sources
    train_size: int | None = None
    epochs: float | None = None
    max_steps: int | None = 1000  # as t5-multi30k-half
    batch_size: int = 64
    lr: float = 3e-3  # Adafactor, fine-tuning the teacher's own weights
    warmup_steps: int = 50
    max_length: int = 64
    time_budget_s: float | None = None  # an explicit wall-clock cap (budget "time"); None = steps only
    bf16: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _check_common(self)
        _check_losses(self.losses, T5_LOSSES, self.kind)
        if self.targets not in T5_TARGETS:
            raise ConfigError(f"targets must be one of {', '.join(T5_TARGETS)}, got {self.targets!r}",
                              "use `targets: gold` or `targets: pseudo`")  # fmt: skip
        _share("decoder_ffn", self.decoder_ffn, self.kind)
        _share("encoder_ffn", self.encoder_ffn, self.kind)
        _check_pruning(self)


RECIPES: Registry[type] = Registry(
    "training recipe",
    "use kind: classifier, t5-scratch, distill-classifier, distill-t5, prune-classifier or prune-t5",
)
for _cls in (ClassifierRecipe, T5Recipe, DistillClassifierRecipe, DistillT5Recipe, PruneClassifierRecipe,
             PruneT5Recipe):  # fmt: skip
    RECIPES.register(_cls.kind, _cls)


def recipe_class(kind: str) -> type:
    """The recipe dataclass of a ``kind``; an unknown kind lists the known ones."""
    return RECIPES.get(kind)


def build_recipe(recipe: dict[str, Any]):
    """A recipe dict (as a ModelSpec or a record stores it) as its validated dataclass."""
    if not isinstance(recipe, dict):
        raise ConfigError(
            f"a training recipe must be a mapping, got {recipe!r}", "write e.g. `recipe: {kind: classifier}`"
        )
    return recipe_class(recipe.get("kind", ""))(**recipe)


def full_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe with every default filled in, numbers normalised (600 and 600.0 are one budget, one key)."""
    r = build_recipe(recipe)
    for f in fields(r):
        v = getattr(r, f.name)
        if isinstance(v, int) and not isinstance(v, bool) and str(f.type).startswith("float"):
            setattr(r, f.name, float(v))
    return asdict(r)


def student_recipe_class(recipe: dict[str, Any] | None) -> type | None:
    """The distillation recipe class of a model's recipe, or None when the model is not a student."""
    kind = (recipe or {}).get("kind")
    cls = RECIPES.get(kind) if kind in RECIPES else None
    return cls if cls is not None and cls.STUDENT else None


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


def n_layers(config) -> int:
    return int(getattr(config, "num_hidden_layers", None) or config.num_layers)


def _check_indices(name: str, idx: list[Any], n: int, teacher: str) -> None:
    bad = [i for i in idx if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n]
    if bad:
        raise ConfigError(f"{name} {idx} does not fit teacher {teacher!r}: it has {n} layers (0..{n - 1}), "
                          f"so {', '.join(map(str, bad))} is out of range",
                          f"use indices between 0 and {n - 1}")  # fmt: skip
    if len(set(idx)) != len(idx) or list(idx) != sorted(idx):
        raise ConfigError(f"{name} {idx} must list distinct teacher layers in increasing order",
                          "write e.g. [0, 2, 4]")  # fmt: skip


def resolve_layers(r: DistillT5Recipe, tcfg) -> tuple[list[int], list[int]]:
    """The encoder and decoder blocks a T5 student keeps (validated against the teacher's config)."""
    n_enc, n_dec = tcfg.num_layers, tcfg.num_decoder_layers
    enc = list(range(n_enc)) if r.encoder_layers is None else list(r.encoder_layers)
    dec = r.decoder_layers
    dec = (list(range(n_dec)) if dec is None else spaced_layers(n_dec, max(1, n_dec // 2)) if dec == "half"
           else list(dec))  # fmt: skip
    _check_indices("encoder_layers", enc, n_enc, r.teacher)
    _check_indices("decoder_layers", dec, n_dec, r.teacher)
    return enc, dec


def layer_sizes(cfg) -> tuple[list[int], list[int]]:
    """Heads and FFN neurons of each layer of a BERT config (a pruned one lists its own per layer)."""
    n = n_layers(cfg)
    heads = getattr(cfg, "heads_per_layer", None) or [int(cfg.num_attention_heads)] * n
    ffn = getattr(cfg, "intermediate_per_layer", None) or [int(cfg.intermediate_size)] * n
    return list(heads), list(ffn)


def prune_counts(r: PruneClassifierRecipe, tcfg) -> dict[str, Any]:
    """What a prune recipe removes from its teacher, checked before any work: the teacher layers kept, and
    how many heads and neurons go (per kept layer for ``scope: layer``, in total for ``global``).

    Counts round down, so ``heads: 0.5`` of 3 heads removes 1. A layer always keeps one head and one
    neuron: a plan that cannot is refused here.
    """
    if getattr(tcfg, "model_type", None) not in ("bert", "accelbench-pruned-bert"):
        raise ConfigError(f"prune-classifier prunes BERT classifiers; teacher {r.teacher!r} is a "
                          f"{getattr(tcfg, 'model_type', type(tcfg).__name__)}",
                          "use a BERT-family teacher (minilm-sst2 or a distill-classifier student of it)")  # fmt: skip
    n = n_layers(tcfg)
    layers = list(range(n)) if r.layers is None else list(r.layers)
    _check_indices("layers", layers, n, r.teacher)
    heads, ffn = layer_sizes(tcfg)
    heads, ffn = [heads[i] for i in layers], [ffn[i] for i in layers]
    out: dict[str, Any] = {"layers": layers, "heads_per_layer": heads, "ffn_per_layer": ffn}
    for name, share, sizes in (("heads", r.heads, heads), ("ffn", r.ffn, ffn)):
        if r.scope == "layer":
            out[f"remove_{name}"] = [int(share * s + 1e-9) for s in sizes]
            continue
        total = int(share * sum(sizes) + 1e-9)
        room = sum(sizes) - len(sizes)  # everything but one per layer
        if total > room:
            unit = "head" if name == "heads" else "neuron"
            raise ConfigError(f"prune-classifier: {name}: {share} would remove {total} of the {sum(sizes)} {unit}s "
                              f"of teacher {r.teacher!r}'s {len(sizes)} kept layers, leaving a layer without any",
                              f"use {name} <= {room / sum(sizes):.3f} (one {unit} per layer stays), "
                              f"or fewer layers")  # fmt: skip
        out[f"remove_{name}"] = total
    return out


PRUNABLE_T5_TYPES = ("t5", "accelbench-pruned-t5")


def t5_ffn_sizes(cfg) -> tuple[list[int], list[int]]:
    """FFN neurons of each encoder and decoder block of a T5 config (a pruned one lists its own per block)."""
    enc = getattr(cfg, "encoder_ff_per_layer", None) or [int(cfg.d_ff)] * int(cfg.num_layers)
    dec = getattr(cfg, "decoder_ff_per_layer", None) or [int(cfg.d_ff)] * int(
        cfg.num_decoder_layers or cfg.num_layers
    )
    return list(enc), list(dec)


def prune_t5_counts(r: PruneT5Recipe, tcfg) -> dict[str, Any]:
    """What a prune-t5 recipe removes, checked before any work: the FFN sizes of the teacher's encoder and
    decoder blocks, and how many neurons go from each stack (a list per block for ``scope: layer``, a total
    for ``global``). Counts round down; a block always keeps one neuron."""
    mtype = getattr(tcfg, "model_type", None)
    if mtype not in PRUNABLE_T5_TYPES:
        raise ConfigError(f"prune-t5 prunes T5 models; teacher {r.teacher!r} is a {mtype or type(tcfg).__name__}",
                          "use a T5 teacher (t5-multi30k, a distill-t5 or prune-t5 student of it, or a T5 "
                          "checkpoint such as t5-small); prune-classifier prunes BERT classifiers")  # fmt: skip
    enc, dec = t5_ffn_sizes(tcfg)
    out: dict[str, Any] = {"encoder_ff_per_layer": enc, "decoder_ff_per_layer": dec}
    for name, share, sizes in (("encoder_ffn", r.encoder_ffn, enc), ("decoder_ffn", r.decoder_ffn, dec)):
        if r.scope == "layer":
            out[f"remove_{name}"] = [min(s - 1, int(share * s + 1e-9)) for s in sizes]
            continue
        total, room = int(share * sum(sizes) + 1e-9), sum(sizes) - len(sizes)
        if total > room:
            raise ConfigError(f"prune-t5: {name}: {share} would remove {total} of the {sum(sizes)} FFN neurons of "
                              f"teacher {r.teacher!r}'s {len(sizes)} blocks, leaving a block without any",
                              f"use {name} <= {room / sum(sizes):.3f} (one neuron per block stays)")  # fmt: skip
        out[f"remove_{name}"] = total
    return out


def student_config(r, tcfg):
    """The student's config, derived from the teacher's; raises before training when it does not fit.

    A pruned student's config is known only after scoring; here it is the plan's sizes as if each layer
    lost its share (exact for ``scope: layer``)."""
    if isinstance(r, PruneT5Recipe):
        c = prune_t5_counts(r, tcfg)
        sizes = {}
        for name, share in (("encoder", r.encoder_ffn), ("decoder", r.decoder_ffn)):
            rm = c[f"remove_{name}_ffn"]
            sizes[name] = [max(1, f - (rm[i] if isinstance(rm, list) else int(share * f + 1e-9)))
                           for i, f in enumerate(c[f"{name}_ff_per_layer"])]  # fmt: skip
        from .architectures.pruned_t5 import pruned_config as pruned_t5_config

        return pruned_t5_config(tcfg, sizes["encoder"], sizes["decoder"])
    if isinstance(r, PruneClassifierRecipe):
        c = prune_counts(r, tcfg)
        rm_h, rm_f = c["remove_heads"], c["remove_ffn"]
        heads = [h - (rm_h[i] if isinstance(rm_h, list) else int(r.heads * h + 1e-9))
                 for i, h in enumerate(c["heads_per_layer"])]  # fmt: skip
        ffn = [f - (rm_f[i] if isinstance(rm_f, list) else int(r.ffn * f + 1e-9))
               for i, f in enumerate(c["ffn_per_layer"])]  # fmt: skip
        from .architectures.pruned_bert import pruned_config

        return pruned_config(tcfg, len(c["layers"]), [max(1, h) for h in heads], [max(1, f) for f in ffn])
    cfg = copy.deepcopy(tcfg)
    if isinstance(r, DistillT5Recipe):
        enc, dec = resolve_layers(r, tcfg)
        cfg.num_layers, cfg.num_decoder_layers = len(enc), len(dec)
        if getattr(cfg, "encoder_ff_per_layer", None) is not None:  # a pruned teacher: its blocks' own sizes
            cfg.encoder_ff_per_layer = [cfg.encoder_ff_per_layer[i] for i in enc]
            cfg.decoder_ff_per_layer = [cfg.decoder_ff_per_layer[i] for i in dec]
        return cfg
    n_teacher = n_layers(tcfg)
    pruned = getattr(cfg, "heads_per_layer", None) is not None  # a pruned teacher: per-layer sizes follow
    if r.layers is not None:
        _check_indices("layers", r.layers, n_teacher, r.teacher)
        cfg.num_hidden_layers = len(r.layers)
        if pruned:
            cfg.heads_per_layer = [cfg.heads_per_layer[i] for i in r.layers]
            cfg.intermediate_per_layer = [cfg.intermediate_per_layer[i] for i in r.layers]
    else:
        width = r.hidden_size or tcfg.hidden_size
        heads = r.num_heads or tcfg.num_attention_heads
        if width > tcfg.hidden_size:
            raise ConfigError(f"student hidden_size {width} is wider than its teacher {r.teacher!r} ({tcfg.hidden_size})",
                              f"use hidden_size <= {tcfg.hidden_size}: a student is smaller than its teacher")  # fmt: skip
        if r.num_layers > n_teacher:
            raise ConfigError(f"student num_layers {r.num_layers} is deeper than its teacher {r.teacher!r} ({n_teacher})",
                              f"use num_layers <= {n_teacher}")  # fmt: skip
        if width % heads:
            raise ConfigError(f"student hidden_size {width} is not divisible by num_heads {heads}",
                              "pick num_heads that divides hidden_size")  # fmt: skip
        cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads = r.num_layers, width, heads
        inter = r.intermediate_size or 4 * width
        setattr(cfg, "hidden_dim" if hasattr(cfg, "hidden_dim") else "intermediate_size", inter)
        if pruned:  # a fresh config-built student is unpruned
            cfg.heads_per_layer, cfg.intermediate_per_layer = [heads] * r.num_layers, [inter] * r.num_layers
            cfg.attention_head_size = width // heads
    n_student = n_layers(cfg)
    lmap = r.layer_map
    if lmap is not None:
        if len(lmap) != n_student:
            raise ConfigError(f"layer_map {lmap} has {len(lmap)} entries but the student has {n_student} layers",
                              "give one teacher layer per student layer")  # fmt: skip
        _check_indices("layer_map", lmap, n_teacher, r.teacher)
    if r.losses.get("attention") and cfg.num_attention_heads != tcfg.num_attention_heads:
        logger.info("attention loss: head counts differ, maps are compared averaged over heads")
    return cfg


def layer_map(r: DistillClassifierRecipe | PruneClassifierRecipe, tcfg) -> list[int]:
    if isinstance(r, PruneClassifierRecipe):
        return list(r.layers) if r.layers is not None else list(range(n_layers(tcfg)))
    if r.layer_map is not None:
        return list(r.layer_map)
    if r.layers is not None:
        return list(r.layers)
    return default_layer_map(r.student_layers, n_layers(tcfg))
