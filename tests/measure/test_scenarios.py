"""The timer against time.sleep, memory tracking, settings checks, and the scenario arithmetic."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from accelbench.exceptions import ConfigError
from accelbench.measure.limits import VariantTimeout, time_limit
from accelbench.measure.scenarios import add_speedups, batch, realtime, run_interleaved, run_scenarios
from accelbench.measure.settings import BenchmarkSettings
from accelbench.measure.stats import median_interval, paired_ratios, unpaired_ratio
from accelbench.measure.trackers import PeakMemory, Timer
from accelbench.runtimes.base import Generation, Predictor


def test_timer_matches_sleep():
    timer = Timer()
    for _ in range(3):
        with timer.track():
            time.sleep(0.2)
    assert len(timer.times) == 3
    assert all(0.18 <= t <= 0.22 for t in timer.times)
    p = timer.percentiles_ms()
    assert 180 <= p["latency_ms_p50"] <= 220 and p["latency_ms_p50"] <= p["latency_ms_p99"]


def test_peak_memory_sees_an_allocation():
    with PeakMemory(interval_s=0.001) as mem:
        block = np.ones(200 * 2**20 // 8)  # 200 MiB touched
        time.sleep(0.05)
        del block
    assert mem.peak_mb - mem.start_mb > 150


def test_peak_memory_by_polling_sees_an_allocation():
    with PeakMemory(interval_s=0.001, use_kernel_peak=False) as mem:
        block = np.ones(200 * 2**20 // 8)
        time.sleep(0.05)
        del block
    assert mem.source == "poll"
    assert mem.peak_mb - mem.start_mb > 150


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="no /proc/self/clear_refs (not Linux)")
def test_kernel_peak_sees_a_spike_and_nested_blocks_keep_theirs():
    with PeakMemory() as outer:
        block = np.ones(300 * 2**20 // 8)  # a spike no sampler waits for: freed at once
        del block
        with PeakMemory() as inner:  # resets the kernel's counter: the outer block keeps its 300 MiB
            small = np.ones(50 * 2**20 // 8)
            del small
    if outer.source != "VmHWM":
        pytest.skip("this kernel refuses to reset the peak (clear_refs)")
    assert outer.peak_mb - outer.start_mb > 250
    assert 40 < inner.peak_mb - inner.start_mb < 250
    assert not PeakMemory._open


@pytest.mark.parametrize(
    "bad",
    [
        {"batch_sizes": [0]},
        {"batch_sizes": []},
        {"min_time_s": -1},
        {"n_eval": 0},
        {"warmup": -2},
        {"paddings": ["left"]},
        {"colour": 1},
    ],  # fmt: skip
)
def test_invalid_settings(bad):
    with pytest.raises(ConfigError) as e:
        BenchmarkSettings.from_dict(bad)
    assert e.value.fix


class SleepyPredictor(Predictor):
    """``delay`` s per call whatever the batch (10 ms by default); generates 3 tokens per text."""

    def __init__(self, delay=0.01, log=None, name="p", fail_after=None):
        super().__init__(tokenizer=None, family="t5")
        self.calls = []
        self.delay, self.log, self.name, self.fail_after = delay, log, name, fail_after

    def classify(self, texts, padding="dynamic", max_length=128):
        self.calls.append((len(texts), padding))
        if self.log is not None:
            self.log.append(self.name)
        if self.fail_after is not None and len(self.calls) > self.fail_after:
            raise RuntimeError("kernel crashed")
        time.sleep(self.delay)
        return np.zeros(len(texts), dtype=int)

    def generate(self, texts, max_new_tokens=64, num_beams=1, padding="dynamic", max_length=128):
        self.calls.append((len(texts), padding))
        time.sleep(0.01)
        return Generation(["x"] * len(texts), 3 * len(texts))


def test_realtime_and_batch_arithmetic():
    s = BenchmarkSettings(min_time_s=0.3, warmup=2, max_requests=1000)
    texts = [f"text {i}" * (i % 5 + 1) for i in range(40)]
    p = SleepyPredictor()
    rt = realtime(p, "classification", texts, s, progress=False)
    assert rt["n_requests"] >= 20 and 8 <= rt["latency_ms_p50"] <= 14
    assert rt["throughput"] == pytest.approx(1000 / rt["latency_ms_mean"], rel=0.15)
    assert rt["repeats"] == s.repeats == len(rt["throughput_rounds"])
    assert rt["throughput_ci_low"] <= rt["throughput"] <= rt["throughput_ci_high"]
    assert rt["latency_ms_p90_ci_low"] <= rt["latency_ms_p90"] <= rt["latency_ms_p90_ci_high"]
    b = batch(p, "seq2seq", texts, 8, s, padding="max_length", progress=False)
    assert 500 <= b["throughput"] <= 800  # 8 texts per ~10-12 ms
    assert b["tokens_per_s"] == pytest.approx(3 * b["throughput"], rel=0.1)  # pooled vs median of rounds
    assert all(c[1] == "max_length" for c in p.calls[-3:])


def test_run_scenarios_covers_every_point():
    s = BenchmarkSettings(batch_sizes=[1, 4], paddings=["dynamic", "max_length"], min_time_s=0.05, warmup=0)
    rows = run_scenarios(SleepyPredictor(), "classification", ["a", "bb", "ccc"] * 5, s, progress=False)
    points = [(r["scenario"], r["batch_size"], r["padding"]) for r in rows]
    assert points == [("realtime", 1, "dynamic"), ("batch", 1, "dynamic"), ("batch", 4, "dynamic"),
                      ("batch", 1, "max_length"), ("batch", 4, "max_length")]  # fmt: skip
    assert all(r["peak_rss_mb"] > 0 and r["peak_rss_source"] in ("VmHWM", "poll") for r in rows)


@pytest.mark.parametrize(
    ("n", "level"), [(1, 0.0), (3, 0.75), (5, 0.9375), (6, 0.9688), (10, 0.9785), (20, 0.9586)]
)
def test_median_interval_levels(n, level):
    values = list(range(n, 0, -1))
    med, lo, hi, got = median_interval(values)
    assert got == pytest.approx(level, abs=1e-4)
    assert med == pytest.approx(sorted(values)[n // 2] if n % 2 else (n + 1) / 2)
    if n == 1:  # one round: no interval, not [x, x]
        assert math.isnan(lo) and math.isnan(hi)
    else:
        assert lo <= med <= hi
    if n == 10:  # the 2nd and 9th order statistics: 97.9% >= 95%, where the 3rd and 8th would give 89%
        assert (lo, hi) == (2, 9)


def test_ratios():
    assert paired_ratios([2.0, 3.0, None], [1.0, 1.5, 1.0]) == [2.0, 2.0]
    with pytest.raises(ValueError):
        paired_ratios([1.0], [1.0, 2.0])
    med, lo, hi = unpaired_ratio((10.0, 9.0, 11.0), (5.0, 4.0, 6.0))
    assert (med, lo, hi) == (2.0, 1.5, 2.75)


def test_interleaved_rounds_take_turns_and_pair_the_speedups():
    log: list[str] = []
    s = BenchmarkSettings(batch_sizes=[4], realtime=False, min_time_s=0.12, repeats=4, warmup=1)
    preds = {"fp32": SleepyPredictor(0.01, log, "fp32"), "fast": SleepyPredictor(0.005, log, "fast")}
    result = run_interleaved(preds, "classification", ["a", "bb", "ccc"] * 8, s, progress=False)
    assert not result.failed and set(result.rows) == {"fp32", "fast"}
    runs = [k for i, k in enumerate(log) if i == 0 or log[i - 1] != k]  # one entry per turn
    assert runs[:2] == ["fp32", "fast"] and len(runs) >= 1 + s.repeats  # warm-ups, then alternating turns
    add_speedups(result.rows, "fp32")
    fast, base = result.rows["fast"][0], result.rows["fp32"][0]
    assert fast["repeats"] == 4 and len(fast["throughput_rounds"]) == 4
    assert fast["speedup_paired"] is True and 1.5 < fast["speedup_vs_fp32"] < 2.3
    assert fast["speedup_vs_fp32_ci_low"] <= fast["speedup_vs_fp32"] <= fast["speedup_vs_fp32_ci_high"]
    assert base["speedup_vs_fp32"] == 1.0


class ParkingPredictor(SleepyPredictor):
    """Records, at each call, which predictors of the rotation were awake (not parked)."""

    def __init__(self, delay, name, everyone, log, fail_after=None):
        super().__init__(delay, name=name, fail_after=fail_after)
        self.everyone, self.awake_log, self.parked = everyone, log, False

    def park(self):
        self.parked = True

    def unpark(self):
        self.parked = False

    def classify(self, texts, padding="dynamic", max_length=128):
        self.awake_log.append((self.name, tuple(sorted(p.name for p in self.everyone if not p.parked))))
        return super().classify(texts, padding, max_length)


def test_only_the_predictor_whose_turn_it_is_is_awake():
    s = BenchmarkSettings(batch_sizes=[2], min_time_s=0.06, repeats=3, warmup=1, offline=True,
                          offline_min_batch=2, offline_max_batch=4)  # fmt: skip
    everyone: list[ParkingPredictor] = []
    log: list[tuple] = []
    everyone += [ParkingPredictor(0.002, n, everyone, log, fail_after=5 if n == "bad" else None)
                 for n in ("fp32", "ct2", "bad")]  # fmt: skip
    result = run_interleaved(
        {p.name: p for p in everyone}, "classification", ["a", "bb"] * 8, s, progress=False
    )
    assert set(result.rows) == {"fp32", "ct2"} and "kernel crashed" in result.failed["bad"]
    assert {name for name, _ in log} == {"fp32", "ct2", "bad"}
    assert all(awake == (name,) for name, awake in log)  # warm-ups, searches and rounds alike
    assert all(p.parked for p in everyone)  # parked after its last turn, the failed one too


def test_unpaired_speedups_from_earlier_rows():
    rows = {"fast": [{"scenario": "batch", "batch_size": 8, "padding": "dynamic", "throughput": 20.0,
                      "throughput_ci_low": 18.0, "throughput_ci_high": 22.0, "throughput_rounds": [20.0]}]}  # fmt: skip
    base = [{"scenario": "batch", "batch_size": 8, "padding": "dynamic", "throughput": 10.0}]
    add_speedups(rows, None, base)
    r = rows["fast"][0]
    assert r["speedup_paired"] is False and r["speedup_vs_fp32"] == 2.0 and r["speedup_vs_fp32_ci_low"] == 1.8


def test_a_failing_or_late_predictor_leaves_the_others_measured():
    s = BenchmarkSettings(batch_sizes=[2], realtime=False, min_time_s=0.06, repeats=3, warmup=0)
    preds = {"ok": SleepyPredictor(0.005), "bad": SleepyPredictor(0.005, fail_after=2),
             "late": SleepyPredictor(0.005)}  # fmt: skip
    result = run_interleaved(preds, "classification", ["a", "b"] * 6, s, progress=False,
                             deadlines={"late": time.perf_counter() - 1})  # fmt: skip
    assert set(result.rows) == {"ok"}
    assert result.failed["late"] == "timeout" and "kernel crashed" in result.failed["bad"]
    assert result.rows["ok"][0]["repeats"] == 3


def test_time_limit_stops_python_work():
    start = time.perf_counter()
    with pytest.raises(VariantTimeout), time_limit(0.2, "slow variant"):
        while True:
            sum(range(1000))
    assert time.perf_counter() - start < 1.0
    with time_limit(None):
        pass
    with time_limit(5.0):
        time.sleep(0.01)  # finishes in time; the timer is cleared afterwards
    time.sleep(0.01)


def test_invalid_repeats():
    for bad in (0, 2.5, "6"):
        with pytest.raises(ConfigError):
            BenchmarkSettings(repeats=bad)
    assert "time_limit_s" not in BenchmarkSettings().key_dict()


class RecordingPredictor(SleepyPredictor):
    def __init__(self, delay):
        super().__init__(delay)
        self.seen = []

    def classify(self, texts, padding="dynamic", max_length=128):
        self.seen.append(tuple(texts))
        return super().classify(texts, padding, max_length)


def test_every_variant_runs_the_same_inputs_in_each_round():
    s = BenchmarkSettings(batch_sizes=[2], min_time_s=0.06, repeats=3, warmup=1)
    slow, fast = RecordingPredictor(0.006), RecordingPredictor(0.002)
    texts = [f"text number {i} " * (1 + i % 7) for i in range(30)]
    result = run_interleaved({"slow": slow, "fast": fast}, "classification", texts, s, progress=False)
    assert not result.failed
    assert slow.seen == fast.seen  # same warm-up and the same items round by round, whatever the speed
    row = result.rows["fast"][1]
    assert row["n_batches"] == result.rows["slow"][1]["n_batches"] >= 3


class LengthPredictor(SleepyPredictor):
    """A call takes 1 ms per word of its longest text: inputs of mixed lengths, as real ones are."""

    def classify(self, texts, padding="dynamic", max_length=128):
        self.calls.append((len(texts), padding))
        time.sleep(0.001 * max(len(t.split()) for t in texts))
        return np.zeros(len(texts), dtype=int)


def test_rounds_last_min_time_on_the_mean_input_not_the_shortest():
    # texts of 1 to 20 words: the shortest call is 1 ms, the mean ~10 ms; sized on the fastest warm-up
    # call, a point ran several times its min_time_s
    texts = [" ".join(["w"] * (1 + i % 20)) for i in range(200)]
    s = BenchmarkSettings(min_time_s=0.6, repeats=4, warmup=5, max_requests=5000)
    rt = realtime(LengthPredictor(), "classification", texts, s, progress=False)
    measured_s = rt["n_requests"] * rt["latency_ms_mean"] / 1e3
    assert 0.35 <= measured_s <= 1.0, measured_s
    b = batch(LengthPredictor(), "classification", texts, 4, s, progress=False)
    assert 0.35 <= b["n_batches"] * b["latency_ms_mean"] / 1e3 <= 1.0


def test_batch_one_is_the_realtime_point_not_measured_twice():
    s = BenchmarkSettings(batch_sizes=[1, 4], min_time_s=0.1, repeats=3, warmup=1)
    p = SleepyPredictor(0.005)
    rows = run_scenarios(p, "classification", [f"text {i}" for i in range(30)], s, progress=False)
    rt, b1, b4 = rows
    assert (b1["scenario"], b1["batch_size"], b1["padding"]) == ("batch", 1, "dynamic")
    assert b1["measured_as"] == "realtime" and "measured_as" not in rt and "measured_as" not in b4
    assert b1["throughput_rounds"] == rt["throughput_rounds"] and b1["n_batches"] == rt["n_requests"]
    singles = sum(1 for n, _ in p.calls if n == 1)
    assert singles == s.warmup + rt["n_requests"]  # no rounds of a separate batch-1 point
    off = run_scenarios(SleepyPredictor(0.005), "classification", ["a b"] * 30,
                        BenchmarkSettings(batch_sizes=[1], realtime=False, min_time_s=0.05, warmup=1),
                        progress=False)  # fmt: skip
    assert len(off) == 1 and "measured_as" not in off[0]  # without the real-time point, batch 1 is measured


def test_spread_orders_work_so_every_window_spans_the_lengths():
    import random

    from accelbench.measure.scenarios import spread

    work = [[" ".join(["w"] * n)] for n in range(1, 101)]  # lengths 1..100
    out = spread(work, random.Random(0))
    assert sorted(map(str, out)) == sorted(map(str, work))  # a permutation
    assert out == spread(work, random.Random(0)) and out != spread(work, random.Random(1))
    lengths = [len(w[0].split()) for w in out]
    for start in range(0, 100, 7):  # any 5 consecutive items: a mean near the whole mean (50.5)
        window = [lengths[(start + i) % 100] for i in range(5)]
        assert 35 <= sum(window) / 5 <= 66, window
        assert max(window) - min(window) >= 50  # short and long inputs in every window


def test_warm_up_ends_after_two_calls_once_it_has_lasted_a_round():
    slow = SleepyPredictor(0.03)  # a round is 0.12 / 4 = 0.03 s: two calls are enough
    realtime(slow, "classification", [f"t {i}" for i in range(40)],
             BenchmarkSettings(min_time_s=0.12, repeats=4, warmup=5), progress=False)  # fmt: skip
    fast = SleepyPredictor(0.001)  # five calls take 5 ms, far less than a round: all five run
    realtime(fast, "classification", [f"t {i}" for i in range(40)],
             BenchmarkSettings(min_time_s=0.4, repeats=4, warmup=5), progress=False)  # fmt: skip
    n_rounds = [len(slow.calls), len(fast.calls)]
    assert n_rounds[0] == 2 + 20  # 2 warm-up calls, then MIN_REQUESTS (20) over the rounds
    assert n_rounds[1] >= 5 + 20


def test_a_batch_round_holds_two_batches_at_least():
    from accelbench.measure.scenarios import MIN_BATCHES_PER_ROUND, calls_per_round

    s = BenchmarkSettings(min_time_s=1.5, repeats=6)
    # a round is 0.25 s: one call of 0.4 s would fill it, yet a batch round runs two
    assert calls_per_round(s, "batch", [0.4, 0.5, 0.3]) == MIN_BATCHES_PER_ROUND == 2
    assert calls_per_round(s, "offline", [0.4]) == 2
    assert calls_per_round(s, "realtime", [0.4]) == 4  # requests: MIN_REQUESTS (20) over 6 rounds
    assert calls_per_round(s, "batch", [0.05]) == 5  # fast calls: min_time_s decides
    slow = SleepyPredictor(0.01)
    row = batch(slow, "classification", [f"t {i}" for i in range(40)], 4,
                BenchmarkSettings(min_time_s=0.02, repeats=3, warmup=2), progress=False)  # fmt: skip
    assert row["n_batches"] == 3 * 2  # every one of the 3 rounds ran two batches
