"""The notebook suite: papermill executes the parameterized notebooks over a config's grid.

For each experiment (task) and model: ``01_baseline`` (fp32 quality and speed), ``02_quantization``
(the other methods); for a distilled student, ``03_distillation`` instead (its training curves, and every
method applied to it, against its teacher); then ``04_pareto`` once over the run's records. Executed notebooks and their
HTML renderings go to ``results/<run>/notebooks/``; ``summary.md`` to ``results/<run>/``.
A notebook that fails is reported and the suite goes on; the run exits non-zero at the end.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .analysis import write_summary
from .config import SweepConfig
from .models import is_trained, resolve_model
from .paths import notebooks_dir
from .recipes import build_recipe, planned_steps, student_recipe_class
from .records import BASELINE_METHOD
from .tasks import get_task, load_task
from .training import ensure_trained

logger = logging.getLogger(__name__)

BASELINE_NB = "01_baseline.ipynb"
QUANTIZATION_NB = "02_quantization.ipynb"
DISTILLATION_NB = "03_distillation.ipynb"
PARETO_NB = "04_pareto.ipynb"
KERNEL = "python3"


@dataclass
class NotebookRun:
    notebook: str
    output: Path
    parameters: dict[str, Any]
    ok: bool = False
    seconds: float = 0.0
    error: str | None = None
    html: Path | None = None


@dataclass
class SuiteResult:
    run_dir: Path
    runs: list[NotebookRun] = field(default_factory=list)
    summary: Path | None = None
    trained: dict[str, float] = field(default_factory=dict)  # model -> seconds, for those trained in this run
    seconds: float = 0.0

    @property
    def failed(self) -> list[NotebookRun]:
        return [r for r in self.runs if not r.ok]


def _slug(*parts: Any) -> str:
    def one(p: Any) -> str:
        p = p.get("name", "model") if isinstance(p, dict) else str(p)
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(p).name or p)

    return "__".join(one(p) for p in parts)


def plan(config: SweepConfig) -> list[NotebookRun]:
    """The notebooks the config asks for, with their parameters, in execution order."""
    out_dir = config.run_dir / "notebooks"
    settings = config.benchmark.to_dict()
    runs = []
    for e in config.experiments:
        for m in e.models:
            common = {
                "task": e.task,
                "model": m,
                "run_dir": str(config.run_dir),
                "settings": settings,
                "config": str(config.source) if (config.tasks or config.models) and config.source else None,
                "unavailable": config.on_unavailable,
            }
            if student_recipe_class(resolve_model(m).recipe) is not None:
                runs.append(NotebookRun(DISTILLATION_NB, out_dir / f"03_distillation__{_slug(e.task, m)}.ipynb",
                                        {**{k: v for k, v in common.items() if k != "model"}, "student": m,
                                         "methods": list(e.methods)}))  # fmt: skip
                continue
            runs.append(NotebookRun(BASELINE_NB, out_dir / f"01_baseline__{_slug(e.task, m)}.ipynb",
                                    {**common, "paddings": config.baseline_paddings}))  # fmt: skip
            others = [x for x in e.methods if x != BASELINE_METHOD]
            if others:
                runs.append(NotebookRun(QUANTIZATION_NB, out_dir / f"02_quantization__{_slug(e.task, m)}.ipynb",
                                        {**common, "methods": others}))  # fmt: skip
    runs.append(NotebookRun(PARETO_NB, out_dir / "04_pareto.ipynb",
                            {"run_dir": str(config.run_dir), "fraction": config.fraction}))  # fmt: skip
    return runs


def render_html(notebook: Path) -> Path:
    """HTML rendering of an executed notebook, for sharing without Jupyter."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(notebook))
    out = notebook.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out


def execute(run: NotebookRun, progress: bool = True, cwd: Path | None = None) -> NotebookRun:
    import papermill as pm

    run.output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(notebooks_dir() / run.notebook), str(run.output), parameters=run.parameters, kernel_name=KERNEL,
            progress_bar=progress, cwd=str(cwd or notebooks_dir()),
        )  # fmt: skip
        run.ok = True
    except Exception as e:  # PapermillExecutionError and kernel failures alike: report, go on
        run.error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else e!r}"
        logger.error("%s failed: %s (see %s)", run.notebook, run.error, run.output)
    run.seconds = time.perf_counter() - start
    if run.output.exists():
        try:
            run.html = render_html(run.output)
        except Exception as e:
            logger.warning("could not render %s to HTML: %s", run.output, e)
    return run


def models_to_train(config: SweepConfig) -> list[str]:
    """The built-in models the grid needs that are not cached yet, teachers before their students."""
    out: list[str] = []

    def add(name: str) -> None:
        spec = resolve_model(name)
        if spec.recipe is None or is_trained(spec) or spec.name in out:
            return
        teacher = spec.recipe.get("teacher") if student_recipe_class(spec.recipe) is not None else None
        if teacher:
            add(teacher)
        out.append(spec.name)

    for e in config.experiments:
        for m in e.models:
            add(m)
    return out


# Seconds per optimizer step of the built-in recipes' kinds on the 2-core reference machine (AMD EPYC, AVX2,
# 2 threads; the first `make demo`, README), for the estimate printed before a run: other machines differ.
REFERENCE_STEP_S = {"classifier": 0.36, "distill-classifier": 0.19, "t5-scratch": 0.40, "distill-t5": 0.65}
# Rough seconds per variant beyond its measured points (build, quality over the evaluation split, warm-up).
REFERENCE_VARIANT_S = {"bert": 8.0, "t5": 25.0}
NOTEBOOK_START_S = 15.0


