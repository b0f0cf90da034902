"""Benchmark scenarios: real-time (one request at a time) and batch inference, from one code path.

Requests are real texts of the evaluation split. Every point gets a warm-up and runs for at least
``min_time_s``; latencies are wall-clock per request (tokenization included, as a service pays it).
"""

from __future__ import annotations

import logging
import random
import time

from ..runtimes.base import Predictor
from .settings import BenchmarkSettings
from .trackers import PeakMemory, Timer

logger = logging.getLogger(__name__)

SCENARIOS = ("realtime", "batch")
MIN_REQUESTS = 20
MIN_BATCHES = 3


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
