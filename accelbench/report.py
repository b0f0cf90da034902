"""summary.md for a run: one table per task, the recommendation, the failures and the environment.

The summary is what a reader opens first after a run, so it puts quality and speed of every variant
side by side, says in one sentence what to deploy, and keeps failures and the machine visible so a
number is never read without knowing where it came from.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from accelbench.exceptions import DataError
from accelbench.pareto import (
    BASELINE_METHOD,
    DEFAULT_BATCH_SIZE,
    DEFAULT_FRACTION,
    Recommendation,
    check_fraction,
    display_metric_name,
    format_metric,
    frontier_table,
    get_objective,
    latest_records,
    objective_rows,
    ok_mask,
    plot_frontiers,
    recommend_from_frontier,
    task_records,
)

logger = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
SUMMARY_FILE = "summary.md"
FIGURES_DIR = "figures"
DEFAULT_OBJECTIVES = ("latency", "throughput")
FIGURE_DPI = 120
MISSING = "–"
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


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> pd.DataFrame:
    """Plain JSON-lines reader: strings stay strings (a hex key is never parsed as a number)."""
    if not path.is_file():
        raise DataError(
            f"no records file at {path}", "run the benchmark first, or point at the run directory"
        )
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path}:{number} is not valid JSON ({err.msg})",
                    "remove or repair that line (an interrupted write leaves a partial last line)",
                ) from None
    if not rows:
        raise DataError(f"{path} holds no records", "run the benchmark first")
    return pd.DataFrame.from_records(rows)


def read_run(run_dir: Path) -> pd.DataFrame:
    """The records of a run, via accelbench.records when it exists, else the local reader."""
    run_dir = Path(run_dir)
    try:
        from accelbench.records import read_records
    except ImportError:
        return _read_jsonl(run_dir / RECORDS_FILE)
    records = read_records(run_dir)
    if records.empty:
        raise DataError(
            f"no records in {run_dir / RECORDS_FILE}", "run the benchmark first, or check the run directory"
        )
    return records


# --------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers
        return False


def _cell(value: object) -> str:
    """Markdown-safe cell text: one line, pipes escaped."""
    text = MISSING if _missing(value) else str(value)
    return text.replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool] = ()
) -> str:
    """A GitHub-flavoured markdown table; ``right[i]`` right-aligns column i (for numbers)."""
    align = [("---:" if i < len(right) and right[i] else "---") for i in range(len(headers))]
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(value: object, pattern: str) -> str:
    return MISSING if _missing(value) else pattern.format(float(value))


def _fmt_ms(value: object) -> str:
    return _fmt(value, "{:.1f}")


def _fmt_throughput(value: object) -> str:
    if _missing(value):
        return MISSING
    return f"{float(value):.0f}" if abs(float(value)) >= 100 else f"{float(value):.1f}"


def _fmt_metric_ci(row: pd.Series) -> str:
    name = row.get("metric_name")
    text = format_metric(_float(row.get("metric")), name)
    low, high = _float(row.get("metric_ci_low")), _float(row.get("metric_ci_high"))
    if not (math.isnan(low) or math.isnan(high)):
        text += f" [{format_metric(low, name)}, {format_metric(high, name)}]"
    return text


def _fmt_delta(value: object, metric_name: object) -> str:
    if _missing(value):
        return MISSING
    text = format_metric(float(value), metric_name if isinstance(metric_name, str) else None)
    return text if text.startswith("-") else f"+{text}"


def _fmt_share(value: object) -> str:
    return _fmt(value, "{:.1%}")


def _float(value: object) -> float:
    return math.nan if _missing(value) else float(value)


def _env_text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "task"


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


def _try_rows(records: pd.DataFrame, task: str, objective: str, batch_size: int) -> pd.DataFrame | None:
    try:
        return objective_rows(records, task, objective, batch_size)
    except DataError as err:
        logger.info("task %s: no %s data: %s", task, objective, err.message)
        return None


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
    heading = f"## {task}" + (f" ({kind}, {shown})" if not _missing(kind) else f" ({shown})")
    lines = [heading, ""]

    latency = _try_rows(records, task, "latency", batch_size)
    throughput = _try_rows(records, task, "throughput", batch_size)
    per_objective: dict[str, tuple[pd.DataFrame, Recommendation | str]] = {}
    for name in objectives:
        obj = get_objective(name)
        rows = latency if obj.name == "latency" else throughput if obj.name == "throughput" else None
        if rows is None and obj.name not in ("latency", "throughput"):
            rows = _try_rows(records, task, obj.name, batch_size)
        if rows is None:
            per_objective[obj.name] = (pd.DataFrame(), f"no {obj.name} measurements for this task.")
            continue
        table = frontier_table(rows, obj)
        try:
            rec: Recommendation | str = recommend_from_frontier(
                table, task, obj, fraction, batch_size, None, None
            )
        except DataError as err:
            rec = f"no recommendation: {err.message}."
        per_objective[obj.name] = (table, rec)

    quality = ok.groupby("variant", sort=False).first()
    peak_rss = (
        ok.groupby("variant")["peak_rss_mb"].max() if "peak_rss_mb" in ok.columns else pd.Series(dtype=float)
    )
    lat = latency.set_index("variant") if latency is not None else pd.DataFrame()
    thr = throughput.set_index("variant") if throughput is not None else pd.DataFrame()
    has_ms_per_token = "ms_per_token" in lat.columns and lat["ms_per_token"].notna().any()

    first_table = next((t for t, _ in per_objective.values() if not t.empty), pd.DataFrame())
    order = list(first_table["variant"]) if not first_table.empty else []
    order += sorted(v for v in quality.index if v not in order)

    headers = [
        "variant",
        f"{shown} [95% CI]",
        f"Δ vs {BASELINE_METHOD}",
        "agreement",
        "p50 ms",
        "p90 ms",
    ]
    headers += ["ms/token"] if has_ms_per_token else []
    headers += [f"throughput @ batch {batch_size} (samples/s)"]
    headers += [f"speedup ({name})" for name in per_objective]
    headers += ["size MB", "peak RSS MB", "on frontier"]

    body = []
    for variant in order:
        q = quality.loc[variant]
        row: list[object] = [
            variant,
            _fmt_metric_ci(q),
            _fmt_delta(q.get("metric_delta"), metric_name),
            _fmt_share(q.get("agreement")),
            _fmt_ms(lat.at[variant, "latency_ms_p50"])
            if variant in lat.index and "latency_ms_p50" in lat
            else MISSING,
            _fmt_ms(lat.at[variant, "latency_ms_p90"]) if variant in lat.index else MISSING,
        ]
        if has_ms_per_token:
            row.append(_fmt(lat.at[variant, "ms_per_token"], "{:.2f}") if variant in lat.index else MISSING)
        if variant in thr.index:
            text = _fmt_throughput(thr.at[variant, "throughput"])
            used = thr.at[variant, "batch_size"]
            row.append(text if _missing(used) or used == batch_size else f"{text} (batch {int(used)})")
        else:
            row.append(MISSING)
        fronts = []
        for name, (table, rec) in per_objective.items():
            hit = table[table["variant"] == variant] if not table.empty else table
            if hit.empty or not isinstance(rec, Recommendation):
                row.append(MISSING)
            else:
                ratio = get_objective(name).speedup(rec.baseline_cost, float(hit["cost"].iloc[0]))
                row.append(MISSING if math.isnan(ratio) else f"{ratio:.2f}x")
            if not hit.empty and bool(hit["on_frontier"].iloc[0]):
                fronts.append(name)
        row += [
            _fmt(q.get("size_mb"), "{:.1f}"),
            _fmt(peak_rss.get(variant), "{:.0f}"),
            ", ".join(fronts) if fronts else "",
        ]
        body.append(row)
    lines.append(markdown_table(headers, body, right=[False] + [True] * (len(headers) - 2) + [False]))
    lines.append("")

    bases = {rec.baseline for _, rec in per_objective.values() if isinstance(rec, Recommendation)}
    if bases:
        lines.append(
            f"Speedups are relative to the baseline {', '.join(sorted(bases))}; latencies are per request at "
            f"batch 1; peak RSS is the largest over the variant's runs."
        )
        lines.append("")
    rule = f"{100 * fraction:.10g}% of the {BASELINE_METHOD} baseline's {shown}"
    lines.append(f"**Recommendation** (fastest variant keeping at least {rule}):")
    lines.append("")
    for name, (_, rec) in per_objective.items():
        lines.append(f"- {name}: {rec.text if isinstance(rec, Recommendation) else rec}")
    lines.append("")
    if figure:
        lines += [f"![{task} accuracy-vs-speed frontiers]({figure})", ""]
    return lines


def _failures_section(records: pd.DataFrame) -> list[str]:
    lines = ["## Failures", ""]
    errors = records[~ok_mask(records)]
    if "key" in errors.columns:
        errors = errors.drop_duplicates("key", keep="last")
    if errors.empty:
        return lines + ["None: every configuration ran.", ""]
    body = []
    for _, row in errors.iterrows():
        message = row.get("error")
        first_line = (
            str(message).strip().splitlines()[0] if not _missing(message) and str(message).strip() else ""
        )
        body.append(
            [
                row.get("task"),
                row.get("variant"),
                row.get("scenario") if "scenario" in row else None,
                first_line,
            ]
        )
    lines.append(f"{len(body)} configuration(s) failed:")
    lines.append("")
    lines.append(markdown_table(["task", "variant", "scenario", "error"], body))
    return lines + [""]


def _environment_section(records: pd.DataFrame) -> list[str]:
    lines = ["## Environment", ""]
    columns = [c for c in records.columns if c.startswith(ENV_PREFIX)]
    columns = [c for c in ENV_ORDER if c in columns] + sorted(c for c in columns if c not in ENV_ORDER)
    if not columns:
        return lines + ["No environment was recorded.", ""]
    for column in columns:
        values = []
        for value in records[column]:
            if not _missing(value):
                text = _env_text(value)
                if text not in values:
                    values.append(text)
        if not values:
            continue
        note = f" ({len(values)} distinct values between records)" if len(values) > 1 else ""
        shown = values[:ENV_MAX_VALUES] + (["..."] if len(values) > ENV_MAX_VALUES else [])
        lines.append(f"- {column[len(ENV_PREFIX) :]}: {'; '.join(shown)}{note}")
    return lines + [""]


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def summary_markdown(
    records: pd.DataFrame,
    fraction: float = DEFAULT_FRACTION,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    figures: dict[str, str] | None = None,
) -> str:
    """The summary as markdown; ``figures`` maps a task to an image path to embed under its section."""
    fraction = check_fraction(fraction)
    objectives = [get_objective(o).name for o in objectives]  # unknown names fail before any work
    if records.empty:
        raise DataError("no records to summarise", "run the benchmark first")
    records = latest_records(records)
    runs = sorted(str(r) for r in records["run"].dropna().unique()) if "run" in records.columns else []
    ok = records[ok_mask(records)]
    tasks = sorted(str(t) for t in records["task"].dropna().unique()) if "task" in records.columns else []

    lines = [f"# accelbench summary: {', '.join(runs) or 'unnamed run'}", ""]
    n_variants = ok["variant"].nunique() if "variant" in ok.columns else 0
    lines.append(
        f"{len(records)} records: {n_variants} ok variant(s) over {len(tasks)} task(s), "
        f"{len(records) - len(ok)} error row(s)."
    )
    lines.append("")
    for task in tasks:
        try:
            lines += _task_section(records, task, fraction, objectives, batch_size, (figures or {}).get(task))
        except DataError as err:
            lines += [f"## {task}", "", f"No results: {err.message}", ""]
    lines += _failures_section(records)
    lines += _environment_section(records)
    return "\n".join(lines).rstrip() + "\n"


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
    records = read_run(run_dir)
    images: dict[str, str] = {}
    if figures:
        folder = run_dir / FIGURES_DIR
        tasks = sorted(str(t) for t in records["task"].dropna().unique()) if "task" in records.columns else []
        for task in tasks:
            try:
                fig = plot_frontiers(records, task, objectives, batch_size=batch_size, fraction=fraction)
            except DataError as err:
                logger.warning("task %s: no figure: %s", task, err.message)
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{_slug(task)}.png"
            fig.savefig(path, dpi=FIGURE_DPI)
            images[task] = path.relative_to(run_dir).as_posix()
    summary = run_dir / SUMMARY_FILE
    text = summary_markdown(records, fraction, objectives, batch_size, figures=images)
    summary.write_text(text, encoding="utf-8")
    logger.info("wrote %s", summary)
    return summary


__all__ = ["markdown_table", "read_run", "summary_markdown", "write_summary"]