def _planned_steps(spec) -> int | None:
    r = build_recipe(spec.full_recipe)
    n = getattr(r, "train_size", None)
    if n is None and getattr(r, "epochs", None) is not None:
        try:
            n = len(load_task(r.task or spec.task)["train"])
        except Exception:  # no data yet (it fails later with its own message) or a hub task offline
            n = None
    return planned_steps(r, n) if n is not None else r.max_steps


def estimate(config: SweepConfig, to_train: list[str]) -> dict[str, float]:
    """A rough forecast of the run, in seconds: training (planned steps x the reference step time) and measuring
    (the measured seconds of every point, plus build and quality per variant, plus kernel starts)."""
    train = 0.0
    for name in to_train:
        spec = resolve_model(name)
        steps = _planned_steps(spec) or 0
        train += steps * REFERENCE_STEP_S.get(spec.recipe.get("kind", ""), 0.4)
    s = config.benchmark
    n_points = int(s.realtime) + len(s.batch_sizes) * len(s.paddings)
    measure = 0.0
    for e in config.experiments:
        family = get_task(e.task).family
        for _ in e.models:
            n_variants = len(e.methods) + 1  # + the fp32 reference of the paired rounds
            measure += n_variants * (n_points * s.min_time_s + REFERENCE_VARIANT_S.get(family, 40.0))
    notebooks = NOTEBOOK_START_S * len(plan(config))
    return {"training": train, "measuring": measure + notebooks, "total": train + measure + notebooks}


def prepare_models(config: SweepConfig, progress: bool = True) -> dict[str, float]:
    """Train every built-in model the grid needs (cached checkpoints are reused), before any notebook.

    Teachers come before their students. A model whose training fails is logged and skipped: its notebooks
    fail and are reported, the others run. Returns the seconds each model trained in this call took.
    """
    trained: dict[str, float] = {}
    for name in models_to_train(config):
        start = time.perf_counter()
        try:
            ensure_trained(resolve_model(name), progress=progress)
            trained[name] = time.perf_counter() - start
        except Exception as err:  # one failing model never stops the sweep
            logger.error("training %s failed: %s", name, err)
    return trained


def run_suite(config: SweepConfig, progress: bool = True, only: list[str] | None = None) -> SuiteResult:
    """Validate, train what is missing, execute every notebook, write summary.md; never stops at a failure."""
    for variant, reason in config.validate().items():
        logger.warning("%s will be recorded as skipped: %s", variant, reason)
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    snapshot = {"run": config.run, "source": str(config.source) if config.source else None,
                "experiments": [e.__dict__ for e in config.experiments], "benchmark": config.benchmark.to_dict(),
                "baseline_paddings": config.baseline_paddings, "fraction": config.fraction,
                "on_unavailable": config.on_unavailable,
                "tasks": config.tasks, "models": config.models}  # fmt: skip
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(json.loads(json.dumps(snapshot, default=str)), sort_keys=False)
    )
    start = time.perf_counter()
    todo = models_to_train(config)
    logger.info("to train first: %s", ", ".join(f"{n} ({_planned_steps(resolve_model(n))} steps)" for n in todo)
                if todo else "nothing (every model is cached)")  # fmt: skip
    try:
        est = estimate(config, todo)
        logger.info("estimate on the 2-core reference machine: %.0f min (training %.0f, notebooks %.0f)",
                    est["total"] / 60, est["training"] / 60, est["measuring"] / 60)  # fmt: skip
    except Exception as e:  # a forecast never stops a run
        logger.warning("no time estimate: %s", e)
    result = SuiteResult(run_dir, trained=prepare_models(config, progress))
    for run in plan(config):
        if only and not any(run.notebook.startswith(o) for o in only):
            continue
        logger.info("executing %s -> %s", run.notebook, run.output)
        result.runs.append(execute(run, progress))
    result.seconds = time.perf_counter() - start
    try:
        result.summary = write_summary(run_dir, fraction=config.fraction)
        _append_suite_section(result)
    except Exception as e:
        logger.error("could not write the summary: %s", e)
    return result


def time_breakdown(result: SuiteResult) -> list[tuple[str, float]]:
    """Where the run's time went: each model trained, each notebook, and the rest (summary, set-up)."""
    parts = [(f"training {name}", sec) for name, sec in result.trained.items()]
    parts += [(f"notebook {r.output.name}", r.seconds) for r in result.runs]
    rest = result.seconds - sum(sec for _, sec in parts)
    return parts + [("other (validation, summary)", max(rest, 0.0))]


def _append_suite_section(result: SuiteResult) -> None:
    lines = ["", "## Notebooks", "", "| notebook | status | seconds | HTML |", "|---|---|---|---|"]
    for r in result.runs:
        status = "ok" if r.ok else f"FAILED: {r.error}"
        html = r.html.relative_to(result.run_dir) if r.html else ""
        link = f"[{r.output.relative_to(result.run_dir)}]({r.output.relative_to(result.run_dir)})"
        lines.append(f"| {link} | {status} | {r.seconds:.0f} | {f'[{html}]({html})' if html else ''} |")
    total = result.seconds or 1.0
    lines += ["", "## Where the time went", "",
              f"{result.seconds / 60:.1f} min in all; training counts only models trained in this run.", "",
              "| part | seconds | share |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {name} | {sec:.0f} | {sec / total:.0%} |" for name, sec in time_breakdown(result)]
    with open(result.summary, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
