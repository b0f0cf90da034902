"""Tables for people: one function per question, named columns with units, rounded cells, nothing constant.

Every function returns a DataFrame of text cells ready to display: a value and its interval share one cell
('0.901 [0.881, 0.920]', '5.0 [4.8–5.2]'), the metric is named (accuracy, BLEU), deltas say what they are
against ('Δ vs own fp32', 'Δ vs teacher ...'), a speed measured on a busy machine ends in ⚠, and columns
that tell nothing (every cell missing, or the same in every row) are dropped. Tables stay narrow (at most
about seven columns): a question with more columns is split into two tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from ..records import BASELINE_METHOD, current_records
from .busy import BUSY_MARK, BUSY_SHARE_COLUMN, busy_mask, busy_warning
from .formatting import MISSING, display_metric_name, row_float
from .frontier import cost_interval, frontier_table, objective_rows
from .markdown import (
    fmt,
    fmt_delta,
    fmt_delta_test,
    fmt_interval,
    fmt_metric_ci,
    fmt_ms,
    fmt_share,
    fmt_speedup,
    fmt_throughput,
    is_missing,
)
from .objectives import DEFAULT_BATCH_SIZE, DEFAULT_OBJECTIVE, Objective, get_objective
from .recommend import DEFAULT_FRACTION, Recommendation, paired_speedup, recommendation_or_reason
from .selection import baseline_row, ok_mask

VARIANT = "variant"
FRONTIER_MARK = "✓"
UNPAIRED_MARK = "†"
LATENCY_QS = (50, 90, 99)


OFFLINE_COLUMN = "offline (samples/s)"


def ok_rows(records: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """The current ok rows (``records.current_records``, for records with their keys), in the order recorded."""
    if "key" in records.columns:
        rows = current_records(records, task)
    else:  # hand-made rows: without keys, "the latest row per point" would merge different variants
        rows = records[records["task"] == task] if task is not None and "task" in records.columns else records
    return rows[ok_mask(rows)].reset_index(drop=True)


def _missing_cell(value: object) -> bool:
    return is_missing(value) or str(value).strip() in ("", MISSING)


def drop_uninformative(table: pd.DataFrame, keep: Sequence[str] = (VARIANT,)) -> pd.DataFrame:
    """``table`` without the columns that tell nothing: every cell missing, or (two rows or more) one value.

    Columns in ``keep`` stay whatever they hold.
    """
    drop = []
    for column in table.columns:
        if column in keep:
            continue
        cells = table[column]
        if cells.map(_missing_cell).all():
            drop.append(column)
        elif len(table) > 1 and cells.astype(str).nunique() == 1:
            drop.append(column)
    return table.drop(columns=drop)


def people_frame(cells: list[dict], keep: Sequence[str] = (VARIANT,)) -> pd.DataFrame:
    """Rows of text cells as a table indexed by variant (no row numbers), uninformative columns dropped."""
    if not cells:
        return pd.DataFrame()
    table = drop_uninformative(pd.DataFrame(cells), keep=keep)
    return table.set_index(VARIANT) if VARIANT in table.columns else table


def metric_name(rows: pd.DataFrame) -> str | None:
    """The metric's recorded name (accuracy, bleu, ...), None when the rows hold none."""
    if "metric_name" not in rows.columns or not rows["metric_name"].notna().any():
        return None
    return str(rows["metric_name"].dropna().iloc[0])


def metric_header(name: str | None) -> str:
    """'accuracy [95% CI]', 'BLEU [95% CI]'."""
    return f"{display_metric_name(name)} [95% CI]"


def variant_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per variant (quality fields are the same on all of its rows), fp32 first within each model."""
    first = rows.drop_duplicates(VARIANT, keep="first")
    models = list(dict.fromkeys(first["model"])) if "model" in first.columns else [None]
    if "model" not in first.columns:
        return first.reset_index(drop=True)
    order = []
    for model in models:
        group = first[first["model"] == model]
        is_base = group["method"] == BASELINE_METHOD if "method" in group.columns else False
        order.append(pd.concat([group[is_base], group[~is_base]]))
    return pd.concat(order).reset_index(drop=True)


def best_baseline(rows: pd.DataFrame) -> pd.Series | None:
    """The task's baseline as the recommendation picks it (``selection.baseline_row``); None without one."""
    return baseline_row(rows.drop_duplicates(VARIANT) if VARIANT in rows.columns else rows)


