"""run_experiment: records, resuming an interrupted sweep, a failing variant, bad input before work."""

from __future__ import annotations

import pandas as pd
import pytest

from accelbench.exceptions import ConfigError, DataError, MethodNotApplicableError, UnknownNameError
from accelbench.experiment import run_experiment
from accelbench.methods import METHODS, Method, register_method
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
    METHODS.unregister("broken-test")


@pytest.mark.slow  # measures a variant end to end (peaks, scenarios) or compiles
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
    # fp32 (already recorded) joined the rounds as a reference, so the speed-ups are still paired
    assert int8["speedup_paired"].all() and (int8["speedup_vs_fp32"] > 0).all()
    assert (int8["speedup_vs_fp32_ci_low"] <= int8["speedup_vs_fp32"]).all()
    assert (int8["repeats"] == QUICK.get("repeats", 6)).all() and int8["metric_delta_p"].between(0, 1).all()
    assert (int8["time_quality_s"] > 0).all() and (int8["elapsed_s"] >= int8["time_speed_s"]).all()
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
        METHODS.unregister("bert-only-exp")
    assert read_records(run_dir).empty


@pytest.mark.slow  # measures a variant end to end (peaks, scenarios) or compiles
def test_seq2seq_records(tiny_t5, tmp_path):
    df = run_experiment(
        "multi30k", str(tiny_t5), ["fp32", "dynamic-int8"], tmp_path / "run", QUICK, progress=False
    )
    assert set(df["metric_name"]) == {"bleu"}
    assert {"chrf", "tokens_per_s", "ms_per_token"} <= set(df.columns)
    assert (df["status"] == "ok").all()


@pytest.fixture
def unavailable_method():
    @register_method
    class NeedsHardware(Method):
        name = "needs-hardware-test"

        def unavailable_reason(self):
            return "this CPU lacks the imaginary instruction set"

        def apply(self, loaded):
            raise AssertionError("an unavailable method is never applied")

    yield "needs-hardware-test"
    METHODS.unregister("needs-hardware-test")


@pytest.mark.slow  # measures a variant end to end (peaks, scenarios) or compiles
def test_unavailable_method_errors_by_default_and_is_recorded_as_skipped_in_sweeps(
    tiny_bert, tmp_path, unavailable_method
):
    run_dir = tmp_path / "run"
    with pytest.raises(MethodNotApplicableError, match="imaginary instruction set"):
        run_experiment("sst2", str(tiny_bert), ["fp32", unavailable_method], run_dir, QUICK, progress=False)
    assert read_records(run_dir).empty  # refused before any work
    df = run_experiment("sst2", str(tiny_bert), ["fp32", unavailable_method], run_dir, QUICK, progress=False,
                        unavailable="skip")  # fmt: skip
    skipped = df[df["method"] == unavailable_method]
    assert list(skipped["status"]) == ["skipped"] and "imaginary instruction set" in skipped.iloc[0]["error"]
    assert (df[df["method"] == "fp32"]["status"] == "ok").all()
    with pytest.raises(ConfigError, match="unavailable"):
        run_experiment("sst2", str(tiny_bert), ["fp32"], run_dir, QUICK, progress=False, unavailable="maybe")


@pytest.mark.slow  # measures a variant end to end (peaks, scenarios) or compiles
def test_two_settings_of_one_method_are_two_records(tiny_bert, tmp_path):
    """Every setting that changes a measurement is in the method's label and the record key."""
    run_dir = tmp_path / "run"
    methods = [{"name": "ort-fp32", "check_fusion": False, "intra_op_num_threads": 1},
               {"name": "ort-fp32", "check_fusion": False, "intra_op_num_threads": 2}]  # fmt: skip
    df = run_experiment("sst2", str(tiny_bert), methods, run_dir, QUICK, progress=False)
    ort = df[df["method_name"] == "ort-fp32"]
    assert (ort["status"] == "ok").all()
    assert ort["method"].nunique() == 2 and ort["key"].nunique() == 2
    assert {"intra_op_num_threads=1", "intra_op_num_threads=2"} <= {
        part for label in ort["method"] for part in label.strip("]").split("[")[-1].split(",")
    }


