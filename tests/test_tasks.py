"""Tasks: built-ins load from local files through datasets; YAML tasks; bad data gives one clear error."""

from __future__ import annotations

import pytest

from accelbench import tasks
from accelbench.exceptions import ConfigError, DataError, UnknownNameError


def test_builtin_tasks_load_normalised(data_root):
    sst2 = tasks.load_task("sst2")
    assert set(sst2) == {"train", "dev"}
    assert sst2["dev"].column_names == ["text", "label"]
    assert set(sst2["dev"]["label"]) == {0, 1}
    mt = tasks.load_task("multi30k")
    assert set(mt) == {"train", "val", "test_2016_flickr"}
    assert mt["test_2016_flickr"].column_names == ["source", "target"]
    assert (
        mt["train"][0]["source"] == "a man rides a bike ."
        and mt["train"][0]["target"] == "ein mann fährt fahrrad ."
    )


def test_eval_split_subset_and_bad_n():
    assert len(tasks.eval_split("sst2", 7)) == 7
    with pytest.raises(ConfigError, match="n_eval must be positive"):
        tasks.eval_split("sst2", 0)


def test_unknown_task_lists_known():
    with pytest.raises(UnknownNameError) as e:
        tasks.get_task("sst3")
    assert "multi30k" in str(e.value) and "sst2" in str(e.value)


def test_missing_data_folder_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELBENCH_DATA_DIR", str(tmp_path / "nothing"))
    with pytest.raises(DataError) as e:
        tasks.load_task("sst2", source="local")
    assert "make data" in e.value.fix and "ACCELBENCH_DATA_DIR" in e.value.fix


def _csv_task(tmp_path, rows: str, name: str = "reviews", **extra):
    (tmp_path / "train.csv").write_text(rows)
    (tmp_path / "dev.csv").write_text(rows)
    spec = {"kind": "classification", "format": "csv", "files": {"train": "train.csv", "dev": "dev.csv"},
            "text_column": "review", "label_column": "stars", "label_names": ["bad", "good"], **extra}  # fmt: skip
    return tasks.register_task_from_dict(name, spec, base_dir=tmp_path)


def test_yaml_task_with_string_labels(tmp_path):
    _csv_task(tmp_path, "review,stars\nlovely,good\nawful,bad\nfine,good\n")
    ds = tasks.load_task("reviews")
    assert ds["dev"]["text"] == ["lovely", "awful", "fine"]
    assert ds["dev"]["label"] == [1, 0, 1]


def test_label_outside_label_set(tmp_path):
    _csv_task(tmp_path, "review,stars\nlovely,good\nmeh,neutral\n", name="bad-labels")
    with pytest.raises(DataError) as e:
        tasks.load_task("bad-labels")
    assert "'neutral'" in str(e.value) and "row 1" in str(e.value) and "label_names" in e.value.fix


def test_unknown_column_lists_columns(tmp_path):
    _csv_task(tmp_path, "review,stars\nlovely,good\n", name="bad-col", text_column="body")
    with pytest.raises(DataError, match="column\\(s\\) body not found; the file has: review, stars"):
        tasks.load_task("bad-col")


def test_empty_dataset(tmp_path):
    _csv_task(tmp_path, "review,stars\n", name="empty")
    with pytest.raises(DataError, match="empty"):
        tasks.load_task("empty")


def test_invalid_task_definitions(tmp_path):
    with pytest.raises(ConfigError, match="kind must be one of"):
        tasks.register_task_from_dict(
            "x", {"kind": "regression", "format": "csv", "files": {"train": "a", "dev": "b"}}
        )
    with pytest.raises(ConfigError, match="at least two label_names"):
        tasks.register_task_from_dict("x", {"kind": "classification", "format": "csv",
                                            "files": {"train": "a", "dev": "b"}, "label_names": ["one"]})  # fmt: skip
    with pytest.raises(ConfigError, match="unknown field"):
        tasks.register_task_from_dict("x", {"kind": "classification", "colour": "red", "files": {}})