def _is_teacher(rows: pd.DataFrame, model: object) -> bool:
    return "teacher" in rows.columns and model in set(rows["teacher"].dropna())


def baseline_header(rows: pd.DataFrame, base: pd.Series) -> str:
    """'teacher (minilm-sst2:fp32)' when the baseline's model taught a student in the rows, else its variant."""
    return f"teacher ({base[VARIANT]})" if _is_teacher(rows, base.get("model")) else str(base[VARIANT])


def _several_models(rows: pd.DataFrame) -> bool:
    return "model" in rows.columns and rows["model"].nunique() > 1


def _busy_text(row: pd.Series) -> str:
    share = row_float(row, BUSY_SHARE_COLUMN)
    return f"{BUSY_MARK} others took {100 * share:.0f}% of the CPU" if not math.isnan(share) else BUSY_MARK


def quality_table(records: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Per variant: the metric with its 95% interval, its change against its own model's fp32 (with the
    paired test where recorded), against the task's baseline when there are several models (a teacher and
    its students), its agreement with its own fp32's predictions, size and parameters."""
    rows = ok_rows(records, task)
    if rows.empty:
        return pd.DataFrame()
    name = metric_name(rows)
    variants = variant_rows(rows)
    base = best_baseline(variants) if _several_models(variants) else None
    cells = []
    for _, row in variants.iterrows():
        own_fp32 = row.get("method") == BASELINE_METHOD
        cell = {VARIANT: row[VARIANT], metric_header(name): fmt_metric_ci(row)}
        cell["Δ vs own fp32"] = MISSING if own_fp32 else fmt_delta_test(row)
        if base is not None:
            delta = row_float(row, "metric") - float(base["metric"])
            is_base = row[VARIANT] == base[VARIANT]
            cell[f"Δ vs {baseline_header(variants, base)}"] = MISSING if is_base else fmt_delta(delta, name)
        cell["agreement with own fp32"] = MISSING if own_fp32 else fmt_share(row.get("agreement"))
        cell["size (MB)"] = fmt(row.get("size_mb"), "{:.1f}")
        cell["parameters (M)"] = fmt(row.get("params_m"), "{:.1f}")
        cells.append(cell)
    return people_frame(cells)


def _speed_text(row: pd.Series, column: str, text: str, pattern: str) -> str:
    return text + fmt_interval(row, column, pattern)


