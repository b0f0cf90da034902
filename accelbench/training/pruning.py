"""Structured pruning of a BERT classifier (heads, FFN neurons, layers) and of a T5 (FFN neurons per block):
importance scores, a plan, and the surgery that applies it.

Importance follows Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"): a mask variable of 1.0
multiplies each head's slice of the self-attention output and each FFN neuron's activation (forward hooks:
transformers 5 has no ``head_mask``); a head's score is the sum over batches of |d loss / d mask|, the first-
order estimate of the loss change its removal causes. Scores are normalised per layer (L2), as Michel does,
before a global ranking. The loss is cross-entropy against gold labels or against the model's own predicted
labels: KD against the model's own logits has a zero gradient at mask = 1, so it cannot rank anything.

``prune_model`` slices the kept heads' rows of Q/K/V and columns of the attention output, and the kept
neurons' rows of the intermediate and columns of the output dense, into a ``PrunedBertForSequenceClassification``:
what is kept keeps exactly its weights, so a kept part computes exactly what it did.

T5 (``prune-t5``): the mask multiplies the activation each block's ``wo`` reads (after ``wi``, or the gated
``wi_0`` x ``wi_1``), in every encoder and decoder block; the loss is the word-level cross-entropy on the target
tokens (teacher-forced) or on the model's own argmax next tokens (``pseudo``: word-level KD with hard targets;
KD against its own distribution has a zero gradient, as above). ``prune_t5`` slices the kept neurons' rows of
``wi`` (``wi_0``, ``wi_1``) and columns of ``wo`` into a ``PrunedT5ForConditionalGeneration``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..architectures.pruned_bert import PrunedBertForSequenceClassification, pruned_config
from ..exceptions import ConfigError
from ..recipes import PruneClassifierRecipe, PruneT5Recipe, prune_counts, prune_t5_counts

logger = logging.getLogger(__name__)

NORM_EPS = 1e-20


@dataclass
class PrunePlan:
    """What the pruned model keeps: teacher layers, and per kept layer the head and neuron indices."""

    layers: list[int]
    heads: list[list[int]]
    neurons: list[list[int]]
    params_before: int | None = None
    params_after: int | None = None

    @property
    def heads_per_layer(self) -> list[int]:
        return [len(h) for h in self.heads]

    @property
    def intermediate_per_layer(self) -> list[int]:
        return [len(n) for n in self.neurons]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "heads_per_layer": self.heads_per_layer,
                "intermediate_per_layer": self.intermediate_per_layer}  # fmt: skip


def encoder_layers(model):
    """The ``BertLayer`` list of a BERT classifier; anything else is refused."""
    try:
        return model.bert.encoder.layer
    except AttributeError:
        raise ConfigError(
            f"cannot prune a {type(model).__name__}: only BERT classifiers (model.bert.encoder) are "
            "supported",
            "use a BERT-family teacher such as minilm-sst2",
        ) from None


def layer_shapes(model) -> tuple[list[int], list[int]]:
    """Heads and FFN neurons of each encoder layer, read from the modules themselves."""
    layers = encoder_layers(model)
    return ([int(lay.attention.self.num_attention_heads) for lay in layers],
            [int(lay.intermediate.dense.out_features) for lay in layers])  # fmt: skip


def importance_scores(model, batches: Iterable[dict], loss: str = "ce") -> tuple[list, list]:
    """Sum over ``batches`` of |d loss / d mask|, per head and per FFN neuron of every layer (unnormalised).

    ``batches``: model inputs with ``labels``; ``loss``: ``"ce"`` (gold labels) or ``"pseudo"`` (the model's
    own argmax). The model runs in eval mode and is left as it was (hooks removed, weights untouched).
    """
    import torch

    layers = encoder_layers(model)
    n_heads, n_ffn = layer_shapes(model)
    masks = [torch.ones(h, requires_grad=True) for h in n_heads] + [
        torch.ones(f, requires_grad=True) for f in n_ffn
    ]
    totals = [torch.zeros(m.shape) for m in masks]
    hooks = []

    def head_hook(mask):
        def hook(module, args, output):
            out, *rest = output  # (B, T, h * d)
            b, t, _ = out.shape
            return ((out.view(b, t, mask.numel(), -1) * mask[:, None]).view(b, t, -1), *rest)

        return hook

    for lay, hm, fm in zip(layers, masks[: len(layers)], masks[len(layers) :], strict=True):
        hooks.append(lay.attention.self.register_forward_hook(head_hook(hm)))
        hooks.append(lay.intermediate.register_forward_hook(lambda m, a, out, fm=fm: out * fm))  # (B, T, f)
    was_training = model.training
    model.eval()
    n = 0
    try:
        for batch in batches:
            batch = dict(batch)
            labels = batch.pop("labels")
            logits = model(**batch).logits.float()
            if loss == "pseudo":
                labels = logits.detach().argmax(-1)
            grads = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, labels), masks)
            for t, g in zip(totals, grads, strict=True):
                t += g.abs()
            n += 1
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if n == 0:
        raise ConfigError("no batches to score importance on", "use a task with training examples")
    return totals[: len(layers)], totals[len(layers) :]


def normalise(scores: list) -> list:
    """Each layer's scores divided by their L2 norm (Michel et al.), so layers compare in a global ranking."""
    return [s / (s.norm() + NORM_EPS) for s in scores]


