"""Crosscheck: re-time a run's recorded speed-ups in separate processes, with a timer outside the benchmark code.

A record's ``speedup_vs_fp32`` comes from the benchmark's own rounds (``measure.scenarios``). This check
shares none of that timing code: each variant (and the fp32 it is compared with) runs in a child process of
its own (``worker_main``) that loads it through the package, builds length-sorted batches of the task's
evaluation texts, does one warm-up pass, prints ``READY`` and then, for every ``GO <passes>`` line on its
stdin, runs that many full passes and prints ``DONE``. The parent times each turn with ``time.perf_counter``
from sending ``GO`` to reading ``DONE``. The children of a task stay alive and take turns round by round
(the order reversed every other round), so each round gives one paired ratio variant / fp32; the crosscheck
speed-up is the median of those ratios, reported beside the record's figure. They agree when they differ by
at most ``TOLERANCE`` (10%).

    accelbench crosscheck --run results/default --batch-size 32 --passes 1 --rounds 5
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..analysis.markdown import markdown_table
from ..environment import collect_environment
from ..exceptions import ConfigError
from .cases import (
    BASELINE_SEP,
    CROSSCHECK_FILE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_PASSES,
    DEFAULT_ROUNDS,
    PADDING,
    TIMER,
    TOLERANCE,
    TOP_VARIANTS,
    Case,
    Job,
    compare,
    paired_speedup,
    read_run_records,
    record_speedup,
    run_config,
    select_cases,
)
from .worker import ChildError, length_sorted_batches, time_task, worker_main

__all__ = [
    "BASELINE_SEP", "CROSSCHECK_FILE", "DEFAULT_BATCH_SIZE", "DEFAULT_PASSES", "DEFAULT_ROUNDS", "TOLERANCE",
    "TOP_VARIANTS", "Case", "ChildError", "Job", "compare", "crosscheck_table", "length_sorted_batches",
    "paired_speedup", "read_run_records", "record_speedup", "run_crosscheck", "select_cases", "worker_main",
]  # fmt: skip

logger = logging.getLogger(__name__)


def _case_row(case: Case, timed: dict[Job, Any]) -> dict[str, Any]:
    (v_runs, v_error), (b_runs, b_error) = timed[case.variant], timed[case.baseline]
    pairs = [(v, b) for v, b in zip(v_runs, b_runs, strict=True) if v is not None and b is not None]
    median = low = high = None
    if pairs:
        median, low, high = paired_speedup([v for v, _ in pairs], [b for _, b in pairs])
    diff, agree = compare(case.record, median)
    errors = [e for e in (v_error, b_error) if e]
    return {
        "task": case.variant.task, "variant": case.variant.variant, "baseline": case.baseline.variant,
        "batch_size": case.variant.batch_size, "record_speedup": case.record,
        "record_ci_low": case.record_ci_low, "record_ci_high": case.record_ci_high,
        "record_source": case.record_source, "crosscheck_speedup": median, "crosscheck_min": low,
        "crosscheck_max": high, "crosscheck_ratios": [round(v / b, 4) for v, b in pairs],
        "variant_samples_per_s": [None if v is None else round(v, 3) for v in v_runs],
        "baseline_samples_per_s": [None if b is None else round(b, 3) for b in b_runs],
        "relative_difference": diff, "agree": agree, "error": "; ".join(errors) or None,
    }  # fmt: skip


def _check_counts(passes: int, rounds: int) -> None:
    for name, value in (("passes", passes), ("rounds", rounds)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}", f"use e.g. --{name} 1")


def run_crosscheck(
    run_dir: str | Path,
    task: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    variants: Sequence[str] | None = None,
    passes: int = DEFAULT_PASSES,
    rounds: int = DEFAULT_ROUNDS,
    progress: bool = True,
) -> dict[str, Any]:
    """Re-time the run's speed-ups (``select_cases``) in child processes; writes and returns crosscheck.json.

    Bad input (no such run, task, batch size or variant) raises ConfigError before any child starts; a child
    that fails leaves its rows with an ``error`` and no crosscheck figure, and the others go on.
    """
    _check_counts(passes, rounds)
    run_dir = Path(run_dir)
    records = read_run_records(run_dir)
    cases = select_cases(records, batch_size, task, variants, run_config(run_dir))
    rows = []
    with tempfile.TemporaryDirectory(prefix="accelbench-crosscheck-") as logs:
        for name in sorted({c.variant.task for c in cases}):
            task_cases = [c for c in cases if c.variant.task == name]
            jobs = list(dict.fromkeys(j for c in task_cases for j in (c.baseline, c.variant)))
            timed = time_task(jobs, passes, rounds, Path(logs), progress)
            rows += [_case_row(c, timed) for c in task_cases]
    report = {
        "run": run_dir.name, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "batch_size": batch_size,
        "padding": PADDING, "passes": passes, "rounds": rounds, "tolerance": TOLERANCE, "timer": TIMER,
        "env_cpu_model": collect_environment().get("env_cpu_model"), "rows": rows,
    }  # fmt: skip
    (run_dir / CROSSCHECK_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def crosscheck_table(rows: Iterable[dict[str, Any]], tolerance: float = TOLERANCE) -> str:
    """The report's rows side by side: the record's speed-up [interval], the crosscheck's (range), agreement."""
    body = []
    for r in rows:
        record = _times(r["record_speedup"])
        if r.get("record_ci_low") is not None and r.get("record_ci_high") is not None:
            record += f" [{r['record_ci_low']:.2f}, {r['record_ci_high']:.2f}]"
        check = _times(r["crosscheck_speedup"])
        if r.get("crosscheck_min") is not None and len(r.get("crosscheck_ratios") or []) > 1:
            check += f" ({r['crosscheck_min']:.2f}–{r['crosscheck_max']:.2f})"
        diff = "–" if r["relative_difference"] is None else f"{100 * r['relative_difference']:+.1f}%"
        agree = {True: "yes", False: "NO", None: "–"}[r["agree"]]
        if r.get("error"):
            agree = f"error: {r['error'][:200]}"
        body.append([r["task"], r["variant"], r["baseline"], r["batch_size"], record, check, diff, agree])
    headers = ["task", "variant", "against", "batch", "record speed-up", "crosscheck speed-up", "difference",
               f"agree (within {100 * tolerance:.0f}%)"]  # fmt: skip
    return markdown_table(headers, body, right=[False, False, False, True, True, True, True])
