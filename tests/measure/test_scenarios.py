"""The timer against time.sleep, memory tracking, settings checks, and the scenario arithmetic."""

from __future__ import annotations

import time

import numpy as np
import pytest

from accelbench.exceptions import ConfigError
from accelbench.measure.scenarios import batch, realtime, run_scenarios
from accelbench.measure.settings import BenchmarkSettings
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
    """10 ms per call whatever the batch; generates 3 tokens per text."""

    def __init__(self):
        super().__init__(tokenizer=None, family="t5")
        self.calls = []

    def classify(self, texts, padding="dynamic", max_length=128):
        self.calls.append((len(texts), padding))
        time.sleep(0.01)
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
    assert rt["throughput"] == pytest.approx(1000 / rt["latency_ms_mean"], rel=1e-6)
    b = batch(p, "seq2seq", texts, 8, s, padding="max_length", progress=False)
    assert 500 <= b["throughput"] <= 800  # 8 texts per ~10-12 ms
    assert b["tokens_per_s"] == pytest.approx(3 * b["throughput"])
    assert all(c[1] == "max_length" for c in p.calls[-3:])


def test_run_scenarios_covers_every_point():
    s = BenchmarkSettings(batch_sizes=[1, 4], paddings=["dynamic", "max_length"], min_time_s=0.05, warmup=0)
    rows = run_scenarios(SleepyPredictor(), "classification", ["a", "bb", "ccc"] * 5, s, progress=False)
    points = [(r["scenario"], r["batch_size"], r["padding"]) for r in rows]
    assert points == [("realtime", 1, "dynamic"), ("batch", 1, "dynamic"), ("batch", 4, "dynamic"),
                      ("batch", 1, "max_length"), ("batch", 4, "max_length")]  # fmt: skip
    assert all(r["peak_rss_mb"] > 0 for r in rows)
