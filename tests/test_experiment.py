"""run_experiment: records, resuming an interrupted sweep, a failing variant, bad input before work."""

from __future__ import annotations

import pytest

from accelbench.compress import Method, register_method
from accelbench.compress.base import _METHODS
from accelbench.exceptions import ConfigError, MethodNotApplicableError, UnknownNameError
from accelbench.experiment import run_experiment
from accelbench.records import read_records

from .conftest import QUICK


@pytest.fixture
def broken_method():
    @register_method
    class Broken(Method):
        name = "broken-test"

        def apply(self, loaded):
            raise RuntimeError("simulated export failure")

    yield "broken-test"
    _METHODS.pop("broken-test")


def test_records_resume_and_failure(tiny_bert, tmp_path, broken_method):
    run_dir = tmp_path / "run"
    first = run_experiment("sst2", str(tiny_bert), ["fp32"], run_dir, QUICK, progress=False)
    assert list(first["scenario"]) == ["realtime", "batch", "batch"]
    row = first.iloc[0]
    assert row["status"] == "ok" and row["metric_name"] == "accuracy" and row["metric_delta"] == 0
    assert row["agreement"] == 1.0 and row["metric_ci_low"] <= row["metric"] <= row["metric_ci_high"]
    assert row["env_cpu_model"] and row["env_torch"] and row["key"]
    n_before = len(read_records(run_dir))

    # the sweep is rerun with more methods: fp32 is skipped, the broken method is recorded, int8 still runs
    df = run_experiment("sst2", str(tiny_bert), ["fp32", broken_method, "dynamic-int8"], run_dir, QUICK,
                        progress=False)  # fmt: skip
    all_rows = read_records(run_dir)
    assert len(all_rows[all_rows["method"] == "fp32"]) == n_before  # not measured again
    err = all_rows[all_rows["method"] == broken_method]
    assert (
        len(err) == 1
        and err.iloc[0]["status"] == "error"
        and "simulated export failure" in err.iloc[0]["error"]
    )
    int8 = df[df["method"] == "dynamic-int8"]
    assert (int8["status"] == "ok").all() and len(int8) == 3
    assert int8["size_mb"].iloc[0] < df[df["method"] == "fp32"]["size_mb"].iloc[0]

    # changing a measurement setting is a new key: measured again, old records kept
    run_experiment("sst2", str(tiny_bert), ["fp32"], run_dir, {**QUICK, "batch_sizes": [2]}, progress=False)
    assert len(read_records(run_dir)) == len(all_rows) + 2


def test_bad_input_fails_before_any_record(tiny_bert, tiny_t5, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(UnknownNameError, match="dynamic-int8"):
        run_experiment("sst2", str(tiny_bert), ["fp32", "int4-magic"], run_dir, QUICK, progress=False)
    with pytest.raises(ConfigError, match="batch sizes must be positive"):
        run_experiment(
            "sst2", str(tiny_bert), ["fp32"], run_dir, {**QUICK, "batch_sizes": [0]}, progress=False
        )
    with pytest.raises(ConfigError, match="cannot do task"):
        run_experiment("multi30k", "minilm-sst2", ["fp32"], run_dir, QUICK, progress=False)

    @register_method
    class BertOnly(Method):
        name = "bert-only-exp"
        families = ("bert",)

        def apply(self, loaded):
            raise AssertionError

    try:
        with pytest.raises(MethodNotApplicableError):
            run_experiment(
                "multi30k", str(tiny_t5), ["fp32", "bert-only-exp"], run_dir, QUICK, progress=False
            )
    finally:
        _METHODS.pop("bert-only-exp")
    assert read_records(run_dir).empty


def test_seq2seq_records(tiny_t5, tmp_path):
    df = run_experiment(
        "multi30k", str(tiny_t5), ["fp32", "dynamic-int8"], tmp_path / "run", QUICK, progress=False
    )
    assert set(df["metric_name"]) == {"bleu"}
    assert {"chrf", "tokens_per_s", "ms_per_token"} <= set(df.columns)
    assert (df["status"] == "ok").all()


def test_records_for_hides_failures_that_a_rerun_fixed(tmp_path):
    from accelbench.experiment import records_for
    from accelbench.records import append_records

    run = tmp_path / "run"
    append_records(run, [{"key": "a", "task": "sst2", "status": "error", "error": "boom"},
                         {"key": "b", "task": "sst2", "status": "error", "error": "still broken"}])  # fmt: skip
    append_records(run, [{"key": "a", "task": "sst2", "status": "ok", "scenario": "realtime", "batch_size": 1,
                          "padding": "dynamic"}])  # fmt: skip
    df = records_for(run, "sst2")
    assert sorted(zip(df["key"], df["status"], strict=True)) == [("a", "ok"), ("b", "error")]


def test_records_for_keeps_only_the_newest_recipe_of_a_model(tmp_path):
    from accelbench.experiment import records_for
    from accelbench.records import append_records

    run = tmp_path / "run"
    row = {"task": "sst2", "model": "student", "status": "ok", "scenario": "realtime", "batch_size": 1,
           "padding": "dynamic"}  # fmt: skip
    append_records(run, [{**row, "key": "old", "model_key": "r1", "timestamp": "2026-11-27T01:00:00"},
                         {**row, "key": "t", "model": "teacher", "model_key": "t1", "timestamp": "2026-11-27T01:00:00"}])  # fmt: skip
    append_records(run, [{**row, "key": "new", "model_key": "r2", "timestamp": "2026-11-27T02:00:00"}])
    df = records_for(run, "sst2")
    assert sorted(df["key"]) == ["new", "t"]  # the student's old recipe is history; the teacher is untouched
    assert len(records_for(run)) == 2
