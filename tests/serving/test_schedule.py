"""The Poisson arrival schedule: the right rate, exponential gaps, Poisson counts, and reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from accelbench.exceptions import ConfigError
from accelbench.serving.schedule import poisson_schedule


def test_mean_interval_is_one_over_rate_for_many_arrivals():
    t = poisson_schedule(rate=100.0, duration=1000.0, seed=1)
    gaps = np.diff(np.concatenate([[0.0], t]))
    assert len(t) == pytest.approx(100_000, rel=0.02)
    assert gaps.mean() == pytest.approx(0.01, rel=0.015)  # the mean's sd is 0.3% here
    assert np.all(np.diff(t) >= 0) and t[0] >= 0 and t[-1] < 1000.0


def test_gaps_are_exponential_by_a_ks_test():
    t = poisson_schedule(rate=50.0, duration=200.0, seed=2)
    gaps = np.diff(t) * 50.0  # in units of the mean gap: Exp(1)
    assert stats.kstest(gaps, "expon").pvalue > 0.01
    assert stats.kstest(gaps, "uniform", args=(0, 2)).pvalue < 1e-6  # the test can tell a wrong shape


def test_counts_per_window_are_poisson():
    counts = np.array([len(poisson_schedule(20.0, 2.0, seed=s)) for s in range(400)])
    assert counts.mean() == pytest.approx(40.0, rel=0.05)
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.25)  # Poisson: variance = mean


def test_same_seed_same_schedule_other_seed_other():
    a, b = poisson_schedule(30.0, 5.0, seed=7), poisson_schedule(30.0, 5.0, seed=7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, poisson_schedule(30.0, 5.0, seed=8))
    shifted = poisson_schedule(30.0, 5.0, seed=7, start=2.0)
    assert np.allclose(shifted - 2.0, a)


@pytest.mark.parametrize("rate,duration", [(0, 1), (-1, 1), (5, 0), (5, -2), (float("inf"), 1)])
def test_bad_rate_or_duration_says_how_to_fix(rate, duration):
    with pytest.raises(ConfigError) as e:
        poisson_schedule(rate, duration)
    assert e.value.fix


def test_huge_runs_are_refused():
    with pytest.raises(ConfigError, match="bound"):
        poisson_schedule(1e6, 1e4)
