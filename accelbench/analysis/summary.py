"""summary.md for a run: per task the variants, frontiers and recommendation; failures, skips, machine."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..environment import CAPABILITY_FIELDS, capabilities_markdown
from ..exceptions import DataError
from ..records import BASELINE_METHOD, RECORDS_FILE, TIMEOUT_STATUS, current_records, read_current
from .formatting import MISSING, SIGNIFICANCE_LEVEL, display_metric_name, fraction_text, row_float
from .frontier import available_objectives, cost_interval, frontier_table, objective_rows_or_none
from .frontier_plot import plot_frontiers
from .markdown import (
    env_text,
    first_line,
    fmt,
    fmt_delta_test,
    fmt_interval,
    fmt_metric_ci,
    fmt_ms,
    fmt_seconds,
    fmt_share,
    fmt_speedup,
    fmt_throughput,
    is_missing,
    markdown_table,
)
from .objectives import DEFAULT_BATCH_SIZE, Objective, get_objective
from .recommend import (
    DEFAULT_FRACTION,
    Recommendation,
    check_fraction,
    paired_speedup,
    recommendation_or_reason,
)
from .selection import error_mask, not_run_mask, ok_mask, task_records
from .time_spent import TIME_COLUMNS, time_spent

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.md"
FIGURES_DIR = "figures"
DEFAULT_OBJECTIVES = ("latency", "throughput")
FIGURE_DPI = 120
ENV_PREFIX = "env_"
ENV_MAX_VALUES = 5  # distinct values listed per env column before eliding
# Shown first in the Environment section; other env_* columns follow alphabetically.
ENV_ORDER = (
    "env_cpu_model",
    "env_cores_physical",
    "env_cores_logical",
    "env_cpu_flags",
    "env_torch",
    "env_git_commit",
)


def read_run(run_dir: Path) -> pd.DataFrame:
    """The current records of a run (``records.read_current``); DataError when nothing is recorded."""
    run_dir = Path(run_dir)
    records = read_current(run_dir)
    if records.empty:
        raise DataError(
            f"no records in {run_dir / RECORDS_FILE}", "run the benchmark first, or check the run directory"
        )
    return records


UNPAIRED_MARK = "†"


def _speedup_cell(
    obj: Objective, rec: Recommendation, table: pd.DataFrame, hit: pd.Series
) -> tuple[str, str]:
    """A speed-up cell against the recommendation's baseline, and how it was computed.

    The kind is "paired" (the record's median of per-round ratios against the model's own fp32),
    "unpaired" (a ratio of medians with a conservative interval: latency, a teacher's fp32, or fp32 from an
    earlier session) or "" (the baseline itself, or records without intervals).
    """
    if hit["variant"] == rec.baseline:
        return "1.00x", ""
    base = table[table["variant"] == rec.baseline].iloc[0]
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


def _speed_cell(frame: pd.DataFrame, variant: str, column: str, text: str) -> str:
    """A speed figure's cell with its interval over the rounds where recorded."""
    return text + fmt_interval(
        frame.loc[variant], column, "{:.1f}" if column.startswith("latency") else "{:.0f}"
    )


def _table_notes(kinds: set[str], ok: pd.DataFrame, bases: set[str], batch_size: int) -> list[str]:
    """The paragraph under a task's table: what each speed-up, interval and Δ marker means."""
    notes = []
    if bases:
        notes.append(
            f"Speedups are relative to the baseline {', '.join(sorted(bases))}; latencies are per request at "
            f"batch 1; peak RSS is the largest over the variant's runs."
        )
    if "repeats" in ok.columns and ok["repeats"].notna().any():
        rounds = sorted({int(r) for r in ok["repeats"].dropna()})
        levels = ok["speed_ci_level"].dropna() if "speed_ci_level" in ok.columns else pd.Series(dtype=float)
        level = f"{100 * float(levels.min()):.1f}% " if len(levels) else ""
        notes.append(
            f"Speed figures are medians over {' or '.join(str(r) for r in rounds)} rounds (the variants of an "
            f"experiment measured in turns); brackets hold the distribution-free {level}interval of the median."
        )
    if "paired" in kinds:
        notes.append(
            "Throughput speed-ups with an interval are paired: the median of per-round ratios against the "
            "model's own fp32 at the same batch size and padding, measured in the same rounds."
        )
    if "unpaired" in kinds:
        notes.append(
            f"{UNPAIRED_MARK} not paired: the ratio of two medians (p90 latencies, another model's fp32 such "
            "as a teacher's, or fp32 measured in an earlier session), with a conservative interval built "
            "from the two intervals."
        )
    if "metric_delta_p" in ok.columns and ok["metric_delta_p"].notna().any():
        tests = sorted({str(t) for t in ok.get("metric_delta_test", pd.Series(dtype=str)).dropna()})
        named = f": {', '.join(tests)}" if tests else ""
        notes.append(
            f"Δ is against the model's own {BASELINE_METHOD} on the same examples, with its interval: "
            f"* significant at p<{SIGNIFICANCE_LEVEL:g}, n.s. not significant (paired test{named})."
        )
    return [" ".join(notes), ""] if notes else []


