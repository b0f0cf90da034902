"""Per-unit sensitivity of an int8 method, and a mixed-precision search that keeps every attempt.

Like Intel Neural Compressor's fallback tuning and NNCF's mixed precision, but each variant tried is an
ordinary record (``run_experiment``: its key, metric, paired delta against fp32 and speed), so that the
attempts stay on notebook 04's frontier and a rerun resumes from what is recorded.

- ``layer_sensitivity``: for each unit (``methods.units``: ``layer.0`` ..., ``pooler``, ``classifier``;
  ``encoder.0`` ..., ``lm_head``), the variant that quantizes only that unit and the one that quantizes all
  but it. ``sensitivity`` = delta when it alone is kept fp32 minus delta when it alone is quantized: large
  when quantizing the unit hurts and keeping it fp32 helps.
- ``mixed_precision_search``: keep the k most sensitive units fp32, k = 0, 1, ... (the fastest first), until
  a variant keeps ``fraction`` of the fp32 metric (the floor of ``analysis.recommend``); the first that does
  is chosen. At least one unit stays quantized (k < number of units).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .analysis.recommend import DEFAULT_FRACTION, check_fraction
from .exceptions import ConfigError
from .experiment import run_experiment
from .measure.settings import BenchmarkSettings
from .methods import METHODS, get_method, option_names
from .methods.base import Method
from .methods.units import OPTION, UnitList, check_units
from .models import model_family, resolve_model
from .records import BASELINE_METHOD, OK_STATUS
from .tasks import get_task
from .training import load_model

logger = logging.getLogger(__name__)

# cheap measurement: the search compares quality; one batch point is enough to rank speeds
DEFAULT_SETTINGS: dict[str, Any] = {"batch_sizes": [32], "realtime": False, "repeats": 2, "min_time_s": 1.0}
VARIANTS_PER_RUN = 4  # variants built, and measured in turns, per run_experiment call (memory stays bounded)
BLOCK_KEYS = ("methods", "fraction", "n_eval", "max_attempts", "units", "settings")
SPEED_BATCH = 32  # the batch size whose throughput the tables show (else the largest measured)


def fallback_methods() -> list[str]:
    """The registered methods that take ``fp32_units``."""
    return [n for n in METHODS.names() if OPTION in option_names(METHODS.get(n))]


def _check_method(method: str | dict[str, Any] | Method) -> Method:
    """The method, refused when it takes no ``fp32_units`` or already names some."""
    m = get_method(method)
    if OPTION not in option_names(type(m)):
        raise ConfigError(
            f"method {m.name!r} has no {OPTION} option, so no unit can stay fp32",
            f"use one of: {', '.join(fallback_methods())}",
        )
    if getattr(m.opts, OPTION):
        raise ConfigError(
            f"method {m.label!r} already names {OPTION}; the search sets them",
            f"pass the method without {OPTION}",
        )
    return m


def _check_max_attempts(max_attempts: Any) -> None:
    if max_attempts is not None and (isinstance(max_attempts, bool) or not isinstance(max_attempts, int)
                                     or max_attempts <= 0):  # fmt: skip
        raise ConfigError(f"max_attempts must be a positive integer or None, got {max_attempts!r}",
                          "use max_attempts=None to try every k")  # fmt: skip


def _spec(m: Method, kept) -> dict[str, Any]:
    """The method entry of the variant that keeps ``kept`` fp32 (its other options as given)."""
    return {
        "name": m.name,
        **{k: v for k, v in m.options.items() if k != OPTION},
        OPTION: list(UnitList(kept)),
    }


def _settings(settings: BenchmarkSettings | dict[str, Any] | None) -> BenchmarkSettings:
    if isinstance(settings, BenchmarkSettings):
        return settings
    return BenchmarkSettings.from_dict(DEFAULT_SETTINGS if settings is None else settings)


def _prepare(task: str, model, method, units: list[str] | None, progress: bool):
    """Check everything before any work; (method, every unit of the model, the units asked for)."""
    m = _check_method(method)
    t = get_task(task)
    spec = resolve_model(model)
    family = model_family(spec)
    if family != t.family:
        raise ConfigError(f"model {spec.name!r} ({family}) cannot do task {task!r} ({t.kind})",
                          f"pair {t.kind} tasks with {t.family}-family models")  # fmt: skip
    m.check(family)
    loaded = load_model(spec, progress=progress)
    every = list(check_units([], loaded.model).names)
    if units is not None:
        if isinstance(units, str) or not units:
            raise ConfigError(f"units must be a non-empty list of unit names, got {units!r}",
                              f"pick from: {', '.join(every)}, or pass units=None for all")  # fmt: skip
        check_units(units, loaded.model)
    chosen = [u for u in every if u in set(units)] if units is not None else every
    return m, every, chosen


def _run(task, model, specs: list, run_dir, s: BenchmarkSettings, progress: bool) -> pd.DataFrame:
    """``run_experiment`` over ``specs`` in chunks; the current records of all of them."""
    frames = []
    for i in range(0, len(specs), VARIANTS_PER_RUN):
        chunk = specs[i : i + VARIANTS_PER_RUN]
        frames.append(run_experiment(task, model, chunk, run_dir, s, progress=progress))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _speed_batch(s: BenchmarkSettings) -> int:
    return SPEED_BATCH if SPEED_BATCH in s.batch_sizes else max(s.batch_sizes)


def _summary(records: pd.DataFrame, label: str, batch: int) -> dict[str, Any]:
    """Metric, delta, status and batch throughput of one variant's records (NaN where it failed)."""
    rows = records[records["method"] == label] if len(records) else records
    ok = rows[rows["status"] == OK_STATUS] if len(rows) else rows
    out: dict[str, Any] = {"status": rows["status"].iloc[0] if len(rows) else "missing",
                           "metric": math.nan, "delta": math.nan, "throughput": math.nan,
                           "speedup": math.nan}  # fmt: skip
    if not len(ok):
        return out
    first = ok.iloc[0]
    out.update(metric=float(first["metric"]), delta=float(first["metric_delta"]))
    has_point = {"scenario", "batch_size"} <= set(ok.columns)
    point = ok[(ok["scenario"] == "batch") & (ok["batch_size"] == batch)] if has_point else ok.iloc[0:0]
    if len(point):
        out["throughput"] = float(point.iloc[0]["throughput"])
        out["speedup"] = float(point.iloc[0].get("speedup_vs_fp32", math.nan))
    return out


