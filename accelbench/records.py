"""The record: one flat JSON line per measurement, its constants, and the one rule for which rows are current.

Appending (never rewriting) means an interrupted sweep keeps everything it measured, and a rerun can skip
what is already recorded. pandas reads the file back as one row per measurement, one column per field.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from accelbench.exceptions import ConfigError

logger = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
RECORDS_SUFFIXES = (".jsonl", ".json")
HASH_CHARS = 12
FLATTEN_SEP = "_"
LATEST_BY = ("key", "scenario", "batch_size", "padding")
BASELINE_METHOD = "fp32"  # every variant is compared with its model's (and its teacher's) fp32
OK_STATUS = "ok"
ERROR_STATUS = "error"
SKIPPED_STATUS = "skipped"  # a variant this machine cannot run (the reason is in `error`)
TIMEOUT_STATUS = "timeout"


def _json_default(obj: Any) -> Any:
    """Make config objects hashable as JSON: dataclasses by their fields, sets sorted, the rest by str()."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def config_hash(obj: Any) -> str:
    """A short, stable id for a configuration, so that records from the same settings can be grouped.

    Canonical JSON (sorted keys, no whitespace) makes the hash independent of dict order;
    ``default=str``-style conversion covers Paths, enums and the like.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def flatten(d: Mapping[str, Any], sep: str = FLATTEN_SEP) -> dict[str, Any]:
    """Nested dicts to one level (``{"a": {"b": 1}}`` -> ``{"a_b": 1}``), so every field is a DataFrame column.

    Two paths that flatten to the same key are an error rather than a silent overwrite.
    """
    out: dict[str, Any] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            name = f"{prefix}{sep}{key}" if prefix else str(key)
            if isinstance(value, Mapping):
                walk(name, value)
            elif name in out:
                raise ConfigError(
                    f"two fields flatten to the same key {name!r}",
                    fix=f"rename one of them so that no key contains {sep!r} followed by a nested name",
                )
            else:
                out[name] = value

    walk("", d)
    return out


def _clean(value: Any) -> Any:
    """A value that strict JSON accepts: NaN/inf -> None, numpy -> python, Paths and dates -> str."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _records_path(run_dir_or_file: str | os.PathLike[str]) -> Path:
    """A run directory means its records file; an existing file or a ``.jsonl`` path is taken as is."""
    path = Path(run_dir_or_file)
    if path.is_file() or (path.suffix in RECORDS_SUFFIXES and not path.is_dir()):
        return path
    return path / RECORDS_FILE


def append_records(run_dir: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> Path:
    """Append records (flattened) to ``run_dir/records.jsonl`` and fsync, so a crash loses nothing written.

    ``run_dir`` may also name a ``.jsonl`` file. Returns the path of the file written.

    A file whose last line was cut off by an earlier interruption gets a newline first, so the new records
    start on a line of their own and only the cut line is lost.
    """
    path = _records_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for record in records:
        if not isinstance(record, Mapping):
            raise TypeError(f"a record must be a dict, got {type(record).__name__}")
        lines.append(json.dumps(_clean(flatten(record)), allow_nan=False, ensure_ascii=False) + "\n")
    needs_newline = False
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            needs_newline = fh.read(1) != b"\n"
    with path.open("a", encoding="utf-8") as fh:
        if needs_newline and lines:
            fh.write("\n")
        fh.writelines(lines)
        fh.flush()
        os.fsync(fh.fileno())
    logger.debug("appended %d record(s) to %s", len(lines), path)
    return path


def read_records(run_dir_or_file: str | os.PathLike[str]) -> pd.DataFrame:
    """All records of a run as a DataFrame; an empty one when nothing is recorded yet.

    Tolerant on purpose: a line that is not a JSON object (typically the last line of an interrupted write)
    is skipped with a warning naming its line number, and the other rows are kept.
    """
    path = _records_path(run_dir_or_file)
    if not path.is_file():
        logger.debug("no records at %s", path)
        return pd.DataFrame()
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                logger.warning("skipping line %d of %s: not valid JSON (%s)", lineno, path, exc.msg)
                continue
            if not isinstance(row, dict):
                logger.warning("skipping line %d of %s: not a JSON object", lineno, path)
                continue
            rows.append(row)
    return pd.DataFrame.from_records(rows) if rows else pd.DataFrame()


def recorded_keys(run_dir: str | os.PathLike[str], status: str | None = OK_STATUS) -> set[str]:
    """Keys already measured with that status (``None``: any), so a rerun of a sweep can skip them."""
    df = read_records(run_dir)
    if df.empty or "key" not in df.columns:
        return set()
    if status is not None:
        if "status" not in df.columns:
            return set()
        df = df[df["status"] == status]
    return {str(k) for k in df["key"].dropna()}


def latest(df: pd.DataFrame, by: Sequence[str] = LATEST_BY) -> pd.DataFrame:
    """The last row per group: a rerun after an error appends a new record rather than editing the old one.

    Columns of ``by`` that the frame lacks are ignored; missing values group together.
    """
    cols = [c for c in by if c in df.columns]
    if df.empty or not cols:
        return df.copy()
    if "scenario" in df.columns and "batch_size" in cols:  # offline: one row per key, whatever size it chose
        grouped = df.assign(batch_size=df["batch_size"].where(df["scenario"] != "offline"))
        return df[~grouped.duplicated(subset=cols, keep="last")].copy()
    return df.drop_duplicates(subset=cols, keep="last")


def current_records(df: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """The records a reader should see: the one rule used by notebooks, summary.md and the recommendation.

    - rows of a model name whose recipe changed since (an older ``model_key`` than the newest for that task
      and model) are dropped: two sets of weights under one variant name would share a point on every plot;
    - the last row per measurement wins (``latest``): a rerun appends rather than edits;
    - a failure (error, skip, time-out) that a later rerun measured as ``ok`` under the same key is history,
      not news, and is dropped.
    """
    if df.empty:
        return df.copy()
    if task is not None:
        df = df[df["task"] == task] if "task" in df.columns else df.iloc[0:0]
    if {"task", "model", "model_key", "timestamp"} <= set(df.columns) and len(df):
        newest = df.sort_values("timestamp", kind="stable").groupby(["task", "model"])["model_key"].last()
        keep = newest.reset_index().rename(columns={"model_key": "_newest"})
        df = df.merge(keep, on=["task", "model"], how="left")
        df = df[df["model_key"].isna() | df["_newest"].isna() | (df["model_key"] == df["_newest"])]
        df = df.drop(columns="_newest")
    df = latest(df)
    if "status" in df.columns and "key" in df.columns:
        fixed = set(df.loc[df["status"] == OK_STATUS, "key"])
        df = df[(df["status"] == OK_STATUS) | ~df["key"].isin(fixed)]
    return df.reset_index(drop=True)


def read_current(run_dir: str | os.PathLike[str], task: str | None = None) -> pd.DataFrame:
    """``current_records`` of a run's records file (an empty frame when nothing is recorded yet)."""
    return current_records(read_records(run_dir), task)