@pytest.fixture
def sleepy_method():
    @register_method
    class Sleepy(Method):
        name = "sleepy-test"

        def apply(self, loaded):
            import time

            time.sleep(30)
            raise AssertionError("never reached: the time limit stops it")

    yield "sleepy-test"
    METHODS.unregister("sleepy-test")


@pytest.mark.slow  # measures a variant end to end
def test_a_variant_over_its_time_limit_is_recorded_as_timeout_and_the_sweep_goes_on(
    tiny_bert, tmp_path, sleepy_method
):
    df = run_experiment("sst2", str(tiny_bert), ["fp32", sleepy_method], tmp_path / "run",
                        {**QUICK, "time_limit_s": 8}, progress=False)  # fmt: skip
    late = df[df["method"] == sleepy_method].iloc[0]
    # the sleeper (30 s) was stopped at 8 s
    assert late["status"] == "timeout" and "time_limit_s=8" in late["error"]
    assert 7.5 <= late["elapsed_s"] < 12
    assert (df[df["method"] == "fp32"]["status"] == "ok").all()


# Generation metrics other than BLEU, and choosing on eval then confirming on test (issue 13, items 4-5)

FAST = {**QUICK, "batch_sizes": [2], "realtime": False, "min_time_s": 0.02, "repeats": 2, "warmup": 0}


def _tsv(path, header, rows):
    path.write_text("\n".join([header, *("\t".join(r) for r in rows)]) + "\n")


@pytest.fixture
def user_tasks(tmp_path):
    """A tiny summarization task per metric, and a classification task with a test split."""
    from accelbench.tasks import TASKS, register_task_from_dict

    from .conftest import EN, NEG, POS

    d = tmp_path / "data"
    d.mkdir()
    pairs = [(s, " ".join(s.split()[:3])) for s in EN]
    for split in ("train", "dev", "test"):
        _tsv(d / f"summ-{split}.tsv", "document\tsummary", pairs * 2)
        rows = [(t, str(i % 2)) for i, t in enumerate(x for pair in zip(NEG, POS, strict=True) for x in pair)]
        _tsv(d / f"cls-{split}.tsv", "sentence\tlabel", rows if split != "test" else rows[::-1])
    summ = {"kind": "seq2seq", "format": "tsv", "source_column": "document", "target_column": "summary",
            "files": {s: f"summ-{s}.tsv" for s in ("train", "dev", "test")}, "test_split": "test"}  # fmt: skip
    names = {"summ-rouge": {**summ, "metric": "rouge"}, "summ-chrf": {**summ, "metric": "chrf"},
             "cls-test": {"kind": "classification", "format": "tsv", "text_column": "sentence",
                          "label_names": ["negative", "positive"], "test_split": "test",
                          "files": {s: f"cls-{s}.tsv" for s in ("train", "dev", "test")}}}  # fmt: skip
    for name, spec in names.items():
        register_task_from_dict(name, spec, base_dir=d)
    yield names
    for name in names:
        TASKS.unregister(name)


@pytest.mark.slow  # two variants measured end to end
@pytest.mark.parametrize("task, metric", [("summ-rouge", "rougeL"), ("summ-chrf", "chrf")])
def test_a_task_metric_drives_the_records(tiny_t5, tmp_path, user_tasks, task, metric):
    df = run_experiment(task, str(tiny_t5), ["fp32", "dynamic-int8"], tmp_path / "run", FAST, progress=False)
    assert (df["status"] == "ok").all() and set(df["metric_name"]) == {metric}
    assert (df["metric"] == df[metric]).all() and (df["metric_ci_low"] == df[f"{metric}_ci_low"]).all()
    int8 = df[df["method"] == "dynamic-int8"].iloc[0]
    assert int8["metric_delta_test"] == ("paired-bootstrap" if metric == "rougeL" else "sacrebleu-paired-bs")
    assert {"bleu", "chrf"} <= set(df.columns)
    assert ("rouge1" in df.columns) == (metric == "rougeL")  # ROUGE only where the task asks for it
    # the metric is part of the key: a task scored otherwise is another measurement
    assert df["key"].nunique() == 2


