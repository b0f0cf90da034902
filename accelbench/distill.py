"""Distillation: smaller BERT-family and T5 students trained from their teachers.

A student is a model like any other (registered name, cached by recipe, every compression method applies
to it); what sets it apart is its recipe, a ``distill-classifier`` or ``distill-t5`` training config that
names its ``teacher`` (itself a model name) and how the student is made:

- BERT family: copy a subset of the teacher's layers (``layers: [0, 2, 4]``), or build a smaller config
  (``num_layers``, ``hidden_size``, ``intermediate_size``, ``num_heads``) sharing the teacher's tokenizer;
  losses ``kd`` (soft targets, KL at a temperature, scaled by T^2), ``ce`` (hard labels), ``hidden``
  (MSE between mapped layers' outputs, through a learned projection when widths differ) and ``attention``
  (MSE between mapped layers' attention maps), each with its weight. Teacher logits are computed once
  and cached; the hidden/attention losses run the teacher alongside (its states are too large to keep).
- T5: shrink and fine-tune. Copy maximally spaced encoder/decoder blocks (the default halves the decoder,
  which generation runs once per token), then train with ``ce`` and word-level ``kd`` (KL between the
  teacher's and the student's next-token distributions), on the gold targets or on the teacher's own
  greedy translations (``targets: pseudo``, pseudo-labels, cached).

Everything is checked against the teacher's config before training starts (``check_recipe``): a layer
that the teacher does not have, a student wider than its teacher, an unknown loss.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .exceptions import ConfigError

logger = logging.getLogger(__name__)

CLASSIFIER_LOSSES = ("kd", "ce", "hidden", "attention")
T5_LOSSES = ("kd", "ce")
T5_TARGETS = ("gold", "pseudo")


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
    from .training import _positive

    for k in ("batch_size", "lr", "max_length", "time_budget_s", "temperature", "epochs"):
        _positive(k, getattr(r, k))
    _positive("train_size", r.train_size, allow_none=True)
    if not isinstance(r.teacher, str) or not r.teacher:
        raise ConfigError(
            "a distillation recipe needs a `teacher` model name", "write e.g. `teacher: minilm-sst2`"
        )


@dataclass
class DistillClassifierRecipe:
    """A BERT-family student of a sequence-classifier teacher."""

    FAMILY: ClassVar[str] = "bert"  # the family of its teacher and of itself
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
    train_size: int | None = None  # None = the whole train split: soft targets need no extra labels
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 64
    time_budget_s: float = 300.0
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
    """A T5 student: maximally spaced blocks of the teacher, fine-tuned with word-level KD."""

    FAMILY: ClassVar[str] = "t5"
    kind: str = "distill-t5"
    teacher: str = "t5-multi30k"
    task: str | None = None
    encoder_layers: list[int] | None = None  # None = keep every encoder block
    decoder_layers: list[int] | str | None = "half"  # "half" = n // 2 maximally spaced blocks; None = all
    losses: dict[str, float] = field(default_factory=lambda: {"kd": 1.0, "ce": 1.0})
    temperature: float = 1.0
    targets: str = "gold"  # or "pseudo": the teacher's greedy translations of the train sources
    train_size: int | None = None
    epochs: float = 100.0  # the budget stops it first
    batch_size: int = 64
    lr: float = 3e-3  # Adafactor, fine-tuning copied weights (the teacher trained at 1e-2)
    warmup_steps: int = 50
    max_length: int = 64
    time_budget_s: float = 600.0  # 360 s: 20.1 BLEU (-2.8 vs its teacher); 600 s: 21.4 (-1.4)
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


DISTILL_RECIPES = {"distill-classifier": DistillClassifierRecipe, "distill-t5": DistillT5Recipe}


def student_recipe_class(recipe: dict[str, Any] | None) -> type | None:
    """The distillation recipe class of a model's recipe, or None when the model is not a student."""
    return DISTILL_RECIPES.get((recipe or {}).get("kind"))


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


