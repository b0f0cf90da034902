"""MLPerf-style validity and LoadGen's early-stopping rule, on synthetic latencies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from accelbench.exceptions import ConfigError
from accelbench.measure.stats import median_interval
from accelbench.serving.validity import (
    ValidityRules,
    check_validity,
    early_stopping,
    early_stopping_estimate,
    min_passing_queries,
    percentile_interval,
)


def test_loadgen_reference_values():
    assert min_passing_queries(0) == 459  # 0.99^459 < 1% <= 0.99^458
    assert min_passing_queries(1) + 1 == 662  # LoadGen's smallest run with a p99 estimate


def test_early_stopping_on_synthetic_counts():
    assert early_stopping(10_000, 50).passed  # 0.5% over the bound: certified
    bad = early_stopping(10_000, 150)  # 1.5% over: not
    assert not bad.passed and bad.more_needed > 0
    small = early_stopping(100, 0)  # too short to say anything about a p99
    assert not small.passed and small.more_needed == 359
    assert early_stopping(459, 0).passed


@pytest.mark.parametrize("n", [300, 800, 2_000, 12_345])
def test_rule_is_the_binomial_tail(n):
    for t in range(0, n // 40):
        assert early_stopping(n, t).passed == (binom.cdf(t, n, 0.01) < 0.01)


def test_overlatency_out_of_range():
    with pytest.raises(ValueError):
        early_stopping(10, 11)


def test_estimate_is_conservative_and_needs_662_queries():
    x = np.random.default_rng(0).exponential(size=20_000)
    assert early_stopping_estimate(x[:661]) is None
    assert early_stopping_estimate(x[:662]) == x[:662].max()
    est = early_stopping_estimate(x)
    p99 = np.quantile(x, 0.99)
    assert p99 < est < np.quantile(x, 0.995)  # above the empirical p99, not absurdly so
    # the certified bound passes the rule on the same data
    assert early_stopping(len(x), int((x > est).sum())).passed
    assert early_stopping_estimate(np.concatenate([x[:700], [math.inf] * 10])) == math.inf


def test_percentile_interval_covers_the_true_percentile():
    rng = np.random.default_rng(1)
    true_p90 = -math.log(0.1)
    hits = 0
    for _ in range(300):
        _, lo, hi = percentile_interval(rng.exponential(size=400), 0.9)
        hits += lo <= true_p90 <= hi
    assert hits / 300 >= 0.92  # nominal 95%, order-statistic intervals are conservative


def test_percentile_interval_edges_and_median_agrees_with_stats():
    x = np.random.default_rng(2).normal(size=101)
    v, lo, hi = percentile_interval(x, 0.5)
    med, mlo, mhi, _ = median_interval(x)
    assert v == pytest.approx(med) and lo <= med <= hi and abs(lo - mlo) < 0.3 and abs(hi - mhi) < 0.3
    assert percentile_interval(np.arange(100.0), 0.99)[2] == math.inf  # 100 values cannot bound a p99
    assert all(math.isnan(z) for z in percentile_interval([], 0.5))


def test_check_validity_reasons():
    rules = ValidityRules(min_duration_s=10, min_queries=100, p99_ms=50)
    fast = np.full(2_000, 0.010)
    v = check_validity(rules, 10.0, fast, failed=0)
    assert v.valid and not v.reasons and v.early_stopping_estimate_ms == pytest.approx(10.0)
    v = check_validity(rules, 5.0, fast[:50], failed=0)
    assert not v.valid and any("minimum of 10 s" in r for r in v.reasons)
    assert any("under the minimum of 100" in r for r in v.reasons)
    assert any("early stopping" in r for r in v.reasons) and "too few" in v.early_stopping_note
    slow = np.concatenate([fast, np.full(100, 0.2)])
    v = check_validity(rules, 10.0, slow, failed=0)
    assert any("exceeds the bound" in r for r in v.reasons) and any("early stopping" in r for r in v.reasons)
    v = check_validity(rules, 10.0, fast, failed=3)
    assert not v.valid and any("3 of 2003 requests failed" in r for r in v.reasons)
    v = check_validity(ValidityRules(0, 0, 50, early_stopping=False), 1.0, fast[:50], failed=0)
    assert v.valid  # without early stopping a short run may pass


def test_rules_refuse_a_bad_bound():
    for bad in (0, -5):
        with pytest.raises(ConfigError, match="p99"):
            ValidityRules(p99_ms=bad)
