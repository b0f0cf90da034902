"""A student's config, derived from its teacher's so that a student that does not fit is refused before
training, and the teacher layer each student layer is matched with."""

from __future__ import annotations

import copy
import logging

from ..exceptions import ConfigError
from .base import check_indices, n_layers
from .distill import DistillClassifierRecipe, DistillT5Recipe, default_layer_map, resolve_layers
from .prune import PruneClassifierRecipe, PruneT5Recipe, prune_counts, prune_t5_counts

logger = logging.getLogger(__name__)


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
        from ..architectures.pruned_t5 import pruned_config as pruned_t5_config

        return pruned_t5_config(tcfg, sizes["encoder"], sizes["decoder"])
    if isinstance(r, PruneClassifierRecipe):
        c = prune_counts(r, tcfg)
        rm_h, rm_f = c["remove_heads"], c["remove_ffn"]
        heads = [h - (rm_h[i] if isinstance(rm_h, list) else int(r.heads * h + 1e-9))
                 for i, h in enumerate(c["heads_per_layer"])]  # fmt: skip
        ffn = [f - (rm_f[i] if isinstance(rm_f, list) else int(r.ffn * f + 1e-9))
               for i, f in enumerate(c["ffn_per_layer"])]  # fmt: skip
        from ..architectures.pruned_bert import pruned_config

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
        check_indices("layers", r.layers, n_teacher, r.teacher)
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
        check_indices("layer_map", lmap, n_teacher, r.teacher)
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