def _n_layers(config) -> int:
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


def student_config(r, tcfg):
    """The student's config, derived from the teacher's; raises before training when it does not fit."""
    cfg = copy.deepcopy(tcfg)
    if isinstance(r, DistillT5Recipe):
        enc, dec = resolve_layers(r, tcfg)
        cfg.num_layers, cfg.num_decoder_layers = len(enc), len(dec)
        return cfg
    n_teacher = _n_layers(tcfg)
    if r.layers is not None:
        _check_indices("layers", r.layers, n_teacher, r.teacher)
        cfg.num_hidden_layers = len(r.layers)
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
    n_student = _n_layers(cfg)
    lmap = r.layer_map
    if lmap is not None:
        if len(lmap) != n_student:
            raise ConfigError(f"layer_map {lmap} has {len(lmap)} entries but the student has {n_student} layers",
                              "give one teacher layer per student layer")  # fmt: skip
        _check_indices("layer_map", lmap, n_teacher, r.teacher)
    if r.losses.get("attention") and cfg.num_attention_heads != tcfg.num_attention_heads:
        logger.info("attention loss: head counts differ, maps are compared averaged over heads")
    return cfg


def layer_map(r: DistillClassifierRecipe, tcfg) -> list[int]:
    if r.layer_map is not None:
        return list(r.layer_map)
    if r.layers is not None:
        return list(r.layers)
    return default_layer_map(r.student_layers, _n_layers(tcfg))


# --- teacher config without training it --------------------------------------------------------------


def planned_config(spec):
    """A model's config, without training it: from its checkpoint, its base, or its recipe."""
    from transformers import AutoConfig

    from .models import _base_path, resolve_model
    from .training import t5_config

    spec = resolve_model(spec) if isinstance(spec, str | dict) else spec
    ckpt = spec.checkpoint_dir() if spec.recipe is not None else None
    if ckpt is not None and (ckpt / "config.json").exists():
        return AutoConfig.from_pretrained(ckpt)
    kind = (spec.recipe or {}).get("kind")
    if kind == "t5-scratch":
        from .training import T5Recipe

        r = T5Recipe(**spec.recipe)
        return t5_config(r, r.vocab_size)
    student = student_recipe_class(spec.recipe)
    if student is not None:
        r = student(**spec.recipe)
        return student_config(r, planned_config(r.teacher))
    return AutoConfig.from_pretrained(_base_path(spec))


def check_recipe(spec) -> None:
    """Refuse a student that does not fit its teacher (bad layers, wider, deeper), before any work."""
    cls = student_recipe_class(spec.recipe)
    if cls is None:
        return
    from .models import model_family, resolve_model

    r = cls(**spec.recipe)
    if r.teacher == spec.name:
        raise ConfigError(
            f"model {spec.name!r} names itself as its teacher", "name another model as `teacher`"
        )
    teacher = resolve_model(r.teacher)
    family = model_family(teacher)
    if family != cls.FAMILY:
        raise ConfigError(f"a {r.kind} student needs a {cls.FAMILY}-family teacher; {r.teacher!r} is {family}",
                          f"use {'distill-t5' if family == 't5' else 'distill-classifier'} for this teacher")  # fmt: skip
    student_config(r, planned_config(teacher))


def teacher_key(recipe: dict[str, Any] | None) -> str | None:
    cls = student_recipe_class(recipe)
    if cls is None:
        return None
    from .models import resolve_model

    return resolve_model(recipe.get("teacher") or cls().teacher).key


# --- building students ----------------------------------------------------------------------------


def layer_lists(model) -> dict[str, int]:
    """Names of the module lists that hold a model's transformer layers, with their lengths."""
    import torch

    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layer", "layers", "block"):
            out[name] = len(mod)
    return out


