"""Which records a crosscheck re-times (``select_cases``), the jobs its children run, and its arithmetic."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..analysis.markdown import is_missing
from ..exceptions import ConfigError
from ..measure.settings import BenchmarkSettings
from ..records import BASELINE_METHOD, OK_STATUS, read_current

logger = logging.getLogger(__name__)

CROSSCHECK_FILE = "crosscheck.json"
TOLERANCE = 0.10  # the crosscheck and the record agree when they differ by at most 10%
DEFAULT_BATCH_SIZE = 32
DEFAULT_PASSES = 1
DEFAULT_ROUNDS = 5
TOP_VARIANTS = 3  # per task, by default: the fastest non-fp32 variants at the batch size
PADDING = "dynamic"
BASELINE_SEP = "@"  # model:method@other-model compares with other-model's fp32 (a student with its teacher)
READY_TIMEOUT_S = 3600.0  # a child builds its variant first (pt2e compiles for minutes on 2 cores)
TURN_TIMEOUT_S = 3600.0
# a pause before each turn, so that the previous child's worker threads stop spin-waiting (OpenMP: to 200 ms)
SETTLE_S = 0.25
LOG_TAIL_CHARS = 1500
TIMER = "time.perf_counter() in the parent process, from sending GO to reading DONE"


@dataclass(frozen=True)
class Job:
    """One child process: the variant it loads and the measurement settings of its records."""

    task: str
    model: str
    method: str  # the label records use, e.g. ort-static-int8[calibration=entropy]
    method_name: str
    method_options: str | None  # JSON of every option, as records keep it
    model_path: str | None
    model_key: str | None
    batch_size: int
    n_eval: int | None
    max_length: int
    max_new_tokens: int
    num_beams: int
    threads: int | None
    config: str | None = None  # the run's config file, whose own tasks and models the child registers

    @property
    def variant(self) -> str:
        return f"{self.model}:{self.method}"


@dataclass
class Case:
    """One comparison: a variant against an fp32, with the record's speed-up (None when it has none)."""

    variant: Job
    baseline: Job
    record: float | None = None
    record_ci_low: float | None = None
    record_ci_high: float | None = None
    record_source: str | None = None  # speedup_vs_fp32 (the benchmark's paired figure) or throughput ratio


def _value(row: pd.Series | dict, column: str) -> Any:
    value = row.get(column)
    return None if is_missing(value) else value


def _int(value: Any) -> int | None:
    return None if is_missing(value) else int(value)


def _job(row: pd.Series | dict, batch_size: int, config: str | None) -> Job:
    """The child's job from a variant's record: method with its options, model checkpoint, settings."""
    defaults = BenchmarkSettings()
    setting = {
        name: _value(row, f"setting_{name}")
        for name in ("n_eval", "max_length", "max_new_tokens", "num_beams")
    }
    return Job(
        task=str(row["task"]), model=str(row["model"]), method=str(row["method"]),
        method_name=str(_value(row, "method_name") or row["method"]), method_options=_value(row, "method_options"),
        model_path=_value(row, "model_path"), model_key=_value(row, "model_key"), batch_size=int(batch_size),
        n_eval=_int(setting["n_eval"]),
        max_length=_int(setting["max_length"]) or defaults.max_length,
        max_new_tokens=_int(setting["max_new_tokens"]) or defaults.max_new_tokens,
        num_beams=_int(setting["num_beams"]) or defaults.num_beams,
        threads=_int(_value(row, "threads")) or _int(_value(row, "setting_threads")), config=config,
    )  # fmt: skip


def _ratio(row: pd.Series, base: pd.Series | None) -> tuple[float | None, float | None, float | None]:
    """throughput / the baseline's, with the conservative interval of the two recorded intervals."""
    if base is None or not _value(base, "throughput"):
        return None, None, None
    ratio = float(row["throughput"]) / float(base["throughput"])
    lo, hi = _value(row, "throughput_ci_low"), _value(row, "throughput_ci_high")
    b_lo, b_hi = _value(base, "throughput_ci_low"), _value(base, "throughput_ci_high")
    if None in (lo, hi, b_lo, b_hi) or not b_lo:
        return ratio, None, None
    return ratio, float(lo) / float(b_hi), float(hi) / float(b_lo)


