"""Students: build a smaller BERT-family or T5 model from its teacher's layers, and train it on the teacher.

BERT family: copied teacher layers (``layers: [0, 2, 4]``) or a fresh smaller config sharing the teacher's
tokenizer, trained with ``kd`` / ``ce`` / ``hidden`` / ``attention`` losses; or the teacher itself with its
least important heads and FFN neurons removed (``prune-classifier``, ``training.pruning``), recovered with the
same loop. T5: shrink and fine-tune
(maximally spaced blocks, ``distill-t5``) or the teacher with its least important FFN neurons removed
(``prune-t5``), trained with word-level ``kd`` and ``ce``, on gold targets or the teacher's translations.
The teacher must be trained already (``training.ensure_trained`` trains it first).
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..models import load_checkpoint
from ..recipes import (
    DistillClassifierRecipe,
    DistillT5Recipe,
    PruneClassifierRecipe,
    PruneT5Recipe,
    build_recipe,
    layer_map,
    n_layers,
    planned_steps,
    resolve_layers,
    student_config,
)
from ..tasks import get_task, load_task, task_inputs
from .loop import (
    T5_TRAINING_ATTENTION,
    length_batches,
    pad,
    pair_lengths,
    save_checkpoint,
    train_loop,
    use_bf16,
)
from .losses import attention_loss, hidden_loss, kd_loss
from .teacher import cache_file, pseudo_labels, teacher_logits


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
    lists = {k: v for k, v in layer_lists(teacher).items() if v == n_layers(teacher.config)}
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
    """Spaced blocks of a T5 teacher; a pruned teacher's blocks keep their FFN sizes."""
    from transformers import T5ForConditionalGeneration

    from ..architectures.pruned_t5 import MODEL_TYPE, PrunedT5ForConditionalGeneration

    enc, dec = resolve_layers(r, teacher.config)
    cfg = student_config(r, teacher.config)
    student = (
        PrunedT5ForConditionalGeneration if cfg.model_type == MODEL_TYPE else T5ForConditionalGeneration
    )(cfg)
    copy_layers(teacher, student, {"encoder.block": enc, "decoder.block": dec})
    student.generation_config = copy.deepcopy(teacher.generation_config)
    return student


def _weighted(parts: dict[str, Any], weights: dict[str, float]):
    total = sum(weights[k] * v for k, v in parts.items() if weights.get(k))
    return total, {k: float(v.detach()) for k, v in parts.items()}


def _load_teacher(name: str, attn_eager: bool = False):
    teacher = load_checkpoint(name)
    if attn_eager and hasattr(teacher.model, "set_attn_implementation"):
        teacher.model.set_attn_implementation("eager")  # attention maps need the eager kernel
    for p in teacher.model.parameters():
        p.requires_grad_(False)
    teacher.model.eval()
    return teacher


def _train_split(r, teacher, kind: str, default_task: str):
    """The student's task (the teacher's unless set), a seeded RNG, and its shuffled training examples."""
    task = get_task(r.task or teacher.spec.task or default_task)
    if task.kind != kind:
        raise ConfigError(f"a {r.kind} student needs a {kind} task, {task.name!r} is {task.kind}",
                          f"set `task:` in the recipe to a {kind} task")  # fmt: skip
    train = load_task(task.name)[task.train_split].shuffle(seed=r.seed)
    if r.train_size:
        train = train.select(range(min(r.train_size, len(train))))
    return task, random.Random(r.seed), train


class _PairTeacher:
    """The teacher as ``teacher_logits`` calls it (ids and mask), with each row's own token type ids added.

    ``teacher_logits`` batches rows by length and passes no token types; a row is found again by its ids.
    """

    def __init__(self, model, ids: list[list[int]], types: list[list[int]]):
        self.model, self.config = model, model.config
        self.types = {tuple(i): t for i, t in zip(ids, types, strict=True)}

    def __call__(self, input_ids, attention_mask):
        rows = [
            self.types[tuple(x[m.bool()].tolist())] for x, m in zip(input_ids, attention_mask, strict=True)
        ]
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=pad(rows, 0))


def _distilled_student(teacher, r: DistillClassifierRecipe, batch_of) -> tuple[Any, dict[str, Any]]:
    return build_classifier_student(teacher.model, r), {}


def _pruned_student(teacher, r: PruneClassifierRecipe, batch_of) -> tuple[Any, dict[str, Any]]:
    """The teacher pruned by importance scored on ``importance_batches`` training batches (own RNG stream, so
    the recovery's batch order does not depend on it)."""
    from .pruning import prune_by_importance

    order = batch_of.order(random.Random(r.seed + 1))[: r.importance_batches]
    batches = ({k: v for k, v in batch_of(b).items() if k != "idx"} for b in order)
    student, plan, scores = prune_by_importance(teacher.model, r, batches)
    return student, {"prune_plan": plan.to_dict(), "importance_batches_used": len(order), **scores}


