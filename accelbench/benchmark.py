"""Speed and memory: real-time (one request at a time) and batch-inference scenarios from one code path.

Requests are real texts of the evaluation split. Every point gets a warm-up and runs for at least
``min_time_s``; latencies are wall-clock per request (tokenization included, as a service pays it).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .exceptions import ConfigError
from .runtimes.base import PADDINGS, Predictor

logger = logging.getLogger(__name__)

SCENARIOS = ("realtime", "batch")
MIN_REQUESTS = 20
MIN_BATCHES = 3
MEMORY_POLL_S = 0.005


@dataclass
class BenchmarkSettings:
    """How quality and speed are measured; part of every record's key."""

    batch_sizes: list[int] = field(
        default_factory=lambda: [1, 8, 32], metadata={"help": "batch-inference points"}
    )
    realtime: bool = field(default=True, metadata={"help": "measure batch-1 latency over single requests"})
    min_time_s: float = field(default=5.0, metadata={"help": "measured time per point, after warm-up"})
    warmup: int = field(default=5, metadata={"help": "warm-up requests (real-time) or batches (batch)"})
    max_requests: int = field(default=2000, metadata={"help": "safety cap on real-time requests per point"})
    paddings: list[str] = field(
        default_factory=lambda: ["dynamic"], metadata={"help": "dynamic and/or max_length"}
    )
    max_length: int = field(
        default=128, metadata={"help": "truncation, and the padded length for max_length"}
    )
    n_eval: int | None = field(
        default=None, metadata={"help": "evaluate on the first n examples (None: all)"}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "generation limit for seq2seq"})
    num_beams: int = field(default=1, metadata={"help": "1 = greedy decoding"})
    threads: int | None = field(default=None, metadata={"help": "torch intra-op threads (None: all cores)"})
    n_bootstrap: int = field(default=1000, metadata={"help": "bootstrap resamples for the 95% intervals"})
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.batch_sizes, int):
            self.batch_sizes = [self.batch_sizes]
        if isinstance(self.paddings, str):
            self.paddings = [self.paddings]
        bad = [b for b in self.batch_sizes if not isinstance(b, int) or b <= 0]
        if bad or not self.batch_sizes:
            raise ConfigError(
                f"batch sizes must be positive integers, got {self.batch_sizes}", "use e.g. [1, 8, 32]"
            )
        for name in (
            "min_time_s",
            "max_length",
            "max_new_tokens",
            "num_beams",
            "max_requests",
            "n_bootstrap",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}", f"set {name} > 0")
        if self.warmup < 0:
            raise ConfigError(f"warmup must be >= 0, got {self.warmup}", "set warmup to 0 or more")
        for opt in ("n_eval", "threads"):
            v = getattr(self, opt)
            if v is not None and v <= 0:
                raise ConfigError(f"{opt} must be positive or null, got {v}", f"remove {opt} or set it > 0")
        unknown = [p for p in self.paddings if p not in PADDINGS]
        if unknown:
            raise ConfigError(
                f"unknown padding {unknown}; known: {', '.join(PADDINGS)}", "use paddings: [dynamic]"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> BenchmarkSettings:
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"unknown benchmark setting(s): {', '.join(sorted(unknown))}",
                f"use only: {', '.join(cls.__dataclass_fields__)}",
            )
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _call(predictor: Predictor, kind: str, texts: list[str], s: BenchmarkSettings, padding: str) -> int:
    """One request or batch; returns the number of generated tokens (0 for classification)."""
    if kind == "classification":
        predictor.classify(texts, padding=padding, max_length=s.max_length)
        return 0
    gen = predictor.generate(texts, s.max_new_tokens, s.num_beams, padding=padding, max_length=s.max_length)
    return gen.new_tokens


