"""Which records the analysis reads: the current rows of a task, split into measured, failed and skipped."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..exceptions import DataError
from ..records import BASELINE_METHOD, OK_STATUS, SKIPPED_STATUS, TIMEOUT_STATUS, current_records

# Statuses of a variant this machine could not measure (a missing kernel, a time limit): never plotted or
# ranked, and listed apart from real failures in summary.md.
NOT_RUN_STATUSES = (SKIPPED_STATUS, TIMEOUT_STATUS)


def ok_mask(records: pd.DataFrame) -> pd.Series:
    """Rows that measured something; a records table without ``status`` is taken as all ok."""
    if "status" not in records.columns:
        return pd.Series(True, index=records.index)
    return records["status"] == OK_STATUS


def baseline_row(rows: pd.DataFrame) -> pd.Series | None:
    """The task's baseline: the best-scoring fp32 of an original model, i.e. one that is nobody's student
    (no ``teacher`` in its record), else of any model; ties go to the first row. None without a scored fp32.

    A pruned or distilled model can score above its teacher on one split; its speed-ups are still told
    against the model it was made from. Where a run has CPU and GPU variants, the CPU's fp32 is the baseline.
    """
    if "method" not in rows.columns or "metric" not in rows.columns:
        return None
    fp32 = rows[(rows["method"] == BASELINE_METHOD) & rows["metric"].notna()]
    if fp32.empty:
        return None
    if "teacher" in fp32.columns and fp32["teacher"].isna().any():
        fp32 = fp32[fp32["teacher"].isna()]
    if "device" in fp32.columns:  # a run with CPU and GPU variants: the CPU's fp32 is the reference
        on_cpu = fp32["device"].isna() | (fp32["device"] == "cpu")
        fp32 = fp32[on_cpu] if on_cpu.any() else fp32
    return fp32.loc[fp32["metric"].astype(float).idxmax()]


def not_run_mask(records: pd.DataFrame) -> pd.Series:
    """Rows of a variant skipped on this machine or stopped by a time limit."""
    if "status" not in records.columns:
        return pd.Series(False, index=records.index)
    return records["status"].isin(NOT_RUN_STATUSES)


def error_mask(records: pd.DataFrame) -> pd.Series:
    """Rows of a real failure: neither ok nor skipped/timed out."""
    return ~ok_mask(records) & ~not_run_mask(records)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise DataError naming the columns ``what`` needs that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"records lack the column(s) {', '.join(missing)} needed for {what}",
            "pass the DataFrame read from a records.jsonl written by accelbench",
        )


def task_records(records: pd.DataFrame, task: str) -> pd.DataFrame:
    """The current ok rows of one task (``records.current_records``); raises DataError when it has none.

    Skipped and timed-out rows are ignored; a task whose current rows include real errors but no ok row
    raises, so the failure is not mistaken for an empty result.
    """
    require_columns(records, ("task", "variant"), f"task {task!r}")
    rows = current_records(records, task)
    if rows.empty:
        known = sorted(str(t) for t in records["task"].dropna().unique())
        raise DataError(
            f"no records for task {task!r}; tasks in these records: {', '.join(known) or '(none)'}",
            "check the task name, or run the benchmark for that task first",
        )
    ok = rows[ok_mask(rows)]
    if ok.empty:
        n_errors, n_not_run = int(error_mask(rows).sum()), int(not_run_mask(rows).sum())
        if n_errors:
            skipped = f" ({n_not_run} more skipped on this machine)" if n_not_run else ""
            raise DataError(
                f"all {n_errors} measured records for task {task!r} are errors{skipped}",
                "read the error column (or the Failures section of summary.md) and rerun the failed configs",
            )
        raise DataError(
            f"task {task!r} has no measurements: {n_not_run} variant(s), all skipped on this machine",
            "read the reasons in the 'Skipped on this machine' section of summary.md, or run on a machine "
            "that supports those methods",
        )
    return ok.reset_index(drop=True)


__all__ = ["NOT_RUN_STATUSES", "error_mask", "not_run_mask", "ok_mask", "require_columns", "task_records"]
