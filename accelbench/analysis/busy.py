"""Speed points measured on a busy machine: which rows, and the warning that goes with them.

While measuring, the benchmark records the share of the CPU that other processes took during each point
(``busy_other_cpu_share``) and flags the point ``busy`` above its ``busy_threshold``: such a point's speed
may be low and its speed-ups off, however narrow their intervals.
"""

from __future__ import annotations

import math

import pandas as pd

BUSY_COLUMN = "busy"
BUSY_SHARE_COLUMN = "busy_other_cpu_share"
BUSY_THRESHOLD_COLUMN = "busy_threshold"
DEFAULT_BUSY_THRESHOLD = 0.25  # the benchmark's threshold (measure.trackers.BUSY_SHARE), for rows without one
BUSY_MARK = "⚠"
MAX_NAMED = 6  # busy points named in the warning line; the rest are counted


def _flag(value: object) -> bool:
    try:
        return False if value is None or pd.isna(value) else bool(value)
    except (TypeError, ValueError):
        return False


def busy_mask(rows: pd.DataFrame) -> pd.Series:
    """Rows measured on a busy machine (``busy`` true); all False for records without the field."""
    if BUSY_COLUMN not in rows.columns:
        return pd.Series(False, index=rows.index, dtype=bool)
    return rows[BUSY_COLUMN].map(_flag).astype(bool)


def busy_threshold(rows: pd.DataFrame) -> float:
    """The share of the CPU other processes had to take for a point to count as busy, as recorded."""
    if BUSY_THRESHOLD_COLUMN in rows.columns and rows[BUSY_THRESHOLD_COLUMN].notna().any():
        return float(rows[BUSY_THRESHOLD_COLUMN].dropna().max())
    return DEFAULT_BUSY_THRESHOLD


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def busy_note(rows: pd.DataFrame) -> str:
    """The legend's line for hollow (busy) markers."""
    return f"hollow: speed measured on a busy machine (other processes took over {_percent(busy_threshold(rows))} of the CPU)"


def busy_warning(rows: pd.DataFrame) -> str:
    """One line for notebooks and summary.md naming the busy points; '' when there are none.

    '⚠ 2 of 9 speed points were measured on a busy machine (other processes took over 25% of the CPU,
    up to 71%): minilm-sst2:bf16 (realtime), ... Their speed figures may be low; rerun them on a quiet machine.'
    """
    busy = rows[busy_mask(rows)]
    if busy.empty:
        return ""
    speed = rows[rows["scenario"].notna()] if "scenario" in rows.columns else rows
    names = []
    for _, row in busy.iterrows():
        point = str(row.get("scenario", ""))
        if point == "batch" and not pd.isna(row.get("batch_size")):
            point = f"batch {int(row['batch_size'])}"
            if str(row.get("padding", "dynamic")) != "dynamic":
                point += f", {row['padding']}"
        name = f"{row.get('variant', '?')} ({point})" if point else str(row.get("variant", "?"))
        if name not in names:
            names.append(name)
    shown = ", ".join(names[:MAX_NAMED]) + (
        f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
    )
    shares = busy[BUSY_SHARE_COLUMN].dropna().astype(float) if BUSY_SHARE_COLUMN in busy else pd.Series([])
    top = f", up to {_percent(float(shares.max()))}" if len(shares) and not math.isnan(shares.max()) else ""
    return (
        f"{BUSY_MARK} {len(busy)} of {len(speed)} speed points were measured on a busy machine (other "
        f"processes took over {_percent(busy_threshold(rows))} of the CPU{top}): {shown}. "
        "Their speed figures may be low; rerun them on a quiet machine (force=True / --force)."
    )


__all__ = [
    "BUSY_COLUMN",
    "BUSY_MARK",
    "BUSY_SHARE_COLUMN",
    "busy_mask",
    "busy_note",
    "busy_threshold",
    "busy_warning",
]
