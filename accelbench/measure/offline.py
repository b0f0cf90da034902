"""The offline scenario (as MLPerf's): throughput at the batch size the system chooses, not one fixed in advance.

For each variant the batch size doubles from ``offline_min_batch`` up to ``offline_max_batch`` (never past
the number of evaluation texts). Each size gets a short probe on the same seeded sample of the evaluation
texts (as many as the largest size), sorted by length and cut into batches as dynamic padding does, so every
size and every variant runs the same texts. The growth stops when the throughput has not beaten the best so
far by ``MIN_GAIN`` ``PATIENCE`` times in a row (a plateau), when the next size's memory, extrapolated from
the sizes measured, would pass the bound, or when a size fails (out of memory, a runtime error): the sizes
that worked stay. The chosen size is the smallest whose probe is within ``MIN_GAIN`` of the best one, since a
larger one costs memory for a gain a short probe cannot tell from noise; ``scenarios`` then measures it in
the same interleaved rounds as the fixed points, so it gets a median and an interval like them.

Memory of a size: the peak resident memory (RSS) of the process during its probe less the RSS before the
variant's search (what the allocator kept freed is handed back first), ``rss_increase_mb``; where torch
runs on a GPU, also its peak allocation (``gpu_peak_mb``). Both are in the record's ``offline_curve``.
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from ..taskdata.inputs import item_length
from .limits import VariantTimeout
from .settings import BenchmarkSettings
from .trackers import OtherCpu, PeakMemory

logger = logging.getLogger(__name__)

OFFLINE_SCENARIO = "offline"
GROWTH = 2  # batch sizes double
MIN_GAIN = 0.03  # a size must beat the best so far by 3% to count as an improvement
PATIENCE = 2  # sizes in a row without such an improvement end the search
MEMORY_SHARE = 0.5  # the default bound: this share of the memory available when a variant's search starts
PROBE_MAX_PASSES = 5  # passes over the sample per size, at most (the fastest one counts)
OK, REFUSED, OVER_MEMORY, FAILED = "ok", "refused: memory estimate over the bound", "over memory", "error"
STOPS = ("plateau", "memory", "error", "max batch", "texts", "time limit")


@dataclass
class Probe:
    """What one size's short measurement gave."""

    throughput: float  # samples/s of the fastest pass over the sample
    rss_increase_mb: float  # peak RSS during the probe less the RSS before the variant's search
    gpu_peak_mb: float | None = None
    busy_other_cpu_share: float | None = None  # CPU other processes took during the probe (trackers.OtherCpu)


@dataclass
class Step:
    """One size of the search: tried (ok, over memory, error) or refused on its memory estimate."""

    batch_size: int
    status: str = OK
    throughput: float | None = None
    rss_increase_mb: float | None = None
    estimated_mb: float | None = None  # extrapolated before trying; None for the first size
    gpu_peak_mb: float | None = None
    busy_other_cpu_share: float | None = None
    error: str | None = None


@dataclass
class Search:
    """A variant's search: every step, the chosen size (None when no size worked) and why it stopped."""

    steps: list[Step]
    chosen: int | None
    stop: str
    bound_mb: float

    @property
    def largest_ok(self) -> int | None:
        ok = [st.batch_size for st in self.steps if st.status == OK]
        return max(ok) if ok else None

    def fields(self) -> dict:
        """The offline row's record fields (``offline_curve`` is JSON: one object per step)."""
        curve = [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(st).items() if v is not None}
                 for st in self.steps]  # fmt: skip
        return {"offline_curve": json.dumps(curve), "offline_stop": self.stop,
                "offline_largest_ok": self.largest_ok, "offline_memory_bound_mb": round(self.bound_mb, 1),
                "offline_tried": [st.batch_size for st in self.steps if st.status != REFUSED]}  # fmt: skip


def batch_sizes(min_batch: int, max_batch: int, n_texts: int) -> list[int]:
    """The sizes to try: ``min_batch`` doubling up to ``max_batch`` (itself the last), capped at ``n_texts``."""
    top = max(1, min(max_batch, n_texts))
    out, n = [], min(min_batch, top)
    while n < top:
        out.append(n)
        n *= GROWTH
    return [*out, top]