def copy_layers(teacher, student, maps: dict[str, list[int]]) -> None:
    """Load ``student`` with the teacher's weights: layer j of list ``name`` takes teacher layer maps[name][j].

    Everything outside the mapped lists (embeddings, heads, final norms) is copied by name. A T5 block
    that moves to position 0 gets the relative position bias that only the teacher's block 0 holds.
    """
    tsd = teacher.state_dict()
    new = {}
    for key, value in student.state_dict().items():
        src = key
        for name, m in maps.items():
            if key.startswith(name + "."):
                idx, tail = key[len(name) + 1 :].split(".", 1)
                src = f"{name}.{m[int(idx)]}.{tail}"
                if src not in tsd and "relative_attention_bias" in tail:
                    src = f"{name}.0.{tail}"
                break
        if src not in tsd or tsd[src].shape != value.shape:
            raise ConfigError(f"cannot copy {src} from the teacher into {key} of the student",
                              "copy layers only between models of the same width")  # fmt: skip
        new[key] = tsd[src].clone()
    student.load_state_dict(new)


def build_classifier_student(teacher, r: DistillClassifierRecipe):
    """A student classifier: copied layers of ``teacher`` or a fresh smaller config (embeddings shared if same width)."""
    from transformers import AutoModelForSequenceClassification

    cfg = student_config(r, teacher.config)
    student = AutoModelForSequenceClassification.from_config(cfg)
    lists = {k: v for k, v in layer_lists(teacher).items() if v == _n_layers(teacher.config)}
    if len(lists) != 1:
        raise ConfigError(f"cannot find the layer list of a {type(teacher).__name__}",
                          "use a BERT-family classifier as teacher")  # fmt: skip
    name = next(iter(lists))
    if r.layers is not None:
        copy_layers(teacher, student, {name: r.layers})
    elif cfg.hidden_size == teacher.config.hidden_size:  # same width: start from the teacher's embeddings
        tsd, ssd = teacher.state_dict(), student.state_dict()
        shared = {
            k: tsd[k].clone() for k in ssd if "embeddings" in k and k in tsd and tsd[k].shape == ssd[k].shape
        }
        student.load_state_dict(shared, strict=False)
    return student


def build_t5_student(teacher, r: DistillT5Recipe):
    from transformers import T5ForConditionalGeneration

    enc, dec = resolve_layers(r, teacher.config)
    student = T5ForConditionalGeneration(student_config(r, teacher.config))
    copy_layers(teacher, student, {"encoder.block": enc, "decoder.block": dec})
    student.generation_config = copy.deepcopy(teacher.generation_config)
    return student


# --- losses ---------------------------------------------------------------------------------------


def kd_loss(student_logits, teacher_logits, temperature: float = 1.0, mask=None):
    """KL(teacher || student) of the temperature-softened distributions, times T^2 (Hinton et al.).

    Rows are examples (classifiers) or target tokens (T5, with ``mask`` selecting real tokens); the
    result is the mean over rows.
    """
    import torch.nn.functional as F

    t = temperature
    s = F.log_softmax(student_logits.float() / t, dim=-1)
    p = F.log_softmax(teacher_logits.float() / t, dim=-1)
    kl = (p.exp() * (p - s)).sum(-1)
    if mask is not None:
        kl = kl[mask]
    return kl.mean() * t * t


def hidden_loss(student_states, teacher_states, lmap: list[int], projection=None, mask=None):
    """Mean over mapped layers of the MSE between layer outputs (``states[0]`` is the embeddings' output)."""
    import torch.nn.functional as F

    total = 0.0
    for i, j in enumerate(lmap):
        s, t = student_states[i + 1], teacher_states[j + 1]
        if projection is not None:
            s = projection(s)
        if mask is not None:
            s, t = s[mask], t[mask]
        total = total + F.mse_loss(s.float(), t.float())
    return total / len(lmap)


