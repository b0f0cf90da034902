"""The batching simulator against queueing theory's closed forms, and the batching rule it implements."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accelbench.serving.simulate import (
    DeterministicService,
    EmpiricalService,
    ExponentialService,
    SharedCores,
    WithOverhead,
    capacity,
    erlang_c,
    md1_mean_wait,
    mg1_mean_wait,
    mm1_mean_sojourn,
    mm1_sojourn_quantile,
    mmc_mean_wait,
    simulate,
)

N = 200_000  # enough requests for a mean within ~2% at these loads


def test_erlang_c_known_values():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(3, 3.5) == 1.0  # overloaded: everyone waits
    assert mmc_mean_wait(0.5, 1.0, 1) == pytest.approx(1.0)  # M/M/1: rho / (mu - lambda)
    assert md1_mean_wait(0.5, 1.0) == pytest.approx(0.5)  # half of M/M/1's
    assert mg1_mean_wait(0.5, 1.0, 2.0) == pytest.approx(mmc_mean_wait(0.5, 1.0, 1))  # exponential: E[S^2]=2


def test_mm1_mean_and_p99_sojourn():
    lam, mu = 50.0, 100.0  # per second: rho = 0.5
    sim = simulate(ExponentialService(lambda b: 1 / mu), lam, n_requests=N, seed=1)
    assert sim.stable
    assert sim.latency_ms_mean / 1e3 == pytest.approx(mm1_mean_sojourn(lam, mu), rel=0.03)
    assert sim.latency_ms_p99 / 1e3 == pytest.approx(mm1_sojourn_quantile(lam, mu, 0.99), rel=0.05)
    assert sim.utilisation == pytest.approx(0.5, abs=0.01)
    assert sim.mean_batch == 1.0 and sim.throughput == pytest.approx(lam, rel=0.02)


def test_md1_mean_wait_pollaczek_khinchine():
    lam, mu = 70.0, 100.0
    sim = simulate(DeterministicService(lambda b: 1 / mu), lam, n_requests=N, seed=2)
    assert sim.wait_ms_mean / 1e3 == pytest.approx(md1_mean_wait(lam, mu), rel=0.05)
    assert sim.service_ms_mean == pytest.approx(10.0)


@pytest.mark.parametrize("c", [2, 4])
def test_mmc_against_erlang_c(c):
    mu, lam = 100.0, 0.75 * c * 100.0
    sim = simulate(ExponentialService(lambda b: 1 / mu), lam, replicas=c, n_requests=N, seed=3)
    assert sim.share_waited == pytest.approx(erlang_c(c, lam / mu), abs=0.02)
    # the mean wait at 75% load converges slowly: 8% covers the seed-to-seed spread of 200k requests
    assert sim.wait_ms_mean / 1e3 == pytest.approx(mmc_mean_wait(lam, mu, c), rel=0.08)


def test_batching_raises_the_sustainable_rate_when_service_is_sublinear():
    svc = DeterministicService(lambda b: 0.010 + 0.001 * b)  # 11 ms alone, 26 ms for 16: sublinear per item
    rate = 150.0  # above batch-1 capacity (91/s)
    assert capacity(svc, 1, 1) < rate < capacity(svc, 1, 16)
    alone = simulate(svc, rate, max_batch=1, n_requests=5_000, seed=4)
    batched = simulate(svc, rate, max_batch=16, n_requests=5_000, seed=4)
    assert not alone.stable and alone.latency_ms_p99 > 1_000
    assert batched.stable and batched.latency_ms_p99 < 100 and batched.mean_batch > 1.5


def test_wait_holds_a_lone_request_until_the_oldest_has_waited():
    svc = DeterministicService(lambda b: 0.002)
    sim = simulate(svc, 1.0, max_batch=8, max_wait_s=0.005, n_requests=2_000, seed=5)  # 1/s: always alone
    assert sim.latency_ms_p50 == pytest.approx(7.0, abs=0.01)  # 5 ms wait + 2 ms service
    full = simulate(svc, 1.0, max_batch=1, max_wait_s=0.005, n_requests=2_000, seed=5)  # a full batch of 1
    assert full.latency_ms_p50 == pytest.approx(2.0, abs=0.01)


def test_front_is_a_queue_in_front_of_the_batcher():
    svc = DeterministicService(lambda b: 1e-6)  # the model costs nothing: only the front queues
    sim = simulate(svc, 500.0, max_batch=8, front_s=0.001, n_requests=N, seed=10)
    assert sim.latency_ms_mean / 1e3 == pytest.approx(md1_mean_wait(500.0, 1000.0) + 0.001, rel=0.03)
    assert capacity(svc, 8, 32, front_s=0.001) == pytest.approx(1000.0)
    slow = WithOverhead(svc, 0.004)
    assert simulate(slow, 1.0, n_requests=500).latency_ms_p50 == pytest.approx(4.0, abs=0.01)
    # an idle replica's wake-up: paid after an idle gap, not by back-to-back batches of a busy replica
    sleepy = WithOverhead(svc, 0.004)
    idle = simulate(sleepy, 1.0, n_requests=4000, seed=3, wake_s=0.002)  # 1/s: every batch finds it idle
    assert idle.latency_ms_mean == pytest.approx(6.0, rel=0.05) and idle.batch_ms_mean == pytest.approx(
        6.0, rel=0.05
    )
    busy = simulate(
        sleepy, 1000.0, n_requests=4000, seed=3, wake_s=0.002
    )  # a backlog: batches follow at once
    assert busy.batch_ms_mean < 4.0 + 0.2 * 2.0


def test_shared_cores_stretch_service_beyond_the_spare_cores():
    # 2 ms of other CPU per request: 100/s keeps 0.2 cores busy.
    assert SharedCores(0.002, spare_cores=1.0).stretch(100.0) == 1.0  # an idle core absorbs it
    assert SharedCores(0.002).stretch(100.0) == pytest.approx(1 / 0.8)  # one replica fills the cores
    assert SharedCores(0.002, replicas=2).stretch(100.0) == pytest.approx(1 / 0.9)  # split over two replicas
    assert SharedCores(0.002).stretch(1e6) == pytest.approx(10.0)  # saturated, not negative or infinite
    # The stretched M/D/1 is the M/D/1 of the longer service time: 2 ms x 1/0.8 = 2.5 ms at 200/s.
    svc = DeterministicService(lambda b: 0.002)
    sim = simulate(svc, 200.0, shared=SharedCores(0.001), n_requests=N, seed=11)
    assert sim.service_stretch == pytest.approx(1 / 0.8)
    assert (sim.latency_ms_mean / 1e3) == pytest.approx(md1_mean_wait(200.0, 400.0) + 0.0025, rel=0.03)
    assert simulate(svc, 200.0, n_requests=2_000, seed=11).service_stretch == 1.0


def test_overload_is_unstable_and_runs_are_reproducible():
    svc = ExponentialService(lambda b: 0.01)
    over = simulate(svc, 150.0, n_requests=10_000, seed=6)
    assert not over.stable and over.max_queue > 1_000
    assert simulate(svc, 50.0, n_requests=5_000, seed=7) == simulate(svc, 50.0, n_requests=5_000, seed=7)


def test_least_busy_replica_spreads_work():
    svc = ExponentialService(lambda b: 0.01)
    sim = simulate(svc, 150.0, replicas=2, n_requests=20_000, seed=8)
    assert sim.stable and sim.utilisation == pytest.approx(0.75, abs=0.02)


def test_empirical_service_interpolates_between_measured_sizes():
    rng = np.random.default_rng(0)
    svc = EmpiricalService({1: rng.normal(10, 1, 200), 4: rng.normal(16, 1, 200), 8: rng.normal(24, 1, 200)})
    assert svc.max_batch == 8 and svc.measured_sizes == [1, 4, 8]
    assert svc.mean(6) == pytest.approx((svc.mean(4) + svc.mean(8)) / 2, rel=1e-6)
    assert svc.time(4, 0.5) == pytest.approx(16, abs=0.3)
    assert svc.time(1, 0.01) < svc.time(1, 0.99)
    with pytest.raises(ValueError, match="above the largest measured"):
        svc.time(9, 0.5)
    with pytest.raises(ValueError, match="max_batch"):
        simulate(svc, 10.0, max_batch=16, n_requests=100)
    assert math.isfinite(simulate(svc, 100.0, max_batch=8, n_requests=2_000).latency_ms_p99)
