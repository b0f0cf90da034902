"""Choose on one split, confirm on another: the recommendation made on the evaluation split, set beside the same
variants' scores on the task's test split (``accelbench.confirm`` writes them to confirmation.jsonl).

The test-split rows live in their own file and are read only here: they never enter a frontier, a
recommendation or another table. A choice *holds* when the recommended variant still keeps the fraction of
the baseline's metric on the test split, the rule it was chosen by on the evaluation split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..exceptions import DataError
from ..records import BASELINE_METHOD, OK_STATUS, read_current
from .formatting import MISSING, display_metric_name, fraction_text, percent_text, row_float
from .markdown import first_line, fmt_delta_test, fmt_metric_ci, markdown_table
from .objectives import DEFAULT_BATCH_SIZE
from .recommend import DEFAULT_FRACTION, Recommendation, check_fraction, recommendation_or_reason
from .selection import task_records

CONFIRMATION_FILE = (
    "confirmation.jsonl"  # test-split rows (accelbench.confirm writes them), apart from records.jsonl
)
HEADING = "## Confirmed on the test split"
DEFAULT_OBJECTIVES = ("latency", "throughput")
VARIANT = "variant"
HOLDS = "choice holds on test"


def read_confirmations(run_dir: str | Path) -> pd.DataFrame:
    """The current test-split rows of a run (an empty frame when none were recorded)."""
    return read_current(Path(run_dir) / CONFIRMATION_FILE)


def recommendations(
    records: pd.DataFrame,
    task: str,
    fraction: float = DEFAULT_FRACTION,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, Recommendation]:
    """The task's recommendation per objective, for those objectives that have one (test rows never count)."""
    out = {}
    for objective in objectives:
        rec = recommendation_or_reason(records, task, fraction, objective, batch_size)
        if isinstance(rec, Recommendation):
            out[objective] = rec
    return out


