"""summary.md for a run: per task the variants, frontiers and recommendation; failures, skips, machine."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..environment import CAPABILITY_FIELDS
from ..exceptions import DataError
from ..records import BASELINE_METHOD, RECORDS_FILE, TIMEOUT_STATUS, current_records, read_current
from .busy import busy_warning
from .capabilities import capabilities_markdown
from .confirmation import confirmation_section, read_confirmations
from .failures import FAILURES_HEADING, failure_rows, failures_section, skipped_section, with_failures
from .formatting import SIGNIFICANCE_LEVEL, display_metric_name, fraction_text
from .frontier import available_objectives, frontier_table, objective_rows_or_none
from .frontier_plot import plot_frontiers
from .markdown import (
    env_text,
    fmt,
    fmt_interval,
    fmt_ms,
    fmt_seconds,
    is_missing,
    markdown_table,
)
from .objectives import DEFAULT_BATCH_SIZE, Objective, get_objective
from .recommend import (
    DEFAULT_FRACTION,
    Recommendation,
    check_fraction,
    recommendation_or_reason,
)
from .selection import error_mask, not_run_mask, ok_mask, task_records
from .style import FIGURE_DPI as STYLE_DPI
from .tables import (
    FRONTIER_MARK,
    UNPAIRED_MARK,
    VARIANT,
    cost_cell,
    cost_header,
    drop_uninformative,
    header_batch,
    quality_table,
    speedup_cell,
)
from .time_spent import TIME_COLUMNS, time_spent

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.md"
FIGURES_DIR = "figures"
DEFAULT_OBJECTIVES = ("latency", "throughput")
FIGURE_DPI = STYLE_DPI  # shown at its drawn size in a browser (style.FIGURE_WIDTH_IN wide)
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


def _speed_cell(row: pd.Series, column: str, text: str) -> str:
    """A speed figure's cell with its interval over the rounds where recorded."""
    return text + fmt_interval(row, column, "{:.1f}" if column.startswith("latency") else "{:.0f}")


SPEED_TABLE_TITLES = {
    "latency": "**Latency** per request at batch 1 (real-time scenario)",
    "throughput": "**Throughput** at batch {batch_size} (batch scenario)",
    "offline_throughput": "**Offline throughput** at the batch size each variant's search chose (offline "
    "scenario; each speed-up pairs a variant's offline point with fp32's in the same rounds, each at its own size)",
    "size": "**Size**",
}


def _frame_markdown(table: pd.DataFrame, keep_left: Sequence[str] = (VARIANT, "frontier")) -> str:
    """A people table (``tables``) as markdown: text columns left-aligned, figures right-aligned."""
    table = table.reset_index() if table.index.name else table
    right = [c not in keep_left for c in table.columns]
    return markdown_table(list(table.columns), table.to_numpy().tolist(), right=right)


def _objective_table(
    obj: Objective,
    table: pd.DataFrame,
    rec: Recommendation,
    full: pd.DataFrame,
    ok: pd.DataFrame,
    batch_size: int,
    at_batch: str,
) -> tuple[pd.DataFrame, set[str]]:
    """One objective's speed table, best first: its figures with their intervals (⚠: a busy machine), the
    speed-up against the recommendation's baseline (named in the header), and ✓ on the frontier.
    ``at_batch`` is the batch size its header names (``tables.header_batch``)."""
    peak_rss = (
        ok.groupby(VARIANT)["peak_rss_mb"].max() if "peak_rss_mb" in ok.columns else pd.Series(dtype=float)
    )
    cells, kinds = [], set()
    for _, row in table.iterrows():
        record = full.loc[row[VARIANT]] if row[VARIANT] in full.index else pd.Series(dtype=object)
        cell: dict[str, object] = {VARIANT: row[VARIANT]}
        if obj.name == "latency":
            p50 = record.get("latency_ms_p50")
            cell["p50 latency (ms)"] = _speed_cell(record, "latency_ms_p50", fmt_ms(p50))
            cell["p90 latency (ms)"] = cost_cell(obj, row, batch_size)
            cell["ms per token"] = fmt(record.get("ms_per_token"), "{:.2f}")
        else:
            cell[cost_header(obj, at_batch)] = cost_cell(obj, row, batch_size)
        text, kind = speedup_cell(obj, rec, table, row)
        cell[f"smaller than {rec.baseline}" if obj.name == "size" else f"speed-up vs {rec.baseline}"] = text
        kinds.add(kind)
        if obj.name in ("throughput", "offline_throughput"):
            cell["peak RSS (MB)"] = fmt(peak_rss.get(row[VARIANT]), "{:.0f}")
        cell["frontier"] = FRONTIER_MARK if bool(row["on_frontier"]) else ""
        cells.append(cell)
    return drop_uninformative(pd.DataFrame(cells), keep=(VARIANT, "frontier")), kinds