def estimate_mb(steps: Sequence[Step], size: int) -> float | None:
    """Memory of ``size`` extrapolated from the sizes that worked: the line through the last two (its slope
    at least 0), or in proportion to the only one (an overestimate, as part of it does not grow)."""
    ok = [st for st in steps if st.status == OK and st.rss_increase_mb is not None]
    if not ok:
        return None
    last = ok[-1]
    if len(ok) == 1:
        return last.rss_increase_mb * size / last.batch_size
    prev = ok[-2]
    slope = max(0.0, (last.rss_increase_mb - prev.rss_increase_mb) / (last.batch_size - prev.batch_size))
    return last.rss_increase_mb + slope * (size - last.batch_size)


def search_batch_size(probe: Callable[[int], Probe], sizes: Sequence[int], bound_mb: float,
                      end: str = "max batch", min_gain: float = MIN_GAIN, patience: int = PATIENCE,
                      label: str = "variant", deadline: float = math.inf) -> Search:  # fmt: skip
    """Grow the batch size over ``sizes`` until the throughput plateaus, memory would pass ``bound_mb``, a
    size fails or ``deadline`` (a ``time.perf_counter()`` value) passes; ``end`` is the reason when every
    size was tried. When the first size fails, it halves until one works. A failure never escapes: the
    sizes that worked stay."""
    steps: list[Step] = []
    queue, best, misses, stop = list(sizes), -math.inf, 0, end
    shrinking: str | None = None  # why the first size is being halved: "error" or "memory"
    while queue:
        if time.perf_counter() > deadline:
            logger.warning("%s offline: time limit reached; the search stops", label)
            stop = "time limit"
            break
        n = queue.pop(0)
        est = estimate_mb(steps, n)
        if est is not None and est > bound_mb:
            steps.append(Step(n, REFUSED, estimated_mb=est))
            logger.info(
                "%s offline: batch %d refused: ~%.0f MB estimated, bound %.0f MB", label, n, est, bound_mb
            )
            stop = "memory"
            break
        try:
            p = probe(n)
        except (KeyboardInterrupt, SystemExit, VariantTimeout):
            raise
        except Exception as e:  # out of memory, a runtime's error at this shape: keep what worked
            steps.append(Step(n, FAILED, estimated_mb=est, error=f"{type(e).__name__}: {e}"[:300]))
            logger.warning("%s offline: batch %d failed: %s", label, n, steps[-1].error)
            if not any(st.status == OK for st in steps) and n > 1:
                queue, shrinking = [n // 2], "error"
                continue
            stop = "error"
            break
        step = Step(n, OK, p.throughput, p.rss_increase_mb, est, p.gpu_peak_mb, p.busy_other_cpu_share)
        steps.append(step)
        logger.info(
            "%s offline: batch %d: %.1f samples/s, +%.0f MB", label, n, p.throughput, p.rss_increase_mb
        )
        if p.rss_increase_mb > bound_mb:
            step.status, stop = OVER_MEMORY, "memory"
            if not any(st.status == OK for st in steps) and n > 1:
                queue, shrinking = [n // 2], "memory"
                continue
            break
        if shrinking:  # the sizes above already failed
            stop = shrinking
            break
        if p.throughput > best * (1 + min_gain):
            misses = 0
        else:
            misses += 1
        best = max(best, p.throughput)
        if misses >= patience:
            stop = "plateau"
            break
    ok = [st for st in steps if st.status == OK]
    chosen = None
    if ok:
        top = max(st.throughput for st in ok)
        chosen = min(st.batch_size for st in ok if st.throughput * (1 + min_gain) >= top)
    return Search(steps, chosen, stop, bound_mb)


def memory_bound_mb(s: BenchmarkSettings) -> float:
    """``offline_memory_mb``, or ``MEMORY_SHARE`` of the memory available now."""
    if s.offline_memory_mb is not None:
        return float(s.offline_memory_mb)
    import psutil

    return MEMORY_SHARE * psutil.virtual_memory().available / 2**20


def _trim(collect: bool = True) -> None:
    """Hand freed memory back to the system (glibc keeps it otherwise), so RSS reads what is in use;
    ``collect`` frees unreachable cycles first (a full collection: tenths of a second with torch loaded)."""
    if collect:
        gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _gpu():
    """torch's CUDA module when a GPU is in use in this process (no import of torch for it), else None."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    return cuda if cuda is not None and cuda.is_available() and cuda.is_initialized() else None


def make_probe(call: Callable[[list], object], texts: Sequence, sample_size: int, probe_s: float,
               seed: int = 0) -> Callable[[int], Probe]:  # fmt: skip
    """A probe over a seeded sample of ``sample_size`` texts, length-sorted: for a size, one warm-up batch
    (the longest), then passes over the sample until ``probe_s`` has passed (``PROBE_MAX_PASSES`` at most);
    memory is measured from now (the start of the variant's search), and the CPU others took meanwhile."""
    idx = random.Random(seed).sample(range(len(texts)), min(sample_size, len(texts)))
    sample = sorted((texts[i] for i in idx), key=item_length)
    _trim()
    import psutil

    rss0 = psutil.Process().memory_info().rss / 2**20

    def probe(n: int) -> Probe:
        batches = [sample[j : j + n] for j in range(0, len(sample), n)]
        _trim(collect=False)
        gpu = _gpu()
        if gpu is not None:
            gpu.reset_peak_memory_stats()
        passes: list[float] = []
        others = OtherCpu()
        with PeakMemory() as mem, others.track():
            call(batches[-1])  # warm-up on the longest texts: allocations for this shape happen here
            start = time.perf_counter()
            while len(passes) < PROBE_MAX_PASSES and (not passes or time.perf_counter() - start < probe_s):
                t0 = time.perf_counter()
                for b in batches:
                    call(b)
                passes.append(time.perf_counter() - t0)
        gpu_mb = gpu.max_memory_allocated() / 2**20 if gpu is not None else None
        share = others.share
        return Probe(
            len(sample) / min(passes), mem.peak_mb - rss0, gpu_mb, None if math.isnan(share) else share
        )

    return probe


def search_offline(call: Callable[[list], object], texts: Sequence, s: BenchmarkSettings,
                   label: str = "variant", deadline: float = math.inf) -> Search:  # fmt: skip
    """The whole search for one predictor's ``call`` (one dynamic-padded batch) on ``texts``, within the
    variant's ``deadline``."""
    sizes = batch_sizes(s.offline_min_batch, s.offline_max_batch, len(texts))
    end = "texts" if sizes[-1] < s.offline_max_batch else "max batch"
    if end == "texts":
        logger.info("%s offline: the evaluation split has %d texts: no batch above that", label, len(texts))
    bound = memory_bound_mb(s)
    probe = make_probe(call, texts, sizes[-1], s.min_time_s / s.repeats, s.seed)
    result = search_batch_size(probe, sizes, bound, end, label=label, deadline=deadline)
    logger.info("%s offline: batch %s chosen (stopped: %s)", label, result.chosen, result.stop)
    return result


def offline_curves(records: pd.DataFrame) -> pd.DataFrame:
    """The offline searches of ``records`` as one row per variant and size tried: variant, batch_size,
    throughput, rss_increase_mb, estimated_mb, status, chosen (for notebooks' curves)."""
    if "offline_curve" not in records.columns or "scenario" not in records.columns:
        return pd.DataFrame(columns=["variant", "batch_size", "throughput", "status", "chosen"])
    rows = []
    for _, rec in records[
        (records["scenario"] == OFFLINE_SCENARIO) & records["offline_curve"].notna()
    ].iterrows():
        for st in json.loads(rec["offline_curve"]):
            rows.append(
                {
                    "variant": rec.get("variant"),
                    **st,
                    "chosen": st["status"] == OK and st["batch_size"] == rec["batch_size"],
                }
            )
    return pd.DataFrame(rows)


__all__ = [
    "OFFLINE_SCENARIO",
    "Probe",
    "Search",
    "Step",
    "batch_sizes",
    "estimate_mb",
    "make_probe",
    "memory_bound_mb",
    "offline_curves",
    "search_batch_size",
    "search_offline",
]
