"""Speed statistics over repeated rounds: the median with a distribution-free interval, and paired ratios.

A speed figure on a shared machine moves with the machine's phases. Each point is measured in R rounds in
which the variants take turns, so a slow phase hits all of them alike; the figure is the median of the
rounds, and its interval comes from order statistics (no assumption on the shape of the noise): the
interval [x_(k), x_(R-k+1)] covers the true median with probability 1 - 2 P(Binomial(R, 1/2) <= k - 1).
With R >= 6 that reaches 95%; with fewer rounds the widest interval, [min, max], is given with the level it
actually has (R = 5: 93.8%, R = 3: 75%), recorded beside it as ``speed_ci_level``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95


def _coverage(n: int, k: int) -> float:
    """P(x_(k) <= median <= x_(n-k+1)) for n values: 1 - 2 P(Binomial(n, 1/2) <= k - 1)."""
    tail = sum(math.comb(n, i) for i in range(k)) / 2**n
    return 1.0 - 2.0 * tail


def median_interval(
    values: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float, float]:
    """``(median, low, high, level)``: the narrowest order-statistic interval with at least ``confidence``,
    or ``[min, max]`` with its lower level when there are too few values; one value has no interval (NaN
    bounds, level 0): a single round says nothing about its own spread, and ``[x, x]`` would read as exact."""
    x = np.sort(np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float))
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0.0
    med = float(np.median(x))
    if n == 1:
        return med, math.nan, math.nan, 0.0
    k = 1
    while k + 1 <= n // 2 and _coverage(n, k + 1) >= confidence:
        k += 1
    return med, float(x[k - 1]), float(x[n - k]), round(_coverage(n, k), 4)


def paired_ratios(values: Sequence[float], base: Sequence[float]) -> list[float]:
    """Per-round ratios ``values[r] / base[r]`` (rounds where either is missing or the base is 0 dropped)."""
    if len(values) != len(base):
        raise ValueError(f"{len(values)} rounds vs {len(base)} baseline rounds: pairs need the same rounds")
    return [v / b for v, b in zip(values, base, strict=True) if v is not None and b]


def unpaired_ratio(
    value: tuple[float, float, float], base: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Ratio of two medians measured apart, with the conservative interval [low/base_high, high/base_low]."""
    (v, v_lo, v_hi), (b, b_lo, b_hi) = value, base
    if not b or not b_lo or not b_hi:
        return math.nan, math.nan, math.nan
    return v / b, v_lo / b_hi, v_hi / b_lo