def _table_notes(kinds: set[str], ok: pd.DataFrame, bases: set[str], batch_size: int) -> list[str]:
    """The paragraph under a task's table: what each speed-up, interval and Δ marker means."""
    notes = []
    if bases:
        notes.append(
            f"Speed-ups are against the baseline {', '.join(sorted(bases))}, the task's best-scoring "
            f"{BASELINE_METHOD} (a student's teacher where there is one); latencies are per request at batch 1; "
            f"peak RSS is the largest over the variant's runs."
        )
    if "repeats" in ok.columns and ok["repeats"].notna().any():
        rounds = sorted({int(r) for r in ok["repeats"].dropna()})
        levels = ok["speed_ci_level"].dropna() if "speed_ci_level" in ok.columns else pd.Series(dtype=float)
        level = f"{100 * float(levels[levels > 0].min()):.1f}% " if (levels > 0).any() else ""
        text = (f"Speed figures are medians over {' or '.join(str(r) for r in rounds)} round{'s' if rounds != [1] else ''} (the variants of an "
                f"experiment measured in turns)")  # fmt: skip
        if rounds != [1]:
            text += (f"; brackets hold the distribution-free {level}interval of the median, over this run's "
                     "rounds: a machine that runs slower or faster for the whole of a rotation moves a figure "
                     "outside it")  # fmt: skip
        if 1 in rounds:
            text += "; a figure from 1 round has no interval (set `repeats` to 6 or more for 95% intervals)"
        notes.append(text + ".")
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
            f"Δ vs own {BASELINE_METHOD} is against the variant's own model's {BASELINE_METHOD} on the same "
            f"examples, with its interval: * significant at p<{SIGNIFICANCE_LEVEL:g}, n.s. not significant "
            f"(paired test{named})."
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

    rows: dict[str, pd.DataFrame | None] = {}
    per_objective: dict[str, tuple[pd.DataFrame, Recommendation | str]] = {}
    for name in objectives:
        obj = get_objective(name)
        found = rows[obj.name] = objective_rows_or_none(records, task, obj, batch_size)
        table = frontier_table(found, obj) if found is not None else pd.DataFrame()
        rec = (
            recommendation_or_reason(None, task, fraction, obj, batch_size, table=table)
            if found is not None
            else obj.missing_text()
        )
        per_objective[obj.name] = (table, rec)

    warning = busy_warning(ok)
    if warning:
        lines += [warning, ""]
    lines += ["**Quality**:", "", _frame_markdown(quality_table(ok)), ""]
    kinds: set[str] = set()
    for name, (table, rec) in per_objective.items():
        if table.empty or not isinstance(rec, Recommendation):
            continue
        obj = get_objective(name)
        found = rows.get(obj.name)
        full = found.set_index(VARIANT) if found is not None else pd.DataFrame()
        at_batch = header_batch(
            obj, table, batch_size
        )  # the size the rows are at, where none is at batch_size
        speed, used = _objective_table(obj, table, rec, full, ok, batch_size, at_batch)
        kinds |= used
        title = SPEED_TABLE_TITLES.get(obj.name, f"**{obj.name}**").format(batch_size=at_batch)
        lines += [f"{title}:", "", _frame_markdown(speed), ""]

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
    confirmations: pd.DataFrame | None = None,
) -> str:
    """The summary as markdown; ``figures`` maps a task to an image path to embed under its section.

    Only current records count (``records.current_records``), the rule notebook 04 follows too.
    ``confirmations`` (test-split rows, ``confirmation.read_confirmations``) add the section "Confirmed on the
    test split"; they never change a table or recommendation above it.
    """
    fraction = check_fraction(fraction)
    objectives = [get_objective(o).name for o in objectives]  # unknown names fail before any work
    if records.empty:
        raise DataError("no records to summarise", "run the benchmark first")
    records = current_records(records)
    if (
        "scenario" in records.columns
        and (records["scenario"] == "offline").any()
        and "offline_throughput" not in objectives
    ):
        objectives = [*objectives, "offline_throughput"]  # shown only where the run measured it
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
    lines += confirmation_section(records, confirmations, fraction, objectives, batch_size)
    lines += failures_section(records)
    lines += skipped_section(records)
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
    confirmations = read_confirmations(run_dir)
    text = summary_markdown(
        records, fraction, objectives, batch_size, figures=images, confirmations=confirmations
    )
    summary.write_text(text, encoding="utf-8")
    logger.info("wrote %s", summary)
    return summary


# failure_rows, with_failures and FAILURES_HEADING live in .failures; kept importable from here for callers
__all__ = [
    "FAILURES_HEADING",
    "failure_rows",
    "markdown_table",
    "read_run",
    "summary_markdown",
    "with_failures",
    "write_summary",
]
