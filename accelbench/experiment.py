"""One experiment: a task and a model, several compression methods; quality and speed of each, recorded.

This is what the notebooks call. Each (task, model, method, settings) is keyed by a config hash; a key
already recorded as ``ok`` in the run is skipped, so an interrupted sweep resumes where it stopped.
A method that fails is recorded with its error and the next one runs.
"""

from __future__ import annotations

import gc
import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .benchmark import BenchmarkSettings, run_scenarios
from .compress import get_method
from .environment import collect_environment
from .evaluate import agreement, predict, score
from .exceptions import AccelbenchError, ConfigError
from .models import LoadedModel, check_fits_task, load_model, model_family, resolve_model
from .records import append_records, config_hash, latest, read_records, recorded_keys
from .tasks import eval_split, get_task

logger = logging.getLogger(__name__)

BASELINE_METHOD = "fp32"


def _settings(settings: BenchmarkSettings | dict[str, Any] | None) -> BenchmarkSettings:
    return settings if isinstance(settings, BenchmarkSettings) else BenchmarkSettings.from_dict(settings)


def variant_key(task: str, spec, method, settings: BenchmarkSettings) -> str:
    return config_hash({"task": task, "model": spec.name, "model_key": spec.key, "base": spec.base,
                        "method": method.label, "options": method.options, "settings": settings.to_dict()})  # fmt: skip


def _predictions_path(run_dir: Path, task: str, model: str, method: str) -> Path:
    safe = model.replace("/", "--")
    return Path(run_dir) / "predictions" / f"{task}__{safe}__{method}.json"


def _set_threads(settings: BenchmarkSettings) -> None:
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)


def _baseline(
    loaded: LoadedModel, task, texts, refs, s: BenchmarkSettings, run_dir: Path, progress: bool
) -> dict:
    """fp32 predictions and metric, cached in the run so every notebook compares with the same baseline."""
    path = _predictions_path(run_dir, task.name, loaded.spec.name, BASELINE_METHOD)
    if path.exists():
        data = json.loads(path.read_text())
        if (data.get("n") == len(texts) and data.get("settings_key") == _quality_key(s)
                and data.get("model_key") == loaded.spec.key):  # fmt: skip
            return data  # a retrained model (new recipe, same name) gets new baseline predictions
    variant = get_method(BASELINE_METHOD).apply(loaded)
    preds = predict(variant.predictor, texts, task.kind, max_new_tokens=s.max_new_tokens, num_beams=s.num_beams,
                    progress=progress, desc="fp32 baseline predictions")  # fmt: skip
    metrics = score(task.kind, preds, refs, n_bootstrap=s.n_bootstrap)
    return _save_predictions(path, preds, metrics, s, loaded.spec.key)


def _quality_key(s: BenchmarkSettings) -> str:
    return config_hash([s.n_eval, s.max_new_tokens, s.num_beams, s.max_length])


def _save_predictions(path: Path, preds, metrics, s: BenchmarkSettings, model_key: str | None = None) -> dict:
    data = {"n": len(preds), "settings_key": _quality_key(s), "model_key": model_key, "metrics": metrics,
            "predictions": preds}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return data


def _base_record(run: str, task, loaded: LoadedModel, method, key: str, s: BenchmarkSettings) -> dict:
    info = loaded.info.get("training", {})
    rec = {
        "run": run, "key": key, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "task": task.name, "task_kind": task.kind, "model": loaded.spec.name, "model_family": loaded.family,
        "model_key": loaded.spec.key, "model_path": loaded.path, "params_m": round(loaded.n_params / 1e6, 2),
        "train_steps": info.get("steps"), "train_wall_s": info.get("wall_s"),
        "method": method.label, "method_name": method.name, "variant": f"{loaded.spec.name}:{method.label}",
        "method_options": json.dumps(method.options, default=str) if method.options else None,
        "n_eval": None, "threads": None, "accelbench": __version__,
        # how the weights were made, so any frontier point can be rebuilt from its record
        "model_recipe": json.dumps(loaded.info.get("recipe") or loaded.spec.full_recipe, default=str)
        if (loaded.info.get("recipe") or loaded.spec.recipe) else None,
        "teacher": info.get("teacher"), "train_examples": info.get("train_examples"),
    }  # fmt: skip
    rec.update(
        {f"setting_{k}": (json.dumps(v) if isinstance(v, list) else v) for k, v in s.to_dict().items()}
    )
    return rec


