"""What the notebooks call beyond the public API: set-up, run folders, settings from parameters, tables, students.

Notebooks stay thin (a parameters cell, calls, plots); any helper a notebook needs lives here. ``setup`` is
every notebook's first call: it filters library messages that mean nothing to a reader, turns progress bars
off for an executed (papermill) notebook, and prints the environment the notebook runs in.
"""

from __future__ import annotations

import logging
import platform
import re
import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from .analysis import format_metric
from .environment import collect_environment
from .exceptions import DataError
from .experiment import run_experiment
from .measure.settings import BenchmarkSettings
from .models import resolve_model
from .paths import results_dir
from .recipes import build_recipe, student_recipe_class
from .records import BASELINE_METHOD, OK_STATUS, read_current
from .version import __version__

logger = logging.getLogger(__name__)

# Library log messages that tell a reader nothing: (logger, pattern). Filtered on the logger that emits them.
LIBRARY_NOISE = (
    ("torchao", r"Failed to load \S*_C_(mxfp8|cutlass)"),  # torchao's CUDA kernels, absent from a CPU build
    ("torchao.kernel.intmm", r"Detected no triton"),  # triton kernels, absent from a CPU build
    ("torch.utils._pytree", r"is an Enum subclass"),  # torch deprecating torchao's register_constant(Enum)
)


class _DropMatching(logging.Filter):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def quiet_library_warnings() -> None:
    """Drop the library messages of ``LIBRARY_NOISE`` (idempotent; before the libraries are imported or after)."""
    for name, pattern in LIBRARY_NOISE:
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropMatching) and f.pattern.pattern == pattern for f in log.filters):
            log.addFilter(_DropMatching(pattern))


def _hide_library_progress() -> None:
    """No progress bars from transformers (loading weights) or the hub (downloads), and no tqdm warning that
    ipywidgets is missing: an executed notebook keeps results, not bar updates."""
    from tqdm import TqdmWarning

    # before transformers: importing it imports tqdm.auto, which warns then
    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the hub's download bars too


def environment_line() -> str:
    """Where this notebook runs: interpreter, accelbench version and location, torch, CPU and its cores."""
    env = collect_environment()
    commit = env.get("env_git_commit")
    cores = env.get("env_cores_available") or env.get("env_cores_logical")
    package = Path(__file__).resolve().parent
    return (
        f"python {sys.executable} ({platform.python_version()}); "
        f"accelbench {__version__}{f' ({commit})' if commit else ''} from {package}; "
        f"torch {env.get('env_torch') or '?'}; CPU {env.get('env_cpu_model') or '?'}, {cores or '?'} core(s) available"
    )


def setup(progress: bool = True) -> None:
    """A notebook's first call: library noise filtered, progress bars off unless ``progress``, environment shown."""
    quiet_library_warnings()
    if not progress:
        _hide_library_progress()
    print(environment_line())


def _seconds(row: pd.Series, column: str) -> str:
    value = row.get(column)
    return "?" if value is None or pd.isna(value) else f"{float(value):.1f}"


def step_lines(records: pd.DataFrame) -> list[str]:
    """One line per variant of an experiment's records: what a finished progress bar would have said."""
    lines = []
    if records.empty or "variant" not in records.columns:
        return lines
    for variant, rows in records.groupby("variant", sort=False):
        r = rows.iloc[-1]
        status = r.get("status", OK_STATUS)
        if status != OK_STATUS:
            error = r.get("error")
            first = str(error).strip().splitlines()[0] if isinstance(error, str) and error.strip() else "?"
            lines.append(f"{variant}: {status}: {first}")
            continue
        n = r.get("n_eval")
        examples = f" on {int(n)} examples" if n is not None and not pd.isna(n) else ""
        metric = f"{r.get('metric_name') or 'metric'} {format_metric(r.get('metric'), r.get('metric_name'))}"
        speed = f"speed at {len(rows)} point(s) in {_seconds(r, 'time_speed_s')} s"
        applied = f"method applied in {_seconds(r, 'time_apply_s')} s"
        lines.append(
            f"{variant}: {metric}{examples} in {_seconds(r, 'time_quality_s')} s; {speed} ({applied})"
        )
    return lines