def layer_sensitivity(
    task: str,
    model: str | dict[str, Any],
    method: str | dict[str, Any] | Method,
    run_dir: str | Path,
    settings: BenchmarkSettings | dict[str, Any] | None = None,
    units: list[str] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Per unit: the metric change against fp32 when only it is quantized and when only it stays fp32.

    Records fp32, the fully quantized variant and two variants per unit in ``run_dir``; returns one row per
    unit (model order) with ``delta_quantized_alone``, ``delta_fp32_alone``, ``sensitivity`` (their
    difference, the larger the more harmful), the throughput of each at batch 32 (or the largest batch size
    measured) and its speed-up against fp32 measured in the same rounds (comparable across the
    ``run_experiment`` calls, unlike throughputs on a busy machine), and the variant labels. ``attrs``: the fp32 metric, the full int8 variant's delta and label.
    """
    m, every, chosen = _prepare(task, model, method, units, progress)
    s = _settings(settings)
    full = get_method(_spec(m, []))
    alone = {u: get_method(_spec(m, [x for x in every if x != u])) for u in chosen}
    kept = {u: get_method(_spec(m, [u])) for u in chosen}
    specs = [BASELINE_METHOD, _spec(m, [])] + [
        _spec(m, v.opts.fp32_units) for u in chosen for v in (alone[u], kept[u])
    ]
    records = _run(task, model, specs, run_dir, s, progress)
    batch = _speed_batch(s)
    rows = []
    for u in chosen:
        a, k = _summary(records, alone[u].label, batch), _summary(records, kept[u].label, batch)
        rows.append({"unit": u, "delta_quantized_alone": a["delta"], "delta_fp32_alone": k["delta"],
                     "sensitivity": k["delta"] - a["delta"], "throughput_quantized_alone": a["throughput"],
                     "throughput_fp32_alone": k["throughput"], "speedup_quantized_alone": a["speedup"],
                     "speedup_fp32_alone": k["speedup"], "status_quantized_alone": a["status"],
                     "status_fp32_alone": k["status"], "variant_quantized_alone": alone[u].label,
                     "variant_fp32_alone": kept[u].label})  # fmt: skip
    table = pd.DataFrame(rows)
    base, whole = _summary(records, BASELINE_METHOD, batch), _summary(records, full.label, batch)
    table.attrs.update(task=task, method=m.label, batch_size=batch, fp32_metric=base["metric"],
                       fp32_throughput=base["throughput"], full_int8_delta=whole["delta"],
                       full_int8_speedup=whole["speedup"],
                       full_int8_variant=full.label, units=every)  # fmt: skip
    return table


def sensitivity_order(table: pd.DataFrame) -> list[str]:
    """Units, most harmful first: by ``sensitivity``, then by the harm of quantizing the unit alone; a
    unit whose variants failed (NaN) goes last; ties keep model order."""
    t = table.assign(_order=range(len(table)))
    t = t.assign(_s=t["sensitivity"].fillna(-math.inf), _a=t["delta_quantized_alone"].fillna(math.inf))
    return list(t.sort_values(["_s", "_a", "_order"], ascending=[False, True, True], kind="stable")["unit"])


def mixed_precision_search(
    task: str,
    model: str | dict[str, Any],
    method: str | dict[str, Any] | Method,
    run_dir: str | Path,
    settings: BenchmarkSettings | dict[str, Any] | None = None,
    fraction: float = DEFAULT_FRACTION,
    max_attempts: int | None = None,
    progress: bool = True,
    units: list[str] | None = None,
) -> pd.DataFrame:
    """Keep the k most sensitive units fp32, k = 0, 1, ..., until a variant meets the floor (``fraction`` of
    the fp32 metric on the same examples); every attempt is a record.

    ``units``: the candidates to keep fp32 (None: all); the others are always quantized. Returns one row per
    attempt (k, kept units, metric, delta, meets_floor, throughput and speed-up at batch 32, chosen); ``attrs``
    hold the floor, the chosen variant (None when no attempt met the floor) and ``message``, one sentence.
    """
    fraction = check_fraction(fraction)
    _check_max_attempts(max_attempts)
    m, every, _ = _prepare(task, model, method, units, progress)
    sens = layer_sensitivity(task, model, m, run_dir, settings, units, progress)
    order = sensitivity_order(sens)
    s = _settings(settings)
    batch, base = _speed_batch(s), sens.attrs["fp32_metric"]
    floor = fraction * base
    ks = list(range(min(len(order), len(every) - 1) + 1))[: max_attempts or None]
    rows, chosen = [], None
    for k in ks:
        v = get_method(_spec(m, order[:k]))
        records = run_experiment(task, model, [_spec(m, order[:k])], run_dir, s, progress=progress)
        r = _summary(records, v.label, batch)
        meets = not math.isnan(r["metric"]) and r["metric"] >= floor
        rows.append({"k": k, "fp32_units": ", ".join(order[:k]) or "(none)", "variant": v.label,
                     "metric": r["metric"], "delta": r["delta"], "meets_floor": meets,
                     "throughput": r["throughput"], "speedup": r["speedup"], "status": r["status"],
                     "chosen": False})  # fmt: skip
        if meets:
            rows[-1]["chosen"], chosen = True, v.label
            break
    table = pd.DataFrame(rows)
    if chosen:
        message = (f"{chosen} keeps {table['metric'].iloc[-1]:.4g} ≥ floor {floor:.4g} ({fraction:g} × fp32 "
                   f"{base:.4g}) with {len(rows) - 1} unit(s) fp32, after {len(rows)} attempt(s)")  # fmt: skip
    else:
        message = (f"no attempt of {len(rows)} met the floor {floor:.4g} ({fraction:g} × fp32 {base:.4g}); "
                   f"all are kept as records, none is chosen")  # fmt: skip
        logger.warning("mixed-precision search of %s on %s: %s", m.label, task, message)
    table.attrs.update(task=task, method=m.label, fraction=fraction, floor=floor, fp32_metric=base,
                       chosen=chosen, order=order, batch_size=batch, message=message)  # fmt: skip
    return table


def check_block(block: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validate a ``sensitivity:`` block (a sweep config's, or notebook 02's parameter) before any work.

    Keys: ``methods`` (required: methods that take ``fp32_units``), ``fraction`` (default 0.99), ``n_eval``,
    ``max_attempts``, ``units`` (candidates; default all), ``settings`` (benchmark settings over the light
    defaults). Returns it with defaults filled in; None stays None (no sensitivity pass).
    """
    if block is None or block is False:
        return None
    if not isinstance(block, dict):
        raise ConfigError(f"sensitivity must be a mapping, got {block!r}",
                          "write e.g. sensitivity: {methods: [dynamic-int8], fraction: 0.99, n_eval: 300}")  # fmt: skip
    unknown = sorted(set(block) - set(BLOCK_KEYS))
    if unknown:
        raise ConfigError(
            f"sensitivity: unknown key(s) {', '.join(unknown)}", f"use only: {', '.join(BLOCK_KEYS)}"
        )
    methods = block.get("methods")
    if not methods or isinstance(methods, (str, dict)) or not isinstance(methods, list):
        raise ConfigError(f"sensitivity: methods must be a non-empty list, got {methods!r}",
                          f"list some of: {', '.join(fallback_methods())}")  # fmt: skip
    for m in methods:
        _check_method(m)
    out = {"fraction": DEFAULT_FRACTION, "n_eval": None, "max_attempts": None, "units": None, "settings": {},
           **block}  # fmt: skip
    out["fraction"] = check_fraction(out["fraction"])
    _check_max_attempts(out["max_attempts"])
    block_settings(out, None)  # bad settings fail here
    return out


def block_settings(
    block: dict[str, Any], base: BenchmarkSettings | dict[str, Any] | None
) -> BenchmarkSettings:
    """The settings a block's variants are measured with: ``base`` (the sweep's or notebook's), the light speed
    protocol of ``DEFAULT_SETTINGS`` over it, then the block's ``n_eval`` and ``settings``."""
    d = base.to_dict() if isinstance(base, BenchmarkSettings) else dict(base or {})
    d.update(DEFAULT_SETTINGS)
    if block.get("n_eval") is not None:
        d["n_eval"] = block["n_eval"]
    d.update(block.get("settings") or {})
    return BenchmarkSettings.from_dict(d)


def run_block(task: str, model: str | dict[str, Any], run_dir: str | Path, block: dict[str, Any] | None,
              base: BenchmarkSettings | dict[str, Any] | None = None,
              progress: bool = True) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:  # fmt: skip
    """A ``sensitivity:`` block for one task and model: per method, (sensitivity table, search attempts)."""
    block = check_block(block)
    if block is None:
        return {}
    s = block_settings(block, base)
    out = {}
    for method in block["methods"]:
        m = get_method(method)
        table = layer_sensitivity(task, model, m, run_dir, s, block["units"], progress)
        search = mixed_precision_search(task, model, m, run_dir, s, block["fraction"], block["max_attempts"],
                                        progress, block["units"])  # fmt: skip
        out[m.label] = (table, search)
    return out


__all__ = [
    "BLOCK_KEYS",
    "DEFAULT_SETTINGS",
    "block_settings",
    "check_block",
    "fallback_methods",
    "layer_sensitivity",
    "mixed_precision_search",
    "run_block",
    "sensitivity_order",
]