def run_experiment(
    task: str,
    model: str | dict[str, Any],
    methods: list[str] | None = None,
    run_dir: str | Path = "results/interactive",
    settings: BenchmarkSettings | dict[str, Any] | None = None,
    force: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate and benchmark ``methods`` of ``model`` on ``task``; append records to run_dir/records.jsonl.

    Returns this experiment's latest records (skipped ones included) as a DataFrame.
    Bad input (unknown task/model/method, a method that does not apply) raises before any work starts.
    """
    s = _settings(settings)
    t = get_task(task)
    spec = resolve_model(model)
    resolved = [get_method(m) for m in (methods or [BASELINE_METHOD])]
    if len({m.label for m in resolved}) < len(resolved):
        raise ConfigError("the same method is listed twice", "list each method (with its options) once")
    family = model_family(spec)
    want = "t5" if t.kind == "seq2seq" else "bert"
    if family != want:
        raise ConfigError(f"model {spec.name!r} ({family}) cannot do task {task!r} ({t.kind})",
                          f"pair {t.kind} tasks with {want}-family models")  # fmt: skip
    for m in resolved:
        m.check(family)
    run_dir = Path(run_dir)
    run = run_dir.name
    data = eval_split(task, s.n_eval)  # fails early on missing data
    texts, refs = list(data[t.input_column]), list(data["label" if t.kind == "classification" else "target"])
    loaded = load_model(spec, progress=progress)
    check_fits_task(loaded, t)
    for m in resolved:
        m.check(loaded.family)
    _set_threads(s)
    env = collect_environment()
    done = set() if force else recorded_keys(run_dir, status="ok")
    keys = {m.label: variant_key(task, loaded.spec, m, s) for m in resolved}
    todo = [m for m in resolved if keys[m.label] not in done]
    for m in resolved:
        if m not in todo:
            logger.info(
                "%s %s %s: already recorded (key %s), skipped", task, loaded.spec.name, m.label, keys[m.label]
            )
    base = _baseline(loaded, t, texts, refs, s, run_dir, progress) if todo else None
    for m in todo:
        rec = _base_record(run, t, loaded, m, keys[m.label], s)
        try:
            rows = _measure(m, loaded, t, texts, refs, s, run_dir, base, progress)
            append_records(run_dir, [{**rec, **env, **row} for row in rows])
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # one failing variant never stops the sweep
            logger.error("%s %s %s failed: %s", task, loaded.spec.name, m.label, e)
            err = e.message if isinstance(e, AccelbenchError) else f"{type(e).__name__}: {e}"
            append_records(run_dir, [{**rec, **env, "status": "error", "error": err,
                                      "traceback": traceback.format_exc(limit=5)}])  # fmt: skip
        gc.collect()
    df = records_for(run_dir)
    return df[df["key"].isin(set(keys.values()))].reset_index(drop=True) if len(df) else df


def _measure(method, loaded: LoadedModel, task, texts, refs, s: BenchmarkSettings, run_dir: Path,
             base: dict, progress: bool) -> list[dict]:  # fmt: skip
    """Quality then speed of one variant; returns one record fragment per scenario point."""
    import torch

    variant = method.apply(loaded)
    if method.label == BASELINE_METHOD:
        preds, metrics = base["predictions"], base["metrics"]
    else:
        preds = predict(variant.predictor, texts, task.kind, max_new_tokens=s.max_new_tokens, num_beams=s.num_beams,
                        progress=progress, desc=f"{method.label} predictions")  # fmt: skip
        metrics = score(task.kind, preds, refs, n_bootstrap=s.n_bootstrap)
        _save_predictions(_predictions_path(run_dir, task.name, loaded.spec.name, method.label), preds, metrics, s,
                          loaded.spec.key)  # fmt: skip
    primary = task.metric
    quality = {
        **metrics, "metric_name": primary, "metric": metrics[primary],
        "metric_ci_low": metrics[f"{primary}_ci_low"], "metric_ci_high": metrics[f"{primary}_ci_high"],
        "metric_delta": metrics[primary] - base["metrics"][primary], "agreement": agreement(preds, base["predictions"]),
        "n_eval": len(texts), "runtime": variant.runtime, "dtype": variant.dtype, "size_mb": round(variant.size_mb, 2),
        "threads": torch.get_num_threads(), "variant_details": json.dumps(variant.details) if variant.details else None,
    }  # fmt: skip
    rows = run_scenarios(variant.predictor, task.kind, texts, s, progress)
    variant.predictor.close()
    _add_percent_of_peak(rows, loaded, texts, variant.dtype, s, run_dir)
    return [{**quality, **row, "status": "ok", "error": None} for row in rows]


def _add_percent_of_peak(rows: list[dict], loaded: LoadedModel, texts, dtype: str, s: BenchmarkSettings,
                         run_dir: Path) -> None:  # fmt: skip
    """Achieved matrix-multiply GOP/s of each point and its share of this machine's peak for the dtype."""
    from .peak import measure_peaks, ops_per_sample, peak_for, percent_of_peak

    peaks = measure_peaks(run_dir)
    prefixed = [loaded.spec.prefix + t for t in texts] if loaded.spec.prefix else list(texts)
    ids = loaded.tokenizer(prefixed, truncation=True, max_length=s.max_length)["input_ids"]
    tokens_in = sum(map(len, ids)) / len(ids)
    for row in rows:
        tokens_out = row.get("tokens_per_s", 0.0) / row["throughput"] if row.get("tokens_per_s") else 0.0
        ops = ops_per_sample(loaded.model.config, loaded.family, tokens_in, tokens_out)
        achieved = ops * row["throughput"]
        row.update(tokens_in_mean=round(tokens_in, 2), gop_per_sample=ops / 1e9, achieved_gops=achieved / 1e9,
                   peak_gops=peak_for(dtype, peaks),
                   pct_of_peak=percent_of_peak(achieved, dtype, peaks))  # fmt: skip


def records_for(run_dir: str | Path, task: str | None = None) -> pd.DataFrame:
    """The latest record per measurement in a run, optionally for one task (for notebooks and reports).

    Rows of a model name whose recipe changed since (an older ``model_key``) stay in the file but not here:
    two sets of weights under one variant name would share a point on every plot.
    """
    df = read_records(run_dir)
    if df.empty:
        return df
    if task is not None:
        df = df[df["task"] == task]
    # a model retrained under a new recipe (same name, newer model_key) replaces its old rows
    if {"model", "model_key", "timestamp"} <= set(df.columns):
        newest = df.sort_values("timestamp", kind="stable").groupby(["task", "model"])["model_key"].last()
        keep = newest.reset_index().rename(columns={"model_key": "_newest"})
        df = df.merge(keep, on=["task", "model"], how="left")
        df = df[df["model_key"].isna() | (df["model_key"] == df["_newest"])].drop(columns="_newest")
    df = latest(df)
    fixed = set(df.loc[df["status"] == "ok", "key"])  # a failure that a rerun measured is history, not news
    return df[(df["status"] == "ok") | ~df["key"].isin(fixed)].reset_index(drop=True)


def resolve_run_dir(run_dir: str | Path | None) -> Path:
    """A notebook's run folder: the given one, else results/interactive (wherever the kernel started)."""
    from .config import DEFAULT_RESULTS_DIR

    return Path(run_dir) if run_dir else DEFAULT_RESULTS_DIR / "interactive"


def settings_with(settings: BenchmarkSettings | dict[str, Any] | None, **overrides: Any) -> BenchmarkSettings:
    """Benchmark settings from a notebook's parameters, with overrides (e.g. paddings)."""
    base = _settings(settings).to_dict()
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