def print_steps(records: pd.DataFrame) -> None:
    """Print ``step_lines``: in an executed notebook, the one line each long step leaves instead of its bar."""
    for line in step_lines(records):
        print(line)


def resolve_run_dir(run_dir: str | Path | None) -> Path:
    """A notebook's run folder: the given one, else results/interactive."""
    return Path(run_dir) if run_dir else results_dir() / "interactive"


def settings_with(settings: BenchmarkSettings | dict[str, Any] | None, **overrides: Any) -> BenchmarkSettings:
    """Benchmark settings from a notebook's parameters, with overrides (e.g. paddings)."""
    base = settings.to_dict() if isinstance(settings, BenchmarkSettings) else dict(settings or {})
    base.update({k: v for k, v in overrides.items() if v is not None})
    return BenchmarkSettings.from_dict(base)


TABLE_COLUMNS = {
    "variant": "variant", "metric": "metric", "metric_ci_low": "ci low", "metric_ci_high": "ci high",
    "metric_delta": "delta vs fp32", "agreement": "agreement", "scenario": "scenario", "batch_size": "batch",
    "padding": "padding", "latency_ms_p50": "p50 ms", "latency_ms_p90": "p90 ms", "latency_ms_p99": "p99 ms",
    "throughput": "samples/s", "tokens_per_s": "tokens/s", "ms_per_token": "ms/token", "size_mb": "size MB",
    "peak_rss_mb": "peak RSS MB", "status": "status", "error": "error",
}  # fmt: skip


def table(records: pd.DataFrame) -> pd.DataFrame:
    """The records as a readable table: one row per variant and scenario point."""
    cols = [c for c in TABLE_COLUMNS if c in records.columns]
    out = records[cols].rename(columns=TABLE_COLUMNS)
    if "error" in records and records["error"].isna().all():
        out = out.drop(columns=["error"])
    return out.round(3)


def recipe_summary(recipe: dict[str, Any] | None) -> dict[str, Any]:
    """The recipe with its defaults filled in (for records and notebooks)."""
    if not recipe:
        return {}
    return asdict(build_recipe(recipe)) if student_recipe_class(recipe) else dict(recipe)


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


def ensure_teacher_baseline(
    task: str, teacher: str | dict[str, Any], run_dir, settings=None, progress: bool = True
) -> None:
    """Measure the teacher's fp32 in ``run_dir`` unless the run already holds it (e.g. from 01_baseline).

    Measuring it again under other settings would put two teacher baselines on one frontier.
    """
    name = resolve_model(teacher).name
    df = read_current(run_dir, task)
    if (
        len(df)
        and ((df["model"] == name) & (df["method"] == BASELINE_METHOD) & (df["status"] == OK_STATUS)).any()
    ):
        logger.info("teacher %s fp32 already measured in %s", name, run_dir)
        return
    print_steps(run_experiment(task, teacher, [BASELINE_METHOD], run_dir, settings, progress=progress))


def compare_with_teacher(records, teacher: str, batch_size: int = 32):
    """Every variant of the task against the teacher's fp32: metric share, throughput and p90 latency ratios.

    Throughput at ``batch_size`` (dynamic padding; the largest measured batch when that one was not, named
    in the ``batch`` column), latency at batch 1, both from the same run's records.
    """
    df = records[records["status"] == OK_STATUS] if "status" in records else records
    batch = df[(df["scenario"] == "batch") & (df["padding"] == "dynamic")]
    if len(batch) and not (batch["batch_size"] == batch_size).any():
        batch_size = int(batch["batch_size"].max())  # the largest measured batch stands in
    batch = batch[batch["batch_size"] == batch_size]
    rt = df[df["scenario"] == "realtime"]
    base_b = batch[(batch["model"] == teacher) & (batch["method"] == BASELINE_METHOD)]
    base_r = rt[(rt["model"] == teacher) & (rt["method"] == BASELINE_METHOD)]
    if base_b.empty:
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
