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
