"""The planner's validation and what-if curves on synthetic service curves: predictions, the median run,
the records it keeps, and the load and replica curves notebook 05 draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from accelbench.serving import validate as v
from accelbench.serving import validate_report as vr
from accelbench.serving.load_curves import latency_vs_load, throughput_vs_replicas
from accelbench.serving.planner import PlanOptions, plan, service_model
from accelbench.serving.prices import Machine
from accelbench.serving.traffic import Traffic

from .test_planner import FAST, SMALL, curves

S = v.ValidationSettings(replicas=1, threads=1, max_batch_size=8, max_wait_ms=2.0, p99_ms=100.0)


def _one(df: pd.DataFrame, colocated: int = 1) -> pd.DataFrame:
    return df[(df["colocated"] == colocated) & (df["batch_size"] <= 8)]


def test_predict_levels_and_the_cost_of_shared_cores(monkeypatch):
    monkeypatch.setattr(v.os, "sched_getaffinity", lambda pid: {0}, raising=False)  # the replica fills it
    alone, levels = v.predict(_one(curves()), S)
    assert alone > 0 and [r["level"] for r in levels] == list(v.LEVELS)
    assert [r["rate"] for r in levels] == pytest.approx([lv * alone for lv in v.LEVELS])
    p99 = [r["predicted_p99_ms"] for r in levels]
    assert p99 == sorted(p99) and p99[-1] <= 100.0 * 1.1  # rises with load, near the bound at 95%
    # 2 ms of other CPU per request on the only core: the replica loses that time, the peak drops
    busy, _ = v.predict(_one(curves()), S, {"shared_ms": 2.0, "front_ms": 0.5})
    assert busy < 0.95 * alone
    monkeypatch.setattr(v.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)  # a spare core takes it
    assert v.predict(_one(curves()), S, {"shared_ms": 2.0})[0] == pytest.approx(alone, rel=0.02)
    # the peak is searched with the same wake-up delay as the levels: the 95% level stays near the bound
    woken, wlevels = v.predict(_one(curves()), S, {"wake_ms": 20.0})
    assert woken < alone and wlevels[-1]["predicted_p99_ms"] <= 100.0 * 1.25


def test_measure_level_keeps_every_run_and_the_median_stands(monkeypatch):
    p99s = iter([80.0, 300.0, 60.0])
    seeds = []

    def fake(url, rate, duration_s, texts, s, seed):
        seeds.append(seed)
        return {"measured_p99_ms": next(p99s), "measured_p50_ms": 10.0}

    monkeypatch.setattr(v, "measure_p99", fake)
    out = v.measure_level("http://127.0.0.1:1", 10.0, v.ValidationSettings(repeats=3, seed=7), ["a"])
    assert out["measured_p99_ms"] == 80.0 and out["run_p99_ms"] == [80.0, 300.0, 60.0]
    assert seeds == [7, 8, 9]  # each run its own Poisson schedule


def test_levels_take_turns_round_by_round(monkeypatch):
    calls = []

    def fake(url, rate, duration_s, texts, s, seed):
        calls.append((rate, seed))
        return {"measured_p99_ms": rate + seed, "measured_p50_ms": 1.0}

    monkeypatch.setattr(v, "measure_p99", fake)
    out = v.measure_levels(
        "http://127.0.0.1:1", [1.0, 2.0, 3.0], v.ValidationSettings(repeats=3, seed=0), ["a"]
    )
    # every round runs each level once, starting one level later each time; run i of a level has seed i
    assert calls == [(1.0, 0), (2.0, 0), (3.0, 0), (2.0, 1), (3.0, 1), (1.0, 1), (3.0, 2), (1.0, 2), (2.0, 2)]
    assert [o["run_p99_ms"] for o in out] == [[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [3.0, 4.0, 5.0]]
    assert [o["measured_p99_ms"] for o in out] == [2.0, 3.0, 4.0]


def test_prediction_is_a_run_of_the_measured_length_with_its_spread():
    short = v.ValidationSettings(replicas=1, threads=1, max_batch_size=8, max_wait_ms=2.0, duration_s=5.0,
                                 warmup_s=1.0)  # fmt: skip
    _, levels = v.predict(_one(curves()), short)
    for r in levels:
        assert r["predicted_p99_low_ms"] <= r["predicted_p99_ms"] <= r["predicted_p99_high_ms"]
        assert r["predicted_p99_long_ms"] > 0 and r["predicted_batch_ms"] > 0
    top = levels[-1]  # near the peak, 5-s runs spread: queueing alone, without a noisy machine
    assert top["predicted_p99_high_ms"] > 1.05 * top["predicted_p99_low_ms"]


METRICS = """# TYPE accelbench_batch_size histogram
accelbench_batch_size_bucket{le="1.0"} 2.0
accelbench_batch_size_count 4.0
accelbench_batch_size_sum 10.0
# TYPE accelbench_batch_seconds histogram
accelbench_batch_seconds_bucket{le="0.5"} 4.0
accelbench_batch_seconds_count 4.0
accelbench_batch_seconds_sum 0.2
"""


def test_server_batches_and_the_machine_speed_of_a_run(monkeypatch):
    class Reply:
        def __init__(self, text):
            self.text = text

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self):
            return self.text.encode()

    monkeypatch.setattr(v.urllib.request, "urlopen", lambda url, timeout: Reply(METRICS))
    before = v.server_batches("http://127.0.0.1:1")
    assert before == {"batches": 4.0, "items": 10.0, "seconds": 0.2}
    after = {"batches": 14.0, "items": 50.0, "seconds": 0.6}
    run = {"server_batches": v._batches_between(before, after)}
    assert run["server_batches"] == pytest.approx({"batches": 10, "mean_batch": 4.0, "batch_ms": 40.0})
    svc = service_model(_one(curves()))
    assert v.batch_vs_curves(svc, run) == pytest.approx(40.0 / (svc.mean(4) * 1e3))
    assert v.batch_vs_curves(svc, {"server_batches": None}) is None
    monkeypatch.setattr(v.urllib.request, "urlopen", lambda url, timeout: Reply("# no batches yet\n"))
    assert v.server_batches("http://127.0.0.1:1") is None


def test_results_are_written_read_back_and_judged(tmp_path):
    peak, levels = v.predict(_one(curves()), S)
    for r, measured in zip(levels, (None, 1.1, 2.0), strict=True):
        r["measured_p99_ms"] = r["predicted_p99_ms"] * measured if measured else None
        r["run_p99_ms"] = [r["measured_p99_ms"]]
    cal = {"rates": [5.0, 10.0], "front_ms": 0.5, "generator_ms": 0.3, "base_cores": 0.01, "dispatch_ms": 1.0}
    result = {"variant": "m:fp32", "task": "sst2", "model": "m", "method": "fp32", "predicted_peak_rate": peak,
              "levels": levels, "calibration": cal, "model_only": {"predicted_peak_rate": peak, "levels": levels},
              "config": {**S.__dict__}}  # fmt: skip
    path = vr.write_validation(tmp_path, result)
    assert path.name == "plan_validation_fp32_1x1_b8.json" and path.with_suffix(".md").exists()
    df = vr.read_validations(tmp_path)
    assert list(df["within"]) == [False, True, False]  # unmeasured, +/-10%, -50%
    assert (df["predicted_p99_low_ms"] <= df["predicted_p99_ms"]).all()
    text = vr.markdown(result)
    assert "| m:fp32 | 80%" in text and f"[{levels[1]['predicted_p99_low_ms']:.0f}-" in text


def test_local_settings_fit_the_deployment_on_this_machine(monkeypatch):
    monkeypatch.setattr(v.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    d = pd.Series({"threads": 1, "replicas_per_machine": 8, "max_batch_size": 4, "max_wait_ms": 5.0})
    s = v.local_settings(d, 100.0, 10.0)
    assert (s.replicas, s.threads, s.max_batch_size, s.max_wait_ms, s.duration_s) == (2, 1, 4, 5.0, 10.0)
    assert v.local_settings(pd.Series({**d, "threads": 4}), 100.0, 10.0).replicas == 1


def test_load_curves_rise_through_the_bound_and_batching_moves_the_knee():
    df = curves()
    opts = PlanOptions(p99_ms=100, **FAST)
    row = plan(df, Traffic((100.0,)), [SMALL], opts).iloc[0]
    stick = latency_vs_load(df, row, opts)
    policies = stick.groupby("max_batch_size")
    assert set(policies.groups) == {1, int(row["max_batch_size"])} and int(row["max_batch_size"]) > 1
    for _, g in policies:
        assert (
            g["latency_ms_p99"].is_monotonic_increasing
            or g["latency_ms_p99"].iloc[-1] > g["latency_ms_p99"].iloc[0]
        )
    top = stick["offered_rate"].max()
    batched = stick[stick["max_batch_size"] > 1]
    assert batched["offered_rate"].max() == pytest.approx(top) and (batched["latency_ms_p99"] > 100).any()


def test_throughput_against_replicas_counts_interference():
    df = curves()
    wide = Machine("wide", cores=4, memory_gb=16, price_per_hour=0.2, source="test", date="2026")
    out = throughput_vs_replicas(df, PlanOptions(p99_ms=100, **FAST), cores=wide.cores)
    assert list(out["replicas"]) == [1, 2, 3, 4] and (out["sustainable_rate"] > 0).all()
    assert list(out["extrapolated"]) == [False, False, True, True]  # measured alone and 2 co-located
    assert out["sustainable_rate"].is_monotonic_increasing


def test_calibration_recovers_the_hand_off_and_the_jitter(monkeypatch):
    """Calibration runs made by the simulator itself with a 1-ms hand-off per batch and a 4-ms wake-up of an
    idle replica: the fit finds both again."""
    df = _one(curves())
    truth = v.WithOverhead(service_model(df), 1e-3)
    wake = [4e-3]

    def fake(url, rate, duration_s, texts, s, seed):
        span = duration_s + s.warmup_s
        sims = [v.simulate(truth, rate, max_batch=s.max_batch_size, max_wait_s=s.max_wait_ms / 1e3,
                           n_requests=round(rate * span), seed=100 + k, warmup=s.warmup_s / span, wake_s=wake[0])
                for k in range(9)]  # fmt: skip
        med = {q: float(np.median([getattr(x, f"latency_ms_p{q}") for x in sims])) for q in (50, 90, 99)}
        return {"measured_p50_ms": med[50], "measured_p90_ms": med[90], "measured_p99_ms": med[99]}

    monkeypatch.setattr(v, "measure_p99", fake)
    monkeypatch.setattr(v.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    s = v.ValidationSettings(max_batch_size=8, max_wait_ms=2.0, calibration_s=20.0)
    alone, _ = v.predict(df, s)
    cal = v.calibrate(df, s, "http://127.0.0.1:1", ["a"], None, alone)
    assert cal["wake_ms"] == pytest.approx(4.0, abs=1.0)
    assert cal["dispatch_ms"] == pytest.approx(1.0, abs=1.0)
    wake[0] = 0.0  # no wake-up cost in the truth: at most the fit's resolution (the curves' own tails)
    assert v.calibrate(df, s, "http://127.0.0.1:1", ["a"], None, alone)["wake_ms"] <= 1.0
