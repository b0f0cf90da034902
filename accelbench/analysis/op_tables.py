"""What bounds each variant: its share of operator time per class (matmul, attention, LayerNorm, ...).

Reads the ``op_shares_<class>`` columns that an operator profile (``measure.opprofile``) adds to a variant's
batch speed record, with ``op_ms_per_batch`` and ``op_profiler``. Records without them give an empty table
and no figure, never an error.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .markdown import fmt_ms, fmt_share
from .style import legend_beside, new_figure, readable, rows_height
from .tables import VARIANT, ok_rows, people_frame

if TYPE_CHECKING:  # matplotlib is imported lazily so that importing the analysis stays cheap
    from matplotlib.figure import Figure

SHARE_PREFIX = "op_shares_"
OTHER = "other"
DEFAULT_BATCH_SIZE = 32
BOUND_BY = "largest share"
OP_MS = "operator ms / batch"


def share_columns(records: pd.DataFrame) -> list[str]:
    """The ``op_shares_<class>`` columns, in the order recorded, ``other`` last."""
    cols = [c for c in records.columns if str(c).startswith(SHARE_PREFIX)]
    return [c for c in cols if c != SHARE_PREFIX + OTHER] + [c for c in cols if c == SHARE_PREFIX + OTHER]


def _expand(records: pd.DataFrame) -> pd.DataFrame:
    """Records whose ``op_shares`` is still one dict (or JSON text) per row, as ``op_shares_<class>`` columns."""
    if "op_shares" not in records.columns or share_columns(records):
        return records
    parsed = records["op_shares"].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    wide = pd.DataFrame([v if isinstance(v, dict) else {} for v in parsed], index=records.index)
    return records.join(wide.add_prefix(SHARE_PREFIX))


def op_share_rows(
    records: pd.DataFrame, task: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> pd.DataFrame:
    """One ok row per profiled variant: at ``batch_size`` where it was profiled there, else its largest
    profiled batch; empty when no record holds operator shares."""
    df = ok_rows(_expand(records), task)
    cols = share_columns(df)
    if not cols or df.empty:
        return df.iloc[0:0]
    df = df[df[cols].notna().any(axis=1)]
    if "scenario" in df.columns:
        df = df[df["scenario"].isna() | (df["scenario"] == "batch")]
    if df.empty:
        return df
    if "batch_size" in df.columns:
        df = df.assign(_pick=(df["batch_size"] == batch_size).astype(int), _bs=df["batch_size"])
        df = df.sort_values(["_pick", "_bs"], kind="stable").drop(columns=["_pick", "_bs"])
    return df.drop_duplicates(VARIANT, keep="last").sort_index()


def _name(column: str) -> str:
    return column[len(SHARE_PREFIX) :]


def op_share_table(
    records: pd.DataFrame, task: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> pd.DataFrame:
    """A row per profiled variant: its share of operator time per class ('41.2%'), the class with the largest
    share, the profiled operator ms per batch and the profiler. Classes at 0% everywhere are left out."""
    df = op_share_rows(records, task, batch_size)
    if df.empty:
        return pd.DataFrame()
    cols = share_columns(df)
    cells = []
    for _, row in df.iterrows():
        shares = {_name(c): row[c] for c in cols}
        known = {k: float(v) for k, v in shares.items() if pd.notna(v)}
        cell = {VARIANT: row[VARIANT], **{k: fmt_share(v) for k, v in shares.items()}}
        cell[BOUND_BY] = max(known, key=known.get) if known else "–"
        cell[OP_MS] = fmt_ms(row.get("op_ms_per_batch"))
        cell["profiler"] = row.get("op_profiler", "–")
        if "batch_size" in df.columns:
            cell["batch"] = str(int(row["batch_size"]))
        cells.append(cell)
    table = people_frame(cells, keep=(VARIANT, *map(_name, cols)))  # a share the same everywhere still tells
    zero = [_name(c) for c in cols if _name(c) in table.columns and df[c].fillna(0).eq(0).all()]
    return table.drop(columns=zero)


@readable
def op_share_plot(
    records: pd.DataFrame, task: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> Figure | None:
    """Stacked horizontal bars: each variant's operator time split by class (summing to 100%); the y labels
    carry the profiled ms per batch. None when no record holds operator shares."""
    df = op_share_rows(records, task, batch_size)
    if df.empty:
        return None
    cols = [c for c in share_columns(df) if df[c].fillna(0).gt(0).any()]
    df = df.iloc[::-1]  # first variant on top
    fig, (ax,) = new_figure(row_height_in=rows_height(len(df)))
    y = np.arange(len(df))
    left = np.zeros(len(df))
    from matplotlib import colormaps

    colours = [colormaps["tab10"](i % 10) for i in range(len(cols))]
    for column, colour in zip(cols, colours, strict=True):
        values = 100 * df[column].fillna(0).astype(float).to_numpy()
        colour = "lightgrey" if _name(column) == OTHER else colour
        ax.barh(y, values, left=left, height=0.6, color=colour, label=_name(column))
        for yi, (x0, w) in enumerate(zip(left, values, strict=True)):
            if w >= 8:  # a label only where it fits inside the segment
                ax.text(x0 + w / 2, yi, f"{w:.0f}", ha="center", va="center", color="black")
        left += values
    ms = df["op_ms_per_batch"] if "op_ms_per_batch" in df.columns else pd.Series(np.nan, index=df.index)
    labels = [
        f"{v} ({fmt_ms(m)} ms)" if pd.notna(m) else str(v) for v, m in zip(df[VARIANT], ms, strict=True)
    ]
    ax.set_yticks(y, labels=labels)
    ax.set_xlim(0, 100)
    bs = sorted({int(b) for b in df["batch_size"].dropna()}) if "batch_size" in df.columns else []
    at = f" at batch {', '.join(map(str, bs))}" if bs else ""
    ax.set(xlabel="% of profiled operator time", title=f"where each variant's operator time goes{at}")
    ax.grid(axis="x", alpha=0.3)
    legend_beside(ax, ax.get_legend_handles_labels()[0], title="operator class")
    return fig


__all__ = ["op_share_plot", "op_share_rows", "op_share_table", "share_columns"]
