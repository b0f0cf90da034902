"""The pruning recipes (``prune-classifier``, ``prune-t5``) and how many heads and neurons a plan removes from
its teacher, checked before any work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..exceptions import ConfigError
from .base import T5_LOSSES, T5_TARGETS, check_common, check_indices, check_losses, n_layers

PRUNE_LOSSES = ("kd", "ce")
PRUNE_SCOPES = ("global", "layer")  # heads/neurons ranked across layers (Michel et al.) or within each layer
IMPORTANCE_LOSSES = ("ce", "pseudo")  # gold labels, or the teacher's own predicted labels
PRUNABLE_T5_TYPES = ("t5", "accelbench-pruned-t5")


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
    bf16: bool | None = None  # None = bf16 autocast where the CPU has native bf16 (the record says which)
    seed: int = 0

    def __post_init__(self) -> None:
        check_common(self)
        check_losses(self.losses, PRUNE_LOSSES, "prune-classifier")
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
        check_common(self)
        check_losses(self.losses, T5_LOSSES, self.kind)
        if self.targets not in T5_TARGETS:
            raise ConfigError(f"targets must be one of {', '.join(T5_TARGETS)}, got {self.targets!r}",
                              "use `targets: gold` or `targets: pseudo`")  # fmt: skip
        _share("decoder_ffn", self.decoder_ffn, self.kind)
        _share("encoder_ffn", self.encoder_ffn, self.kind)
        _check_pruning(self)


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
    check_indices("layers", layers, n, r.teacher)
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