def latency_table(records: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Per variant, real-time (batch 1) latency per request: p50, p90 and p99 with their intervals over the
    rounds, ms per generated token (seq2seq), the paired speed-up against its own fp32, and a warning where
    the point was measured on a busy machine."""
    rows = ok_rows(records, task)
    rows = rows[rows["scenario"] == "realtime"] if "scenario" in rows.columns else rows.iloc[0:0]
    if rows.empty:
        return pd.DataFrame()
    busy = busy_mask(rows)
    cells = []
    for i, row in rows.iterrows():
        cell = {VARIANT: row[VARIANT]}
        for q in LATENCY_QS:
            column = f"latency_ms_p{q}"
            cell[f"p{q} latency (ms)"] = (
                _speed_text(row, column, fmt_ms(row.get(column)), "{:.1f}") if column in row else MISSING
            )
        cell["ms per token"] = fmt(row.get("ms_per_token"), "{:.2f}")
        cell["speed-up vs own fp32"] = (
            MISSING if row.get("method") == BASELINE_METHOD else _recorded_speedup(row)
        )
        cell["busy machine"] = _busy_text(row) if busy[i] else ""
        cells.append(cell)
    return people_frame(cells)


def _recorded_speedup(row: pd.Series) -> str:
    """The record's speed-up against its own fp32 with its interval; † where it is not paired."""
    value = row_float(row, "speedup_vs_fp32")
    if math.isnan(value):
        return MISSING
    low, high = row_float(row, "speedup_vs_fp32_ci_low"), row_float(row, "speedup_vs_fp32_ci_high")
    interval = None if math.isnan(low) or math.isnan(high) else (low, high)
    paired = row.get("speedup_paired")
    unpaired = isinstance(paired, bool | int | float) and not pd.isna(paired) and not bool(paired)
    return fmt_speedup(value, interval, UNPAIRED_MARK if unpaired else "")


def batch_rows(records: pd.DataFrame, task: str | None) -> pd.DataFrame:
    rows = ok_rows(records, task)
    if "scenario" not in rows.columns:
        return rows.iloc[0:0]
    rows = rows[(rows["scenario"] == "batch") & rows["batch_size"].notna()]
    return rows.assign(batch_size=rows["batch_size"].astype(int))


def _row_name(row: pd.Series, several_paddings: bool) -> str:
    return f"{row[VARIANT]} ({row['padding']} padding)" if several_paddings else str(row[VARIANT])


def throughput_table(records: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Batch throughput (samples/s) with its interval over the rounds: a row per variant (and padding, where
    both were measured), a column per batch size; ⚠ marks a point measured on a busy machine."""
    rows = batch_rows(records, task)
    if rows.empty:
        return pd.DataFrame()
    several = "padding" in rows.columns and rows["padding"].nunique() > 1
    busy = busy_mask(rows)
    sizes = sorted(rows["batch_size"].unique())
    table: dict[str, dict[str, str]] = {}

    def cell(row: pd.Series, busy_row: bool) -> str:
        value = row_float(row, "throughput")
        text = _speed_text(row, "throughput", fmt_throughput(value), "{:.0f}" if value >= 100 else "{:.1f}")
        return text + (f" {BUSY_MARK}" if busy_row else "")

    for i, row in rows.iterrows():
        name = _row_name(row, several)
        table.setdefault(name, {VARIANT: name})[f"throughput @{row['batch_size']} (samples/s)"] = cell(
            row, busy[i]
        )
    offline = ok_rows(records, task)
    offline = (
        offline[offline["scenario"] == "offline"] if "scenario" in offline.columns else offline.iloc[0:0]
    )
    offline_busy = busy_mask(offline)
    for i, row in offline.iterrows():  # the offline scenario: each variant at the batch size its search chose
        name = _row_name(row, several)
        text = cell(row, False) + f" (batch {int(row['batch_size'])})"
        table.setdefault(name, {VARIANT: name})[OFFLINE_COLUMN] = text + (
            f" {BUSY_MARK}" if offline_busy[i] else ""
        )
    columns = [VARIANT] + [f"throughput @{b} (samples/s)" for b in sizes]
    columns += [OFFLINE_COLUMN] if any(OFFLINE_COLUMN in c for c in table.values()) else []
    return people_frame([{c: cells.get(c, MISSING) for c in columns} for cells in table.values()])


def speedup_table(records: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Each variant's throughput speed-up against its own model's fp32 per batch size (dynamic padding):
    the paired median of per-round ratios with its interval († a ratio of medians: fp32 from an earlier
    session); older records without it get the ratio of the two throughputs."""
    rows = batch_rows(records, task)
    if "padding" in rows.columns:
        rows = rows[rows["padding"] == "dynamic"]
    if rows.empty:
        return pd.DataFrame()
    point = ["model", "batch_size"]
    base = rows[rows["method"] == BASELINE_METHOD].drop_duplicates(point, keep="last").set_index(point)
    sizes = sorted(rows["batch_size"].unique())
    table: dict[str, dict[str, str]] = {}
    for _, row in rows[rows["method"] != BASELINE_METHOD].iterrows():
        text = _recorded_speedup(row)
        if text == MISSING and (row["model"], row["batch_size"]) in base.index:
            fp32 = float(base.loc[(row["model"], row["batch_size"]), "throughput"])
            text = fmt_speedup(row_float(row, "throughput") / fp32) if fp32 else MISSING
        table.setdefault(row[VARIANT], {VARIANT: row[VARIANT]})[
            f"speed-up vs own fp32 @{row['batch_size']}"
        ] = text
    columns = [VARIANT] + [f"speed-up vs own fp32 @{b}" for b in sizes]
    return people_frame([{c: cells.get(c, MISSING) for c in columns} for cells in table.values()])


def speedup_cell(obj: Objective, rec: Recommendation, table: pd.DataFrame, hit: pd.Series) -> tuple[str, str]:
    """A speed-up cell against the recommendation's baseline, and how it was computed.

    The kind is "paired" (the record's median of per-round ratios against the model's own fp32),
    "unpaired" (a ratio of medians with a conservative interval: latency, a teacher's fp32, or fp32 from an
    earlier session) or "" (the baseline itself, or records without intervals).
    """
    if hit[VARIANT] == rec.baseline:
        return "1.00x", ""
    base = table[table[VARIANT] == rec.baseline].iloc[0]
    paired = paired_speedup(obj, hit, base)
    if paired is not None:
        value, interval, was_paired = paired
        return fmt_speedup(
            value, interval, "" if was_paired else UNPAIRED_MARK
        ), "paired" if was_paired else "unpaired"
    ratio = obj.speedup(rec.baseline_cost, float(hit["cost"]))
    interval = obj.speedup_interval(cost_interval(base), cost_interval(hit))
    if interval is None:
        return fmt_speedup(ratio), ""
    return fmt_speedup(ratio, interval, UNPAIRED_MARK), "unpaired"


def header_batch(obj: Objective, table: pd.DataFrame | None, batch_size: int) -> str:
    """The batch size a throughput table's header names: the asked one, or, where no row is at it (every row
    fell back to its largest measured size), the sizes the rows are at."""
    if obj.name != "throughput" or table is None or "batch_size" not in table.columns:
        return str(batch_size)
    sizes = sorted({int(b) for b in table["batch_size"].dropna()})
    return str(batch_size) if not sizes or batch_size in sizes else ", ".join(map(str, sizes))


def cost_header(obj: Objective, batch_size: int | str) -> str:
    """'p90 latency (ms)', 'throughput @32 (samples/s)', 'size (MB)'."""
    if obj.name == "throughput":
        return f"throughput @{batch_size} (samples/s)"
    unit = f" ({obj.unit})" if obj.unit else ""
    return f"{obj.describe(batch_size)}{unit}"


def cost_cell(obj: Objective, row: pd.Series, batch_size: int) -> str:
    """The objective's cost of a frontier row with its interval, its batch size where it fell back to
    another, and ⚠ where it was measured on a busy machine."""
    text = obj.cost_format.format(float(row["cost"]))
    interval = cost_interval(row)
    if interval is not None:
        text += f" [{obj.cost_format.format(interval[0])}–{obj.cost_format.format(interval[1])}]"
    used = row_float(row, "batch_size")
    if obj.name == "throughput" and not math.isnan(used) and int(used) != batch_size:
        text += f" (batch {int(used)})"
    if obj.name == "offline_throughput" and not math.isnan(used):
        text += f" (batch {int(used)})"  # each variant's own size, chosen by its search
    if obj.ci_columns and bool(busy_mask(row.to_frame().T).iloc[0]):
        text += f" {BUSY_MARK}"
    return text


def frontier_people_table(
    records: pd.DataFrame,
    task: str,
    objective: str | Objective = DEFAULT_OBJECTIVE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    fraction: float = DEFAULT_FRACTION,
) -> pd.DataFrame:
    """The frontier of one objective for people, best first: metric with interval, Δ vs own fp32 (with its
    test), the cost with its interval, the speed-up against the recommendation's baseline (named in the
    header), size, and ✓ for the frontier's points."""
    obj = get_objective(objective)
    table = frontier_table(objective_rows(records, task, obj, batch_size), obj)
    rec = recommendation_or_reason(None, task, fraction, obj, batch_size, table=table)
    name = metric_name(table)
    header = cost_header(obj, header_batch(obj, table, batch_size))
    cells = []
    for _, row in table.iterrows():
        cell = {VARIANT: row[VARIANT], metric_header(name): fmt_metric_ci(row)}
        cell["Δ vs own fp32"] = MISSING if row.get("method") == BASELINE_METHOD else fmt_delta_test(row)
        cell[header] = cost_cell(obj, row, batch_size)
        if isinstance(rec, Recommendation):
            cell[f"speed-up vs {rec.baseline}" if obj.name != "size" else f"smaller than {rec.baseline}"] = (
                speedup_cell(obj, rec, table, row)[0]
            )
        if obj.name != "size":
            cell["size (MB)"] = fmt(row.get("size_mb"), "{:.1f}")
        cell["on frontier"] = FRONTIER_MARK if bool(row["on_frontier"]) else ""
        cells.append(cell)
    return people_frame(cells, keep=(VARIANT, "on frontier"))


__all__ = [
    "FRONTIER_MARK",
    "UNPAIRED_MARK",
    "best_baseline",
    "busy_warning",
    "cost_cell",
    "cost_header",
    "drop_uninformative",
    "frontier_people_table",
    "latency_table",
    "metric_header",
    "metric_name",
    "people_frame",
    "quality_table",
    "speedup_cell",
    "speedup_table",
    "throughput_table",
]
