"""One servable variant: a task, a model and a method, built into a predictor that answers JSON-ready items.

Every serving path (the HTTP service's replicas, Ray Serve, Ray Data batch inference, service curves) builds
its predictor here, so a variant served is the variant measured: the same ``method.apply(loaded).predictor``
that the notebooks time. ``Served.predict`` takes validated items (a text, or a ``(text, pair)`` tuple) and
returns one dict per item: ``{"label", "label_id", "score", "scores"}`` for classifiers and ``{"output"}`` for
generators.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import use_config
from ..exceptions import ConfigError
from ..methods import get_method
from ..models import MODELS, apply_task_prefix, resolve_model
from ..runtimes.base import DEFAULT_MAX_LENGTH, Classifier
from ..tasks import eval_split, get_task, label_names, task_inputs
from ..training import load_model

logger = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 64
DEFAULT_NUM_BEAMS = 1


@dataclass(frozen=True)
class VariantSpec:
    """What to serve. ``config``: a sweep YAML whose tasks and models should be registered first (user tasks)."""

    task: str
    model: str
    method: str | dict[str, Any] = "fp32"
    threads: int | None = None  # intra-op threads of this process (None: leave torch's default)
    config: str | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    num_beams: int = DEFAULT_NUM_BEAMS
    train: bool = False  # train a built-in model that is not cached yet (slow; the CLI refuses by default)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        method = self.method if isinstance(self.method, str) else get_method(self.method).label
        return f"{self.model}:{method}"


@dataclass
class Served:
    """A built variant. ``predict`` is not thread-safe: one caller at a time (a replica's batching loop)."""

    spec: VariantSpec
    kind: str  # "classification" | "seq2seq"
    predictor: Any
    label_names: list[str] = field(default_factory=list)
    method_label: str = ""

    def predict(self, items: list) -> list[dict[str, Any]]:
        if not items:
            return []
        s = self.spec
        if self.kind == "classification":
            probs = self.predictor.scores(items, max_length=s.max_length)
            out = []
            for row in probs:
                i = int(row.argmax())
                names = self.label_names or [str(j) for j in range(len(row))]
                out.append(
                    {
                        "label": names[i] if i < len(names) else str(i),
                        "label_id": i,
                        "score": float(row[i]),
                        "scores": {
                            names[j] if j < len(names) else str(j): float(p) for j, p in enumerate(row)
                        },
                    }
                )
            return out
        gen = self.predictor.generate(items, s.max_new_tokens, s.num_beams, max_length=s.max_length)
        return [{"output": t} for t in gen.texts]

    def close(self) -> None:
        self.predictor.close()


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}", "pass --threads 1 or more")
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def build_variant(spec: VariantSpec) -> Served:
    """Load the model, apply the method, return the ready predictor (warmed up on two texts of the task)."""
    if spec.config:
        use_config(spec.config)
    _set_threads(spec.threads)
    task = get_task(spec.task)
    model_spec = MODELS.get(spec.model) if spec.model in MODELS else resolve_model(spec.model)
    loaded = apply_task_prefix(load_model(model_spec, train=spec.train, progress=False), task)
    method = get_method(spec.method)
    method.check(loaded.spec.family or "", "error")
    predictor = method.apply(loaded).predictor
    if task.kind == "classification" and not isinstance(predictor, Classifier):
        raise ConfigError(
            f"{spec.model} with {method.label} does not classify, but task {spec.task!r} is a classification task",
            "serve a classifier model for this task (accelbench list shows each model's family)",
        )
    served = Served(spec, task.kind, predictor, [str(n) for n in label_names(spec.task)], method.label)
    served.predict(sample_items(spec.task, 2))  # warm-up: first calls allocate, compile, build caches
    logger.info("serving %s for %s (%s)", served.method_label, spec.task, task.kind)
    return served


def sample_items(task_name: str, n: int | None = None) -> list[str | tuple[str, str]]:
    """Real inputs of the task's evaluation split (payloads for load tests and warm-ups): texts, or
    ``(text, pair)`` tuples for a sentence-pair task."""
    return task_inputs(get_task(task_name), eval_split(task_name, n))