def record_speedup(row: pd.Series, base: pd.Series | None, own_baseline: bool = True) -> dict[str, Any]:
    """The record's speed-up of ``row`` over the fp32 ``base`` (a batch row at the same batch size).

    Against its own model's fp32, the record's ``speedup_vs_fp32`` (the median of the benchmark's paired
    per-round ratios) with its interval; records without that field, and a comparison with another model's
    fp32, fall back to the ratio of the two recorded throughputs.
    """
    if own_baseline and _value(row, "speedup_vs_fp32") is not None:
        lo, hi = _value(row, "speedup_vs_fp32_ci_low"), _value(row, "speedup_vs_fp32_ci_high")
        return {"record": float(row["speedup_vs_fp32"]), "record_ci_low": None if lo is None else float(lo),
                "record_ci_high": None if hi is None else float(hi), "record_source": "speedup_vs_fp32"}  # fmt: skip
    ratio, lo, hi = _ratio(row, base)
    source = None if ratio is None else "throughput ratio"
    return {"record": ratio, "record_ci_low": lo, "record_ci_high": hi, "record_source": source}


def run_config(run_dir: Path) -> str | None:
    """The config file the run was made from (its snapshot names it), when it still exists."""
    snapshot = Path(run_dir) / "config.yaml"
    try:
        source = (yaml.safe_load(snapshot.read_text()) or {}).get("source") if snapshot.exists() else None
    except (OSError, yaml.YAMLError) as e:
        logger.warning("cannot read %s: %s", snapshot, e)
        return None
    return str(source) if source and Path(source).exists() else None


def read_run_records(run_dir: str | Path) -> pd.DataFrame:
    """The run's current records; ConfigError (with the fix) for a folder that holds none."""
    run_dir = Path(run_dir)
    records = read_current(run_dir) if run_dir.is_dir() else pd.DataFrame()
    if records.empty or not {"task", "model", "method", "variant", "scenario"} <= set(records.columns):
        raise ConfigError(
            f"no records in {run_dir}" + ("" if run_dir.is_dir() else " (no such folder)"),
            "give the folder of a finished run, e.g. --run results/default (accelbench run writes it)",
        )
    return records


