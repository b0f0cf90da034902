"""Tasks: built-ins load from local files through datasets; YAML tasks; bad data gives one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelbench import tasks
from accelbench.exceptions import ConfigError, DataError, UnknownNameError


@pytest.fixture(autouse=True)
def _restore_registries():
    """Tasks and models registered by a test are gone after it (other tests list the known names)."""
    from accelbench.models import MODELS
    from accelbench.tasks import TASKS

    saved = {r: dict(r._entries) for r in (TASKS, MODELS)}
    yield
    for r, entries in saved.items():
        r._entries.clear()
        r._entries.update(entries)


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
    assert "'neutral'" in str(e.value) and "train.csv line 3" in str(e.value) and "label_names" in e.value.fix


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


# --- files as they come (issue 13, items 1-3 and 7) -----------------------------------------------------------

NEWS = (
    '3,"Oil prices slip, again","Brent fell 2 percent, traders said."\n'
    '1,Talks resume,"Envoys met on Tuesday.\nNo deal was reached."\n'
    '2,"Rovers win","The ""late"" goal, in the 90th minute."\n'
    "4,New chip,\n"
)
NEWS_SPEC = {"kind": "classification", "format": "csv", "files": {"train": "news.csv", "dev": "news.csv"},
             "header": False, "columns": ["label", "title", "description"], "label_column": "label",
             "text_columns": ["title", "description"], "text_separator": " | ",
             "label_names": {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tech"}}  # fmt: skip


def test_headerless_csv_with_mapped_labels_and_joined_columns(tmp_path):
    (tmp_path / "news.csv").write_text(NEWS)
    task = tasks.register_task_from_dict("news", NEWS_SPEC, base_dir=tmp_path)
    d = tasks.load_task("news")["dev"]
    assert d["label"] == [2, 0, 1, 3] and task.label_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert d["text"][0] == "Oil prices slip, again | Brent fell 2 percent, traders said."
    assert d["text"][1] == "Talks resume | Envoys met on Tuesday.\nNo deal was reached."
    assert d["text"][3] == "New chip"  # an empty column is left out of the join, not the row


def test_gzip_tsv_and_format_from_the_file_name(tmp_path):
    import gzip

    for split in ("train", "dev"):
        with gzip.open(tmp_path / f"{split}.tsv.gz", "wt", encoding="utf-8") as f:
            f.write('sentence\tlabel\na "fine" film\t1\ndull\t0\n')
    spec = {"kind": "classification", "files": {"train": "train.tsv.gz", "dev": "dev.tsv.gz"},
            "text_column": "sentence", "label_names": ["negative", "positive"]}  # fmt: skip
    task = tasks.register_task_from_dict("gz", spec, base_dir=tmp_path)
    assert task.format == "tsv" and tasks.load_task("gz")["dev"]["text"] == ['a "fine" film', "dull"]


def _pairs(tmp_path, dev_rows=None):
    import json

    rows = [{"pair": {"premise": "A man plays a guitar.", "hypothesis": h}, "gold": g}
            for h, g in (("A man plays music.", "entailment"), ("A man sleeps.", "contradiction"),
                         ("A man plays for fans.", "neutral"))]  # fmt: skip
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (dev_rows or rows)))
    spec = {"kind": "classification", "format": "json", "files": {"train": "train.jsonl", "dev": "dev.jsonl"},
            "text_column": "pair.premise", "text_pair_column": "pair.hypothesis", "label_column": "gold"}  # fmt: skip
    return tasks.register_task_from_dict("pairs", spec, base_dir=tmp_path)


def test_nested_json_pairs_with_inferred_labels(tmp_path, caplog):
    task = _pairs(tmp_path)
    with caplog.at_level("INFO"):
        d = tasks.load_task("pairs")["dev"]
    assert d.column_names == ["text", "label", "text_pair"]
    assert task.label_names == ["contradiction", "entailment", "neutral"] and task.labels.inferred
    assert "label_names inferred from the training split" in caplog.text
    assert d["label"] == [1, 0, 2]
    assert tasks.task_inputs("pairs", d)[1] == ("A man plays a guitar.", "A man sleeps.")
    task.label_names = []  # a fresh process: the names are read from the training split when asked for
    assert tasks.label_names("pairs") == ["contradiction", "entailment", "neutral"]


def test_empty_texts_are_dropped_and_counted(tmp_path):
    rows = [{"pair": {"premise": p, "hypothesis": h}, "gold": "neutral"} for p, h in
            (("A man plays.", "He plays."), ("  ", "x"), ("A dog runs.", ""), ("A cat naps.", "It naps."))]  # fmt: skip
    task = _pairs(tmp_path, dev_rows=rows)
    assert len(tasks.load_task("pairs")["dev"]) == 2 and task.dropped == {"train": 0, "dev": 2}


def test_a_header_row_in_a_headerless_file_is_refused(tmp_path):
    (tmp_path / "news.csv").write_text("label,title,description\n" + NEWS)
    tasks.register_task_from_dict("news-h", NEWS_SPEC, base_dir=tmp_path)
    with pytest.raises(DataError) as e:
        tasks.load_task("news-h")
    assert "news.csv line 1 is a header row (label, title, description)" in e.value.message
    assert "header: true" in e.value.fix
    (tmp_path / "news.csv").write_text(
        "class,headline,text\n" + NEWS
    )  # other names: the label map catches it
    with pytest.raises(DataError) as e:
        tasks.load_task("news-h")
    assert "label 'class' in" in e.value.message and "header row" in e.value.fix


def test_a_label_outside_the_mapping_names_value_file_and_line(tmp_path):
    (tmp_path / "news.csv").write_text(NEWS + "5,Extra,Story\n")
    tasks.register_task_from_dict("news-5", NEWS_SPEC, base_dir=tmp_path)
    with pytest.raises(DataError) as e:
        tasks.load_task("news-5")
    assert "label '5' in" in e.value.message and "news.csv line 6" in e.value.message
    assert "`5: <name>`" in e.value.fix


def test_a_data_dir_that_points_nowhere_is_named_before_the_hub(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("ACCELBENCH_DATA_DIR", str(tmp_path / "nowhere"))
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="ACCELBENCH_DATA_DIR=.*nowhere does not exist"):
        tasks.load_task("sst2")  # auto: it would otherwise try the hub
    assert time.perf_counter() - t0 < 2


def test_a_hub_task_offline_fails_fast_with_the_reason(monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tasks.register_task_from_dict("agnews", {"kind": "classification", "hub": {"path": "ag_news"}})
    assert tasks.get_task("agnews").format == "hub"
    t0 = time.perf_counter()
    with pytest.raises(DataError) as e:
        tasks.load_task("agnews")
    assert "the hub, which holds ag_news, cannot be reached: HF_HUB_OFFLINE=1 is set" in e.value.message
    assert time.perf_counter() - t0 < 2


def test_not_utf8_through_load_task(tmp_path):
    (tmp_path / "news.csv").write_bytes(NEWS.encode() + "2,Caf\xe9,Story\n".encode("latin-1"))
    tasks.register_task_from_dict("news-latin", NEWS_SPEC, base_dir=tmp_path)
    with pytest.raises(DataError, match=r"news.csv is not UTF-8: line 6, column 6, byte offset \d+ is 0xe9"):
        tasks.load_task("news-latin")


def test_test_split_metric_and_prefix_fields(tmp_path):
    (tmp_path / "a.tsv").write_text("source\ttarget\nlong text here\tshort\n")
    spec = {"kind": "seq2seq", "format": "tsv", "files": {"train": "a.tsv", "dev": "a.tsv", "test": "a.tsv"},
            "test_split": "test", "metric": "rouge", "prefix": "summarize: "}  # fmt: skip
    task = tasks.register_task_from_dict("summ", spec, base_dir=tmp_path)
    assert (
        task.metric == "rouge"
        and task.prefix == "summarize: "
        and tasks.get_task("sst2").metric == "accuracy"
    )
    assert tasks.split_data("summ", "test")["source"] == ["long text here"]
    with pytest.raises(ConfigError, match="metric 'rouge' does not score classification tasks"):
        tasks.register_task_from_dict("bad", {**NEWS_SPEC, "metric": "rouge"}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="split 'test' has no file"):
        tasks.register_task_from_dict("bad", {**spec, "files": {"train": "a.tsv", "dev": "a.tsv"}})


def test_the_example_tasks_load():
    from accelbench.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    load_config(root / "news_topic.yaml").register_user_definitions()
    news = tasks.load_task("news-topic")
    assert len(news["train"]) >= 400 and set(news["dev"]["label"]) == {0, 1, 2, 3}
    assert any("\n" in t for t in news["train"]["text"])  # quoted line breaks survive
    load_config(root / "sentence_pairs.yaml").register_user_definitions()
    pairs = tasks.load_task("nli-pairs")
    assert tasks.label_names("nli-pairs") == ["contradiction", "entailment", "neutral"]
    assert all(isinstance(x, tuple) for x in tasks.task_inputs("nli-pairs", pairs["dev"]))


def test_a_task_prefix_applies_to_a_hub_t5_without_its_own(tiny_t5, tiny_bert):
    from types import SimpleNamespace

    from accelbench.models import T5_HUB_PREFIX, apply_task_prefix, load_checkpoint

    summarize = SimpleNamespace(prefix="summarize: ")
    loaded = load_checkpoint(str(tiny_t5))
    assert loaded.spec.prefix == T5_HUB_PREFIX  # the built-in default for a hub T5
    assert apply_task_prefix(loaded, summarize).spec.prefix == "summarize: "
    assert apply_task_prefix(loaded, SimpleNamespace(prefix=None)) is loaded
    own = load_checkpoint({"name": str(tiny_t5), "prefix": "condense: "})
    assert apply_task_prefix(own, summarize).spec.prefix == "condense: "  # the model's own prefix wins
    bert = load_checkpoint(str(tiny_bert))
    assert apply_task_prefix(bert, summarize).spec.prefix == ""