def keep_indices(scores: list, remove: int | list[int]) -> list[list[int]]:
    """The indices each layer keeps when the lowest scores go: ``remove`` per layer (a list) or in total
    (an int; ranked across layers, never a layer's last unit)."""
    if isinstance(remove, list):
        return [
            sorted(s.argsort(descending=True)[: len(s) - r].tolist())
            for s, r in zip(scores, remove, strict=True)
        ]
    ranked = sorted((float(v), li, i) for li, s in enumerate(scores) for i, v in enumerate(s.tolist()))
    left = [len(s) for s in scores]
    dropped: set[tuple[int, int]] = set()
    for _, li, i in ranked:
        if len(dropped) >= remove:
            break
        if left[li] > 1:
            left[li] -= 1
            dropped.add((li, i))
    if len(dropped) < remove:
        raise ConfigError(f"cannot remove {remove} units and keep one per layer", "prune a smaller share")
    return [[i for i in range(len(s)) if (li, i) not in dropped] for li, s in enumerate(scores)]


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def prune_model(model, plan: PrunePlan):
    """A ``PrunedBertForSequenceClassification`` holding the kept layers, heads and neurons of ``model``."""
    import torch

    cfg = pruned_config(model.config, len(plan.layers), plan.heads_per_layer, plan.intermediate_per_layer)
    d = cfg.attention_head_size
    pruned = PrunedBertForSequenceClassification(cfg)
    src = model.state_dict()
    new = {}
    prefix = "bert.encoder.layer."
    for key, value in pruned.state_dict().items():
        if not key.startswith(prefix):
            new[key] = src[key].clone()
            continue
        j, tail = key[len(prefix) :].split(".", 1)
        j = int(j)
        w = src[f"{prefix}{plan.layers[j]}.{tail}"]
        rows = torch.tensor([h * d + k for h in plan.heads[j] for k in range(d)], dtype=torch.long)
        neurons = torch.tensor(plan.neurons[j], dtype=torch.long)
        if tail.startswith(("attention.self.query.", "attention.self.key.", "attention.self.value.")):
            w = w.index_select(0, rows)
        elif tail == "attention.output.dense.weight":
            w = w.index_select(1, rows)
        elif tail.startswith("intermediate.dense."):
            w = w.index_select(0, neurons)
        elif tail == "output.dense.weight":
            w = w.index_select(1, neurons)
        if w.shape != value.shape:
            raise ConfigError(f"cannot slice {key} from the teacher ({tuple(w.shape)} vs {tuple(value.shape)})",
                              "prune a BERT classifier")  # fmt: skip
        new[key] = w.clone()
    pruned.load_state_dict(new)
    pruned.eval()
    plan.params_before, plan.params_after = n_params(model), n_params(pruned)
    return pruned


def full_plan(model, layers: list[int] | None = None) -> PrunePlan:
    """The plan that keeps every head and neuron of ``layers`` (all when None)."""
    heads, ffn = layer_shapes(model)
    layers = list(range(len(heads))) if layers is None else list(layers)
    return PrunePlan(layers, [list(range(heads[i])) for i in layers], [list(range(ffn[i])) for i in layers])


