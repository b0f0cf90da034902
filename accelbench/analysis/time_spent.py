"""Where a run's time went: seconds per model applying methods, evaluating quality and benchmarking speed."""

from __future__ import annotations

import pandas as pd

from ..records import TIMEOUT_STATUS, current_records

# A variant's timings in its records (the same on each of its rows) and their column in time_spent().
TIME_COLUMNS = {"time_apply_s": "apply_s", "time_quality_s": "quality_s", "time_speed_s": "speed_s"}
TOTAL_COLUMN = "elapsed_s"
ALL_MODELS = "all"


def time_spent(records: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """One row per model (and an ``all`` row when there are several): its variants' timings, summed.

    Columns: model, variants, apply_s, quality_s, speed_s (those recorded), total_s (each variant's
    ``elapsed_s``, or the sum of its parts where that is missing) and timed_out (variants stopped by the
    time limit, which count with the time they used). Current records of every status count, since a
    failed or timed-out variant spent time too. Empty when the records hold no timings (older runs).
    """
    rows = current_records(records, task)
    parts = [c for c in TIME_COLUMNS if c in rows.columns and rows[c].notna().any()]
    if not parts or "model" not in rows.columns:
        return pd.DataFrame()
    variants = rows.drop_duplicates("key" if "key" in rows.columns else "variant", keep="last")
    total = variants[parts].astype(float).sum(axis=1, min_count=1)
    if TOTAL_COLUMN in variants.columns:
        total = variants[TOTAL_COLUMN].astype(float).fillna(total)
    status = variants["status"] if "status" in variants.columns else pd.Series("", index=variants.index)
    variants = variants.assign(total_s=total, timed_out=(status == TIMEOUT_STATUS).astype(int))

    def line(name: str, group: pd.DataFrame) -> dict:
        sums = {TIME_COLUMNS[c]: group[c].astype(float).sum(min_count=1) for c in parts}
        return {"model": name, "variants": len(group), **sums, "total_s": group["total_s"].sum(min_count=1),
                "timed_out": int(group["timed_out"].sum())}  # fmt: skip

    table = [line(str(model), group) for model, group in variants.groupby("model", sort=True)]
    if len(table) > 1:
        table.append(line(ALL_MODELS, variants))
    return pd.DataFrame(table)


__all__ = ["TIME_COLUMNS", "time_spent"]
