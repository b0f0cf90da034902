"""The notebook suite: papermill executes the parameterized notebooks over a config's grid.

For each experiment (task) and model: ``01_baseline`` (fp32 quality and speed), ``02_quantization``
(the other methods); for a distilled student, ``03_distillation`` instead (its training curves, and every
method applied to it, against its teacher); then ``04_pareto`` once over the run's records. Executed notebooks and their
HTML renderings go to ``results/<run>/notebooks/``; ``summary.md`` and ``index.html`` (the offline report) to
``results/<run>/``. Executed notebooks get ``progress=False``: they keep results, not progress-bar updates.
A model that does not train, a notebook or a variant that fails is reported (cause and fix, in summary.md's
Failures section and in ``SuiteResult.failures``) and the suite goes on; the run exits non-zero at the end.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .analysis import write_summary
from .analysis.summary import SUMMARY_FILE, failure_rows, with_failures
from .config import SweepConfig
from .confirm import confirm_recommended
from .devices import CPU
from .exceptions import AccelbenchError
from .measure.scenarios import measured_points
from .measure.settings import BenchmarkSettings
from .models import is_trained, resolve_model
from .paths import notebooks_dir
from .recipes import build_recipe, planned_steps, student_recipe_class
from .records import BASELINE_METHOD, read_current
from .report import build_report, render_notebook_html
from .tasks import get_task, load_task
from .training import ensure_trained

logger = logging.getLogger(__name__)

BASELINE_NB = "01_baseline.ipynb"
QUANTIZATION_NB = "02_quantization.ipynb"
DISTILLATION_NB = "03_distillation.ipynb"
PARETO_NB = "04_pareto.ipynb"
SCALING_NB = "05_scaling.ipynb"
KERNEL = "python3"
RECORD_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # records' ``timestamp``


@dataclass
class NotebookRun:
    notebook: str
    output: Path
    parameters: dict[str, Any]
    ok: bool = False
    seconds: float = 0.0
    error: str | None = None  # the exception's own message, e.g. "ModelError: cannot load ..."
    fix: str | None = None  # its fix, when the error names one
    html: Path | None = None


@dataclass
class Failure:
    """Something of a run that failed, told once: in summary.md's Failures section and at the command's end."""

    what: str  # "training" (a model that could not be trained), "notebook", "variant", "timeout"
    name: str  # the model, the notebook's file name, or the variant
    cause: str  # the exception's own message
    fix: str  # what to do about it
    task: str = ""  # the task of a notebook or variant
    link: str | None = None  # a file of the run folder that shows it (a notebook's HTML), relative to it
    earlier: bool = False  # recorded by an earlier run into the same folder, not retried by this one


@dataclass
class SuiteResult:
    run_dir: Path
    runs: list[NotebookRun] = field(default_factory=list)
    summary: Path | None = None
    trained: dict[str, float] = field(default_factory=dict)  # model -> seconds, for those trained in this run
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)  # models, notebooks, then variants
    report: Path | None = None  # index.html

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
    runs = []
    names: dict[str, int] = {}  # two experiments of one task and model (another device, other settings)

    def slug(task: str, model: Any, settings: dict[str, Any]) -> str:
        device = str(settings.get("device") or CPU)
        base = _slug(task, model, *([device] if device != CPU else []))
        names[base] = names.get(base, 0) + 1
        return base if names[base] == 1 else f"{base}__{names[base]}"

    for e in config.experiments:
        for m in e.models:
            name = slug(e.task, m, e.settings(config.benchmark))
            common = {
                "task": e.task,
                "model": m,
                "run_dir": str(config.run_dir),
                "settings": e.settings(config.benchmark),
                "config": str(config.source) if (config.tasks or config.models) and config.source else None,
                "unavailable": config.on_unavailable,
                "progress": False,  # an executed notebook keeps results, not progress-bar updates
            }
            if student_recipe_class(resolve_model(m).recipe) is not None:
                runs.append(NotebookRun(DISTILLATION_NB, out_dir / f"03_distillation__{name}.ipynb",
                                        {**{k: v for k, v in common.items() if k != "model"}, "student": m,
                                         "methods": list(e.methods)}))  # fmt: skip
                continue
            runs.append(NotebookRun(BASELINE_NB, out_dir / f"01_baseline__{name}.ipynb",
                                    {**common, "paddings": config.baseline_paddings}))  # fmt: skip
            others = [x for x in e.methods if x != BASELINE_METHOD]
            if others or e.sensitivity:
                runs.append(NotebookRun(QUANTIZATION_NB, out_dir / f"02_quantization__{name}.ipynb",
                                        {**common, "methods": others, "sensitivity": e.sensitivity}))  # fmt: skip
    runs.append(NotebookRun(PARETO_NB, out_dir / "04_pareto.ipynb",
                            {"run_dir": str(config.run_dir), "fraction": config.fraction,
                             "progress": False}))  # fmt: skip
    if config.serving is not None:
        s = config.serving
        runs.append(NotebookRun(SCALING_NB, out_dir / "05_scaling.ipynb", {
            "run_dir": str(config.run_dir), "task": s.task, "model": s.model, "methods": list(s.methods),
            "traffic": float(s.traffic), "p99_ms": float(s.p99_ms), "batch_sizes": list(s.batch_sizes),
            "threads": list(s.threads), "colocated": list(s.colocated), "budget_s": float(s.budget_s),
            "prices": s.prices, "fraction": config.fraction, "progress": False, "validate": s.validate,
            "validate_s": float(s.validate_s),
            "config": str(config.source) if (config.tasks or config.models) and config.source else None,
        }))  # fmt: skip
    return runs


def cause_and_fix(ename: str, evalue: str) -> tuple[str, str | None]:
    """An exception's name and message, as a failed cell reports them, split into the cause and the fix that an
    accelbench error appends to its message (``AccelbenchError``: "message\n  fix: ...")."""
    message, _, fix = str(evalue).partition("\n  fix: ")
    message = " ".join(message.split())
    return (f"{ename}: {message}" if message else ename), (" ".join(fix.split()) or None)


def _exception_cause(err: BaseException) -> tuple[str, str | None]:
    if isinstance(err, AccelbenchError):
        return f"{type(err).__name__}: {' '.join(err.message.split())}", err.fix
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:  # papermill's PapermillExecutionError: the cell's own exception
        return cause_and_fix(ename, evalue or "")
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[-1] if text else repr(err)}", None


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
        run.error, run.fix = _exception_cause(e)
        cell = getattr(e, "exec_count", None)
        run.fix = run.fix or (
            f"read the traceback in {run.output.with_suffix('.html').name}"
            + (f" (cell In [{cell}])" if cell else "")
            + "; fix the cause and rerun: what was recorded is kept"
        )
        logger.error("%s failed: %s (see %s)", run.notebook, run.error, run.output)
    run.seconds = time.perf_counter() - start
    if run.output.exists():
        try:
            run.html = render_notebook_html(run.output)
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
    if config.serving is not None:
        add(config.serving.model)
    return out


# Seconds per optimizer step of the built-in recipes' kinds on the 2-core AVX-512 reference machine (loading,
# tokenizing and teacher outputs included; the first `make demo` of 2026-12-07, README), for the estimate
# printed before a run: other machines differ.
REFERENCE_STEP_S = {
    "classifier": 0.19,
    "distill-classifier": 0.16,
    "prune-classifier": 0.21,  # prune: scaled from distill-classifier
    "prune-t5": 0.38,  # scaled from distill-t5
    "t5-scratch": 0.31,
    "distill-t5": 0.33,
}
# Rough seconds per variant beyond its measured points (build, quality over the evaluation split, warm-up,
# the offline search), on the AVX-512 reference machine:
REFERENCE_VARIANT_S = {"bert": 12.0, "t5": 14.0}  # the default run of 2026-12-07 (README)
NOTEBOOK_START_S = 15.0


def _confirm_on_test(config: SweepConfig, run_dir: Path, progress: bool) -> None:
    """Tasks with a test_split: the recommendations chosen on the eval split, scored on the test split too."""
    settings = {e.task: e.settings(config.benchmark) for e in reversed(config.experiments)}  # the first wins
    for task, s in settings.items():
        if not get_task(task).test_split:
            continue
        try:
            confirm_recommended(run_dir, task, config.fraction, settings=s, progress=progress)
        except AccelbenchError as e:  # a confirmation that cannot run never stops the sweep
            logger.error("task %s: not confirmed on its test split: %s", task, e)


def _planned_steps(spec) -> int | None:
    r = build_recipe(spec.full_recipe)
    n = getattr(r, "train_size", None)
    if n is None and getattr(r, "epochs", None) is not None:
        try:
            name = r.task or spec.task
            n = len(load_task(name)[get_task(name).train_split])
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
    measure = 0.0
    for e in config.experiments:
        family = get_task(e.task).family
        s = BenchmarkSettings.from_dict(e.settings(config.benchmark))
        n_points = len(measured_points(s)) + int(s.offline)
        for _ in e.models:
            n_variants = len(e.methods) + 1  # + the fp32 reference of the paired rounds
            measure += n_variants * (n_points * s.min_time_s + REFERENCE_VARIANT_S.get(family, 40.0))
    notebooks = NOTEBOOK_START_S * len(plan(config))
    return {"training": train, "measuring": measure + notebooks, "total": train + measure + notebooks}


def prepare_models(
    config: SweepConfig, progress: bool = True, failures: dict[str, BaseException] | None = None
) -> dict[str, float]:
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
            if failures is not None:  # the caller's list of failures gets its cause
                failures[name] = err
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
    start, started_at = time.perf_counter(), time.time()
    todo = models_to_train(config)
    logger.info("to train first: %s", ", ".join(f"{n} ({_planned_steps(resolve_model(n))} steps)" for n in todo)
                if todo else "nothing (every model is cached)")  # fmt: skip
    try:
        est = estimate(config, todo)
        logger.info("estimate on the 2-core reference machine: %.0f min (training %.0f, notebooks %.0f)",
                    est["total"] / 60, est["training"] / 60, est["measuring"] / 60)  # fmt: skip
    except Exception as e:  # a forecast never stops a run
        logger.warning("no time estimate: %s", e)
    untrained: dict[str, BaseException] = {}
    result = SuiteResult(run_dir, trained=prepare_models(config, progress, failures=untrained))
    for run in plan(config):
        if only and not any(run.notebook.startswith(o) for o in only):
            continue
        if run.notebook == PARETO_NB:
            _confirm_on_test(config, run_dir, progress)
        logger.info("executing %s -> %s", run.notebook, run.output)
        result.runs.append(execute(run, progress))
    result.seconds = time.perf_counter() - start
    records = read_current(run_dir)
    result.failures = _failures(result, untrained, records, started_at)
    try:
        result.summary = _write_summary(run_dir, config.fraction, records, result.failures)
        _append_suite_section(result)
    except Exception as e:
        logger.error("could not write the summary: %s", e)
    try:
        result.report = build_report(run_dir, render=False)
    except Exception as e:
        logger.error("could not write the report: %s", e)
    return result


def _recorded_at(timestamp: str) -> float | None:
    try:
        return datetime.strptime(timestamp, RECORD_TIME_FORMAT).timestamp()
    except ValueError:
        return None


def _failures(
    result: SuiteResult, untrained: dict[str, BaseException], records, started_at: float
) -> list[Failure]:
    """Every failure of the run: models that did not train, notebooks that failed, failed or timed-out variants
    (those recorded before ``started_at`` and not retried are marked ``earlier``)."""
    out = []
    for name, err in untrained.items():
        cause, fix = _exception_cause(err)
        out.append(
            Failure(
                "training", name, cause, fix or f"train it alone to see why: accelbench train --model {name}"
            )
        )
    for r in result.runs:
        if not r.ok:
            shown = r.html or r.output
            link = shown.relative_to(result.run_dir).as_posix() if shown.exists() else None
            task = str(r.parameters.get("task") or "")
            out.append(Failure("notebook", r.output.name, r.error or "failed", r.fix or "", task, link))
    for row in failure_rows(records):
        at = _recorded_at(row["timestamp"])
        out.append(Failure(row["what"], row["name"], row["cause"], row["fix"], row["task"],
                           earlier=at is not None and at < int(started_at)))  # fmt: skip
    return out


def _write_summary(run_dir: Path, fraction: float, records, failures: list[Failure]) -> Path:
    """summary.md with every failure in its Failures section; a run that recorded nothing gets one too."""
    others = [asdict(f) for f in failures if f.what in ("training", "notebook")]
    if records.empty:
        path = run_dir / SUMMARY_FILE
        path.write_text(with_failures(f"# accelbench summary: {run_dir.name}\n\nNothing was recorded.\n",
                                      records, others), encoding="utf-8")  # fmt: skip
        return path
    path = write_summary(run_dir, fraction=fraction)
    path.write_text(with_failures(path.read_text(encoding="utf-8"), records, others), encoding="utf-8")
    return path


def time_breakdown(result: SuiteResult) -> list[tuple[str, float]]:
    """Where the run's time went: each model trained, each notebook, and the rest (summary, set-up)."""
    parts = [(f"training {name}", sec) for name, sec in result.trained.items()]
    parts += [(f"notebook {r.output.name}", r.seconds) for r in result.runs]
    rest = result.seconds - sum(sec for _, sec in parts)
    return parts + [("other (validation, summary)", max(rest, 0.0))]


def _scaling_lines(run_dir: Path) -> list[str]:
    """summary.md's Scaling section: notebook 05's plan (its sentence first), when the run made one."""
    plan_md = run_dir / "serving" / "plan.md"
    if not plan_md.exists():
        return []
    body = plan_md.read_text(encoding="utf-8").split("\n", 1)[1:]  # without its own title
    return ["", "## Scaling", "", "From notebook 05 ([serving/plan.md](serving/plan.md)); autoscaling settings in "
            "[serving/autoscaling/](serving/autoscaling/).", *(body[0].strip().splitlines() if body else [])]  # fmt: skip


def _append_suite_section(result: SuiteResult) -> None:
    lines = [
        *_scaling_lines(result.run_dir),
        "",
        "## Notebooks",
        "",
        "| notebook | status | seconds | HTML |",
        "|---|---|---|---|",
    ]
    for r in result.runs:
        status = "ok" if r.ok else "FAILED (see Failures)"
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