def make_plan(head_scores: list, ffn_scores: list, layers: list[int], counts: dict[str, Any],
              scope: str = "global") -> PrunePlan:  # fmt: skip
    """The plan from scores of the kept layers and ``recipes.prune_counts`` (how many go)."""
    if scope == "global":
        head_scores, ffn_scores = normalise(head_scores), normalise(ffn_scores)
    return PrunePlan(list(layers), keep_indices(head_scores, counts["remove_heads"]),
                     keep_indices(ffn_scores, counts["remove_ffn"]))  # fmt: skip


def prune_by_importance(
    model, r: PruneClassifierRecipe, batches: Iterable[dict]
) -> tuple[Any, PrunePlan, dict[str, Any]]:
    """Score ``model`` (its kept layers only) on ``batches``, plan by the recipe ``r``, prune.

    Returns the pruned model, its plan (with the teacher's layer indices and parameter counts) and the
    scores, for the training log.
    """
    counts = prune_counts(r, model.config)
    base = prune_model(model, full_plan(model, counts["layers"])) if r.layers is not None else model
    heads, ffn = importance_scores(base, batches, r.importance_loss)
    plan = make_plan(heads, ffn, list(range(len(counts["layers"]))), counts, r.scope)
    pruned = prune_model(base, plan)
    plan.layers = counts["layers"]
    plan.params_before = n_params(model)
    logger.info("pruned %d -> %d parameters; heads per layer %s, FFN neurons per layer %s", plan.params_before,
                plan.params_after, plan.heads_per_layer, plan.intermediate_per_layer)  # fmt: skip
    scores = {"head_importance": [[round(float(v), 6) for v in s] for s in heads]}
    return pruned, plan, scores


# T5: the feed-forward neurons of each encoder and decoder block


@dataclass
class T5PrunePlan:
    """What a pruned T5 keeps: per encoder block and per decoder block, the FFN neuron indices."""

    encoder: list[list[int]]
    decoder: list[list[int]]
    params_before: int | None = None
    params_after: int | None = None

    @property
    def encoder_ff_per_layer(self) -> list[int]:
        return [len(n) for n in self.encoder]

    @property
    def decoder_ff_per_layer(self) -> list[int]:
        return [len(n) for n in self.decoder]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "encoder_ff_per_layer": self.encoder_ff_per_layer,
                "decoder_ff_per_layer": self.decoder_ff_per_layer}  # fmt: skip


def t5_ffns(model) -> tuple[list, list]:
    """The FFN modules (``DenseReluDense``: ``wi`` or ``wi_0``/``wi_1``, and ``wo``) of every encoder and
    decoder block of a T5; anything else is refused."""
    from ..architectures.pruned_t5 import ffn_modules

    try:
        return ([ffn_modules(b)[1] for b in model.encoder.block],
                [ffn_modules(b)[1] for b in model.decoder.block])  # fmt: skip
    except AttributeError:
        raise ConfigError(f"cannot prune the FFN neurons of a {type(model).__name__}: only T5 models "
                          "(encoder.block / decoder.block with DenseReluDense) are supported",
                          "use a T5 teacher such as t5-multi30k") from None  # fmt: skip


def t5_ffn_shapes(model) -> tuple[list[int], list[int]]:
    """FFN neurons of each encoder and decoder block, read from the modules themselves."""
    enc, dec = t5_ffns(model)
    return [int(d.wo.in_features) for d in enc], [int(d.wo.in_features) for d in dec]


def t5_importance_scores(model, batches: Iterable[dict], loss: str = "ce") -> tuple[list, list]:
    """Sum over ``batches`` of |d loss / d mask| per FFN neuron of every encoder and decoder block.

    ``batches``: ``input_ids``, ``attention_mask``, ``labels`` (target ids, -100 = padding); ``loss``: ``"ce"``
    (the labels) or ``"pseudo"`` (the model's own argmax at each target position). The model runs in eval mode
    and is left as it was (hooks removed, weights untouched).
    """
    import torch

    enc, dec = t5_ffns(model)
    masks = [torch.ones(d.wo.in_features, requires_grad=True) for d in enc + dec]
    totals = [torch.zeros(m.shape) for m in masks]
    hooks = [
        d.wo.register_forward_pre_hook(lambda mod, args, m=m: (args[0] * m.to(args[0].dtype), *args[1:]))
        for d, m in zip(enc + dec, masks, strict=True)
    ]  # (B, T, f) * (f,)
    was_training = model.training
    model.eval()
    n = 0
    try:
        for batch in batches:
            labels = batch["labels"]
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           labels=labels).logits.float()  # (B, T, V)  # fmt: skip
            if loss == "pseudo":
                labels = torch.where(labels == -100, labels, logits.detach().argmax(-1))
            value = torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=-100
            )
            for t, g in zip(totals, torch.autograd.grad(value, masks), strict=True):
                t += g.abs()
            n += 1
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if n == 0:
        raise ConfigError("no batches to score importance on", "use a task with training examples")
    return totals[: len(enc)], totals[len(enc) :]


