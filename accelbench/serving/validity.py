"""Is a load-test run good enough to quote? MLPerf LoadGen's server-scenario rules, sized for a laptop.

A tail latency read from a short run is a guess: 100 queries say little about a 99th percentile. MLPerf
Inference's LoadGen therefore calls a server run VALID only when it ran long enough, issued enough queries,
met the latency bound at the target percentile, and passed its *early-stopping* test: given ``n`` queries of
which ``t`` took longer than the bound, the claim "the true fraction over the bound is at most 1 - p" must hold
with confidence ``c`` (p = 0.99, c = 0.99 in LoadGen), i.e. if the true fraction were exactly 1 - p, seeing ``t``
or fewer over the bound in ``n`` queries would have probability below 1 - c (a binomial tail).

References: the MLPerf Inference rules, "Early stopping criterion" (github.com/mlcommons/inference_policies,
``inference_rules.adoc``), and LoadGen's implementation, ``loadgen/early_stopping.cc`` and
``PerformanceSummary::EarlyStopping`` in ``loadgen/results.cc`` (github.com/mlcommons/inference).
LoadGen's reference values, reproduced by the tests: with no query over the bound, 459 queries certify a p99
bound; the smallest run that yields an early-stopping p99 estimate has 662 queries.

Also here: distribution-free (order-statistic) intervals for any latency percentile, the binomial analogue of
``accelbench.measure.stats.median_interval``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import binom

from ..exceptions import ConfigError

PERCENTILE = 0.99  # the tail LoadGen's server scenario bounds
CONFIDENCE = 0.99  # LoadGen's early-stopping confidence
INTERVAL_CONFIDENCE = 0.95  # for the reported percentile intervals
DEFAULT_MIN_DURATION_S = 10.0  # LoadGen asks 600 s; a laptop run of 10 s already shows a hockey stick
DEFAULT_MIN_QUERIES = 100  # LoadGen's server minimum is far higher; early stopping guards the tail claim
DEFAULT_MAX_ERROR_FRACTION = 0.0  # a run that sheds or loses requests does not sustain its rate


def _nearest_rank(sorted_x: np.ndarray, q: float) -> float:
    """LoadGen's percentile: the value at index ``floor(n q)`` of the sorted latencies."""
    return float(sorted_x[min(len(sorted_x) - 1, int(len(sorted_x) * q))])


def percentile_interval(
    values: Sequence[float], q: float, confidence: float = INTERVAL_CONFIDENCE
) -> tuple[float, float, float]:
    """``(percentile, low, high)``: the ``q`` percentile and an order-statistic interval ``[x_(r), x_(s)]`` that
    covers the true percentile with at least ``confidence`` (Binomial(n, q) tails; no assumption on the shape
    of the latencies). Where the data cannot bound a side (too few values for a far tail), that side is
    ``-inf`` / ``inf``; no values gives NaNs."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    alpha = 1.0 - confidence
    r = int(binom.ppf(alpha / 2, n, q))  # 1-based rank: P(X <= r - 1) <= alpha / 2
    s = int(binom.ppf(1 - alpha / 2, n, q)) + 1  # 1-based rank: P(X <= s - 1) >= 1 - alpha / 2
    low = float(x[r - 1]) if r >= 1 else -math.inf
    high = float(x[s - 1]) if s <= n else math.inf
    return _nearest_rank(x, q), low, high


def min_passing_queries(
    overlatency: int, percentile: float = PERCENTILE, confidence: float = CONFIDENCE
) -> int:
    """LoadGen's ``MinPassingQueriesFinder``: the fewest queries *under* the bound that, beside ``overlatency``
    queries over it, certify the percentile: the smallest h with P(Binomial(h + t, 1 - p) <= t) < 1 - c."""
    t, q, alpha = int(overlatency), 1.0 - percentile, 1.0 - confidence

    def passes(h: int) -> bool:
        return binom.cdf(t, h + t, q) < alpha

    hi = max(1, int(t * percentile / q))  # the point estimate's break-even; the answer lies above it
    while not passes(hi):
        hi *= 2
    lo = 0
    while lo < hi:  # smallest passing h in [lo, hi]
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True)
class EarlyStopping:
    """The early-stopping verdict for ``queries`` queries of which ``overlatency`` exceeded the bound."""

    queries: int
    overlatency: int
    passed: bool
    queries_needed: int  # h + t: the run length that would pass with this many over the bound
    percentile: float = PERCENTILE
    confidence: float = CONFIDENCE

    @property
    def more_needed(self) -> int:
        """How many more queries, all under the bound, the run would need to pass (0 when it passes)."""
        return max(0, self.queries_needed - self.queries)


def early_stopping(
    queries: int, overlatency: int, percentile: float = PERCENTILE, confidence: float = CONFIDENCE
) -> EarlyStopping:
    """LoadGen's server-scenario rule: the tail claim holds if ``queries >= h + t`` (see ``min_passing_queries``)."""
    if overlatency < 0 or overlatency > queries:
        raise ValueError(f"overlatency must be in [0, {queries}], got {overlatency}")
    needed = min_passing_queries(overlatency, percentile, confidence) + overlatency
    return EarlyStopping(queries, overlatency, queries >= needed, needed, percentile, confidence)


