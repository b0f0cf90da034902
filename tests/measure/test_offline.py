"""The offline scenario: the batch-size search (plateau, memory bound, failures) and its point in the rounds."""

from __future__ import annotations

import json
import mmap
import time

import numpy as np
import pandas as pd
import pytest

from accelbench.exceptions import ConfigError
from accelbench.measure.offline import (
    FAILED,
    OK,
    OVER_MEMORY,
    REFUSED,
    Probe,
    batch_sizes,
    estimate_mb,
    offline_curves,
    search_batch_size,
    search_offline,
)
from accelbench.measure.scenarios import add_speedups, run_interleaved
from accelbench.measure.settings import BenchmarkSettings
from accelbench.runtimes.base import Generation, Predictor

SIZES = [8, 16, 32, 64, 128, 256]


def saturating(at: int = 32, mb_per_item: float = 1.0, fail_above: int | None = None):
    """A probe whose throughput doubles with the batch up to ``at`` and then stays flat."""
    tried: list[int] = []

    def probe(n: int) -> Probe:
        tried.append(n)
        if fail_above is not None and n > fail_above:
            raise RuntimeError(f"DefaultCPUAllocator: not enough memory for batch {n}")
        return Probe(throughput=100.0 * min(n, at), rss_increase_mb=5.0 + mb_per_item * n)

    probe.tried = tried
    return probe


def test_sizes_double_up_to_the_largest_and_never_past_the_texts():
    assert batch_sizes(8, 256, 1000) == SIZES
    assert batch_sizes(8, 100, 1000) == [8, 16, 32, 64, 100]
    assert batch_sizes(8, 256, 40) == [8, 16, 32, 40]
    assert batch_sizes(32, 256, 10) == [10]
    assert batch_sizes(1, 1, 5) == [1]


def test_the_search_stops_at_the_plateau_and_picks_where_it_starts():
    probe = saturating(at=32)
    found = search_batch_size(probe, SIZES, bound_mb=10_000)
    assert probe.tried == [8, 16, 32, 64, 128]  # two sizes without a 3% gain end it; 256 never runs
    assert found.stop == "plateau" and found.chosen == 32 and found.largest_ok == 128
    fields = found.fields()
    curve = json.loads(fields["offline_curve"])
    assert [c["batch_size"] for c in curve] == [8, 16, 32, 64, 128] and curve[2]["throughput"] == 3200
    assert fields["offline_tried"] == [8, 16, 32, 64, 128] and fields["offline_stop"] == "plateau"


def test_a_gain_within_noise_does_not_pick_the_larger_size():
    values = {8: 100.0, 16: 200.0, 32: 400.0, 64: 410.0, 128: 405.0}  # 64 is 2.5% better than 32: noise
    found = search_batch_size(lambda n: Probe(values[n], 1.0), SIZES, bound_mb=10_000)
    assert found.chosen == 32 and found.stop == "plateau"


def test_every_size_tried_without_plateau_ends_at_the_largest():
    found = search_batch_size(saturating(at=1000), SIZES, bound_mb=10_000, end="max batch")
    assert found.chosen == 256 and found.stop == "max batch" and len(found.steps) == 6


def test_the_memory_bound_refuses_sizes_estimated_above_it():
    probe = saturating(at=1000, mb_per_item=2.0)  # 5 + 2n MB: 21, 37, 69, 133, ...
    found = search_batch_size(probe, SIZES, bound_mb=150)
    assert probe.tried == [8, 16, 32, 64]  # 64: 69 + 2 x 32 = 133 estimated, under 150; 128: 261, refused
    assert found.chosen == 64 and found.stop == "memory"
    refused = found.steps[-1]
    assert refused.batch_size == 128 and refused.status == REFUSED
    assert refused.estimated_mb == pytest.approx(133 + 2 * 64) and refused.throughput is None
    assert found.steps[3].estimated_mb == pytest.approx(133) and found.steps[3].rss_increase_mb == 133
    assert 128 not in found.fields()["offline_tried"]


def test_a_size_measured_over_the_bound_is_not_chosen():
    mem = {8: 10.0, 16: 10.0, 32: 10.0, 64: 400.0}  # the estimate (flat) was wrong: the measurement decides
    found = search_batch_size(lambda n: Probe(10.0 * n, mem[n]), SIZES, bound_mb=100)
    assert found.chosen == 32 and found.stop == "memory" and found.steps[-1].status == OVER_MEMORY