def _batch_rows(records: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    ok = records["status"] == OK_STATUS if "status" in records.columns else True
    rows = records[ok & (records["scenario"] == "batch")]
    if "padding" in rows.columns:
        rows = rows[rows["padding"].fillna(PADDING) == PADDING]
    at = rows[rows["batch_size"] == batch_size] if "batch_size" in rows.columns else rows.iloc[0:0]
    if at.empty:
        sizes = sorted({int(b) for b in rows.get("batch_size", pd.Series(dtype=float)).dropna()})
        raise ConfigError(
            f"no batch-inference records at batch size {batch_size} (padding {PADDING})",
            f"use one of the recorded batch sizes: {', '.join(map(str, sizes)) or 'none (run the batch scenario)'}",
        )
    return at


def _fp32_row(rows: pd.DataFrame, task: str, model: str) -> pd.Series | None:
    match = rows[(rows["task"] == task) & (rows["model"] == model) & (rows["method"] == BASELINE_METHOD)]
    return match.iloc[-1] if len(match) else None


def _baseline_job(records: pd.DataFrame, variant: Job, model: str) -> Job:
    """The fp32 job of ``model`` in the variant's task, with the variant's settings (they are paired)."""
    if model == variant.model:
        return replace(variant, method=BASELINE_METHOD, method_name=BASELINE_METHOD, method_options=None)
    own = records[(records["task"] == variant.task) & (records["model"] == model)]
    if "model_path" in own.columns and own["model_path"].notna().any():
        own = own[own["model_path"].notna()]
    if own.empty:
        known = sorted(set(records.loc[records["task"] == variant.task, "model"].astype(str)))
        raise ConfigError(
            f"no record of model {model!r} in task {variant.task!r} to compare {variant.variant} with",
            f"after {BASELINE_SEP} name a model of that task: {', '.join(known)}",
        )
    row = own.iloc[-1]
    return replace(variant, model=model, method=BASELINE_METHOD, method_name=BASELINE_METHOD, method_options=None,
                   model_path=_value(row, "model_path"), model_key=_value(row, "model_key"))  # fmt: skip


def select_cases(
    records: pd.DataFrame,
    batch_size: int = DEFAULT_BATCH_SIZE,
    task: str | None = None,
    variants: Sequence[str] | None = None,
    config: str | None = None,
) -> list[Case]:
    """What to crosscheck, from a run's current records.

    ``variants`` are ``model:method`` as records name them, or ``model:method@other-model`` to compare with
    another model's fp32 (a student with its teacher). Without them: per task, the ``TOP_VARIANTS`` non-fp32
    variants with the highest recorded throughput at ``batch_size``, each against its own model's fp32.
    """
    if task is not None:
        tasks = sorted(set(records["task"].dropna().astype(str)))
        if task not in tasks:
            raise ConfigError(f"task {task!r} is not in this run (it has: {', '.join(tasks)})",
                              f"use --task with one of: {', '.join(tasks)}")  # fmt: skip
        records = records[records["task"] == task]
    rows = _batch_rows(records, batch_size)
    chosen: list[tuple[pd.Series, str | None]] = []
    if variants:
        for spec in variants:
            name, _, other = spec.partition(BASELINE_SEP)
            match = rows[rows["variant"] == name]
            if match.empty:
                known = sorted(set(rows["variant"].astype(str)))
                raise ConfigError(
                    f"variant {name!r} has no ok batch record at batch size {batch_size}"
                    + (f" in task {task!r}" if task else ""),
                    f"use model:method as the records name it, one of: {', '.join(known)}",
                )
            row = match.iloc[-1]
            if row["method"] == BASELINE_METHOD and (not other or other == row["model"]):
                raise ConfigError(
                    f"{name} is the fp32 every speed-up is measured against",
                    f"name a compressed variant, or compare it with another model: {name}{BASELINE_SEP}<model>",
                )
            chosen.append((row, other or None))
    else:
        for _, group in rows[rows["method"] != BASELINE_METHOD].groupby("task", sort=True):
            top = group.sort_values("throughput", ascending=False, kind="stable").head(TOP_VARIANTS)
            chosen += [(row, None) for _, row in top.iterrows()]
        if not chosen:
            raise ConfigError(f"no compressed variant has a batch record at batch size {batch_size}",
                              "run methods other than fp32 first, or name variants with --variants")  # fmt: skip
    cases = []
    for row, other in chosen:
        job = _job(row, batch_size, config)
        base_model = other or job.model
        base_job = _baseline_job(records, job, base_model)
        base_row = _fp32_row(rows, job.task, base_model)
        figures = record_speedup(row, base_row, own_baseline=base_model == job.model)
        cases.append(Case(variant=job, baseline=base_job, **figures))
    return cases


def paired_speedup(variant: Sequence[float], baseline: Sequence[float]) -> tuple[float, float, float]:
    """Median, min and max of the per-round ratios variant / baseline (throughputs of the same rounds)."""
    ratios = [v / b for v, b in zip(variant, baseline, strict=True) if b > 0]
    if not ratios:
        raise ValueError("no round with both throughputs")
    return statistics.median(ratios), min(ratios), max(ratios)


def compare(
    record: float | None, crosscheck: float | None, tolerance: float = TOLERANCE
) -> tuple[float | None, bool | None]:
    """(crosscheck / record - 1, whether that is within ``tolerance``); (None, None) when one is missing."""
    if record is None or crosscheck is None or record <= 0:
        return None, None
    diff = crosscheck / record - 1.0
    return diff, abs(diff) <= tolerance + 1e-12