BUILDERS = {"distill-classifier": _distilled_student, "prune-classifier": _pruned_student}


class _Batches:
    """Training batches of the encoded examples: ``order(rng)`` lists index batches, ``self(b)`` pads one."""

    def __init__(self, ids, types, labels, pad_id: int, batch_size: int):
        self.ids, self.types, self.labels = ids, types, labels
        self.pad_id, self.batch_size = pad_id, batch_size

    def order(self, rng: random.Random) -> list[list[int]]:
        return length_batches(len(self.ids), self.batch_size, [len(x) for x in self.ids], rng)

    def __call__(self, b: list[int]) -> dict[str, Any]:
        import torch

        x = pad([self.ids[i] for i in b], self.pad_id)
        batch = {"input_ids": x, "attention_mask": (x != self.pad_id).long(), "labels": self.labels[b],
                 "idx": torch.tensor(b)}  # fmt: skip
        if self.types is not None:
            batch["token_type_ids"] = pad([self.types[i] for i in b], 0)
        return batch


def train_classifier_student(
    r: DistillClassifierRecipe | PruneClassifierRecipe, out_dir: Path, progress: bool = True
) -> dict[str, Any]:
    """Build the student (``BUILDERS[r.kind]``: copied layers, a smaller config, or the pruned teacher) and
    train it on the teacher's soft targets and the labels."""
    import torch

    need_states = bool(r.losses.get("hidden") or r.losses.get("attention"))
    teacher = _load_teacher(r.teacher, attn_eager=bool(r.losses.get("attention")))
    task, rng, train = _train_split(r, teacher, "classification", "sst2")
    tok = teacher.tokenizer
    items = task_inputs(task, train)  # texts, or (text, text_pair) for a pair task: as training/classifier.py
    pairs = [p for _, p in items] if items and isinstance(items[0], tuple) else None
    texts = [t[0] for t in items] if pairs is not None else items
    enc = tok(texts, pairs, truncation=True if pairs is None else "longest_first", max_length=r.max_length)
    ids = enc["input_ids"]
    types = enc.get("token_type_ids") if pairs is not None else None  # segment B is type 1
    labels = torch.tensor(list(train["label"]))
    pad_id = tok.pad_token_id or 0
    batch_of = _Batches(ids, types, labels, pad_id, r.batch_size)
    student, extra = BUILDERS[r.kind](teacher, r, batch_of)
    key = {"task": task.name, "seed": r.seed, "n": len(ids), "max_length": r.max_length}
    if types is not None:
        key["pairs"] = True  # never the first-sentence-only logits cached before pairs were read
    bf16 = use_bf16(r)
    if bf16:
        key["bf16"] = True  # logits computed under bf16 autocast differ in their last bits
    cached = teacher_logits(_PairTeacher(teacher.model, ids, types) if types is not None else teacher.model, ids,
                            pad_id, cache_file("teacher-logits", teacher.spec, key, ".pt"),
                            progress=progress, bf16=bf16) if r.losses.get("kd") else None  # fmt: skip
    lmap = layer_map(r, teacher.model.config)
    projection = None
    if r.losses.get("hidden") and student.config.hidden_size != teacher.model.config.hidden_size:
        projection = torch.nn.Linear(student.config.hidden_size, teacher.model.config.hidden_size)

    def batches():
        for b in batch_of.order(rng):
            yield batch_of(b)

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

    total = planned_steps(r, len(ids))
    desc = (f"recover pruned {teacher.spec.name}" if isinstance(r, PruneClassifierRecipe)
            else f"distill {teacher.spec.name} -> {student.config.num_hidden_layers} layers")  # fmt: skip
    log = train_loop(student, batches, total, r.lr, int(total * r.warmup_ratio), r.time_budget_s, r.weight_decay,
                     bf16=bf16, progress=progress, desc=desc,
                     loss_fn=loss_fn, extra_params=list(projection.parameters()) if projection else None,
                     seed=r.seed, attention="eager" if r.losses.get("attention") else None)  # fmt: skip
    log.update(_student_log(teacher, student, r, len(ids), task.name), bf16=bf16, **extra)
    save_checkpoint(student, tok, out_dir, r, log)
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
    elif isinstance(r, PruneT5Recipe):
        out.update(encoder_ff_per_layer=list(student.config.encoder_ff_per_layer),
                   decoder_ff_per_layer=list(student.config.decoder_ff_per_layer))  # fmt: skip
    else:
        out.update(layers=layer_map(r, teacher.model.config) if isinstance(r, PruneClassifierRecipe) else r.layers,
                   layer_map=layer_map(r, teacher.model.config),
                   student_layers=n_layers(student.config), hidden_size=student.config.hidden_size)  # fmt: skip
    return out


