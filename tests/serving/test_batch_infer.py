"""Batch inference on Ray Data: every row predicted once, in input order, resumable; bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelbench.exceptions import ConfigError, DataError
from accelbench.serving.batch_infer import (
    BatchJob,
    _records,
    run_batch_infer,
    stats_path,
    throughput_vs_actors,
)
from accelbench.serving.batch_shards import KEEP_PREFIX, ShardStore, read_shards
from accelbench.serving.variant import VariantSpec, build_variant


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray for the module (the code under test uses it instead of starting its own)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _job(tiny_bert: Path, data_root: Path, out: Path, **kw) -> BatchJob:
    spec = VariantSpec("sst2", str(tiny_bert), "fp32", threads=1)
    kw = {
        "spec": spec,
        "input": data_root / "sst2" / "train.tsv",
        "batch_size": 8,
        "actors": 2,
        "cpus_per_actor": 0.5,
    } | kw
    return BatchJob(output=out, **({"shard_rows": 16} | kw))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_in_process_predictions(local_ray, tiny_bert, data_root, tmp_path):
    out = tmp_path / "pred.jsonl"
    written = []

    def crash_after_two(k: int) -> None:
        written.append(k)
        if len(written) == 2:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_batch_infer(_job(tiny_bert, data_root, out, actors=1), progress=False, on_shard=crash_after_two)
    assert not out.exists()
    parts = out.with_name("pred.jsonl.parts")
    kept = {p.name: p.stat().st_mtime_ns for p in parts.glob("shard-*.jsonl")}
    assert len(kept) == 2

    stats = run_batch_infer(_job(tiny_bert, data_root, out), progress=False)
    assert stats["shards"] == 4 and stats["shards_skipped"] == 2 and stats["rows_processed"] == 32
    assert {p.name: p.stat().st_mtime_ns for p in parts.glob("shard-*.jsonl") if p.name in kept} == kept
    assert stats["rows_in"] == stats["rows_out"] == 64 and stats["verified"]
    assert json.loads(stats_path(out).read_text())["rows_per_s"] == stats["rows_per_s"] > 0

    rows = _rows(out)
    assert [r["id"] for r in rows] == list(range(64))  # every row once, in input order
    texts = read_shards(data_root / "sst2" / "train.tsv", "sentence", None, 64)[0]["text"].tolist()
    assert [r["sentence"] for r in rows] == texts
    expected = build_variant(VariantSpec("sst2", str(tiny_bert), "fp32", threads=1)).predict(texts)
    assert [r["label_id"] for r in rows] == [e["label_id"] for e in expected]
    assert [r["score"] for r in rows] == pytest.approx([e["score"] for e in expected], abs=1e-5)

    again = run_batch_infer(_job(tiny_bert, data_root, out), progress=False)  # all done: nothing redone
    assert again["shards_skipped"] == 4 and again["rows_processed"] == 0 and _rows(out) == rows


@pytest.mark.slow
def test_throughput_against_actors_on_a_csv_subset(local_ray, tiny_bert, data_root, tmp_path):
    src = tmp_path / "in.csv"
    lines = (data_root / "sst2" / "train.tsv").read_text().splitlines()
    src.write_text("text,other\n" + "".join(f'"{x.split(chr(9))[0]}",{i}\n' for i, x in enumerate(lines[1:])))
    job = _job(
        tiny_bert, data_root, tmp_path / "o.csv", input=src, text_column="text", limit=40, shard_rows=10,
        keep_columns=("other",),
    )  # fmt: skip
    stats = throughput_vs_actors(job, actors=(1, 2), workdir=tmp_path)
    assert [s["actors"] for s in stats] == [1, 2]
    assert all(s["rows_out"] == 40 and s["rows_per_s"] > 0 for s in stats)
    lines = (tmp_path / "actors-2.csv").read_text().splitlines()
    assert lines[0].startswith("id,text,label,label_id,score") and lines[0].endswith(",other")
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == [
        str(i) for i in range(40)
    ]  # the user's key, kept


def test_each_bad_setting_names_its_fix(tiny_bert, data_root, tmp_path):
    out = tmp_path / "o.jsonl"
    with pytest.raises(ConfigError, match="--batch-size must be at least 1"):
        _job(tiny_bert, data_root, out, batch_size=0)
    with pytest.raises(ConfigError, match="--actors"):
        _job(tiny_bert, data_root, out, actors=0)
    with pytest.raises(ConfigError, match="format of output"):
        _job(tiny_bert, data_root, tmp_path / "o.parquet")
    missing = BatchJob(input=tmp_path / "nope.tsv", output=out, spec=VariantSpec("sst2", str(tiny_bert)))
    with pytest.raises(ConfigError, match="does not exist") as e:
        run_batch_infer(missing, progress=False)
    assert "CSV, TSV or JSONL" in e.value.fix
    with pytest.raises(ConfigError, match="no column 'review'.*sentence") as e:
        run_batch_infer(_job(tiny_bert, data_root, out, text_column="review"), progress=False)
    assert "--text-column" in e.value.fix
    with pytest.raises(ConfigError, match="unknown task"):
        run_batch_infer(BatchJob(input=missing.input, output=out, spec=VariantSpec("nope", str(tiny_bert))))
    with pytest.raises(ConfigError, match="unknown method"):
        run_batch_infer(_job(tiny_bert, data_root, out, spec=VariantSpec("sst2", str(tiny_bert), "nope")))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises((DataError, ConfigError)):
        read_shards(empty, "text", None, 10)


def test_shards_are_fixed_row_ranges_from_jsonl(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": f"t{i}", "pair": f"p{i}"}) + "\n" for i in range(25)))
    shards = read_shards(src, "text", "pair", 10)
    assert [len(s) for s in shards] == [10, 10, 5]
    assert shards[2]["id"].tolist() == list(range(20, 25)) and shards[2]["pair"].tolist()[0] == "p20"
    assert [len(s) for s in read_shards(src, "text", None, 10, limit=12)] == [10, 2]


def test_kept_columns_reach_the_output_rows_and_never_shadow_a_prediction(tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [{"key": f"k{i}", "text": f"t{i}", "label": i % 2, "n": i} for i in range(5)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows[:4]) + json.dumps({"text": "t4"}) + "\n")
    (shard,) = read_shards(src, "text", None, 10, keep=("all",))
    assert sorted(c for c in shard.columns if c.startswith(KEEP_PREFIX)) == [
        "keep:key",
        "keep:label",
        "keep:n",
    ]
    results = [(i, json.dumps({"label": "pos", "score": 0.9})) for i in range(5)]
    out = _records(shard, results, "text", None)
    assert out[1] == {
        "id": 1,
        "text": "t1",
        "label": "pos",
        "score": 0.9,
        "key": "k1",
        "input_label": 1,
        "n": 1,
    }
    assert out[4]["key"] is None and out[4]["input_label"] is None  # a field the JSON line lacks: null
    assert json.loads(json.dumps(out))  # plain Python values: the shard files are JSON
    # the kept columns are the first chunk's: a later chunk without one gets nulls, one with another field
    # does not add a column (a CSV output's header comes from the first shard)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in [{"text": "a", "k": 1}, {"text": "b", "k": 2},
                                                              {"text": "c", "extra": 9}]))  # fmt: skip
    first, second = read_shards(mixed, "text", None, 2, keep=("all",))
    assert list(first.columns) == list(second.columns) and second["keep:k"].tolist() == [None]
    (only,) = read_shards(src, "text", None, 10, keep=("n", "text"))  # the text is in the output anyway
    assert [c for c in only.columns if c.startswith(KEEP_PREFIX)] == ["keep:n"]
    with pytest.raises(ConfigError, match="no column 'review' to keep") as e:
        read_shards(src, "text", None, 10, keep=("review",))
    assert "--keep-columns" in e.value.fix


def test_store_refuses_parts_of_another_job_and_verifies_the_merge(tmp_path):
    out = tmp_path / "o.jsonl"
    store = ShardStore(out, {"input": "a"}, [2, 1])
    done = store.open(resume=True)
    assert done == set()
    store.write(0, [{"id": 1, "y": 1}, {"id": 0, "y": 0}], done)  # sorted on write
    (store.parts / "shard-00001.jsonl.tmp99").write_text("half a shard")  # a write cut short
    assert ShardStore(out, {"input": "a"}, [2, 1]).open(resume=True) == {0}
    assert not list(store.parts.glob("*.tmp*"))
    with pytest.raises(ConfigError, match="another job.*input") as e:
        ShardStore(out, {"input": "b"}, [2, 1]).open(resume=True)
    assert "--no-resume" in e.value.fix
    with pytest.raises(RuntimeError, match="shard 1"):
        store.write(1, [{"id": 0, "y": 0}], done)  # a wrong row can never land in a shard
    store.write(1, [{"id": 2, "y": 2}], done)
    assert store.merge() == 3 and [r["id"] for r in _rows(out)] == [0, 1, 2]
    store.shard_path(1).write_text(json.dumps({"id": 0, "y": 0}) + "\n")  # a duplicate id, edited by hand
    with pytest.raises(DataError, match="shard 1"):
        store.merge()
    assert ShardStore(out, {"input": "b"}, [2, 1]).open(resume=False) == set()  # --no-resume starts over