def attention_loss(student_maps, teacher_maps, lmap: list[int], mask=None):
    """Mean over mapped layers of the MSE between attention maps (averaged over heads if counts differ)."""
    total = 0.0
    for i, j in enumerate(lmap):
        s, t = student_maps[i].float(), teacher_maps[j].float()
        if s.shape[1] != t.shape[1]:
            s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
        err = (s - t) ** 2  # batch, heads, query, key
        if mask is not None:
            m = (mask[:, None, :, None] & mask[:, None, None, :]).expand_as(err)
            total = total + err[m].mean()
        else:
            total = total + err.mean()
    return total / len(lmap)


# --- teacher outputs cached -------------------------------------------------------------------------


def _cache_file(kind: str, teacher_spec, payload: dict[str, Any], suffix: str) -> Path:
    from .models import cache_dir
    from .records import config_hash

    return cache_dir() / kind / f"{teacher_spec.name}-{teacher_spec.key}-{config_hash(payload)}{suffix}"


def teacher_logits(teacher, ids: list[list[int]], pad_id: int, cache: Path, batch_size: int = 64,
                   progress: bool = True):  # fmt: skip
    """The teacher's logits for every training example, computed once and kept in ``cache``."""
    import torch
    from tqdm.auto import tqdm

    from .training import _pad

    if cache.exists():
        out = torch.load(cache)
        if out.shape[0] == len(ids):
            logger.info("teacher logits from cache %s", cache)
            return out
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = torch.empty(len(ids), teacher.config.num_labels)
    with torch.inference_mode():
        for k in tqdm(
            range(0, len(order), batch_size), desc="teacher logits", disable=not progress, unit="batch"
        ):
            b = order[k : k + batch_size]
            x = _pad([ids[i] for i in b], pad_id)
            out[b] = teacher(input_ids=x, attention_mask=(x != pad_id).long()).logits.float()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    torch.save(out, tmp)
    tmp.replace(cache)
    return out


def pseudo_labels(teacher, tok, sources: list[str], max_length: int, cache: Path, batch_size: int = 64,
                  progress: bool = True) -> list[str]:  # fmt: skip
    """The teacher's greedy translations of ``sources`` (sequence-level KD targets), cached."""
    import torch
    from tqdm.auto import tqdm

    if cache.exists():
        out = json.loads(cache.read_text())
        if len(out) == len(sources):
            logger.info("pseudo-labels from cache %s", cache)
            return out
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[str] = [""] * len(sources)
    with torch.inference_mode():
        for k in tqdm(range(0, len(order), batch_size), desc="teacher pseudo-labels", disable=not progress,
                      unit="batch"):  # fmt: skip
            b = order[k : k + batch_size]
            enc = tok([sources[i] for i in b], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_length)  # fmt: skip
            gen = teacher.generate(**enc, max_new_tokens=max_length, num_beams=1, do_sample=False)
            for i, text in zip(b, tok.batch_decode(gen, skip_special_tokens=True), strict=True):
                out[i] = text
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out))
    return out


# --- training -------------------------------------------------------------------------------------


def _weighted(parts: dict[str, Any], weights: dict[str, float]):
    total = sum(weights[k] * v for k, v in parts.items() if weights.get(k))
    return total, {k: float(v.detach()) for k, v in parts.items()}


def _load_teacher(name: str, attn_eager: bool = False):
    from .models import load_model

    teacher = load_model(name)
    if attn_eager and hasattr(teacher.model, "set_attn_implementation"):
        teacher.model.set_attn_implementation("eager")  # attention maps need the eager kernel
    for p in teacher.model.parameters():
        p.requires_grad_(False)
    teacher.model.eval()
    return teacher


def _train_split(r, teacher, kind: str, default_task: str):
    """The student's task (the teacher's unless set), a seeded RNG, and its shuffled training examples."""
    import torch

    from .tasks import get_task, load_task

    task = get_task(r.task or teacher.spec.task or default_task)
    if task.kind != kind:
        raise ConfigError(f"a {r.kind} student needs a {kind} task, {task.name!r} is {task.kind}",
                          f"set `task:` in the recipe to a {kind} task")  # fmt: skip
    torch.manual_seed(r.seed)
    train = load_task(task.name)[task.train_split].shuffle(seed=r.seed)
    if r.train_size:
        train = train.select(range(min(r.train_size, len(train))))
    return task, random.Random(r.seed), train


