"""Records: hashing, flattening, the JSON-lines round trip and its tolerance to interrupted writes."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from accelbench.exceptions import ConfigError
from accelbench.records import (
    RECORDS_FILE,
    append_records,
    config_hash,
    flatten,
    latest,
    read_current,
    read_records,
    recorded_keys,
)


def test_config_hash_ignores_key_order_and_sees_values() -> None:
    a = {"model": "minilm", "variants": ["fp32", "int8"], "bench": {"batch": 8, "threads": 2}}
    b = {"bench": {"threads": 2, "batch": 8}, "variants": ["fp32", "int8"], "model": "minilm"}
    assert config_hash(a) == config_hash(b)
    assert len(config_hash(a)) == 12
    assert all(c in "0123456789abcdef" for c in config_hash(a))
    assert config_hash(a) != config_hash({**a, "model": "bert"})
    assert config_hash(a) != config_hash({**a, "bench": {"batch": 16, "threads": 2}})
    assert config_hash(a) != config_hash({**a, "variants": ["int8", "fp32"]})


def test_config_hash_accepts_paths_and_dataclasses() -> None:
    @dataclass
    class Cfg:
        data: Path
        seed: int

    assert config_hash({"p": Path("data/sst2")}) == config_hash({"p": "data/sst2"})
    assert config_hash(Cfg(Path("x"), 1)) == config_hash({"data": "x", "seed": 1})
    assert config_hash(Cfg(Path("x"), 1)) != config_hash(Cfg(Path("x"), 2))


def test_flatten_nested_and_collision() -> None:
    assert flatten({"a": 1, "b": {"c": 2, "d": {"e": 3}}}) == {"a": 1, "b_c": 2, "b_d_e": 3}
    assert flatten({"b": {"c": 2}}, sep=".") == {"b.c": 2}
    assert flatten({"x": [1, {"y": 2}]}) == {"x": [1, {"y": 2}]}  # lists are values, not nesting
    with pytest.raises(ConfigError, match="a_b"):
        flatten({"a_b": 1, "a": {"b": 2}})


def test_append_then_read_round_trips(tmp_path: Path) -> None:
    run = tmp_path / "run" / "nested"  # created on demand
    path = append_records(
        run,
        [
            {
                "key": "minilm/fp32",
                "accuracy": 0.91,
                "latency_ms": float("nan"),
                "throughput": np.float32(12.5),
                "n": np.int64(872),
                "ok": np.bool_(True),
                "path": Path("data/sst2"),
                "bench": {"p50": 1.5},
            },
            {"key": "minilm/int8", "accuracy": 0.90, "latency_ms": 2.5, "speedup": float("inf")},
        ],
    )
    assert path == run / RECORDS_FILE
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])  # strict JSON: NaN was written as null
    assert first["latency_ms"] is None and first["bench_p50"] == 1.5 and first["path"] == "data/sst2"
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()

    df = read_records(run)
    assert list(df["key"]) == ["minilm/fp32", "minilm/int8"]
    assert df["accuracy"].tolist() == [0.91, 0.90]
    assert math.isnan(df["latency_ms"].iloc[0]) and df["latency_ms"].iloc[1] == 2.5
    assert df["throughput"].iloc[0] == 12.5
    assert df["n"].iloc[0] == 872
    assert bool(df["ok"].iloc[0]) is True
    assert pd.isna(df["speedup"].iloc[0]) and pd.isna(df["speedup"].iloc[1])
    assert read_records(path).equals(df)  # the file itself works as well as its directory


def test_append_accumulates(tmp_path: Path) -> None:
    append_records(tmp_path, [{"key": "a"}])
    append_records(tmp_path, [{"key": "b"}, {"key": "c"}])
    append_records(tmp_path, [])
    assert read_records(tmp_path)["key"].tolist() == ["a", "b", "c"]


def test_append_rejects_non_dicts(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        append_records(tmp_path, [["not", "a", "dict"]])  # type: ignore[list-item]


def test_corrupt_last_line_is_skipped_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = append_records(tmp_path, [{"key": "a", "v": 1}, {"key": "b", "v": 2}])
    with path.open("a") as fh:
        fh.write('{"key": "c", "v": 3')  # an interrupted write: no closing brace, no newline
    with caplog.at_level(logging.WARNING, logger="accelbench.records"):
        df = read_records(tmp_path)
    assert df["key"].tolist() == ["a", "b"]
    assert any("line 3" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_append_after_interrupted_write_starts_a_new_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = append_records(tmp_path, [{"key": "a"}])
    with path.open("a") as fh:
        fh.write('{"key": "cut')
    append_records(tmp_path, [{"key": "b"}])
    with caplog.at_level(logging.WARNING, logger="accelbench.records"):
        df = read_records(tmp_path)
    assert df["key"].tolist() == ["a", "b"]  # only the cut line is lost
    assert any("line 2" in r.getMessage() for r in caplog.records)


def test_non_object_lines_and_blank_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / RECORDS_FILE
    path.write_text('{"key": "a"}\n\n[1, 2]\n{"key": "b"}\n')
    with caplog.at_level(logging.WARNING, logger="accelbench.records"):
        df = read_records(path)
    assert df["key"].tolist() == ["a", "b"]
    assert [r.getMessage() for r in caplog.records if "line 3" in r.getMessage()]


def test_missing_file_gives_empty_frame(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        df = read_records(tmp_path / "never-ran")
        assert read_records(tmp_path / "x.jsonl").empty
    assert isinstance(df, pd.DataFrame) and df.empty
    assert not caplog.records
    assert recorded_keys(tmp_path / "never-ran") == set()


def test_recorded_keys_filters_by_status(tmp_path: Path) -> None:
    append_records(
        tmp_path,
        [
            {"key": "a", "status": "ok"},
            {"key": "b", "status": "error"},
            {"key": "c", "status": "ok"},
            {"key": None, "status": "ok"},
            {"status": "ok"},
        ],
    )
    assert recorded_keys(tmp_path) == {"a", "c"}
    assert recorded_keys(tmp_path, status="error") == {"b"}
    assert recorded_keys(tmp_path, status=None) == {"a", "b", "c"}
    assert recorded_keys(tmp_path, status="skipped") == set()


def test_recorded_keys_without_status_column(tmp_path: Path) -> None:
    append_records(tmp_path, [{"key": "a"}])
    assert recorded_keys(tmp_path) == set()
    assert recorded_keys(tmp_path, status=None) == {"a"}


def test_latest_keeps_last_of_duplicates() -> None:
    df = pd.DataFrame(
        [
            {"key": "a", "scenario": "latency", "batch_size": 1, "padding": "dynamic", "status": "error"},
            {"key": "b", "scenario": "latency", "batch_size": 1, "padding": "dynamic", "status": "ok"},
            {"key": "a", "scenario": "latency", "batch_size": 8, "padding": "dynamic", "status": "ok"},
            {"key": "a", "scenario": "latency", "batch_size": 1, "padding": "dynamic", "status": "ok"},
        ]
    )
    out = latest(df)
    assert len(out) == 3
    row = out[(out["key"] == "a") & (out["batch_size"] == 1)]
    assert row["status"].tolist() == ["ok"]
    assert latest(df, by=("key",))["status"].tolist() == ["ok", "ok"]
    assert len(latest(df, by=("key", "not_a_column"))) == 2


def test_latest_groups_missing_values_together() -> None:
    df = pd.DataFrame([{"key": "t", "padding": None, "v": 1}, {"key": "t", "padding": None, "v": 2}])
    assert latest(df)["v"].tolist() == [2]
    assert latest(pd.DataFrame()).empty


def test_current_records_hides_failures_that_a_rerun_fixed(tmp_path):
    run = tmp_path / "run"
    append_records(run, [{"key": "a", "task": "sst2", "status": "error", "error": "boom"},
                         {"key": "b", "task": "sst2", "status": "error", "error": "still broken"}])  # fmt: skip
    append_records(run, [{"key": "a", "task": "sst2", "status": "ok", "scenario": "realtime", "batch_size": 1,
                          "padding": "dynamic"}])  # fmt: skip
    df = read_current(run, "sst2")
    assert sorted(zip(df["key"], df["status"], strict=True)) == [("a", "ok"), ("b", "error")]


def test_current_records_keeps_only_the_newest_recipe_of_a_model(tmp_path):
    run = tmp_path / "run"
    row = {"task": "sst2", "model": "student", "status": "ok", "scenario": "realtime", "batch_size": 1,
           "padding": "dynamic"}  # fmt: skip
    append_records(run, [{**row, "key": "old", "model_key": "r1", "timestamp": "2026-11-27T01:00:00"},
                         {**row, "key": "t", "model": "teacher", "model_key": "t1", "timestamp": "2026-11-27T01:00:00"}])  # fmt: skip
    append_records(run, [{**row, "key": "new", "model_key": "r2", "timestamp": "2026-11-27T02:00:00"}])
    df = read_current(run, "sst2")
    assert sorted(df["key"]) == ["new", "t"]  # the student's old recipe is history; the teacher is untouched
    assert len(read_current(run)) == 2