def test_keys_of_tasks_without_metric_or_prefix_are_unchanged(tiny_bert):
    from accelbench.experiment import _scoring, variant_key
    from accelbench.measure.settings import BenchmarkSettings
    from accelbench.methods import get_method
    from accelbench.models import resolve_model
    from accelbench.records import config_hash
    from accelbench.tasks import get_task
    from accelbench.training import load_model

    spec, method, s = resolve_model(str(tiny_bert)), get_method("fp32"), BenchmarkSettings.from_dict(QUICK)
    old = config_hash({"task": "sst2", "model": spec.name, "model_key": spec.key, "base": spec.base,
                       "method": method.label, "options": method.options, "settings": s.key_dict()})  # fmt: skip
    scoring = _scoring(get_task("sst2"), load_model(spec, progress=False))
    assert scoring == {} and variant_key("sst2", spec, method, s, scoring) == old


def test_confirm_on_test_refuses_before_any_work(tmp_path, user_tasks):
    from accelbench.confirm import confirm_on_test

    with pytest.raises(ConfigError, match="no test split"):
        confirm_on_test(tmp_path / "run", "sst2", ["m:fp32"], progress=False)
    with pytest.raises(DataError, match="no ok record of nope:fp32"):
        confirm_on_test(tmp_path / "run", "cls-test", ["nope:fp32"], progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # two variants measured end to end, then two evaluated on the test split
def test_choose_on_eval_confirm_on_test(tiny_bert, tmp_path, user_tasks):
    from accelbench.analysis import frontier, read_run, recommend, write_summary
    from accelbench.analysis.confirmation import (
        CONFIRMATION_FILE,
        HEADING,
        confirmation_targets,
        read_confirmations,
    )
    from accelbench.confirm import TEST_SPLIT, confirm_on_test, confirm_recommended

    run_dir = tmp_path / "run"
    run_experiment("cls-test", str(tiny_bert), ["fp32", "dynamic-int8"], run_dir, FAST, progress=False)
    records_before = (run_dir / "records.jsonl").read_bytes()
    table, rec = (
        frontier(read_run(run_dir), "cls-test", "throughput"),
        recommend(read_run(run_dir), "cls-test", 0.5, "throughput"),
    )
    targets = confirmation_targets(read_run(run_dir), "cls-test", fraction=0.5)
    assert targets and all(":" in t for t in targets)
    rows = confirm_on_test(run_dir, "cls-test", targets, progress=False)
    model = tiny_bert.name
    assert set(rows["variant"]) == set(targets) | {f"{model}:fp32"}
    assert (rows["split"] == TEST_SPLIT).all() and (rows["split_name"] == "test").all()
    assert (rows["status"] == "ok").all() and (rows["n_eval"] == 14).all()
    assert rows["metric"].between(0, 1).all() and set(rows["metric_name"]) == {"accuracy"}
    assert (rows.loc[rows["method"] == "fp32", "metric_delta"] == 0).all()
    # records.jsonl untouched; frontier and recommendation as before
    assert (run_dir / "records.jsonl").read_bytes() == records_before
    pd.testing.assert_frame_equal(frontier(read_run(run_dir), "cls-test", "throughput"), table)
    assert recommend(read_run(run_dir), "cls-test", 0.5, "throughput") == rec
    # the sweep's call finds every row recorded and measures nothing; a task without test split: nothing
    n = len(read_records(run_dir / CONFIRMATION_FILE))
    assert set(confirm_recommended(run_dir, "cls-test", 0.5, progress=False)["key"]) == set(rows["key"])
    assert confirm_recommended(run_dir, "sst2", progress=False).empty
    assert len(read_records(run_dir / CONFIRMATION_FILE)) == n == len(read_confirmations(run_dir))
    text = write_summary(run_dir, fraction=0.5, figures=False).read_text()
    assert HEADING in text and "**cls-test** (test split `test`)" in text


# one torch thread: on 2 cores shared with other processes, two threads made tiny T5 generation 15x slower
OFFLINE = {**QUICK, "realtime": False, "batch_sizes": [4], "repeats": 2, "threads": 1, "offline": True,
           "offline_min_batch": 4, "offline_max_batch": 16}  # fmt: skip
PEAKS = {"fp32": 50.0, "bf16": 100.0, "int8": 200.0}  # a run's peaks.json, so the test does not time matmuls


@pytest.mark.slow  # measures a variant end to end
@pytest.mark.parametrize(
    ("family", "task", "methods"), [("bert", "sst2", ["fp32", "dynamic-int8"]), ("t5", "multi30k", ["fp32"])]
)
def test_offline_point_recorded_with_its_curve_and_percent_of_peak(
    family, task, methods, tiny_bert, tiny_t5, tmp_path
):
    import json

    import torch

    from accelbench.analysis.recommend import recommend_batch_inference

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "peaks.json").write_text(json.dumps(PEAKS))
    model = str(tiny_bert if family == "bert" else tiny_t5)
    threads = torch.get_num_threads()
    try:
        df = run_experiment(task, model, methods, run_dir, OFFLINE, progress=False)
    finally:
        torch.set_num_threads(threads)  # the setting is process-wide: leave the next tests theirs
    assert (df["status"] == "ok").all()
    offline = df[df["scenario"] == "offline"].set_index("method")
    assert sorted(offline.index) == sorted(methods) and (df["setting_offline"] == True).all()  # noqa: E712
    for method, row in offline.iterrows():
        curve = json.loads(row["offline_curve"])
        tried = [c["batch_size"] for c in curve]
        assert tried[0] == 4 and set(tried) <= {4, 8, 12, 16} and row["batch_size"] in tried
        assert all(c["throughput"] > 0 and "rss_increase_mb" in c for c in curve)
        assert (
            row["repeats"] == 2 and row["throughput_ci_low"] <= row["throughput"] <= row["throughput_ci_high"]
        )
        assert row["pct_of_peak"] > 0 and row["offline_memory_bound_mb"] > 0
        assert row["speedup_paired"] and (method != "fp32" or row["speedup_vs_fp32"] == 1.0)
    rec = recommend_batch_inference(df, task, fraction=0.5)
    assert rec.objective == "offline_throughput" and rec.chosen is not None
    assert rec.batch_size == int(offline.loc[rec.chosen.split(":")[1], "batch_size"])