def _time_section(records: pd.DataFrame, task: str) -> list[str]:
    """The "where the time went" table of ``time_spent``; [] for records without timings."""
    table = time_spent(records, task)
    if table.empty:
        return []
    parts = [c for c in TIME_COLUMNS.values() if c in table.columns] + ["total_s"]
    with_timeouts = bool(table["timed_out"].any())
    headers = (
        ["model", "variants"]
        + [c.replace("_s", " s") for c in parts]
        + (["timed out"] if with_timeouts else [])
    )
    body = [
        [row["model"], row["variants"]]
        + [fmt_seconds(row[c]) for c in parts]
        + ([row["timed_out"]] if with_timeouts else [])
        for _, row in table.iterrows()
    ]
    return [
        "**Where the time went** (seconds per model, summed over its variants: applying the method, "
        "evaluating quality, benchmarking speed; the total is each variant's whole elapsed time):",
        "",
        markdown_table(headers, body, right=[False] + [True] * (len(headers) - 1)),
        "",
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "task"


def _task_section(
    records: pd.DataFrame,
    task: str,
    fraction: float,
    objectives: Sequence[str],
    batch_size: int,
    figure: str | None,
) -> list[str]:
    ok = task_records(records, task)
    first = ok.iloc[0]
    metric_name = first.get("metric_name") if "metric_name" in ok.columns else None
    shown = display_metric_name(metric_name)
    kind = first.get("task_kind") if "task_kind" in ok.columns else None
    heading = f"## {task}" + (f" ({kind}, {shown})" if not is_missing(kind) else f" ({shown})")
    lines = [heading, ""]

    rows = {
        name: objective_rows_or_none(records, task, name, batch_size) for name in ("latency", "throughput")
    }
    per_objective: dict[str, tuple[pd.DataFrame, Recommendation | str]] = {}
    for name in objectives:
        obj = get_objective(name)
        found = rows[obj.name] if obj.name in rows else objective_rows_or_none(records, task, obj, batch_size)
        table = frontier_table(found, obj) if found is not None else pd.DataFrame()
        rec = (
            recommendation_or_reason(None, task, fraction, obj, batch_size, table=table)
            if found is not None
            else obj.missing_text()
        )
        per_objective[obj.name] = (table, rec)

    quality = ok.groupby("variant", sort=False).first()
    peak_rss = (
        ok.groupby("variant")["peak_rss_mb"].max() if "peak_rss_mb" in ok.columns else pd.Series(dtype=float)
    )
    lat = rows["latency"].set_index("variant") if rows["latency"] is not None else pd.DataFrame()
    thr = rows["throughput"].set_index("variant") if rows["throughput"] is not None else pd.DataFrame()
    has_ms_per_token = "ms_per_token" in lat.columns and lat["ms_per_token"].notna().any()

    first_table = next((t for t, _ in per_objective.values() if not t.empty), pd.DataFrame())
    order = list(first_table["variant"]) if not first_table.empty else []
    order += sorted(v for v in quality.index if v not in order)

    headers = ["variant", f"{shown} [95% CI]", f"Δ vs {BASELINE_METHOD}", "agreement", "p50 ms", "p90 ms"]
    headers += ["ms/token"] if has_ms_per_token else []
    headers += [f"throughput @ batch {batch_size} (samples/s)"]
    headers += [f"speedup ({name})" for name in per_objective]
    headers += ["size MB", "peak RSS MB", "on frontier"]

    body = []
    kinds: set[str] = set()
    for variant in order:
        q = quality.loc[variant]
        measured = variant in lat.index
        row: list[object] = [
            variant,
            fmt_metric_ci(q),
            fmt_delta_test(q),
            fmt_share(q.get("agreement")),
            _speed_cell(lat, variant, "latency_ms_p50", fmt_ms(lat.at[variant, "latency_ms_p50"]))
            if measured and "latency_ms_p50" in lat
            else MISSING,
            _speed_cell(lat, variant, "latency_ms_p90", fmt_ms(lat.at[variant, "latency_ms_p90"]))
            if measured
            else MISSING,
        ]
        if has_ms_per_token:
            row.append(fmt(lat.at[variant, "ms_per_token"], "{:.2f}") if measured else MISSING)
        if variant in thr.index:
            text = _speed_cell(thr, variant, "throughput", fmt_throughput(thr.at[variant, "throughput"]))
            used = thr.at[variant, "batch_size"]
            row.append(text if is_missing(used) or used == batch_size else f"{text} (batch {int(used)})")
        else:
            row.append(MISSING)
        fronts = []
        for name, (table, rec) in per_objective.items():
            hit = table[table["variant"] == variant] if not table.empty else table
            if hit.empty or not isinstance(rec, Recommendation):
                row.append(MISSING)
            else:
                cell, kind = _speedup_cell(get_objective(name), rec, table, hit.iloc[0])
                row.append(cell)
                kinds.add(kind)
            if not hit.empty and bool(hit["on_frontier"].iloc[0]):
                fronts.append(name)
        row += [fmt(q.get("size_mb"), "{:.1f}"), fmt(peak_rss.get(variant), "{:.0f}"), ", ".join(fronts)]
        body.append(row)
    lines.append(markdown_table(headers, body, right=[False] + [True] * (len(headers) - 2) + [False]))
    lines.append("")

    bases = {rec.baseline for _, rec in per_objective.values() if isinstance(rec, Recommendation)}
    lines += _table_notes(kinds, ok, bases, batch_size)
    rule = f"{fraction_text(fraction)} of the {BASELINE_METHOD} baseline's {shown}"
    lines.append(f"**Recommendation** (fastest variant keeping at least {rule}):")
    lines.append("")
    for name, (_, rec) in per_objective.items():
        lines.append(f"- {name}: {rec.text if isinstance(rec, Recommendation) else rec}")
    lines.append("")
    lines += _time_section(records, task)
    if figure:
        lines += [f"![{task} accuracy-vs-speed frontiers]({figure})", ""]
    return lines


def _status_rows(rows: pd.DataFrame, with_status: bool) -> list[list[object]]:
    if "key" in rows.columns:
        rows = rows.drop_duplicates("key", keep="last")
    body = []
    for _, row in rows.iterrows():
        cells = [row.get("task"), row.get("variant"), row.get("scenario") if "scenario" in row else None]
        body.append(cells + ([row.get("status")] if with_status else []) + [first_line(row.get("error"))])
    return body


def _failures_section(records: pd.DataFrame) -> list[str]:
    lines = ["## Failures", ""]
    body = _status_rows(records[error_mask(records)], with_status=False)
    if not body:
        return lines + ["None: every configuration ran.", ""]
    lines.append(f"{len(body)} configuration(s) failed:")
    lines.append("")
    lines.append(markdown_table(["task", "variant", "scenario", "error"], body))
    return lines + [""]


def _skipped_section(records: pd.DataFrame) -> list[str]:
    """Variants this machine cannot run (or that hit a time limit): expected, so apart from failures."""
    not_run = records[not_run_mask(records)]
    body = _status_rows(not_run, with_status=True)
    if not body:
        return []
    n_timeout = sum(1 for cells in body if cells[3] == TIMEOUT_STATUS)
    if n_timeout:
        # a timed-out variant's elapsed time, when recorded, next to its reason
        elapsed = not_run.drop_duplicates("key", keep="last") if "key" in not_run.columns else not_run
        for cells, (_, row) in zip(body, elapsed.iterrows(), strict=True):
            seconds = row_float(row, "elapsed_s")
            if cells[3] == TIMEOUT_STATUS and not math.isnan(seconds):
                cells[4] = f"{cells[4]} (elapsed {fmt_seconds(seconds)} s)".strip()
    heading = "## Skipped on this machine" + (" or timed out" if n_timeout else "")
    lines = [heading, ""]
    counts = (
        f" ({len(body) - n_timeout} skipped, {n_timeout} timed out at the time limit)" if n_timeout else ""
    )
    lines.append(
        f"{len(body)} configuration(s) not measured here{counts}; they are left out of every table and plot:"
    )
    lines.append("")
    lines.append(markdown_table(["task", "variant", "scenario", "status", "reason"], body))
    return lines + [""]


def _environment_section(records: pd.DataFrame) -> list[str]:
    lines = ["## Environment", ""]
    columns = [c for c in records.columns if c.startswith(ENV_PREFIX) and c not in CAPABILITY_FIELDS]
    columns = [c for c in ENV_ORDER if c in columns] + sorted(c for c in columns if c not in ENV_ORDER)
    if not columns:
        return lines + ["No environment was recorded.", ""]
    for column in columns:
        values = []
        for value in records[column]:
            if not is_missing(value):
                text = env_text(value)
                if text not in values:
                    values.append(text)
        if not values:
            continue
        note = f" ({len(values)} distinct values between records)" if len(values) > 1 else ""
        shown = values[:ENV_MAX_VALUES] + (["..."] if len(values) > ENV_MAX_VALUES else [])
        lines.append(f"- {column[len(ENV_PREFIX) :]}: {'; '.join(shown)}{note}")
    return lines + [""] + capabilities_markdown(records.to_dict("records"))


def _tasks(records: pd.DataFrame) -> list[str]:
    return sorted(str(t) for t in records["task"].dropna().unique()) if "task" in records.columns else []


def summary_markdown(
    records: pd.DataFrame,
    fraction: float = DEFAULT_FRACTION,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    figures: dict[str, str] | None = None,
) -> str:
    """The summary as markdown; ``figures`` maps a task to an image path to embed under its section.

    Only current records count (``records.current_records``), the rule notebook 04 follows too.
    """
    fraction = check_fraction(fraction)
    objectives = [get_objective(o).name for o in objectives]  # unknown names fail before any work
    if records.empty:
        raise DataError("no records to summarise", "run the benchmark first")
    records = current_records(records)
    runs = sorted(str(r) for r in records["run"].dropna().unique()) if "run" in records.columns else []
    ok = records[ok_mask(records)]
    tasks = _tasks(records)

    lines = [f"# accelbench summary: {', '.join(runs) or 'unnamed run'}", ""]
    n_variants = ok["variant"].nunique() if "variant" in ok.columns else 0
    n_not_run = int(not_run_mask(records).sum())
    n_timeout = int((records["status"] == TIMEOUT_STATUS).sum()) if "status" in records.columns else 0
    skipped = f", {n_not_run - n_timeout} skipped on this machine" if n_not_run > n_timeout else ""
    skipped += f", {n_timeout} timed out" if n_timeout else ""
    lines.append(
        f"{len(records)} records: {n_variants} ok variant(s) over {len(tasks)} task(s), "
        f"{int(error_mask(records).sum())} error row(s){skipped}."
    )
    lines.append("")
    for task in tasks:
        try:
            lines += _task_section(records, task, fraction, objectives, batch_size, (figures or {}).get(task))
        except DataError as err:
            lines += [f"## {task}", "", f"No results: {err.message}", ""]
    lines += _failures_section(records)
    lines += _skipped_section(records)
    lines += _environment_section(records)
    return "\n".join(lines).rstrip() + "\n"


def _write_figure(
    records: pd.DataFrame,
    task: str,
    run_dir: Path,
    objectives: Sequence[str],
    batch_size: int,
    fraction: float,
) -> str | None:
    """run_dir/figures/<task>.png with a panel per measured objective; its path relative to run_dir."""
    try:
        measured = available_objectives(records, task, objectives, batch_size)
    except DataError as err:
        logger.warning("task %s: no figure: %s", task, err.message)
        return None
    if not measured:
        logger.warning("task %s: no figure: none of %s was measured", task, ", ".join(objectives))
        return None
    fig = plot_frontiers(records, task, measured, batch_size=batch_size, fraction=fraction)
    path = run_dir / FIGURES_DIR / f"{_slug(task)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=FIGURE_DPI)
    return path.relative_to(run_dir).as_posix()


def write_summary(
    run_dir: Path,
    fraction: float = DEFAULT_FRACTION,
    figures: bool = True,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Path:
    """Write run_dir/summary.md (and run_dir/figures/<task>.png when ``figures``); returns the summary path."""
    run_dir = Path(run_dir)
    fraction = check_fraction(fraction)
    objectives = [get_objective(o).name for o in objectives]
    records = read_run(run_dir)
    images: dict[str, str] = {}
    for task in _tasks(records) if figures else []:
        image = _write_figure(records, task, run_dir, objectives, batch_size, fraction)
        if image:
            images[task] = image
    summary = run_dir / SUMMARY_FILE
    text = summary_markdown(records, fraction, objectives, batch_size, figures=images)
    summary.write_text(text, encoding="utf-8")
    logger.info("wrote %s", summary)
    return summary


__all__ = ["markdown_table", "read_run", "summary_markdown", "write_summary"]