def train_classifier_student(
    r: DistillClassifierRecipe, out_dir: Path, progress: bool = True
) -> dict[str, Any]:
    import torch

    from .training import _batches, _pad, _save, train_loop

    need_states = bool(r.losses.get("hidden") or r.losses.get("attention"))
    teacher = _load_teacher(r.teacher, attn_eager=bool(r.losses.get("attention")))
    task, rng, train = _train_split(r, teacher, "classification", "sst2")
    tok = teacher.tokenizer
    student = build_classifier_student(teacher.model, r)
    if r.losses.get("attention") and hasattr(student, "set_attn_implementation"):
        student.set_attn_implementation("eager")
    ids = tok(list(train["text"]), truncation=True, max_length=r.max_length)["input_ids"]
    labels = torch.tensor(list(train["label"]))
    pad_id = tok.pad_token_id or 0
    cached = teacher_logits(teacher.model, ids, pad_id, _cache_file(
        "teacher-logits", teacher.spec, {"task": task.name, "seed": r.seed, "n": len(ids), "max_length": r.max_length},
        ".pt"), progress=progress) if r.losses.get("kd") else None  # fmt: skip
    lmap = layer_map(r, teacher.model.config)
    projection = None
    if r.losses.get("hidden") and student.config.hidden_size != teacher.model.config.hidden_size:
        projection = torch.nn.Linear(student.config.hidden_size, teacher.model.config.hidden_size)

    def batches():
        for b in _batches(len(ids), r.batch_size, [len(x) for x in ids], rng):
            x = _pad([ids[i] for i in b], pad_id)
            yield {"input_ids": x, "attention_mask": (x != pad_id).long(), "labels": labels[b],
                   "idx": torch.tensor(b)}  # fmt: skip

    def loss_fn(model, batch):
        idx = batch.pop("idx")
        y = batch.pop("labels")
        out = model(
            **batch, output_hidden_states=need_states, output_attentions=bool(r.losses.get("attention"))
        )
        parts = {}
        if r.losses.get("ce"):
            parts["ce"] = torch.nn.functional.cross_entropy(out.logits.float(), y)
        if need_states:
            with torch.no_grad():
                t_out = teacher.model(**batch, output_hidden_states=True,
                                      output_attentions=bool(r.losses.get("attention")))  # fmt: skip
        if r.losses.get("kd"):
            parts["kd"] = kd_loss(out.logits, cached[idx], r.temperature)
        mask = batch["attention_mask"].bool()
        if r.losses.get("hidden"):
            parts["hidden"] = hidden_loss(out.hidden_states, t_out.hidden_states, lmap, projection, mask)
        if r.losses.get("attention"):
            parts["attention"] = attention_loss(out.attentions, t_out.attentions, lmap, mask)
        return _weighted(parts, r.losses)

    total = max(1, int(math.ceil(len(ids) / r.batch_size) * r.epochs))
    log = train_loop(student, batches, total, r.lr, int(total * r.warmup_ratio), r.time_budget_s, r.weight_decay,
                     progress=progress, desc=f"distill {teacher.spec.name} -> {student.config.num_hidden_layers} layers",
                     loss_fn=loss_fn, extra_params=list(projection.parameters()) if projection else None)  # fmt: skip
    if r.losses.get("attention") and hasattr(student, "set_attn_implementation"):
        student.set_attn_implementation("sdpa")
    log.update(_student_log(teacher, student, r, len(ids), task.name))
    _save(student, tok, out_dir, r, log)
    return log