def realtime(
    predictor: Predictor, kind: str, texts: list[str], s: BenchmarkSettings, progress: bool = True
) -> dict:
    """Batch-1 latency over single requests drawn (seeded) from ``texts``."""
    from tqdm.auto import tqdm

    rng = random.Random(s.seed)
    pool = texts[:]
    rng.shuffle(pool)
    for t in pool[: s.warmup]:
        _call(predictor, kind, [t], s, "dynamic")
    timer, tokens, start = Timer(), 0, time.perf_counter()
    bar = tqdm(desc="real-time", unit="req", disable=not progress, leave=False)
    i = 0
    while i < s.max_requests and (time.perf_counter() - start < s.min_time_s or i < MIN_REQUESTS):
        with timer.track():
            tokens += _call(predictor, kind, [pool[i % len(pool)]], s, "dynamic")
        i += 1
        bar.update(1)
    bar.close()
    out = {
        "scenario": "realtime",
        "batch_size": 1,
        "padding": "dynamic",
        "n_requests": i,
        **timer.percentiles_ms(),
    }
    out["throughput"] = i / timer.total
    if kind == "seq2seq":
        out.update(tokens_per_s=tokens / timer.total, ms_per_token=1e3 * timer.total / max(tokens, 1))
    return out


def batch(
    predictor: Predictor, kind: str, texts: list[str], batch_size: int, s: BenchmarkSettings,
    padding: str = "dynamic", progress: bool = True,
) -> dict:  # fmt: skip
    """Throughput at one batch size. ``dynamic``: length-sorted batches padded to their longest text;
    ``max_length``: batches in data order padded to ``max_length`` tokens."""
    from tqdm.auto import tqdm

    order = (
        sorted(range(len(texts)), key=lambda i: len(texts[i]))
        if padding == "dynamic"
        else list(range(len(texts)))
    )
    batches = [[texts[i] for i in order[j : j + batch_size]] for j in range(0, len(order), batch_size)]
    rng = random.Random(s.seed)
    rng.shuffle(batches)  # a random sample of batches represents the length mix even in a partial pass
    for b in batches[: max(1, min(s.warmup, len(batches)))]:
        _call(predictor, kind, b, s, padding)
    timer, samples, tokens, start, i = Timer(), 0, 0, time.perf_counter(), 0
    bar = tqdm(desc=f"batch {batch_size} ({padding})", unit="batch", disable=not progress, leave=False)
    while time.perf_counter() - start < s.min_time_s or i < MIN_BATCHES:
        b = batches[i % len(batches)]
        with timer.track():
            tokens += _call(predictor, kind, b, s, padding)
        samples += len(b)
        i += 1
        bar.update(1)
    bar.close()
    out = {"scenario": "batch", "batch_size": batch_size, "padding": padding, "n_batches": i, "n_samples": samples,
           "full_passes": round(i / len(batches), 2), **timer.percentiles_ms(), "throughput": samples / timer.total}  # fmt: skip
    if kind == "seq2seq":
        out.update(tokens_per_s=tokens / timer.total, ms_per_token=1e3 * timer.total / max(tokens, 1),
                   ms_per_sequence=1e3 * timer.total / samples)  # fmt: skip
    return out


def run_scenarios(
    predictor: Predictor, kind: str, texts: list[str], s: BenchmarkSettings, progress: bool = True
) -> list[dict]:
    """Every scenario point of the settings, each with the process's peak RSS while it ran."""
    rows = []
    points: list[tuple[str, int, str]] = [("realtime", 1, "dynamic")] if s.realtime else []
    points += [("batch", b, p) for p in s.paddings for b in s.batch_sizes]
    for scenario, bs, padding in points:
        with PeakMemory() as mem:
            if scenario == "realtime":
                row = realtime(predictor, kind, texts, s, progress)
            else:
                row = batch(predictor, kind, texts, bs, s, padding, progress)
        row.update(peak_rss_mb=round(mem.peak_mb, 1), rss_increase_mb=round(mem.peak_mb - mem.start_mb, 1))
        rows.append(row)
        logger.info("%s bs=%d %s: %.1f samples/s, p90 %.1f ms", scenario, bs, padding, row["throughput"],
                    row["latency_ms_p90"])  # fmt: skip
    return rows
