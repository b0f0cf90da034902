"""Checks that run on data before any work, each naming the real cause and the fix.

The rule for empty texts: a row whose input text is empty or whitespace only (the joined text columns, either
side of a pair, a seq2seq source or target) is dropped, never fed to a tokenizer; the count is logged (with the
first lines) and kept per split (``Task.dropped``) for the records. A pair column that is empty in every row, or
a split with no row left, is an error.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any
from urllib.parse import urlparse

from ..exceptions import ConfigError, DataError
from ..paths import DATA_ENV
from .files import FILE_FORMATS, ReadOptions, Table
from .inputs import TEXT_KEYS, Columns

logger = logging.getLogger(__name__)

HUB_ENDPOINT = "https://huggingface.co"
HUB_PROBE_TIMEOUT_S = 3.0  # offline must fail in seconds, not after the datasets library's retries
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
TRUE = ("1", "true", "yes", "on")
MAX_LINES_SHOWN = 5


def check_data_dir(task_name: str) -> None:
    """An ``ACCELBENCH_DATA_DIR`` that points nowhere is the cause, named before anything else is tried."""
    value = os.environ.get(DATA_ENV)
    if value and not os.path.isdir(os.path.expanduser(value)):
        raise DataError(
            f"task {task_name!r}: {DATA_ENV}={value} does not exist, so its data files cannot be found there",
            f"point {DATA_ENV} at the folder that holds the task folders (sst2/, multi30k/), or unset it to use "
            "data/ (run `make data` to fill it)",
        )


def hub_unreachable() -> str | None:
    """Why the hub cannot be reached now (offline variables, no route), or None; takes at most a few seconds."""
    for name in OFFLINE_VARIABLES:
        if os.environ.get(name, "").strip().lower() in TRUE:
            return f"{name}={os.environ[name]} is set"
    url = urlparse(os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT)
    try:
        with socket.create_connection((url.hostname or "", url.port or 443), timeout=HUB_PROBE_TIMEOUT_S):
            return None
    except OSError as e:
        return f"{url.hostname} is not reachable ({type(e).__name__}: {e})"


def check_header_row(task_name: str, table: Table, options: ReadOptions) -> None:
    """A file declared headerless whose first row repeats the declared column names is refused."""
    if options.header or not table.rows or not options.columns:
        return
    first = table.rows[0]
    same = [
        c for c in options.columns if str(first.get(str(c), "")).strip().lower() == str(c).strip().lower()
    ]
    if same and 2 * len(same) >= len(options.columns):
        raise DataError(
            f"task {task_name!r}: {table.path} line {table.lines[0]} is a header row ({', '.join(same)}), but the "
            "task declares `header: false`",
            "set `header: true` (keep `columns:` to rename the columns), or delete the header line",
        )


def drop_empty(task_name: str, split: str, cols: Columns, plan: dict[str, list[str]]) -> tuple[Columns, int]:
    """Drop rows with an empty or whitespace-only input text (the documented rule); returns (kept, dropped)."""
    keys = [k for k in TEXT_KEYS if k in cols.data]
    if (
        "text_pair" in cols.data
        and cols.data["text_pair"]
        and not any(t.strip() for t in cols.data["text_pair"])
    ):
        files = sorted({str(p) for p, _ in cols.where})
        raise DataError(
            f"task {task_name!r}, split {split!r}: the pair column {plan['text_pair'][0]!r} is empty in every row "
            f"of {', '.join(files)}",
            "point `text_pair_column:` at the column that holds the second text, or drop it for a "
            "single-text task",
        )
    keep = [i for i in range(len(cols)) if all(str(cols.data[k][i]).strip() for k in keys)]
    dropped = len(cols) - len(keep)
    if dropped:
        kept = set(keep)
        lines = [f"{getattr(p, 'name', p)}:{n}" for i, (p, n) in enumerate(cols.where) if i not in kept]
        logger.warning("task %s, split %s: dropped %d of %d rows whose text is empty or whitespace (%s%s)",
                       task_name, split, dropped, len(cols), ", ".join(lines[:MAX_LINES_SHOWN]),
                       ", ..." if dropped > MAX_LINES_SHOWN else "")  # fmt: skip
        cols = cols.select(keep)
    if len(cols) == 0:
        raise DataError(
            f"task {task_name!r}: split {split!r} is empty"
            + (f" ({dropped} row(s) dropped: their text is empty or whitespace)" if dropped else ""),
            "point the task at a file with rows that have text (and a header row unless `header: false`)",
        )
    return cols, dropped


def check_reading_fields(task: Any) -> ReadOptions | None:
    """The read options of a file task (validated), or None for parallel text and hub data sets, which take
    none of them."""
    if task.format in FILE_FORMATS:
        if task.columns is not None and task.header is None:
            task.header = False  # `columns:` alone names a headerless file's columns
        return ReadOptions(task.format, True if task.header is None else bool(task.header), task.columns,
                           task.delimiter, task.quotechar)  # fmt: skip
    given = [n for n in ("columns", "delimiter", "quotechar") if getattr(task, n) is not None]
    given += ["header"] if task.header is False else []
    if given:
        raise ConfigError(f"task {task.name!r}: {', '.join(given)} apply to csv, tsv and json files, not "
                          f"`format: {task.format}`", f"drop {', '.join(given)}")  # fmt: skip
    return None


def check_text_fields(task: Any) -> None:
    """text_columns, text_separator and text_pair_column: classification only, well-formed."""
    if task.kind != "classification":
        given = [n for n in ("text_columns", "text_pair_column") if getattr(task, n)]
        if given:
            raise ConfigError(f"task {task.name!r}: {', '.join(given)} apply to classification tasks",
                              "use source_column and target_column for a seq2seq task")  # fmt: skip
        return
    cols = task.text_columns
    if cols is not None and (
        not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols)
    ):
        raise ConfigError(f"task {task.name!r}: text_columns must be a list of column names, got {cols!r}",
                          "write e.g. `text_columns: [title, description]`")  # fmt: skip
    if not isinstance(task.text_separator, str):
        raise ConfigError(f"task {task.name!r}: text_separator must be a string, got {task.text_separator!r}",
                          "quote it, e.g. `text_separator: \" | \"`")  # fmt: skip
    pair = task.text_pair_column
    if pair is not None and (not isinstance(pair, str) or pair in (cols or [task.text_column])):
        raise ConfigError(f"task {task.name!r}: text_pair_column {pair!r} must name a column other than the "
                          "text column(s)", "set `text_pair_column:` to the column with the second text")  # fmt: skip