def _student_log(teacher, student, r, n_examples: int, task: str) -> dict[str, Any]:
    """What a record needs to rebuild the student: teacher, layers kept, sizes, data used."""
    n_t = sum(p.numel() for p in teacher.model.parameters())
    n_s = sum(p.numel() for p in student.parameters())
    out = {"teacher": teacher.spec.name, "teacher_key": teacher.spec.key, "teacher_params": n_t,
           "student_params": n_s, "train_examples": n_examples, "task": task}  # fmt: skip
    if isinstance(r, DistillT5Recipe):
        enc, dec = resolve_layers(r, teacher.model.config)
        out.update(encoder_layers=enc, decoder_layers=dec)
    else:
        out.update(layers=r.layers, layer_map=layer_map(r, teacher.model.config),
                   student_layers=_n_layers(student.config), hidden_size=student.config.hidden_size)  # fmt: skip
    return out


def train_t5_student(r: DistillT5Recipe, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    import torch

    from .environment import supports_bf16
    from .training import _batches, _pad, _save, train_loop

    teacher = _load_teacher(r.teacher)
    task, rng, train = _train_split(r, teacher, "seq2seq", "multi30k")
    tok, prefix = teacher.tokenizer, teacher.spec.prefix
    sources = [prefix + s for s in train["source"]]
    targets = list(train["target"])
    if r.targets == "pseudo":
        targets = pseudo_labels(teacher.model, tok, sources, r.max_length, _cache_file(
            "pseudo-labels", teacher.spec, {"task": task.name, "seed": r.seed, "n": len(sources),
                                            "max_length": r.max_length}, ".json"), progress=progress)  # fmt: skip
    student = build_t5_student(teacher.model, r)
    src = tok(sources, truncation=True, max_length=r.max_length)["input_ids"]
    tgt = tok(targets, truncation=True, max_length=r.max_length)["input_ids"]
    pad = tok.pad_token_id or 0
    bf16 = supports_bf16() if r.bf16 is None else r.bf16

    def batches():
        for b in _batches(len(src), r.batch_size, [len(x) for x in src], rng):
            x = _pad([src[i] for i in b], pad)
            yield {
                "input_ids": x,
                "attention_mask": (x != pad).long(),
                "labels": _pad([tgt[i] for i in b], -100),
            }

    def loss_fn(model, batch):
        out = model(**batch)
        parts = {}
        if r.losses.get("ce"):
            parts["ce"] = out.loss
        if r.losses.get("kd"):
            with torch.no_grad():  # decoder inputs, not labels: the teacher's own loss would go unread
                t_logits = teacher.model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    decoder_input_ids=teacher.model.prepare_decoder_input_ids_from_labels(labels=batch["labels"]),
                ).logits  # fmt: skip
            parts["kd"] = kd_loss(out.logits, t_logits, r.temperature, mask=batch["labels"] != -100)
        return _weighted(parts, r.losses)

    total = max(1, int(math.ceil(len(src) / r.batch_size) * r.epochs))
    log = train_loop(student, batches, total, r.lr, r.warmup_steps, r.time_budget_s, 0.0, bf16=bf16,
                     progress=progress, desc=f"distill {teacher.spec.name} -> T5 student", optimizer="adafactor",
                     loss_fn=loss_fn)  # fmt: skip
    log.update(_student_log(teacher, student, r, len(src), task.name))
    log.update(targets=r.targets, bf16=bf16, epochs_done=round(log["steps"] * r.batch_size / len(src), 2))
    _save(student, tok, out_dir, r, log)
    return log


def train_student(recipe: dict[str, Any], out_dir: Path, progress: bool = True) -> dict[str, Any]:
    r = DISTILL_RECIPES[recipe["kind"]](**recipe)
    if isinstance(r, DistillT5Recipe):
        return train_t5_student(r, Path(out_dir), progress)
    return train_classifier_student(r, Path(out_dir), progress)


