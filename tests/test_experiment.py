"""run_experiment: records, resuming an interrupted sweep, a failing variant, bad input before work."""

from __future__ import annotations

import pytest

from accelbench.exceptions import ConfigError, MethodNotApplicableError, UnknownNameError
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