class _T5Batches:
    """Training batches of the encoded sources and targets: ``order(rng)`` lists index batches, ``self(b)`` pads
    one (labels padded with -100)."""

    def __init__(self, src: list[list[int]], tgt: list[list[int]], pad_id: int, batch_size: int):
        self.src, self.tgt, self.pad_id, self.batch_size = src, tgt, pad_id, batch_size

    def order(self, rng: random.Random) -> list[list[int]]:
        return length_batches(len(self.src), self.batch_size, pair_lengths(self.src, self.tgt), rng)

    def __call__(self, b: list[int]) -> dict[str, Any]:
        x = pad([self.src[i] for i in b], self.pad_id)
        return {"input_ids": x, "attention_mask": (x != self.pad_id).long(),
                "labels": pad([self.tgt[i] for i in b], -100)}  # fmt: skip


def _distilled_t5(teacher, r: DistillT5Recipe, batch_of: _T5Batches) -> tuple[Any, dict[str, Any]]:
    return build_t5_student(teacher.model, r), {}


def _pruned_t5(teacher, r: PruneT5Recipe, batch_of: _T5Batches) -> tuple[Any, dict[str, Any]]:
    """The teacher with its FFN neurons pruned by importance on ``importance_batches`` training batches (own
    RNG stream, so the recovery's batch order does not depend on it)."""
    from .pruning import prune_t5_by_importance

    order = batch_of.order(random.Random(r.seed + 1))[: r.importance_batches]
    student, plan, scores = prune_t5_by_importance(teacher.model, r, (batch_of(b) for b in order))
    return student, {"prune_plan": plan.to_dict(), "importance_batches_used": len(order), **scores}


T5_BUILDERS = {"distill-t5": _distilled_t5, "prune-t5": _pruned_t5}


def train_t5_student(
    r: DistillT5Recipe | PruneT5Recipe, out_dir: Path, progress: bool = True
) -> dict[str, Any]:
    """Build the T5 student (``T5_BUILDERS[r.kind]``: spaced teacher blocks, or the pruned teacher) and train it
    with word-level KD from the teacher and CE on the targets."""
    import torch

    teacher = _load_teacher(r.teacher)
    task, rng, train = _train_split(r, teacher, "seq2seq", "multi30k")
    tok, prefix = teacher.tokenizer, teacher.spec.prefix
    sources = [prefix + s for s in train["source"]]
    targets = list(train["target"])
    if r.targets == "pseudo":
        targets = pseudo_labels(teacher.model, tok, sources, r.max_length, cache_file(
            "pseudo-labels", teacher.spec, {"task": task.name, "seed": r.seed, "n": len(sources),
                                            "max_length": r.max_length}, ".json"), progress=progress)  # fmt: skip
    src = tok(sources, truncation=True, max_length=r.max_length)["input_ids"]
    tgt = tok(targets, truncation=True, max_length=r.max_length)["input_ids"]
    batch_of = _T5Batches(src, tgt, tok.pad_token_id or 0, r.batch_size)
    student, extra = T5_BUILDERS[r.kind](teacher, r, batch_of)
    bf16 = use_bf16(r)

    def batches():
        for b in batch_of.order(rng):
            yield batch_of(b)

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

    total = planned_steps(r, len(src))
    desc = (f"recover pruned {teacher.spec.name}" if isinstance(r, PruneT5Recipe)
            else f"distill {teacher.spec.name} -> T5 student")  # fmt: skip
    log = train_loop(student, batches, total, r.lr, r.warmup_steps, r.time_budget_s, 0.0, bf16=bf16,
                     progress=progress, desc=desc, optimizer="adafactor", loss_fn=loss_fn, seed=r.seed,
                     attention=T5_TRAINING_ATTENTION)  # fmt: skip
    log.update(_student_log(teacher, student, r, len(src), task.name), **extra)
    log.update(targets=r.targets, bf16=bf16, epochs_done=round(log["steps"] * r.batch_size / len(src), 2))
    save_checkpoint(student, tok, out_dir, r, log)
    return log


def train_student(recipe: dict[str, Any], out_dir: Path, progress: bool = True) -> dict[str, Any]:
    r = build_recipe(recipe)
    if isinstance(r, DistillT5Recipe | PruneT5Recipe):
        return train_t5_student(r, Path(out_dir), progress)
    return train_classifier_student(r, Path(out_dir), progress)