def recipe_summary(recipe: dict[str, Any] | None) -> dict[str, Any]:
    """The recipe with its defaults filled in (for records and notebooks)."""
    if not recipe:
        return {}
    cls = student_recipe_class(recipe)
    return asdict(cls(**recipe)) if cls else dict(recipe)


# --- comparing students with their teacher --------------------------------------------------------


def student_entry(student: str | dict[str, Any], **train: Any) -> str | dict[str, Any]:
    """A model entry for ``student`` with training overrides (None values dropped), as notebooks build it."""
    config_built = train.get("num_layers") is not None and train.get("layers") is None
    train = {k: v for k, v in train.items() if v is not None}
    if config_built:  # a student from a smaller config copies no layers
        train["layers"] = None
    if not train:
        return student
    entry = dict(student) if isinstance(student, dict) else {"name": student}
    entry["train"] = {**entry.get("train", {}), **train}
    return entry


def ensure_teacher_baseline(task: str, teacher: str | dict[str, Any], run_dir, settings=None) -> None:
    """Measure the teacher's fp32 in ``run_dir`` unless the run already holds it (e.g. from 01_baseline).

    Measuring it again under other settings would put two teacher baselines on one frontier.
    """
    from .experiment import records_for, run_experiment
    from .models import resolve_model

    name = resolve_model(teacher).name
    df = records_for(run_dir, task)
    if len(df) and ((df["model"] == name) & (df["method"] == "fp32") & (df["status"] == "ok")).any():
        logger.info("teacher %s fp32 already measured in %s", name, run_dir)
        return
    run_experiment(task, teacher, ["fp32"], run_dir, settings)


def compare_with_teacher(records, teacher: str, batch_size: int = 32):
    """Every variant of the task against the teacher's fp32: metric share, throughput and p90 latency ratios.

    Throughput at ``batch_size`` (dynamic padding; the largest measured batch when that one was not, named
    in the ``batch`` column), latency at batch 1, both from the same run's records.
    """
    import pandas as pd

    df = records[records["status"] == "ok"] if "status" in records else records
    batch = df[(df["scenario"] == "batch") & (df["padding"] == "dynamic")]
    if len(batch) and not (batch["batch_size"] == batch_size).any():
        batch_size = int(batch["batch_size"].max())  # the largest measured batch stands in
    batch = batch[batch["batch_size"] == batch_size]
    rt = df[df["scenario"] == "realtime"]
    base_b = batch[(batch["model"] == teacher) & (batch["method"] == "fp32")]
    base_r = rt[(rt["model"] == teacher) & (rt["method"] == "fp32")]
    if base_b.empty:
        from .exceptions import DataError

        raise DataError(f"no fp32 record of teacher {teacher!r} at batch {batch_size}",
                        f"run the teacher's fp32 baseline first: run_experiment(task, {teacher!r}, ['fp32'])")  # fmt: skip
    tb, tm = base_b.iloc[-1], base_b.iloc[-1]["metric"]
    tp90 = base_r.iloc[-1]["latency_ms_p90"] if len(base_r) else float("nan")
    rows = []
    for variant, g in batch.groupby("variant", sort=False):
        r = g.iloc[-1]
        lat = rt[rt["variant"] == variant]
        p90 = lat.iloc[-1]["latency_ms_p90"] if len(lat) else float("nan")
        rows.append({"variant": variant, "model": r["model"], "method": r["method"],
                     "role": "teacher" if r["model"] == teacher else "student",
                     "params_m": r.get("params_m"), "metric": r["metric"], "ci low": r["metric_ci_low"],
                     "ci high": r["metric_ci_high"], "share of teacher": r["metric"] / tm,
                     "batch": batch_size, "throughput x": r["throughput"] / tb["throughput"],
                     "p90 latency x (batch 1)": tp90 / p90 if p90 == p90 and p90 else float("nan"),
                     "size MB": r.get("size_mb")})  # fmt: skip
    out = pd.DataFrame(rows)
    return out.sort_values(["role", "throughput x"], ascending=[False, True]).reset_index(drop=True)
