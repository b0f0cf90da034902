"""Choose on one split, confirm on another: the recommended variants and their baselines scored on a task's
``test_split`` after the choice was made on its evaluation split.

The rows (``split: test``) go to run_dir/confirmation.jsonl, apart from records.jsonl, so a frontier, a
recommendation or a table of the evaluation split never sees them; ``analysis.confirmation`` sets them beside
the evaluation split's numbers in summary.md and notebook 04.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .analysis.confirmation import CONFIRMATION_FILE, DEFAULT_OBJECTIVES, confirmation_targets
from .analysis.objectives import DEFAULT_BATCH_SIZE
from .analysis.recommend import DEFAULT_FRACTION
from .environment import collect_environment
from .exceptions import AccelbenchError, ConfigError, DataError
from .experiment import _base_record, _baseline, _quality, _scoring, _set_threads, _settings, variant_key
from .measure.quality import predict, score
from .measure.settings import BenchmarkSettings
from .methods import get_method
from .models import MODELS, apply_task_prefix, resolve_model
from .records import (
    BASELINE_METHOD,
    ERROR_STATUS,
    OK_STATUS,
    append_records,
    config_hash,
    read_current,
    recorded_keys,
)
from .tasks import get_task, load_task, task_inputs
from .training import load_model

logger = logging.getLogger(__name__)

TEST_SPLIT = "test"  # the ``split`` field of the rows


def _method_spec(row: pd.Series) -> str | dict:
    """The method of an eval record, rebuilt from its name and options."""
    name = row.get("method_name") if isinstance(row.get("method_name"), str) else row["method"]
    options = row.get("method_options")
    return {"name": name, **json.loads(options)} if isinstance(options, str) and options else name


def _settings_of(row: pd.Series) -> BenchmarkSettings:
    """The benchmark settings an eval record was measured with (its ``setting_*`` fields)."""
    fields = {}
    for k in BenchmarkSettings.__dataclass_fields__:
        v = row.get(f"setting_{k}")
        if isinstance(v, str) and v.startswith("["):
            v = json.loads(v)
        v = v.item() if hasattr(v, "item") else v  # numpy scalars from pandas
        if v is not None and not (isinstance(v, float) and pd.isna(v)):
            whole = (
                isinstance(v, float)
                and v.is_integer()
                and "float" not in str(BenchmarkSettings.__dataclass_fields__[k].type)
            )
            fields[k] = int(v) if whole else v
    return BenchmarkSettings.from_dict(fields)


def _model_of(name: str, row: pd.Series | None) -> str:
    """A registered model by name; a checkpoint given by path, by the path its records name."""
    if name in MODELS or row is None or not isinstance(row.get("model_path"), str):
        return name
    return row["model_path"]


def _test_data(t, n: int | None) -> tuple[list, list]:
    splits = load_task(t.name)
    if t.test_split not in splits:
        raise DataError(f"task {t.name!r}: test split {t.test_split!r} missing (found {', '.join(splits)})",
                        f"name the split's file under `files:` as `{t.test_split}: <path>`")  # fmt: skip
    d = splits[t.test_split]
    d = d.select(range(min(n, len(d)))) if n else d
    return task_inputs(t, d), list(d[t.reference_column])


def confirm_on_test(
    run_dir: str | Path,
    task: str,
    variants: Sequence[str],
    settings: BenchmarkSettings | dict[str, Any] | None = None,
    progress: bool = True,
    force: bool = False,
) -> pd.DataFrame:
    """Evaluate ``variants`` (``model:method`` names from the run's ok records of ``task``, typically the
    recommended ones) and their baselines (each model's fp32, a student's teacher's fp32) on the task's
    ``test_split``, with the task's metric and the same paired test against each model's fp32.

    Rows (``split: test``) are appended to run_dir/confirmation.jsonl, apart from records.jsonl: frontiers and
    recommendations never see them. ``settings`` default to those of the first variant's record (what
    generation used); a row already recorded as ok is kept unless ``force``. A variant that fails is recorded
    with its error. Returns the current confirmation rows of these variants and their baselines.
    """
    t = get_task(task)
    if not t.test_split:
        raise ConfigError(f"task {task!r} names no test split to confirm on",
                          "add `test_split: test` to the task and its file under `files:`")  # fmt: skip
    run_dir = Path(run_dir)
    current = read_current(run_dir, task)
    ok = current[current["status"] == OK_STATUS] if "status" in current.columns else current
    found = {v: ok[ok["variant"] == v] for v in variants} if len(ok) else {v: ok for v in variants}
    missing = [v for v, rows in found.items() if rows.empty]
    if missing or not variants:
        known = sorted(ok["variant"].unique()) if len(ok) else []
        raise DataError(f"task {task!r}: no ok record of {', '.join(missing) or 'any variant'} in {run_dir}",
                        f"confirm variants the run measured: {', '.join(known) or 'none yet'}")  # fmt: skip
    rows = {v: r.iloc[0] for v, r in found.items()}
    s = _settings(settings) if settings is not None else _settings_of(rows[variants[0]])
    texts, refs = _test_data(t, s.n_eval)  # fails before any model is loaded
    plan: dict[str, dict[str, Any]] = {}  # model -> {method label: method}, fp32 first
    sources: dict[str, pd.Series] = {}
    for row in rows.values():
        models = [row["model"]] + ([row["teacher"]] if isinstance(row.get("teacher"), str) else [])
        for model in models:
            plan.setdefault(model, {BASELINE_METHOD: get_method(BASELINE_METHOD)})
        method = get_method(_method_spec(row))
        plan[row["model"]][method.label] = method
        sources.setdefault(row["model"], row)
    path, env = run_dir / CONFIRMATION_FILE, collect_environment()
    done = set() if force else recorded_keys(path, status=OK_STATUS)
    keys: set[str] = set()
    _set_threads(s)
    for model, methods in plan.items():
        spec = resolve_model(_model_of(model, sources.get(model)))
        loaded = dataclasses.replace(
            apply_task_prefix(load_model(spec, progress=progress), t), device=s.device
        )
        split = {"split": TEST_SPLIT, "split_name": t.test_split}
        mkey = {m.label: config_hash({"eval_key": variant_key(task, loaded.spec, m, s, _scoring(t, loaded)), **split})
                for m in methods.values()}  # fmt: skip
        keys |= set(mkey.values())
        todo = [m for m in methods.values() if mkey[m.label] not in done]
        if not todo:
            continue
        base = _baseline(loaded, t, texts, refs, s, run_dir, progress, split=t.test_split)
        for m in todo:
            rec = {**_base_record(run_dir.name, t, loaded, m, mkey[m.label], s), **env, **split}
            try:
                if m.label == BASELINE_METHOD:
                    preds, metrics = base["predictions"], base["metrics"]
                else:
                    variant = m.apply(loaded)
                    try:
                        preds = predict(variant.predictor, texts, t.kind, max_new_tokens=s.max_new_tokens,
                                        num_beams=s.num_beams, progress=progress, desc=f"{m.label} on {t.test_split}")  # fmt: skip
                    finally:
                        variant.predictor.close()
                    metrics = score(t.kind, preds, refs, s.n_bootstrap, t.metric)
                rec |= _quality(t, metrics, preds, base["predictions"], refs, s, m.label == BASELINE_METHOD)
                rec |= {"status": OK_STATUS, "error": None}
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # one failing variant never stops the confirmation
                rec |= {"status": ERROR_STATUS, "error": e.message if isinstance(e, AccelbenchError)
                        else f"{type(e).__name__}: {e}"}  # fmt: skip
                logger.error("%s on %s: %s", rec["variant"], t.test_split, rec["error"])
            append_records(path, [rec])
        gc.collect()
    df = read_current(path, task)
    return df[df["key"].isin(keys)].reset_index(drop=True) if len(df) else df


def confirm_recommended(
    run_dir: str | Path,
    task: str,
    fraction: float = DEFAULT_FRACTION,
    settings: BenchmarkSettings | dict[str, Any] | None = None,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> pd.DataFrame:
    """What a sweep runs after its last experiment: the task's recommendation per objective, chosen on the
    evaluation split, confirmed on its test split (``confirm_on_test``). An empty frame when the task names no
    test split or has no recommended variant."""
    if not get_task(task).test_split:
        return pd.DataFrame()
    targets = confirmation_targets(read_current(run_dir), task, fraction, objectives, batch_size)
    if not targets:
        logger.info("task %s: no recommended variant to confirm on its test split", task)
        return pd.DataFrame()
    return confirm_on_test(run_dir, task, targets, settings, progress)


__all__ = ["TEST_SPLIT", "confirm_on_test", "confirm_recommended"]