def make_t5_plan(encoder_scores: list, decoder_scores: list, counts: dict[str, Any],
                 scope: str = "global") -> T5PrunePlan:  # fmt: skip
    """The plan from the blocks' scores and ``recipes.prune_t5_counts`` (how many neurons go from each stack)."""
    if scope == "global":
        encoder_scores, decoder_scores = normalise(encoder_scores), normalise(decoder_scores)
    return T5PrunePlan(keep_indices(encoder_scores, counts["remove_encoder_ffn"]),
                       keep_indices(decoder_scores, counts["remove_decoder_ffn"]))  # fmt: skip


def _ffn_key(key: str) -> tuple[str, int, str] | None:
    """``("decoder", 2, "wo")`` for ``decoder.block.2.layer.2.DenseReluDense.wo.weight``; None elsewhere."""
    parts = key.split(".")
    if len(parts) == 8 and parts[1] == "block" and parts[5] == "DenseReluDense":
        return parts[0], int(parts[2]), parts[6]
    return None


def prune_t5(model, plan: T5PrunePlan):
    """A ``PrunedT5ForConditionalGeneration`` holding the kept FFN neurons of ``model`` (all else as it was)."""
    import copy

    import torch

    from ..architectures.pruned_t5 import PrunedT5ForConditionalGeneration
    from ..architectures.pruned_t5 import pruned_config as pruned_t5_config

    cfg = pruned_t5_config(model.config, plan.encoder_ff_per_layer, plan.decoder_ff_per_layer)
    pruned = PrunedT5ForConditionalGeneration(cfg)
    src = model.state_dict()
    new = {}
    for key, value in pruned.state_dict().items():
        w = src[key]
        ffn = _ffn_key(key)
        if ffn is not None:
            stack, i, name = ffn
            kept = torch.tensor((plan.encoder if stack == "encoder" else plan.decoder)[i], dtype=torch.long)
            w = w.index_select(1 if name == "wo" else 0, kept)  # wo: (d_model, f); wi*: (f, d_model)
        if w.shape != value.shape:
            raise ConfigError(f"cannot slice {key} from the teacher ({tuple(w.shape)} vs {tuple(value.shape)})",
                              "prune a T5 model")  # fmt: skip
        new[key] = w.clone()
    pruned.load_state_dict(new)
    pruned.generation_config = copy.deepcopy(model.generation_config)
    pruned.eval()
    plan.params_before, plan.params_after = n_params(model), n_params(pruned)
    return pruned


def full_t5_plan(model) -> T5PrunePlan:
    """The plan that keeps every FFN neuron."""
    enc, dec = t5_ffn_shapes(model)
    return T5PrunePlan([list(range(f)) for f in enc], [list(range(f)) for f in dec])


def prune_t5_by_importance(
    model, r: PruneT5Recipe, batches: Iterable[dict]
) -> tuple[Any, T5PrunePlan, dict[str, Any]]:
    """Score ``model``'s FFN neurons on ``batches``, plan by the recipe ``r``, prune; returns the pruned model,
    its plan (with parameter counts) and each block's summed importance, for the training log."""
    counts = prune_t5_counts(r, model.config)
    enc, dec = t5_importance_scores(model, batches, r.importance_loss)
    plan = make_t5_plan(enc, dec, counts, r.scope)
    pruned = prune_t5(model, plan)
    logger.info("pruned %d -> %d parameters; FFN neurons per encoder block %s, per decoder block %s",
                plan.params_before, plan.params_after, plan.encoder_ff_per_layer,
                plan.decoder_ff_per_layer)  # fmt: skip
    scores = {"encoder_ffn_importance": [round(float(s.sum()), 6) for s in enc],
              "decoder_ffn_importance": [round(float(s.sum()), 6) for s in dec]}  # fmt: skip
    return pruned, plan, scores
