"""Service-curve records: one flat JSON line per (variant, batch size, threads, co-located replicas), read back
as a DataFrame. Apart from the measurement (``curves``) so that the planner reads them without loading torch."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..exceptions import ConfigError
from ..records import read_records

CURVES_FILE = "service_curves.jsonl"
POINT_KEYS = ("task", "model", "method", "batch_size", "threads", "colocated")
MAKE_CURVES = (
    "accelbench curves --task sst2 --model minilm-sst2 --methods fp32 dynamic-int8 --run results/serving"
)


def curves_path(run_dir: str | os.PathLike[str]) -> Path:
    """A run folder means its ``service_curves.jsonl``; a ``.jsonl`` path is taken as is."""
    p = Path(run_dir)
    return p if p.suffix == ".jsonl" else p / CURVES_FILE


def read_curves(run_dir: str | os.PathLike[str], task: str | None = None) -> pd.DataFrame:
    """The latest record of every measured point (a rerun appends; the last line wins); empty if none."""
    df = read_records(curves_path(run_dir))
    if df.empty:
        return df
    if "status" in df.columns:
        df = df[df["status"].fillna("ok") == "ok"]
    if task is not None:
        df = df[df["task"] == task]
    return df.drop_duplicates(subset=[c for c in POINT_KEYS if c in df.columns], keep="last").reset_index(
        drop=True
    )


def require_curves(run_dir: str | os.PathLike[str], task: str | None = None) -> pd.DataFrame:
    """``read_curves``, or a ConfigError that says which command makes them."""
    df = read_curves(run_dir, task)
    if df.empty:
        where = curves_path(run_dir)
        raise ConfigError(f"no service curves in {where}" + (f" for task {task}" if task else ""),
                          f"measure them first: {MAKE_CURVES}")  # fmt: skip
    return df
