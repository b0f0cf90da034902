"""Checks before any work: empty texts dropped by rule (counted, logged), an empty pair column, a header row in
a headerless file, a data folder that points nowhere, the hub offline, bad reading and text fields."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from accelbench.exceptions import ConfigError, DataError
from accelbench.taskdata.checks import (
    check_data_dir,
    check_header_row,
    check_reading_fields,
    check_text_fields,
    drop_empty,
    hub_unreachable,
)
from accelbench.taskdata.files import ReadOptions, Table
from accelbench.taskdata.inputs import Columns

PLAN = {"text": ["premise"], "text_pair": ["hypothesis"], "label": ["y"]}


def _cols(texts, pairs, path="dev.jsonl"):
    return Columns({"text": texts, "text_pair": pairs, "label": [0] * len(texts)},
                   [(Path(path), i + 1) for i in range(len(texts))])  # fmt: skip


def test_empty_or_whitespace_texts_are_dropped_counted_and_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="accelbench.taskdata.checks"):
        kept, dropped = drop_empty("t", "dev", _cols(["a", "  ", "c", "d"], ["x", "y", "\t", "z"]), PLAN)
    assert dropped == 2 and kept.data["text"] == ["a", "d"] and kept.where[1] == (Path("dev.jsonl"), 4)
    assert "dropped 2 of 4 rows whose text is empty or whitespace (dev.jsonl:2, dev.jsonl:3)" in caplog.text


def test_a_pair_column_empty_everywhere_or_a_split_left_empty_is_an_error():
    with pytest.raises(DataError) as e:
        drop_empty("t", "dev", _cols(["a", "b"], ["", " "]), PLAN)
    assert "the pair column 'hypothesis' is empty in every row of dev.jsonl" in e.value.message
    assert "text_pair_column" in e.value.fix
    with pytest.raises(DataError, match=r"split 'dev' is empty \(2 row\(s\) dropped"):
        drop_empty("t", "dev", Columns({"text": ["", " "], "label": [0, 1]}, [("f", 1), ("f", 2)]), PLAN)


def test_a_header_row_in_a_file_declared_headerless():
    o = ReadOptions("csv", header=False, columns=["label", "title", "description"])
    table = Table(
        Path("news.csv"), o.columns, [{"label": "Label", "title": "Title", "description": "x"}], [1]
    )
    with pytest.raises(DataError) as e:
        check_header_row("news", table, o)
    assert (
        "news.csv line 1 is a header row (label, title), but the task declares `header: false`"
        in e.value.message
    )
    assert "header: true" in e.value.fix
    table.rows[0] = {"label": "1", "title": "Title of a story", "description": "x"}
    check_header_row("news", table, o)  # data, not a header


def test_a_data_dir_that_points_nowhere_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("ACCELBENCH_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as e:
        check_data_dir("sst2")
    assert f"ACCELBENCH_DATA_DIR={tmp_path / 'nowhere'} does not exist" in e.value.message
    assert "ACCELBENCH_DATA_DIR" in e.value.fix and "make data" in e.value.fix
    monkeypatch.setenv("ACCELBENCH_DATA_DIR", str(tmp_path))
    check_data_dir("sst2")


def test_the_hub_offline_is_known_at_once(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    assert hub_unreachable() == "HF_HUB_OFFLINE=1 is set" and time.perf_counter() - t0 < 0.5
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert "127.0.0.1 is not reachable" in hub_unreachable()


def _task(**kw):
    base = {"name": "t", "kind": "classification", "format": "csv", "header": None, "columns": None,
            "delimiter": None, "quotechar": None, "text_column": "text", "text_columns": None,
            "text_separator": " ", "text_pair_column": None}  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def test_reading_and_text_fields():
    t = _task(columns=["label", "text"])
    assert check_reading_fields(t).header is False and t.header is False  # columns alone: no header row
    assert (
        check_reading_fields(_task(header=True, columns=["a", "b"])).header is True
    )  # header skipped, renamed
    with pytest.raises(
        ConfigError, match="delimiter apply to csv, tsv and json files, not `format: parallel-text`"
    ):
        check_reading_fields(_task(format="parallel-text", delimiter=";"))
    with pytest.raises(ConfigError, match="text_pair_column apply to classification"):
        check_text_fields(_task(kind="seq2seq", text_pair_column="b"))
    with pytest.raises(ConfigError, match="text_columns must be a list"):
        check_text_fields(_task(text_columns="title"))
    with pytest.raises(ConfigError, match="must name a column other than"):
        check_text_fields(_task(text_columns=["a", "b"], text_pair_column="b"))
