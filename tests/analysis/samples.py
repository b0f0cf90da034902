"""Small hand-made records of one task (five variants, a stale duplicate, a failure) for the analysis tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

# variant -> (metric, ci_low, ci_high, p90 ms, {batch size: throughput}, size MB)
VARIANTS = {
    "minilm-sst2:fp32": (0.905, 0.885, 0.924, 10.0, {8: 60.0, 32: 100.0}, 90.0),
    "minilm-sst2:bf16": (0.904, 0.884, 0.923, 8.0, {32: 150.0}, 45.0),
    "minilm-sst2:dynamic-int8": (0.901, 0.881, 0.920, 5.0, {32: 210.0}, 25.0),
    "minilm-sst2:static-int8": (0.880, 0.860, 0.900, 6.0, {8: 190.0, 16: 220.0}, 24.0),
    "tiny-sst2:fp32": (0.850, 0.828, 0.871, 2.0, {32: 400.0}, 10.0),
}


def _row(variant: str, scenario: str, batch_size: int, **values) -> dict:
    model, method = variant.split(":")
    metric, low, high, p90, _, size = VARIANTS[variant]
    row = {
        "run": "unit",
        "key": f"k-{variant}",
        "status": "ok",
        "error": None,
        "timestamp": "2025-01-01T00:00:00",
        "task": "sst2",
        "task_kind": "classification",
        "model": model,
        "model_family": "bert",
        "method": method,
        "variant": variant,
        "runtime": "pytorch",
        "scenario": scenario,
        "batch_size": batch_size,
        "padding": "dynamic",
        "metric_name": "accuracy",
        "metric": metric,
        "metric_ci_low": low,
        "metric_ci_high": high,
        "metric_delta": metric - 0.905,
        "agreement": 0.99,
        "latency_ms_p50": np.nan,
        "latency_ms_p90": np.nan,
        "latency_ms_p99": np.nan,
        "throughput": np.nan,
        "size_mb": size,
        "peak_rss_mb": 300.0,
    }
    row.update(values)
    return row


def make_records() -> pd.DataFrame:
    rows = []
    for variant, (_, _, _, p90, batches, _) in VARIANTS.items():
        rows.append(
            _row(
                variant,
                "realtime",
                1,
                latency_ms_p50=p90 * 0.8,
                latency_ms_p90=p90,
                latency_ms_p99=p90 * 1.2,
                throughput=1000 / p90,
            )
        )
        for batch, throughput in batches.items():
            rows.append(
                _row(variant, "batch", batch, latency_ms_p90=1000 * batch / throughput, throughput=throughput)
            )
    # a stale, impossibly fast bf16 row that a later rerun of the same key replaced
    stale = _row("minilm-sst2:bf16", "realtime", 1, latency_ms_p50=0.5, latency_ms_p90=1.0, throughput=1000.0)
    rows.insert(0, stale)
    # a failed variant: no metrics, only the error
    rows.append(
        {
            "run": "unit",
            "key": "k-gptq",
            "status": "error",
            "error": "RuntimeError: no int4 kernel\nTraceback ...",
            "task": "sst2",
            "model": "minilm-sst2",
            "method": "gptq-int4",
            "variant": "minilm-sst2:gptq-int4",
        }
    )
    return pd.DataFrame(rows)


# variant -> (p-value, significant) of its metric's paired test against its model's fp32
DELTA_TESTS = {
    "minilm-sst2:bf16": (0.81, False),
    "minilm-sst2:dynamic-int8": (0.62, False),
    "minilm-sst2:static-int8": (0.003, True),
}
SPEED_COLUMNS = ("throughput", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99")


def with_intervals(
    records: pd.DataFrame, spread: float | dict[str, float] = 0.05, repeats: int = 6, level: float = 0.969
) -> pd.DataFrame:
    """``records`` as a benchmark with repeated rounds writes them (the fields older records lack).

    Every speed figure gets an interval of +-``spread`` (a share; a dict gives it per variant), each speed
    row the paired speed-up against its model's fp32 at the same point, each variant its delta test and
    its timings.
    """
    out = records.copy()
    share = out["variant"].map(spread if isinstance(spread, dict) else lambda v: spread).fillna(0.05)
    for column in SPEED_COLUMNS:
        out[f"{column}_ci_low"] = out[column] * (1 - share)
        out[f"{column}_ci_high"] = out[column] * (1 + share)
    ok = out["status"] == "ok"
    out.loc[ok, "repeats"] = repeats
    out.loc[ok, "speed_ci_level"] = level
    point = ["model", "scenario", "batch_size", "padding"]
    fp32 = out[ok & (out["method"] == "fp32")].drop_duplicates(point, keep="last")
    base = out[point].merge(fp32[[*point, "throughput"]], on=point, how="left")["throughput"].to_numpy()
    out["speedup_vs_fp32"] = out["throughput"] / base
    out["speedup_vs_fp32_ci_low"] = out["speedup_vs_fp32"] * (1 - share / 2)
    out["speedup_vs_fp32_ci_high"] = out["speedup_vs_fp32"] * (1 + share / 2)
    out["speedup_paired"] = True
    tests = out["variant"].map(DELTA_TESTS)
    out["metric_delta_p"] = tests.map(lambda t: t[0] if isinstance(t, tuple) else np.nan)
    out["metric_delta_significant"] = tests.map(lambda t: t[1] if isinstance(t, tuple) else None)
    out["metric_delta_test"] = np.where(tests.notna(), "mcnemar-exact", None)
    out["metric_delta_ci_low"] = out["metric_delta"] - 0.01
    out["metric_delta_ci_high"] = out["metric_delta"] + 0.01
    out["time_apply_s"], out["time_quality_s"], out["time_speed_s"] = 2.0, 10.0, 30.0
    out["elapsed_s"] = 45.0
    return out


def make_records_with_intervals(**kwargs) -> pd.DataFrame:
    return with_intervals(make_records(), **kwargs)


CROWDED_METHODS = (
    "fp32",
    "bf16",
    "dynamic-int8",
    "static-int8",
    "ort-fp32",
    "ort-int8",
    "ct2-int8",
    "ct2-bf16",
)


def make_crowded_records(seed: int = 0, busy_every: int = 5) -> pd.DataFrame:
    """Two models (a teacher and its student) x eight methods, their points clustered within a few per cent
    of each other on every axis, with intervals, paired speed-ups, delta tests and some busy points: what
    makes labels collide. Batch sizes 1, 8 and 32, both paddings for fp32."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, scale, base_metric in (("teacher-sst2", 1.0, 0.905), ("teacher-sst2-l3", 1.8, 0.880)):
        for i, method in enumerate(CROWDED_METHODS):
            variant = f"{model}:{method}"
            metric = base_metric - (0 if method == "fp32" else rng.uniform(0.0, 0.012))
            p90 = 10.0 / scale * (1.0 if method == "fp32" else rng.uniform(0.45, 0.6))
            size = 90.0 / scale * (1.0 if method == "fp32" else rng.uniform(0.25, 0.35))
            common = {
                "run": "unit", "key": f"k-{variant}", "status": "ok", "error": None, "task": "sst2",
                "task_kind": "classification", "model": model, "method": method, "variant": variant,
                "teacher": "teacher-sst2" if model != "teacher-sst2" else None, "runtime": "pytorch",
                "metric_name": "accuracy", "metric": metric, "metric_ci_low": metric - 0.02,
                "metric_ci_high": metric + 0.02, "metric_delta": metric - base_metric, "agreement": 0.99,
                "metric_delta_p": None if method == "fp32" else rng.uniform(0.001, 0.9),
                "metric_delta_test": None if method == "fp32" else "mcnemar-exact",
                "metric_delta_ci_low": metric - base_metric - 0.01, "metric_delta_ci_high": metric - base_metric + 0.01,
                "size_mb": size, "peak_rss_mb": 300.0 + 10 * i, "repeats": 6, "speed_ci_level": 0.969,
                "busy_threshold": 0.25,
            }  # fmt: skip
            points = [("realtime", 1, "dynamic")] + [("batch", b, "dynamic") for b in (1, 8, 32)]
            if method == "fp32":
                points += [("batch", b, "max_length") for b in (1, 8, 32)]
            for scenario, batch, padding in points:
                thr = (1000.0 / p90) * (batch**0.6) * (0.5 if padding == "max_length" else 1.0)
                share = (
                    float(rng.uniform(0.3, 0.8))
                    if (len(rows) % busy_every == 0)
                    else float(rng.uniform(0, 0.05))
                )
                speedup = (10.0 / scale) / p90
                rows.append(
                    common
                    | {
                        "scenario": scenario, "batch_size": batch, "padding": padding,
                        "latency_ms_p50": p90 * 0.8, "latency_ms_p90": p90, "latency_ms_p99": p90 * 1.3,
                        "throughput": thr, "throughput_ci_low": thr * 0.95, "throughput_ci_high": thr * 1.05,
                        "latency_ms_p50_ci_low": p90 * 0.78, "latency_ms_p50_ci_high": p90 * 0.82,
                        "latency_ms_p90_ci_low": p90 * 0.97, "latency_ms_p90_ci_high": p90 * 1.03,
                        "latency_ms_p99_ci_low": p90 * 1.25, "latency_ms_p99_ci_high": p90 * 1.35,
                        "speedup_vs_fp32": speedup, "speedup_vs_fp32_ci_low": speedup * 0.97,
                        "speedup_vs_fp32_ci_high": speedup * 1.03, "speedup_paired": True,
                        "busy_other_cpu_share": share, "busy": share > 0.25,
                        "pct_of_peak": 10 + 5 * i, "achieved_gops": 20.0 + i, "peak_gops": 200.0,
                    }
                )  # fmt: skip
    return pd.DataFrame(rows)