def test_estimate_from_one_size_is_proportional_and_from_two_a_line():
    from accelbench.measure.offline import Step

    assert estimate_mb([], 8) is None
    assert estimate_mb([Step(8, OK, 1.0, 20.0)], 32) == 80.0
    assert estimate_mb([Step(8, OK, 1.0, 20.0), Step(16, OK, 1.0, 30.0)], 32) == 50.0
    assert estimate_mb([Step(8, OK, 1.0, 30.0), Step(16, OK, 1.0, 20.0)], 32) == 20.0  # never shrinks


def test_a_failing_large_size_keeps_the_last_good_one():
    probe = saturating(at=1000, fail_above=32)
    found = search_batch_size(probe, SIZES, bound_mb=10_000)
    assert probe.tried == [8, 16, 32, 64]
    assert found.chosen == 32 and found.stop == "error" and found.largest_ok == 32
    assert found.steps[-1].status == FAILED and "not enough memory" in found.steps[-1].error


def test_a_failing_first_size_halves_until_one_works():
    probe = saturating(at=1000, fail_above=3)
    found = search_batch_size(probe, SIZES, bound_mb=10_000)
    assert probe.tried == [8, 4, 2] and found.chosen == 2 and found.stop == "error"
    nothing = search_batch_size(saturating(fail_above=0), [2, 4], bound_mb=10_000)
    assert nothing.chosen is None and nothing.largest_ok is None and len(nothing.steps) == 2


@pytest.mark.parametrize(
    "bad",
    [{"offline": "yes"}, {"offline_max_batch": 0}, {"offline_min_batch": -8}, {"offline_max_batch": 2.5},
     {"offline_min_batch": 64, "offline_max_batch": 32}, {"offline_memory_mb": 0}, {"offline_memory_mb": -1},
     {"offline_memory_mb": "lots"}],
)  # fmt: skip
def test_bad_offline_settings_raise_config_errors_with_a_fix(bad):
    with pytest.raises(ConfigError) as e:
        BenchmarkSettings.from_dict(bad)
    assert e.value.fix


def test_offline_settings_enter_the_key_only_when_on():
    off, off_other = BenchmarkSettings(), BenchmarkSettings(offline_max_batch=512)
    assert off.key_dict() == off_other.key_dict() and "offline" not in off.key_dict()
    on = BenchmarkSettings(offline=True, offline_max_batch=1024, offline_memory_mb=2000)
    assert on.key_dict()["offline_max_batch"] == 1024 and on.key_dict()["offline"] is True


class BatchClock(Predictor):
    """Each call sleeps ``a`` s up to ``at`` texts, then 20% more per text than the saturated rate (so larger
    batches are clearly slower); optionally touches ``mb_per_item`` MB per text, and fails above ``fail_above``."""

    def __init__(self, a=0.03, at=32, mb_per_item=0.0, fail_above=None, family="bert"):
        super().__init__(tokenizer=None, family=family)
        self.a, self.at, self.mb, self.fail_above = a, at, mb_per_item, fail_above
        self.sizes: list[int] = []

    def _work(self, n: int) -> None:
        self.sizes.append(n)
        if self.fail_above is not None and n > self.fail_above:
            raise RuntimeError(f"out of memory at batch {n}")
        end = time.perf_counter() + (self.a if n <= self.at else self.a * 1.2 * n / self.at)
        block = mmap.mmap(-1, int(self.mb * n * 2**20)) if self.mb else None  # its own mapping: the RSS
        if block is not None:  # reads it whatever glibc's heap holds
            np.frombuffer(block, dtype=np.uint8)[:] = 1  # touch every page
        time.sleep(max(0.0, end - time.perf_counter()))  # touching pages takes time too: the call's is fixed
        if block is not None:
            block.close()

    def classify(self, texts, padding="dynamic", max_length=128):
        self._work(len(texts))
        return np.zeros(len(texts), dtype=int)

    def generate(self, texts, max_new_tokens=64, num_beams=1, padding="dynamic", max_length=128):
        self._work(len(texts))
        return Generation(["x"] * len(texts), 2 * len(texts))


TEXTS = [f"text number {i} " * (1 + i % 5) for i in range(160)]
FAST = dict(batch_sizes=[4], realtime=False, min_time_s=0.2, repeats=2, warmup=1, offline=True,
            offline_min_batch=8, offline_max_batch=128)  # fmt: skip


def test_search_on_a_predictor_whose_throughput_saturates():
    s = BenchmarkSettings(**FAST)
    pred = BatchClock()
    found = search_offline(lambda b: pred.classify(b), TEXTS, s, "clock")
    assert found.chosen == 32 and found.stop == "plateau"
    assert [st.batch_size for st in found.steps] == [8, 16, 32, 64, 128]
    assert all(st.rss_increase_mb is not None for st in found.steps)


