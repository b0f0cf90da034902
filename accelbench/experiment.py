"""One experiment: a task, a model and its methods; the quality and speed of each variant, recorded.

This is what the notebooks call. Each (task, model, method, settings) is keyed by a config hash; a key
already recorded as ``ok`` in the run is skipped, so an interrupted sweep resumes where it stopped.
A method that fails is recorded with its error and the next one runs.

The test-split confirmation (``accelbench.confirm``) reuses the quality helpers here.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd

from .devices import CPU, gpu_environment, is_cuda
from .environment import collect_environment, cores_available
from .exceptions import AccelbenchError, ConfigError
from .measure.gpu_peak import measure_cuda_peaks
from .measure.limits import VariantTimeout, time_limit
from .measure.opprofile import profile_ops, record_fields
from .measure.peak import measure_peaks, ops_per_sample, peak_for, percent_of_peak
from .measure.quality import DEFAULT_METRIC, agreement, paired_delta, predict, resolve_metric, score
from .measure.scenarios import TIMEOUT, add_speedups, run_interleaved
from .measure.settings import BenchmarkSettings
from .methods import get_method
from .methods.base import UNAVAILABLE_POLICIES
from .models import LoadedModel, apply_task_prefix, check_fits_task, model_family, resolve_model
from .records import (
    BASELINE_METHOD,
    ERROR_STATUS,
    OK_STATUS,
    SKIPPED_STATUS,
    TIMEOUT_STATUS,
    append_records,
    config_hash,
    read_current,
    recorded_keys,
)
from .tasks import eval_split, get_task, task_inputs
from .training import load_model
from .version import __version__

logger = logging.getLogger(__name__)

OP_PROFILE_BATCH = 32  # the batch whose speed record carries the variant's operator shares


def check_methods(
    methods: list, family: str, unavailable: str = "error", device: str = CPU
) -> dict[str, str]:
    """``Method.check`` for each method: ``{label: reason}`` of those skipped on this machine."""
    return {m.label: reason for m in methods if (reason := m.check(family, unavailable, device))}


def variant_name(model: str, method_label: str, device: str = CPU) -> str:
    """What records, tables and plots call a variant: ``model:method``, and its device where not the CPU."""
    return f"{model}:{method_label}" + ("" if device == CPU else f" ({device})")


def _settings(settings: BenchmarkSettings | dict[str, Any] | None) -> BenchmarkSettings:
    return settings if isinstance(settings, BenchmarkSettings) else BenchmarkSettings.from_dict(settings)


def variant_key(task: str, spec, method, settings: BenchmarkSettings, scoring: dict | None = None) -> str:
    """The record key; ``scoring`` (a task's non-default metric and applied prefix) only when set, so the keys
    of tasks without them stay as they were."""
    return config_hash({"task": task, "model": spec.name, "model_key": spec.key, "base": spec.base,
                        "method": method.label, "options": method.options, "settings": settings.key_dict(),
                        **({"scoring": scoring} if scoring else {})})  # fmt: skip


def _scoring(task, loaded: LoadedModel) -> dict:
    """What changes a task's numbers beyond data and model: a metric other than the kind's default, and the
    task's prefix where the model reads it."""
    metric, prefix = resolve_metric(task.kind, task.metric), getattr(task, "prefix", None)
    out = {"metric": metric} if metric != DEFAULT_METRIC[task.kind] else {}
    return out | ({"prefix": prefix} if prefix and loaded.spec.prefix == prefix else {})


def _predictions_path(run_dir: Path, task: str, model: str, method: str, split: str | None = None,
                      device: str = CPU) -> Path:  # fmt: skip
    """Where a variant's predictions are kept; a GPU's apart from the CPU's (fp32 on each is its own)."""
    safe = model.replace("/", "--")
    on = "" if device == CPU else f"__{device.replace(':', '')}"
    return Path(run_dir) / "predictions" / f"{task}__{safe}__{method}{on}{f'__{split}' if split else ''}.json"


def _set_threads(settings: BenchmarkSettings) -> None:
    if settings.threads:
        import torch

        cores = cores_available()
        if cores and settings.threads > cores:  # allowed (a user may study it), but never silently
            logger.warning("threads: %d on %d available cores: the threads take turns on the cores, so every "
                           "figure is slower and noisier than with threads <= %d", settings.threads, cores,
                           cores)  # fmt: skip
        torch.set_num_threads(settings.threads)


def _baseline(loaded: LoadedModel, task, texts, refs, s: BenchmarkSettings, run_dir: Path, progress: bool,
              split: str | None = None) -> dict:  # fmt: skip
    """fp32 predictions and metric, cached in the run so every notebook compares with the same baseline."""
    path = _predictions_path(run_dir, task.name, loaded.spec.name, BASELINE_METHOD, split, loaded.device)
    metric = resolve_metric(task.kind, task.metric)
    if path.exists():
        data = json.loads(path.read_text())
        if (data.get("n") == len(texts) and data.get("settings_key") == _quality_key(s, loaded.spec.prefix)
                and data.get("model_key") == loaded.spec.key):  # fmt: skip
            if metric not in data["metrics"]:  # the task's metric changed: rescore, do not predict again
                data["metrics"] = score(task.kind, data["predictions"], refs, s.n_bootstrap, metric)
            return data  # a retrained model (new recipe, same name) gets new baseline predictions
    variant = get_method(BASELINE_METHOD).apply(loaded)
    try:
        preds = predict(variant.predictor, texts, task.kind, max_new_tokens=s.max_new_tokens, num_beams=s.num_beams,
                        progress=progress, desc="fp32 baseline predictions")  # fmt: skip
    finally:
        variant.predictor.close()
    metrics = score(task.kind, preds, refs, n_bootstrap=s.n_bootstrap, metric=metric)
    return _save_predictions(path, preds, metrics, s, loaded.spec.key, loaded.spec.prefix)


def _quality_key(s: BenchmarkSettings, prefix: str = "") -> str:
    return config_hash([s.n_eval, s.max_new_tokens, s.num_beams, s.max_length, *([prefix] if prefix else [])])


def _save_predictions(path: Path, preds, metrics, s: BenchmarkSettings, model_key: str | None = None,
                      prefix: str = "") -> dict:  # fmt: skip
    data = {"n": len(preds), "settings_key": _quality_key(s, prefix), "model_key": model_key, "metrics": metrics,
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
        "train_steps": info.get("steps"), "train_wall_s": info.get("wall_s"), "train_budget": info.get("budget"),
        "train_threads": info.get("threads"), "train_seed": info.get("seed"),
        "train_weights_sha256": info.get("weights_sha256"),
        "method": method.label, "method_name": method.name,
        "variant": variant_name(loaded.spec.name, method.label, s.device), "device": s.device,
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
    unavailable: str = "error",
) -> pd.DataFrame:
    """Evaluate and benchmark ``methods`` of ``model`` on ``task``; append records to run_dir/records.jsonl.

    Returns this experiment's current records (already recorded ones included) as a DataFrame.
    Bad input (unknown task/model/method, a method that does not apply) raises before any work starts.
    A method this machine cannot run (no bf16, no C++ compiler, a runtime without that precision) raises
    too, unless ``unavailable="skip"`` (what sweeps use): then it is recorded as skipped, with the reason.
    """
    if unavailable not in UNAVAILABLE_POLICIES:
        raise ConfigError(f"unavailable must be one of {', '.join(UNAVAILABLE_POLICIES)}, got {unavailable!r}",
                          "use unavailable='skip' to record such variants as skipped")  # fmt: skip
    s = _settings(settings)
    t = get_task(task)
    spec = resolve_model(model)
    resolved = [get_method(m) for m in (methods or [BASELINE_METHOD])]
    if len({m.label for m in resolved}) < len(resolved):
        raise ConfigError("the same method is listed twice", "list each method (with its options) once")
    family = model_family(spec)
    if family != t.family:
        raise ConfigError(f"model {spec.name!r} ({family}) cannot do task {task!r} ({t.kind})",
                          f"pair {t.kind} tasks with {t.family}-family models")  # fmt: skip
    skipped = check_methods(resolved, family, unavailable, s.device)
    run_dir = Path(run_dir)
    run = run_dir.name
    data = eval_split(task, s.n_eval)  # fails early on missing data
    texts, refs = task_inputs(t, data), list(data[t.reference_column])
    loaded = dataclasses.replace(apply_task_prefix(load_model(spec, progress=progress), t), device=s.device)
    check_fits_task(loaded, t)
    skipped.update(check_methods(resolved, loaded.family, unavailable, s.device))
    _set_threads(s)
    env = collect_environment() | (gpu_environment(s.device) if is_cuda(s.device) else {})
    done = set() if force else recorded_keys(run_dir, status=OK_STATUS)
    keys = {m.label: variant_key(task, loaded.spec, m, s, _scoring(t, loaded)) for m in resolved}
    for m in resolved:
        if m.label in skipped and keys[m.label] not in done:
            logger.warning("%s %s %s skipped: %s", task, loaded.spec.name, m.label, skipped[m.label])
            append_records(run_dir, [{**_base_record(run, t, loaded, m, keys[m.label], s), **env,
                                      "status": SKIPPED_STATUS, "error": skipped[m.label]}])  # fmt: skip
    todo = [m for m in resolved if keys[m.label] not in done and m.label not in skipped]
    for m in resolved:
        if keys[m.label] in done:
            logger.info(
                "%s %s %s: already recorded (key %s), skipped", task, loaded.spec.name, m.label, keys[m.label]
            )
    base = _baseline(loaded, t, texts, refs, s, run_dir, progress) if todo else None
    built: dict[str, _Built] = {}
    for m in todo:
        rec = {**_base_record(run, t, loaded, m, keys[m.label], s), **env}
        b = _Built(m, rec)
        try:
            _build(b, loaded, t, texts, refs, s, run_dir, base, progress)
            built[m.label] = b
        except (KeyboardInterrupt, SystemExit):
            raise
        except VariantTimeout:
            _fail(run_dir, b, TIMEOUT_STATUS, f"stopped after {b.elapsed:.0f} s: over time_limit_s={s.time_limit_s:g} "
                  f"while {b.phase}")  # fmt: skip
        except Exception as e:  # one failing variant never stops the sweep
            err = e.message if isinstance(e, AccelbenchError) else f"{type(e).__name__}: {e}"
            _fail(run_dir, b, ERROR_STATUS, err, traceback.format_exc(limit=5))
    if built:
        _measure_speed(built, loaded, t, texts, s, run_dir, keys, progress)
    gc.collect()
    df = read_current(run_dir)
    return df[df["key"].isin(set(keys.values()))].reset_index(drop=True) if len(df) else df


class _Built:
    """A variant on its way to its records: its method, record stub, predictor, quality and times."""

    def __init__(self, method, rec: dict) -> None:
        self.method, self.rec = method, rec
        self.variant = None
        self.quality: dict = {}
        self.times = {"time_apply_s": 0.0, "time_quality_s": 0.0, "time_speed_s": 0.0}
        self.phase = "building"

    @property
    def elapsed(self) -> float:
        return sum(self.times.values())

    def close(self) -> None:
        if self.variant is not None:
            self.variant.predictor.close()
            self.variant = None


def _fail(run_dir: Path, b: _Built, status: str, error: str, tb: str | None = None) -> None:
    log = logger.warning if status == TIMEOUT_STATUS else logger.error
    log("%s %s: %s", b.rec["variant"], status, error)
    b.close()
    append_records(run_dir, [{**b.rec, **_times(b), "status": status, "error": error,
                              **({"traceback": tb} if tb else {})}])  # fmt: skip


def _times(b: _Built) -> dict:
    return {**{k: round(v, 2) for k, v in b.times.items()}, "elapsed_s": round(b.elapsed, 2)}


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _build(b: _Built, loaded: LoadedModel, task, texts, refs, s: BenchmarkSettings, run_dir: Path, base: dict,
           progress: bool) -> None:  # fmt: skip
    """Apply the method and measure its quality, within the variant's time limit."""
    import torch

    method, limit = b.method, s.time_limit_s
    rss0, t0 = _rss_mb(), time.perf_counter()
    try:
        with time_limit(limit, b.rec["variant"]):
            b.variant = method.apply(loaded)
            b.times["time_apply_s"] = time.perf_counter() - t0
            b.phase = "measuring quality"
            t1 = time.perf_counter()
            if method.label == BASELINE_METHOD:
                preds, metrics = base["predictions"], base["metrics"]
            else:
                preds = predict(b.variant.predictor, texts, task.kind, max_new_tokens=s.max_new_tokens,
                                num_beams=s.num_beams, progress=progress, desc=f"{method.label} predictions")  # fmt: skip
                metrics = score(task.kind, preds, refs, s.n_bootstrap, task.metric)
            b.times["time_quality_s"] = time.perf_counter() - t1
            b.variant.predictor.park()  # its threads must not slow the variants built after it
    finally:
        if b.phase == "building":
            b.times["time_apply_s"] = time.perf_counter() - t0
        elif not b.times["time_quality_s"]:
            b.times["time_quality_s"] = time.perf_counter() - t0 - b.times["time_apply_s"]
    # off the main thread the limit can only be checked afterwards
    if limit is not None and b.elapsed > limit:
        raise VariantTimeout(f"{b.rec['variant']}: {b.elapsed:.0f} s")
    if method.label != BASELINE_METHOD:
        path = _predictions_path(run_dir, task.name, loaded.spec.name, method.label, device=loaded.device)
        _save_predictions(path, preds, metrics, s, loaded.spec.key)
    v = b.variant
    b.quality = {
        **_quality(task, metrics, preds, base["predictions"], refs, s, method.label == BASELINE_METHOD),
        "runtime": v.runtime, "dtype": v.dtype, "size_mb": round(v.size_mb, 2),
        "variant_rss_mb": round(_rss_mb() - rss0, 1),
        "threads": torch.get_num_threads(), "variant_details": json.dumps(v.details) if v.details else None,
    }  # fmt: skip


def _quality(task, metrics: dict, preds: list, base_preds: list, refs: list, s: BenchmarkSettings,
             is_baseline: bool) -> dict:  # fmt: skip
    """A record's quality fields: every metric, the task's primary one as ``metric``, the paired test against
    the model's fp32 on the same examples, and the agreement with it."""
    primary = resolve_metric(task.kind, task.metric)
    return {
        **metrics, "metric_name": primary, "metric": metrics[primary],
        "metric_ci_low": metrics[f"{primary}_ci_low"], "metric_ci_high": metrics[f"{primary}_ci_high"],
        **({"metric_delta": 0.0} if is_baseline else
           paired_delta(task.kind, primary, preds, base_preds, refs, n_bootstrap=s.n_bootstrap, seed=s.seed)),
        "agreement": agreement(preds, base_preds), "n_eval": len(refs),
    }  # fmt: skip


def _measure_speed(built: dict[str, _Built], loaded: LoadedModel, task, texts, s: BenchmarkSettings, run_dir: Path,
                   keys: dict[str, str], progress: bool) -> None:  # fmt: skip
    """The speed rounds of every built variant, taking turns with the model's fp32 (a reference when fp32 is
    not among them), then one record per point; a variant that fails or runs out of time here is recorded so."""
    predictors = {label: b.variant.predictor for label, b in built.items()}
    reference = None
    if BASELINE_METHOD not in built:  # pair every speed-up with an fp32 measured in the same rounds
        try:
            reference = get_method(BASELINE_METHOD).apply(loaded)
            predictors[BASELINE_METHOD] = reference.predictor
            logger.info(
                "fp32 joins the speed rounds as the reference of the paired speed-ups (not recorded again)"
            )
        except Exception as e:  # the speed-ups then come from fp32's earlier records, unpaired
            logger.warning("no fp32 reference for the speed rounds: %s", e)
    now = time.perf_counter()
    deadlines = {lb: now + s.time_limit_s - b.elapsed for lb, b in built.items()} if s.time_limit_s else {}
    result = run_interleaved(predictors, task.kind, texts, s, progress, deadlines)
    base_rows = None
    if BASELINE_METHOD not in result.rows:
        old = read_current(run_dir)
        if len(old) and "key" in old.columns and BASELINE_METHOD in keys:
            base_rows = old[(old["key"] == keys[BASELINE_METHOD]) & (old["status"] == OK_STATUS)].to_dict(
                "records"
            )
    add_speedups(result.rows, BASELINE_METHOD if BASELINE_METHOD in result.rows else None, base_rows)
    if reference is not None:
        reference.predictor.close()
    for label, b in built.items():
        b.times["time_speed_s"] = result.spent.get(label, 0.0)
        if label in result.failed:
            status = TIMEOUT_STATUS if result.failed[label] == TIMEOUT else ERROR_STATUS
            err = (f"stopped after {b.elapsed:.0f} s: over time_limit_s={s.time_limit_s:g} during the speed rounds"
                   if status == TIMEOUT_STATUS else result.failed[label])  # fmt: skip
            _fail(run_dir, b, status, err)
            continue
        rows = result.rows[label]
        if s.op_profile:
            b.times["time_speed_s"] += _add_op_profile(rows, b.variant.predictor, task, texts, s)
        b.close()
        try:
            _add_percent_of_peak(rows, loaded, texts, b.quality["dtype"], s, run_dir)
        except Exception as e:  # a peak that cannot be measured leaves the figure empty, not the record
            logger.warning("percent of peak for %s not computed: %s", label, e)
        append_records(run_dir, [{**b.rec, **b.quality, **row, **_times(b), "status": OK_STATUS, "error": None}
                                 for row in rows])  # fmt: skip


def _add_op_profile(rows: list[dict], predictor, task, texts, s: BenchmarkSettings) -> float:
    """The variant's operator shares (``measure.opprofile``) on its batch-32 speed record (else its largest
    batch's), profiled after the speed rounds so that the profiler never slows them; returns its seconds."""
    batch = [r for r in rows if r.get("scenario") == "batch" and r.get("padding") == s.paddings[0]]
    if not batch:
        return 0.0
    sizes = [r["batch_size"] for r in batch]
    bs = OP_PROFILE_BATCH if OP_PROFILE_BATCH in sizes else max(sizes)
    gen = {"max_new_tokens": s.max_new_tokens, "num_beams": s.num_beams} if task.kind == "seq2seq" else {}
    t0 = time.perf_counter()
    # one warm-up call, not profile_ops' two: the speed rounds have just warmed the variant up
    profile = profile_ops(predictor, task.kind, texts, batch_size=bs, calls=1 if task.kind == "seq2seq" else 3,
                          warmup=1, padding=s.paddings[0], max_length=s.max_length, **gen)  # fmt: skip
    for r in batch:
        if r["batch_size"] == bs:
            r.update(record_fields(profile))
    return time.perf_counter() - t0


def _add_percent_of_peak(rows: list[dict], loaded: LoadedModel, texts, dtype: str, s: BenchmarkSettings,
                         run_dir: Path) -> None:  # fmt: skip
    """Achieved matrix-multiply GOP/s of each point and its share of this machine's peak for the dtype."""
    peaks = measure_cuda_peaks(run_dir, s.device) if is_cuda(s.device) else measure_peaks(run_dir)
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