def early_stopping_estimate(
    latencies: Sequence[float], percentile: float = PERCENTILE, confidence: float = CONFIDENCE
) -> float | None:
    """The latency bound the early-stopping rule can certify for this run ("early stopping p99 estimate").

    As LoadGen does: t is the largest count of queries over a bound that ``n`` queries can still certify
    (P(Binomial(n, 1 - p) <= t) < 1 - c), and the estimate is the t-th largest latency (so t - 1 queries lie
    above it). ``None`` when the run is too short for any estimate (fewer than 662 queries for p99 at 99%).
    Failed queries enter as ``inf``: a run with more failures than t has an unbounded estimate (``inf``).
    """
    x = np.sort(np.asarray(latencies, dtype=float))
    n = len(x)
    if n == 0:
        return None
    t = int(binom.ppf(1.0 - confidence, n, 1.0 - percentile)) - 1  # largest t with cdf(t) < 1 - c
    if t < 1:
        return None
    return float(x[n - t])


@dataclass(frozen=True)
class ValidityRules:
    """What a run must meet to be VALID (MLPerf LoadGen's server scenario, with laptop-sized minimums)."""

    min_duration_s: float = DEFAULT_MIN_DURATION_S
    min_queries: int = DEFAULT_MIN_QUERIES
    p99_ms: float | None = None  # the latency bound at ``percentile``; None: no latency constraint
    percentile: float = PERCENTILE
    confidence: float = CONFIDENCE
    early_stopping: bool = True  # require LoadGen's early-stopping test for the tail claim
    max_error_fraction: float = DEFAULT_MAX_ERROR_FRACTION

    def __post_init__(self) -> None:
        if self.p99_ms is not None and not self.p99_ms > 0:
            raise ConfigError(f"the p99 bound must be positive, got {self.p99_ms} ms", "pass --p99-ms > 0")
        if not self.min_duration_s >= 0:
            raise ConfigError(
                f"min duration must be >= 0, got {self.min_duration_s}", "pass --min-duration >= 0"
            )
        if self.min_queries < 0:
            raise ConfigError(f"min queries must be >= 0, got {self.min_queries}", "pass --min-queries >= 0")
        if not (0 < self.percentile < 1 and 0 < self.confidence < 1):
            raise ConfigError(
                f"percentile and confidence must lie in (0, 1), got {self.percentile}, {self.confidence}",
                "use e.g. 0.99 for both",
            )
        if not 0 <= self.max_error_fraction <= 1:
            raise ConfigError(
                f"max error fraction must lie in [0, 1], got {self.max_error_fraction}", "use e.g. 0 or 0.01"
            )


@dataclass
class Validity:
    valid: bool
    reasons: list[str] = field(default_factory=list)
    early_stopping: dict[str, Any] | None = None
    early_stopping_estimate_ms: float | None = None  # None: see early_stopping_note
    early_stopping_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_validity(
    rules: ValidityRules, duration_s: float, latencies_s: Sequence[float], failed: int
) -> Validity:
    """VALID or INVALID with every reason. ``latencies_s``: the answered requests; ``failed``: requests sent
    in the measured window that got no answer (errors, rejections, timeouts), counted as over any bound."""
    lat = np.asarray(latencies_s, dtype=float)
    n = len(lat) + failed
    reasons = []
    if duration_s < rules.min_duration_s:
        reasons.append(
            f"ran {duration_s:g} s, under the minimum of {rules.min_duration_s:g} s (raise --duration)"
        )
    if n < rules.min_queries:
        reasons.append(f"{n} queries, under the minimum of {rules.min_queries} (raise --duration or --rate)")
    if n and failed / n > rules.max_error_fraction:
        reasons.append(
            f"{failed} of {n} requests failed or were rejected: the server did not sustain the rate"
        )
    all_lat = np.concatenate([lat, np.full(failed, math.inf)])
    estimate = early_stopping_estimate(all_lat, rules.percentile, rules.confidence)
    es = None
    if rules.p99_ms is not None and n:
        bound = rules.p99_ms / 1000.0
        tail = _nearest_rank(np.sort(all_lat), rules.percentile) * 1000.0
        pct = f"p{rules.percentile * 100:g}"
        if tail > rules.p99_ms:
            reasons.append(f"{pct} {tail:.1f} ms exceeds the bound of {rules.p99_ms:g} ms (lower the rate)")
        result = early_stopping(n, int((lat > bound).sum()) + failed, rules.percentile, rules.confidence)
        es = asdict(result) | {"more_needed": result.more_needed}
        if rules.early_stopping and not result.passed:
            reasons.append(
                f"early stopping: {result.overlatency} of {n} queries over {rules.p99_ms:g} ms cannot certify "
                f"{pct} <= {rules.p99_ms:g} ms with {rules.confidence:.0%} confidence; it would take "
                f"{result.more_needed} more queries all under the bound (raise --duration)"
            )
    if estimate is None:
        note, est_ms = f"too few queries for an early-stopping p{rules.percentile * 100:g} estimate", None
    elif not math.isfinite(estimate):
        note, est_ms = "unbounded: more requests failed than the rule may discard", None
    else:
        note, est_ms = "", round(estimate * 1000.0, 3)
    return Validity(not reasons, reasons, es, est_ms, note)