def confirmation_targets(
    records: pd.DataFrame,
    task: str,
    fraction: float = DEFAULT_FRACTION,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[str]:
    """What to evaluate on the test split: each objective's recommended variant and its baseline, once each
    (``confirm.confirm_on_test`` adds each model's own fp32 and a student's teacher's fp32)."""
    recs = recommendations(records, task, fraction, objectives, batch_size).values()
    return list(
        dict.fromkeys(v for rec in recs if rec.chosen is not None for v in (rec.chosen, rec.baseline))
    )


def _current_test_rows(records: pd.DataFrame, confirmations: pd.DataFrame, task: str) -> dict[str, pd.Series]:
    """variant -> its test row, for rows made with the weights the evaluation records hold now."""
    if confirmations is None or confirmations.empty or "task" not in confirmations.columns:
        return {}
    rows = confirmations[confirmations["task"] == task]
    eval_keys = (
        records.drop_duplicates("variant").set_index("variant")["model_key"]
        if "model_key" in records
        else None
    )
    out = {}
    for _, row in rows.iterrows():
        v = str(row["variant"])
        if (
            eval_keys is not None
            and v in eval_keys.index
            and pd.notna(eval_keys[v])
            and pd.notna(row.get("model_key"))
        ):
            if eval_keys[v] != row["model_key"]:
                continue  # confirmed with older weights of a retrained model
        out[v] = row
    return out


def _holds(
    row: pd.Series | None, base: pd.Series | None, fraction: float, chosen: bool, baseline: bool
) -> str:
    """'yes (99.6% ≥ 99%)', 'no (97.1% < 99%)', or why it cannot be told."""
    if baseline:
        return "yes (the baseline itself)" if chosen else "(baseline)"
    if row is None:
        return "not evaluated on the test split"
    if row.get("status") != OK_STATUS:
        return f"error: {first_line(row.get('error'))}"
    if base is None or base.get("status") != OK_STATUS:
        return "no baseline on the test split"
    metric, floor = row_float(row, "metric"), fraction * row_float(base, "metric")
    if math.isnan(metric) or math.isnan(floor):
        return MISSING
    share = percent_text(metric / row_float(base, "metric")) if row_float(base, "metric") else "?"
    return (
        f"yes ({share} ≥ {fraction_text(fraction)})"
        if metric >= floor
        else f"no ({share} < {fraction_text(fraction)})"
    )


def _test_cell(row: pd.Series | None, fmt) -> str:
    return MISSING if row is None or row.get("status") != OK_STATUS else fmt(row)


def _delta_cell(row: pd.Series | None) -> str:
    """The paired delta against the own fp32; '–' for an fp32 (itself) or a row without a test."""
    if row is None or row.get("method") == BASELINE_METHOD or row.get("status", OK_STATUS) != OK_STATUS:
        return MISSING
    return fmt_delta_test(row)


def confirmation_table(
    records: pd.DataFrame,
    confirmations: pd.DataFrame,
    task: str,
    fraction: float = DEFAULT_FRACTION,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> pd.DataFrame:
    """The recommended variants and their baseline, one row each: the metric on the evaluation split (where they
    were chosen) and on the test split, each with its 95% interval; the paired delta against the variant's own
    fp32 on each split with its significance; the share of the baseline's metric on each; and whether the
    choice holds on the test split. An empty frame when the task has no recommendation to confirm."""
    fraction = check_fraction(fraction)
    recs = recommendations(records, task, fraction, objectives, batch_size)
    ok = task_records(records, task).drop_duplicates("variant").set_index(VARIANT, drop=False)
    tests = _current_test_rows(ok.reset_index(drop=True), confirmations, task)
    chosen_for: dict[str, list[str]] = {}
    for objective, rec in recs.items():
        if rec.chosen is not None:
            chosen_for.setdefault(rec.chosen, []).append(objective)
    baselines = {rec.baseline for rec in recs.values() if rec.chosen is not None}
    if not chosen_for:
        return pd.DataFrame()
    name = display_metric_name(ok.iloc[0].get("metric_name"))
    cells = []
    for variant in [*chosen_for, *sorted(baselines - set(chosen_for))]:
        evals, test = ok.loc[variant] if variant in ok.index else None, tests.get(variant)
        rec = next(r for r in recs.values() if variant in (r.chosen, r.baseline))
        base_eval, base_test = ok.loc[rec.baseline], tests.get(rec.baseline)
        chosen, is_base = variant in chosen_for, variant == rec.baseline
        cells.append({
            VARIANT: variant,
            "chosen for": ", ".join(chosen_for.get(variant, [])) or "baseline",
            f"{name} on eval": fmt_metric_ci(evals) if evals is not None else MISSING,
            f"{name} on test": _test_cell(test, fmt_metric_ci),
            f"Δ vs own {BASELINE_METHOD} on eval": _delta_cell(evals),
            f"Δ vs own {BASELINE_METHOD} on test": _delta_cell(test),
            "% of baseline on eval": _share(evals, base_eval),
            "% of baseline on test": _share(test, base_test),
            HOLDS: _holds(test, base_test, fraction, chosen, is_base),
        })  # fmt: skip
    return pd.DataFrame(cells)


def _share(row: pd.Series | None, base: pd.Series | None) -> str:
    if row is None or base is None or OK_STATUS not in (row.get("status"), base.get("status")):
        return MISSING
    value, ref = row_float(row, "metric"), row_float(base, "metric")
    return percent_text(value / ref) if ref and not math.isnan(value) and not math.isnan(ref) else MISSING


def confirmation_section(
    records: pd.DataFrame,
    confirmations: pd.DataFrame | None,
    fraction: float = DEFAULT_FRACTION,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[str]:
    """summary.md's section: one table per task with test-split rows; [] when the run confirmed nothing."""
    if confirmations is None or confirmations.empty or "task" not in confirmations.columns:
        return []
    lines = [
        HEADING,
        "",
        f"Each recommendation was chosen on the evaluation split; the same variants, their own {BASELINE_METHOD} "
        f"and the baseline were then scored on the task's held-out test split with the same metric and paired "
        f"test. The choice holds when the variant still keeps {fraction_text(fraction)} of the baseline's metric "
        f"on the test split. Δ: against the variant's own {BASELINE_METHOD} on the same examples (* significant "
        f"at p<0.05, n.s. not significant).",
        "",
    ]
    for task in sorted(str(t) for t in confirmations["task"].dropna().unique()):
        try:
            table = confirmation_table(records, confirmations, task, fraction, objectives, batch_size)
        except DataError as err:
            lines += [f"**{task}**: {err.message}", ""]
            continue
        split = confirmations.loc[confirmations["task"] == task, "split_name"].dropna()
        title = f"**{task}** (test split `{split.iloc[0]}`)" if len(split) else f"**{task}**"
        if table.empty:
            lines += [f"{title}: no recommended variant to confirm.", ""]
            continue
        right = [c not in (VARIANT, "chosen for", HOLDS) for c in table.columns]
        lines += [
            f"{title}:",
            "",
            markdown_table(list(table.columns), table.to_numpy().tolist(), right=right),
            "",
        ]
    return lines


__all__ = [
    "CONFIRMATION_FILE",
    "confirmation_section",
    "confirmation_table",
    "confirmation_targets",
    "read_confirmations",
    "recommendations",
]
