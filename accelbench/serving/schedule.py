"""Seeded Poisson arrival schedules: when each request of an open-loop load test is due.

MLPerf LoadGen's server scenario issues queries with exponentially distributed gaps (a Poisson process) from a
fixed seed, so two runs at the same rate offer the same traffic. The schedule is drawn up front: the load
generator then only has to wait for each due time, and latency is measured from these times, not from when a
request actually left (coordinated omission cannot hide queueing).
"""

from __future__ import annotations

import math

import numpy as np

from ..exceptions import ConfigError

DEFAULT_SEED = 0
MAX_ARRIVALS = 5_000_000  # a bound on memory and run length: 5 M requests is hours at laptop rates


def poisson_schedule(
    rate: float, duration: float, seed: int = DEFAULT_SEED, start: float = 0.0
) -> np.ndarray:
    """Arrival times in seconds (sorted, in ``[start, start + duration)``) of a Poisson process of ``rate``/s.

    Draws exponential gaps with mean ``1 / rate`` from ``numpy.random.default_rng(seed)``; the same seed, rate
    and duration give the same schedule.
    """
    if not rate > 0 or not math.isfinite(rate):
        raise ConfigError(
            f"rate must be a positive number of requests per second, got {rate}", "pass --rate > 0"
        )
    if not duration > 0 or not math.isfinite(duration):
        raise ConfigError(f"duration must be positive, got {duration} s", "pass --duration > 0 (seconds)")
    expected = rate * duration
    if expected > MAX_ARRIVALS:
        raise ConfigError(
            f"rate x duration = {expected:.0f} requests exceeds the bound of {MAX_ARRIVALS}",
            "lower --rate or --duration",
        )
    rng = np.random.default_rng(seed)
    # enough gaps to pass ``duration`` with overwhelming probability (mean + 10 sd + slack); topped up if not
    chunk = int(expected + 10 * math.sqrt(expected) + 16)
    times = np.cumsum(rng.exponential(1.0 / rate, size=chunk))
    while times[-1] < duration:
        more = np.cumsum(rng.exponential(1.0 / rate, size=chunk)) + times[-1]
        times = np.concatenate([times, more])
    return start + times[times < duration]
