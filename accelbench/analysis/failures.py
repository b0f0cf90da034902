"""What did not measure, for summary.md: failed variants with cause and fix, and those skipped or timed out.

Failures (a variant that raised, or ``others`` such as a model that did not train) are news; variants this
machine cannot run, or that hit a time limit, are expected and listed apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pandas as pd

from ..records import TIMEOUT_STATUS, current_records
from .formatting import MISSING, row_float
from .markdown import first_line, fmt_seconds, is_missing, markdown_table
from .selection import error_mask, not_run_mask


def _status_rows(rows: pd.DataFrame, with_status: bool) -> list[list[object]]:
    if "key" in rows.columns:
        rows = rows.drop_duplicates("key", keep="last")
    body = []
    for _, row in rows.iterrows():
        cells = [row.get("task"), row.get("variant"), row.get("scenario") if "scenario" in row else None]
        body.append(cells + ([row.get("status")] if with_status else []) + [first_line(row.get("error"))])
    return body


FAILURES_HEADING = "## Failures"
MAX_CAUSE_CHARS = 600  # a cause longer than this is cut
VARIANT_FIX = "read its traceback in records.jsonl (field `traceback`); rerunning the config measures a failed variant again"
TIMEOUT_FIX = "raise `time_limit_s` in the config's benchmark settings, or leave the method out"


def _one_line(message: object) -> str:
    text = "" if is_missing(message) else str(message).split("Traceback (most recent call last)")[0]
    text = " ".join(text.split())  # a traceback pasted into a message stays in records.jsonl
    return text if len(text) <= MAX_CAUSE_CHARS else text[: MAX_CAUSE_CHARS - 1] + "…"


def failure_rows(records: pd.DataFrame) -> list[dict[str, str]]:
    """Every current failed or timed-out variant: ``what`` (variant or timeout), ``task``, ``name`` (the variant),
    ``cause`` (the recorded error's first line: the exception and its message; the traceback is in the record),
    ``fix`` (the record's own, else how to find and retry it) and ``timestamp``.
    """
    if records.empty or "status" not in records.columns:
        return []
    records = current_records(records)
    rows = records[error_mask(records) | (records["status"] == TIMEOUT_STATUS)]
    if "key" in rows.columns:
        rows = rows.drop_duplicates("key", keep="last")
    out = []
    for _, row in rows.iterrows():
        timeout = row.get("status") == TIMEOUT_STATUS
        scenario = row.get("scenario")
        name = str(row.get("variant")) + (f" ({scenario})" if not is_missing(scenario) else "")
        fix = row.get("fix")
        out.append({"what": "timeout" if timeout else "variant", "task": str(row.get("task")), "name": name,
                    "cause": _one_line(first_line(row.get("error"))),
                    "fix": _one_line(fix) if not is_missing(fix) else (TIMEOUT_FIX if timeout else VARIANT_FIX),
                    "timestamp": "" if is_missing(row.get("timestamp")) else str(row.get("timestamp"))})  # fmt: skip
    return out


def failures_section(records: pd.DataFrame, others: Sequence[dict[str, str]] = ()) -> list[str]:
    """Every failure with its cause and fix: ``others`` (a model that did not train, a notebook that failed:
    dicts with what, name, cause, fix, and optionally task and link) first, then the failed variants.
    Timed-out variants are counted here and listed under the skipped ones, with their elapsed time."""
    lines = [FAILURES_HEADING, ""]
    rows = failure_rows(records)
    n_timeout = sum(r["what"] == "timeout" for r in rows)
    body = []
    for r in [*others, *(r for r in rows if r["what"] != "timeout")]:
        name = f"[{r['name']}]({r['link']})" if r.get("link") else r["name"]
        cells = [
            r.get("task") or MISSING,
            name,
            r["what"],
            _one_line(r.get("cause")),
            _one_line(r.get("fix")),
        ]
        body.append([c or MISSING for c in cells])
    timeouts = (
        f"{n_timeout} variant(s) stopped at the time limit: listed under 'Skipped on this machine or timed out' "
        f"below; fix: {TIMEOUT_FIX}."
        if n_timeout
        else ""
    )
    if not body:
        return lines + [timeouts or "None: every configuration ran.", ""]
    lines += [f"{len(body)} failure(s), each with its cause and its fix:", ""]
    lines.append(markdown_table(["task", "failed", "what", "cause", "fix"], body))
    return lines + [""] + ([timeouts, ""] if timeouts else [])


def with_failures(summary: str, records: pd.DataFrame, others: Sequence[dict[str, str]] = ()) -> str:
    """``summary`` (summary.md's text) with its Failures section rewritten to include ``others``."""
    section = "\n".join(failures_section(records, others))
    pattern = re.compile(rf"^{re.escape(FAILURES_HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(summary):
        return pattern.sub(lambda _: section + "\n", summary, count=1)
    return summary.rstrip() + "\n\n" + section + "\n"


def skipped_section(records: pd.DataFrame) -> list[str]:
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


__all__ = ["FAILURES_HEADING", "failure_rows", "failures_section", "skipped_section", "with_failures"]
