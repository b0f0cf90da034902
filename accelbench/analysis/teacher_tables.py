"""Distillation tables: students against their teacher (quality, size, speed), for notebook 03."""

from __future__ import annotations

import math

import pandas as pd

from ..records import BASELINE_METHOD
from .busy import BUSY_MARK, busy_mask
from .formatting import MISSING, display_metric_name, row_float
from .markdown import (
    fmt,
    fmt_delta,
    fmt_delta_test,
    fmt_metric_ci,
    fmt_ms,
    fmt_speedup,
    fmt_throughput,
)
from .objectives import DEFAULT_BATCH_SIZE
from .tables import (
    VARIANT,
    batch_rows,
    metric_header,
    metric_name,
    ok_rows,
    people_frame,
    variant_rows,
)


def _teacher_rows(records: pd.DataFrame, teacher: str, batch_size: int) -> tuple[pd.DataFrame, int]:
    rows = batch_rows(records, None)
    rows = rows[rows["padding"] == "dynamic"] if "padding" in rows.columns else rows
    if len(rows) and not (rows["batch_size"] == batch_size).any():
        batch_size = int(rows["batch_size"].max())  # the largest measured batch stands in
    return rows[rows["batch_size"] == batch_size].drop_duplicates(VARIANT, keep="last"), batch_size


def _teacher_base(rows: pd.DataFrame, teacher: str) -> pd.Series | None:
    base = rows[(rows["model"] == teacher) & (rows["method"] == BASELINE_METHOD)]
    return base.iloc[-1] if len(base) else None


def _role(row: pd.Series, teacher: str) -> str:
    return "teacher" if row.get("model") == teacher else "student"


def teacher_table(records: pd.DataFrame, teacher: str, batch_size: int = DEFAULT_BATCH_SIZE) -> pd.DataFrame:
    """Quality of the teacher's and its students' variants: the metric, its change against the variant's
    own model's fp32 AND against the teacher's fp32 (both named), and the share of the teacher's metric."""
    rows, _ = _teacher_rows(records, teacher, batch_size)
    base = _teacher_base(rows, teacher)
    if base is None:
        return pd.DataFrame()
    name = metric_name(rows)
    teacher_metric = float(base["metric"])
    cells = []
    for _, row in variant_rows(rows).iterrows():
        own_fp32 = row.get("method") == BASELINE_METHOD
        is_base = row[VARIANT] == base[VARIANT]
        cells.append({
            VARIANT: row[VARIANT], "role": _role(row, teacher), "parameters (M)": fmt(row.get("params_m"), "{:.1f}"),
            metric_header(name): fmt_metric_ci(row),
            "Δ vs own fp32": MISSING if own_fp32 else fmt_delta_test(row),
            f"Δ vs teacher ({base[VARIANT]})": MISSING if is_base else fmt_delta(row_float(row, "metric") - teacher_metric, name),
            f"% of teacher's {display_metric_name(name)}": fmt(100 * row_float(row, "metric") / teacher_metric, "{:.1f}%"),
        })  # fmt: skip
    return people_frame(cells)


def teacher_speed_table(
    records: pd.DataFrame, teacher: str, batch_size: int = DEFAULT_BATCH_SIZE
) -> pd.DataFrame:
    """Speed and size of the teacher's and its students' variants against the teacher's fp32: throughput at
    ``batch_size`` (the largest measured batch when that one was not), p90 latency at batch 1 and size, each
    with its ratio to the teacher's fp32 (ratios of medians: different models are not paired by round)."""
    rows, used = _teacher_rows(records, teacher, batch_size)
    base = _teacher_base(rows, teacher)
    if base is None:
        return pd.DataFrame()
    realtime = ok_rows(records)
    realtime = (
        realtime[realtime["scenario"] == "realtime"].drop_duplicates(VARIANT, keep="last").set_index(VARIANT)
    )
    base_p90 = (
        row_float(realtime.loc[base[VARIANT]], "latency_ms_p90")
        if base[VARIANT] in realtime.index
        else math.nan
    )
    base_thr, base_size = row_float(base, "throughput"), row_float(base, "size_mb")
    cells = []
    for _, row in variant_rows(rows).iterrows():
        thr, size = row_float(row, "throughput"), row_float(row, "size_mb")
        rt = realtime.loc[row[VARIANT]] if row[VARIANT] in realtime.index else None
        p90 = row_float(rt, "latency_ms_p90")
        flag = f" {BUSY_MARK}" if bool(busy_mask(row.to_frame().T).iloc[0]) else ""
        cells.append({
            VARIANT: row[VARIANT],
            f"throughput @{used} (samples/s)": fmt_throughput(thr) + flag,
            "throughput vs teacher fp32": fmt_speedup(thr / base_thr) if base_thr else MISSING,
            "p90 latency (ms)": fmt_ms(p90) + (f" {BUSY_MARK}" if rt is not None and bool(busy_mask(rt.to_frame().T).iloc[0]) else ""),
            "faster than teacher fp32 (p90)": fmt_speedup(base_p90 / p90) if p90 and not math.isnan(p90) else MISSING,
            "size (MB)": fmt(size, "{:.1f}"),
            "smaller than teacher fp32": fmt_speedup(base_size / size) if size and not math.isnan(size) else MISSING,
        })  # fmt: skip
    return people_frame(cells)