@pytest.mark.slow  # one variant measured end to end, then profiled
def test_op_profile_lands_on_the_batch_record_only_when_asked(tiny_bert, tmp_path):
    run_dir = tmp_path / "run"
    df = run_experiment("sst2", str(tiny_bert), ["fp32"], run_dir, {**FAST, "batch_sizes": [1, 4], "realtime": True,
                        "op_profile": True}, progress=False)  # fmt: skip
    batch4 = df[(df["scenario"] == "batch") & (df["batch_size"] == 4)].iloc[0]
    assert batch4["op_shares_matmul"] > 0 and batch4["op_profiler"] == "torch.profiler"
    shares = [batch4[c] for c in df.columns if c.startswith("op_shares_")]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)  # each share is rounded to 4 decimals
    others = df[~((df["scenario"] == "batch") & (df["batch_size"] == 4))]
    assert others["op_shares_matmul"].isna().all()  # only the largest batch carries the profile
    plain = run_experiment("sst2", str(tiny_bert), ["fp32"], tmp_path / "plain", FAST, progress=False)
    assert not any(c.startswith("op_shares_") for c in plain.columns)


def test_more_threads_than_cores_is_said(caplog, monkeypatch):
    """threads above the available cores still runs (a user may study oversubscription) but warns once."""
    import os

    import torch

    from accelbench import experiment
    from accelbench.measure.settings import BenchmarkSettings

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    before = torch.get_num_threads()
    try:
        with caplog.at_level("WARNING", logger="accelbench.experiment"):
            experiment._set_threads(BenchmarkSettings(threads=2))
            assert not caplog.records
            experiment._set_threads(BenchmarkSettings(threads=3))
        assert torch.get_num_threads() == 3
        assert "threads: 3 on 2 available cores" in caplog.text
    finally:
        torch.set_num_threads(before)
