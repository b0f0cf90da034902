"""Trackers: a wall-clock timer and a peak-memory sampler, apart from the scenarios that use them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

MEMORY_POLL_S = 0.005


class Timer:
    """Collects wall-clock durations: ``with timer.track(): ...``."""

    def __init__(self) -> None:
        self.times: list[float] = []

    @contextmanager
    def track(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times.append(time.perf_counter() - start)

    @property
    def total(self) -> float:
        return float(sum(self.times))

    def percentiles_ms(self, qs=(50, 90, 99)) -> dict[str, float]:
        arr = np.asarray(self.times) * 1e3
        out = {f"latency_ms_p{q}": float(np.percentile(arr, q)) for q in qs}
        out["latency_ms_mean"] = float(arr.mean())
        return out


class PeakMemory:
    """Samples this process's resident memory in a thread; ``peak_mb`` is the highest seen."""

    def __init__(self, interval_s: float = MEMORY_POLL_S) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval_s = interval_s
        self.start_mb = self.peak_mb = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _rss(self) -> float:
        return self._proc.memory_info().rss / 2**20

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, self._rss())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss())