def test_search_respects_a_real_memory_bound():
    s = BenchmarkSettings(**{**FAST, "offline_min_batch": 16, "offline_memory_mb": 25})
    pred = BatchClock(a=0.06, at=1000, mb_per_item=0.25)  # throughput keeps growing; 256 kB per text
    found = search_offline(lambda b: pred.classify(b), TEXTS, s, "hungry")
    assert found.stop == "memory" and found.bound_mb == 25
    assert found.chosen == 64 and max(pred.sizes) == 64  # 128 was refused on its estimate (~32 MB), never run
    assert 15 <= found.steps[2].rss_increase_mb <= 25 and found.steps[-1].status == REFUSED


def test_offline_points_take_turns_and_pair_with_fp32_at_their_own_sizes():
    s = BenchmarkSettings(**FAST)
    preds = {"fp32": BatchClock(at=32), "small": BatchClock(at=16, fail_above=64, family="t5")}
    result = run_interleaved(preds, "classification", TEXTS, s, progress=False)
    assert not result.failed
    add_speedups(result.rows, "fp32")
    fp32, small = (next(r for r in result.rows[k] if r["scenario"] == "offline") for k in ("fp32", "small"))
    assert [r["scenario"] for r in result.rows["fp32"]] == ["batch", "offline"]
    assert fp32["batch_size"] == 32 and small["batch_size"] == 16
    assert fp32["repeats"] == small["repeats"] == 2 and len(small["throughput_rounds"]) == 2
    assert fp32["throughput_ci_low"] <= fp32["throughput"] <= fp32["throughput_ci_high"]
    assert 0.7 < fp32["throughput"] / (32 / 0.03) <= 1.05  # 32 texts per 30 ms
    assert 0.35 < small["speedup_vs_fp32"] < 0.6 and small["speedup_paired"] is True  # 16 vs 32 per 30 ms
    assert small["offline_largest_ok"] == 64 and small["offline_stop"] == "plateau"
    assert all(n == 16 for n in preds["small"].sizes[-3:])  # the rounds ran the chosen size


class OnlyFive(BatchClock):
    """Runs batches of exactly 5 texts (the fixed point) and fails at every other shape."""

    def classify(self, texts, padding="dynamic", max_length=128):
        if len(texts) != 5:
            raise RuntimeError("unsupported shape")
        return super().classify(texts, padding, max_length)


def test_a_failing_search_halves_or_leaves_no_offline_point_and_the_variant_goes_on():
    s = BenchmarkSettings(**{**FAST, "batch_sizes": [5]})
    preds = {
        "fp32": BatchClock(a=0.005),
        "broken": BatchClock(a=0.005, fail_above=5),
        "dead": OnlyFive(a=0.005),
    }
    result = run_interleaved(preds, "classification", TEXTS, s, progress=False)
    assert not result.failed and set(result.rows) == {"fp32", "broken", "dead"}
    broken = result.rows["broken"]
    assert [r["scenario"] for r in broken] == ["batch", "offline"] and broken[1][
        "batch_size"
    ] == 4  # 8 halved
    assert broken[1]["offline_stop"] == "error" and "out of memory" in broken[1]["offline_curve"]
    assert [r["scenario"] for r in result.rows["dead"]] == ["batch"]  # 8, 4, 2, 1 all failed


def test_offline_curves_read_back_from_records():
    found = search_batch_size(saturating(at=32), SIZES, bound_mb=10_000)
    records = pd.DataFrame([{"variant": "m:fp32", "scenario": "batch", "batch_size": 8, "offline_curve": None},
                            {"variant": "m:fp32", "scenario": "offline", "batch_size": 32, **found.fields()}])  # fmt: skip
    curve = offline_curves(records)
    assert list(curve["batch_size"]) == [8, 16, 32, 64, 128]
    assert list(curve["chosen"]) == [False, False, True, False, False]
    assert offline_curves(pd.DataFrame({"variant": ["x"]})).empty


def test_a_first_size_over_the_bound_halves_too():
    found = search_batch_size(lambda n: Probe(10.0 * n, 3.0 * n), SIZES, bound_mb=20)
    assert [st.batch_size for st in found.steps] == [8, 4]
    assert found.steps[0].status == OVER_MEMORY and found.chosen == 4 and found.stop == "memory"


def test_the_search_stops_at_the_variants_deadline():
    probe = saturating(at=1000)
    calls = []

    def slow(n: int) -> Probe:
        calls.append(n)
        time.sleep(0.1)
        return probe(n)

    found = search_batch_size(slow, SIZES, bound_mb=10_000, deadline=time.perf_counter() + 0.15)
    assert found.stop == "time limit" and calls == [8, 16] and found.chosen == 16
