"""Benchmark scenarios: real-time (one request at a time), batch inference at fixed sizes and offline (at the
size a search chose, ``offline``), measured in interleaved rounds.

Requests are real texts of the evaluation split; latencies are wall-clock per request (tokenization
included, as a service pays it). A point's requests or batches are ordered so that every few consecutive
ones span the length mix (``spread``): a round covers part of a pass, and its inputs weigh lengths as a full
pass does. Every point of every variant gets its warm-up first; then, round by round,
each variant runs each point on the same inputs for about ``min_time_s / repeats`` seconds, the variants taking
turns, so a slow phase of a shared machine hits all of them alike. Between its turns a variant is parked
(``Predictor.park``): a runtime whose idle threads would slow the others (CTranslate2's, see its ``park``)
releases them, so each is timed as it runs alone. The call count of the first round comes from
the warm-up's mean call (the first call left out: it pays one-off costs); from the second round on, from the
first round's mean call, so a point measures what ``min_time_s`` says whatever the spread of its inputs' lengths
(sizing on the fastest warm-up call, the shortest batch, had every point run two to four times longer); a
batch point runs at least two batches per round, so that no round's figure rests on a single batch.
With ``realtime`` on, the batch-1 dynamic-padding point is the real-time point (the same single requests, the
same code path): its row is written from the real-time rounds (``measured_as: realtime``), not measured twice. A point's figures are the median over its rounds with an
order-statistic interval (``stats.median_interval``); a variant's speed-up against the baseline is the median
of its per-round ratios (paired), which is far steadier than the ratio of two separate measurements.
Each point also records how much CPU other processes took during its rounds (``trackers.OtherCpu``): a point
measured on a busy machine carries ``busy: true``.
The offline point's size may differ per variant: each variant searches its own (after the warm-ups, one
variant after the other), then its offline point takes turns in the rounds with the others' as the fixed
points do, each variant's call count sized from its own warm-up; its speed-up pairs it with fp32's offline
point round by round, whatever size each chose.
"""

from __future__ import annotations

import logging
import math
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..devices import DeviceMemory
from ..runtimes.base import Predictor
from ..taskdata.inputs import item_length
from .offline import OFFLINE_SCENARIO, Search, search_offline
from .settings import BenchmarkSettings
from .stats import median_interval, paired_ratios, unpaired_ratio
from .trackers import OtherCpu, PeakMemory

logger = logging.getLogger(__name__)

SCENARIOS = ("realtime", "batch", OFFLINE_SCENARIO)
OFFLINE_POINT = (OFFLINE_SCENARIO, 0, "dynamic")  # its batch size is each variant's own
REALTIME_POINT = ("realtime", 1, "dynamic")
SAME_AS_REALTIME = ("batch", 1, "dynamic")  # one request at a time: what the real-time point measures
MIN_REQUESTS = 20  # per point, over all rounds
MIN_BATCHES = 3
# per round, at a batch or offline point: a round of one batch rests on that batch alone. With one T5 batch of
# 32 per round (1.5 s per point), the paired ratios of ct2-int8 and ort-dynamic-int8 flipped in one of six
# rounds in both runs and the recommendation could not tell them apart; with two they did not
MIN_BATCHES_PER_ROUND = 2
LATENCY_QS = (50, 90, 99)
GOLDEN = (5**0.5 - 1) / 2  # the golden ratio's fraction: the most evenly spread sequence of fractions
TIMEOUT = "timeout"


@dataclass
class Interleaved:
    """What the rounds gave: rows per label, seconds each label spent measuring, and the labels dropped."""

    rows: dict[str, list[dict]]
    spent: dict[str, float]
    failed: dict[str, str] = field(default_factory=dict)


def _call(predictor: Predictor, kind: str, texts: list[str], s: BenchmarkSettings, padding: str) -> int:
    """One request or batch, its device synchronised at the end (a GPU's queued kernels are part of the call's
    time); returns the number of generated tokens (0 for classification)."""
    if kind == "classification":
        predictor.classify(texts, padding=padding, max_length=s.max_length)
        predictor.synchronize()
        return 0
    gen = predictor.generate(texts, s.max_new_tokens, s.num_beams, padding=padding, max_length=s.max_length)
    predictor.synchronize()
    return gen.new_tokens


def points(s: BenchmarkSettings) -> list[tuple[str, int, str]]:
    """The (scenario, batch size, padding) points the settings ask for, in measuring order."""
    out: list[tuple[str, int, str]] = [REALTIME_POINT] if s.realtime else []
    return out + [("batch", b, p) for p in s.paddings for b in s.batch_sizes]


def measured_points(s: BenchmarkSettings) -> list[tuple[str, int, str]]:
    """The points that get rounds of their own: all but batch 1 with dynamic padding when the real-time
    point runs, as that one measures the same thing (see ``Point.result``)."""
    return [p for p in points(s) if not (s.realtime and p == SAME_AS_REALTIME)]


def spread(work: list[list], rng: random.Random) -> list[list]:
    """The work items (requests or batches) in an order where every run of consecutive items spans the length
    mix: sorted by their longest text, then taken in a golden-ratio sequence from a seeded random phase (the
    k-th item is the one at the fraction ``phase + k * 0.618...`` of the sorted list). A round covers a few
    items of a partial pass; shuffled, two rounds could draw mostly short or mostly long inputs, and a
    per-round ratio then weighed lengths unlike a full pass does. Deterministic for a seed."""
    by_length = sorted(work, key=lambda w: max(item_length(t) for t in w))
    phase = rng.random()
    keys = [(phase + k * GOLDEN) % 1.0 for k in range(len(by_length))]
    out: list[list] = [[] for _ in by_length]
    for rank, k in enumerate(sorted(range(len(keys)), key=keys.__getitem__)):
        out[k] = by_length[rank]  # the k-th call takes the item at its key's rank in the length order
    return out


class Point:
    """One scenario point of one predictor: its work list, its warm-up and its timed rounds."""

    def __init__(self, predictor: Predictor, kind: str, texts: list[str], s: BenchmarkSettings,
                 scenario: str, batch_size: int = 1, padding: str = "dynamic") -> None:  # fmt: skip
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        self.predictor, self.kind, self.s = predictor, kind, s
        self.scenario, self.batch_size = scenario, 1 if scenario == "realtime" else batch_size
        self.padding = padding if scenario == "batch" else "dynamic"
        rng = random.Random(s.seed)
        if scenario == "realtime":
            self.work = spread([[t] for t in texts], rng)
        else:  # dynamic: length-sorted batches padded to their longest text; max_length: data order, fixed length
            order = (sorted(range(len(texts)), key=lambda i: item_length(texts[i])) if padding == "dynamic"
                     else list(range(len(texts))))  # fmt: skip
            self.work = spread(
                [[texts[i] for i in order[j : j + batch_size]] for j in range(0, len(order), batch_size)], rng
            )
        self.rounds: list[dict] = []  # per round: times (s), samples, tokens
        self.warm_times: list[float] = []
        self.peak_rss_mb = 0.0
        self.rss_increase_mb = 0.0
        self.peak_rss_source: str | None = None  # VmHWM (the kernel's peak) or poll (trackers.PeakMemory)
        self.gpu_memory: dict[str, float] = {}  # peak GPU memory over the rounds (a CUDA predictor only)
        self.others = OtherCpu()  # CPU taken by other processes during the timed rounds

    def warm_up(self) -> None:
        """Up to ``warmup`` calls (at least one: its time sizes the first round), ending early once two calls
        are done and the warm-up has lasted a round (``min_time_s / repeats``): the first call pays the
        one-off costs, and a slow variant's large batches would otherwise spend longer warming up than
        measuring."""
        n = max(1, self.s.warmup if self.scenario == "realtime" else min(self.s.warmup, len(self.work)))
        start, budget = time.perf_counter(), self.s.min_time_s / self.s.repeats
        for w in self.work[:n]:
            t0 = time.perf_counter()
            _call(self.predictor, self.kind, w, self.s, self.padding)
            self.warm_times.append(time.perf_counter() - t0)
            if len(self.warm_times) >= 2 and time.perf_counter() - start >= budget:
                break

    @property
    def call_s(self) -> float:
        """A mean call's time: over the first round's calls once it ran, else over the warm-up's calls but its
        first (which pays one-off costs; the only one if there is one). A mean, not the fastest call: the
        points' inputs differ in length, and a round must last ``min_time_s / repeats`` on the mean input."""
        if self.rounds and self.rounds[0]["times"]:
            return float(np.mean(self.rounds[0]["times"]))
        times = self.warm_times[1:] or self.warm_times
        return float(np.mean(times)) if times else math.nan

    @property
    def calls_done(self) -> int:
        """Calls run in the timed rounds so far: where the next round starts in the work list."""
        return sum(len(r["times"]) for r in self.rounds)

    def run_round(self, calls: int) -> float:
        """Run ``calls`` calls on the work items from ``calls_done`` on (cyclically); returns the wall time.

        Every variant of a point runs the same call counts round by round, so each round runs the same items
        for all of them, and a per-round ratio compares speed on identical inputs, not two different mixes
        of short and long texts."""
        start = self.calls_done
        times, samples, tokens = [], 0, 0
        t_start = time.perf_counter()
        self.predictor.synchronize()  # nothing of an earlier call still queued on the device
        with (
            PeakMemory() as mem,
            self.others.track(),
            DeviceMemory(self.predictor.device if self.predictor.torch_allocator else None) as gpu,
        ):
            for i in range(start, start + calls):
                w = self.work[i % len(self.work)]
                t0 = time.perf_counter()
                tokens += _call(self.predictor, self.kind, w, self.s, self.padding)
                times.append(time.perf_counter() - t0)
                samples += len(w)
        self.peak_rss_mb = max(self.peak_rss_mb, mem.peak_mb)
        self.peak_rss_source = mem.source
        self.rss_increase_mb = max(self.rss_increase_mb, mem.peak_mb - mem.start_mb)
        for k, v in gpu.fields().items():
            self.gpu_memory[k] = max(self.gpu_memory.get(k, 0.0), v)
        self.rounds.append({"times": times, "samples": samples, "tokens": tokens})
        return time.perf_counter() - t_start

    def result(self, scenario: str | None = None) -> dict:
        """The point's record fields: medians over rounds with their intervals, pooled latency percentiles.

        ``scenario="batch"`` on the real-time point writes its rounds as the batch-1 (dynamic) row, which
        measures the same single requests, marked ``measured_as: realtime``."""
        scenario = scenario or self.scenario
        thr = [r["samples"] / sum(r["times"]) for r in self.rounds]
        med, lo, hi, level = median_interval(thr)
        pooled = np.concatenate([np.asarray(r["times"]) for r in self.rounds]) * 1e3
        total = float(pooled.sum()) / 1e3
        samples, tokens = sum(r["samples"] for r in self.rounds), sum(r["tokens"] for r in self.rounds)
        out = {"scenario": scenario, "batch_size": self.batch_size, "padding": self.padding,
               "repeats": len(self.rounds), "speed_ci_level": level,
               "throughput": med, "throughput_ci_low": lo, "throughput_ci_high": hi,
               "throughput_rounds": [round(t, 4) for t in thr]}  # fmt: skip
        for q in LATENCY_QS:
            point = float(np.percentile(pooled, q))
            _, q_lo, q_hi, _ = median_interval(
                [1e3 * float(np.percentile(r["times"], q)) for r in self.rounds]
            )
            out[f"latency_ms_p{q}"] = point
            out[f"latency_ms_p{q}_ci_low"], out[f"latency_ms_p{q}_ci_high"] = (
                min(q_lo, point),
                max(q_hi, point),
            )
        out["latency_ms_mean"] = float(pooled.mean())
        if scenario == "realtime":
            out["n_requests"] = len(pooled)
        else:
            out.update(
                n_batches=len(pooled), n_samples=samples, full_passes=round(len(pooled) / len(self.work), 2)
            )
        if scenario != self.scenario:
            out["measured_as"] = self.scenario
        if self.kind == "seq2seq":
            out.update(tokens_per_s=tokens / total, ms_per_token=1e3 * total / max(tokens, 1))
            if scenario != "realtime":
                out["ms_per_sequence"] = 1e3 * total / samples
        out.update(peak_rss_mb=round(self.peak_rss_mb, 1), rss_increase_mb=round(self.rss_increase_mb, 1),
                   peak_rss_source=self.peak_rss_source)  # fmt: skip
        out.update(self.gpu_memory)
        out.update(self.others.fields())
        return out


def calls_per_round(s: BenchmarkSettings, scenario: str, call_s: list[float]) -> int:
    """Calls per round so the median variant spends ``min_time_s / repeats`` per round, within the minimum
    calls of a point (``MIN_REQUESTS`` over all rounds; batches: ``MIN_BATCHES`` over all rounds and
    ``MIN_BATCHES_PER_ROUND`` in each) and ``max_requests``."""
    known = [c for c in call_s if c and math.isfinite(c)]
    per_call = float(np.median(known)) if known else math.inf
    if scenario == "realtime":
        low = math.ceil(MIN_REQUESTS / s.repeats)
    else:
        low = max(MIN_BATCHES_PER_ROUND, math.ceil(MIN_BATCHES / s.repeats))
    high = max(1, s.max_requests // s.repeats) if scenario == "realtime" else math.inf
    want = math.ceil(s.min_time_s / s.repeats / per_call) if per_call > 0 and math.isfinite(per_call) else low
    return int(max(1, min(max(want, low), high)))


def run_interleaved(
    predictors: Mapping[str, Predictor],
    kind: str,
    texts: list[str],
    s: BenchmarkSettings,
    progress: bool = True,
    deadlines: Mapping[str, float] | None = None,
) -> Interleaved:
    """Every point of the settings for every predictor, the predictors taking turns round by round.

    ``deadlines`` (``time.perf_counter()`` values per label) drop a predictor from the rotation once passed;
    a predictor that raises is dropped too, and the others go on. Such a label has no rows, and its
    status (``timeout`` or the error's text) is in ``failed``.
    """
    from tqdm.auto import tqdm

    deadlines = deadlines or {}
    labels = list(predictors)
    plan = measured_points(s)
    pts = {(lb, p): Point(predictors[lb], kind, texts, s, *p) for lb in labels for p in plan}
    spent = dict.fromkeys(labels, 0.0)
    alive = set(labels)
    calls: dict[tuple, int] = {}
    searches: dict[str, Search] = {}

    failed: dict[str, str] = {}

    def turn(label: str, fn) -> None:
        if label not in alive:
            return
        if time.perf_counter() > deadlines.get(label, math.inf):
            alive.discard(label)
            failed[label] = TIMEOUT
            logger.warning("%s: time limit reached during the speed rounds; dropped from the rotation", label)
            return
        t0 = time.perf_counter()
        try:
            predictors[label].unpark()  # only the turn's own runtime threads alive (Predictor.park)
            try:
                fn()
            finally:
                predictors[label].park()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # one failing variant never stops the others
            alive.discard(label)
            failed[label] = f"{type(e).__name__}: {e}"
            logger.error("%s failed during the speed rounds: %s", label, failed[label])
        spent[label] += time.perf_counter() - t0

    def offline(label: str) -> None:
        """The label's search, then its offline point at the chosen size, warmed up (none if no size worked)."""
        pred = predictors[label]
        call = lambda b: _call(pred, kind, b, s, "dynamic")  # noqa: E731
        found = searches[label] = search_offline(call, texts, s, label, deadlines.get(label, math.inf))
        if found.chosen is None:
            logger.warning("%s: no batch size worked in the offline search; no offline point", label)
            return
        pt = pts[(label, OFFLINE_POINT)] = Point(pred, kind, texts, s, OFFLINE_SCENARIO, found.chosen)
        pt.warm_up()
        calls[(label, OFFLINE_POINT)] = calls_per_round(s, OFFLINE_SCENARIO, [pt.call_s])

    def size_calls() -> None:
        """One call count per fixed point, the same for every variant (sized on the median variant's mean
        call); the offline point's per variant, as its batch size is the variant's own."""
        for p in plan:
            calls[p] = calls_per_round(s, p[0], [pts[(lb, p)].call_s for lb in labels if lb in alive])
        for key in calls:
            if key[1] == OFFLINE_POINT and key in pts:
                calls[key] = calls_per_round(s, OFFLINE_SCENARIO, [pts[key].call_s])

    plan_all = plan + ([OFFLINE_POINT] if s.offline else [])
    total = s.repeats * len(plan_all) * len(labels)
    for label in labels:  # built and scored one after the other: each waits for its turn parked
        predictors[label].park()
    with tqdm(total=total, desc="speed", unit="turn", disable=not progress, leave=False) as bar:
        for (label, _), pt in list(pts.items()):
            turn(label, pt.warm_up)
        size_calls()
        if s.offline:
            bar.set_description("offline batch-size search")
            for label in labels:
                turn(label, lambda label=label: offline(label))
        for r in range(s.repeats):
            if r == 1:  # the first round's calls size the others: a mean over more calls than the warm-up's
                size_calls()
            bar.set_description(f"speed round {r + 1}/{s.repeats}")
            for p in plan_all:
                order = labels if r % 2 == 0 else labels[::-1]  # neither variant always follows the other
                for label in order:
                    pt = pts.get((label, p))
                    if pt is not None:  # an offline point exists only where a size worked
                        n = calls[(label, p) if p == OFFLINE_POINT else p]
                        turn(label, lambda pt=pt, n=n: pt.run_round(n))
                    bar.update(1)
    rows = {lb: _rows(pts, lb, s) for lb in labels if lb in alive}
    rotation = uuid.uuid4().hex[:12]  # rows sharing it ran the same inputs round by round: pairable
    for rs in rows.values():
        for row in rs:
            row["rotation"] = rotation
    for lb, rs in rows.items():
        for row in rs:
            if row["scenario"] == OFFLINE_SCENARIO:
                row.update(searches[lb].fields())
    for lb, rs in rows.items():
        for row in rs:
            logger.info("%s %s bs=%d %s: %.1f samples/s [%.1f, %.1f], p90 %.1f ms", lb, row["scenario"],
                        row["batch_size"], row["padding"], row["throughput"], row["throughput_ci_low"],
                        row["throughput_ci_high"], row["latency_ms_p90"])  # fmt: skip
            # info, not warning: the record carries the flag, and every table and summary warns of it once
            if row.get("busy"):
                logger.info("%s %s bs=%d %s: measured on a busy machine: other processes took %.0f%% of the CPU",
                            lb, row["scenario"], row["batch_size"], row["padding"],
                            100 * row["busy_other_cpu_share"])  # fmt: skip
    return Interleaved(rows, spent, failed)


def _rows(pts: Mapping[tuple, Point], label: str, s: BenchmarkSettings) -> list[dict]:
    """A variant's rows in the settings' order, the batch-1 dynamic row written from the real-time rounds."""
    out = []
    for p in points(s) + ([OFFLINE_POINT] if s.offline else []):
        if (label, p) in pts:  # measured: every point but the one the real-time rounds stand for
            out.append(pts[(label, p)].result())
        elif p == SAME_AS_REALTIME and (label, REALTIME_POINT) in pts:
            out.append(pts[(label, REALTIME_POINT)].result("batch"))
    return out


def _point_key(row: Mapping) -> tuple:
    """What a speed-up pairs on: the point, where offline's batch size is each variant's own choice."""
    offline = row["scenario"] == OFFLINE_SCENARIO
    return row["scenario"], None if offline else row["batch_size"], row["padding"]


def add_speedups(
    rows: dict[str, list[dict]], baseline: str | None, base_rows: list[dict] | None = None
) -> None:
    """``speedup_vs_fp32`` and its interval on every row: per-round ratios to ``baseline``'s rows when it took
    part in the same rotation (paired), else the ratio of medians to ``base_rows`` (conservative interval)."""
    paired = baseline is not None and baseline in rows
    ref = rows[baseline] if paired else (base_rows or [])
    by_point = {_point_key(r): r for r in ref}
    for rs in rows.values():
        for row in rs:
            b = by_point.get(_point_key(row))
            if b is None:
                continue
            if paired:
                med, lo, hi, _ = median_interval(
                    paired_ratios(row["throughput_rounds"], b["throughput_rounds"])
                )
            else:
                med, lo, hi = unpaired_ratio(
                    (row["throughput"], row["throughput_ci_low"], row["throughput_ci_high"]),
                    (b["throughput"], b.get("throughput_ci_low", b["throughput"]),
                     b.get("throughput_ci_high", b["throughput"])),
                )  # fmt: skip
            row.update(speedup_vs_fp32=med, speedup_vs_fp32_ci_low=lo, speedup_vs_fp32_ci_high=hi,
                       speedup_paired=paired)  # fmt: skip


def run_scenarios(
    predictor: Predictor, kind: str, texts: list[str], s: BenchmarkSettings, progress: bool = True
) -> list[dict]:
    """Every scenario point of one predictor (its rounds back to back)."""
    result = run_interleaved({"variant": predictor}, kind, texts, s, progress)
    if "variant" in result.failed:
        raise RuntimeError(result.failed["variant"])
    return result.rows["variant"]


def realtime(
    predictor: Predictor, kind: str, texts: list[str], s: BenchmarkSettings, progress: bool = True
) -> dict:
    """Batch-1 latency over single requests drawn (seeded) from ``texts``."""
    return _single(predictor, kind, texts, s, "realtime", 1, "dynamic")


def batch(predictor: Predictor, kind: str, texts: list[str], batch_size: int, s: BenchmarkSettings,
          padding: str = "dynamic", progress: bool = True) -> dict:  # fmt: skip
    """Throughput at one batch size and padding."""
    return _single(predictor, kind, texts, s, "batch", batch_size, padding)


def _single(predictor, kind, texts, s, scenario, batch_size, padding) -> dict:
    pt = Point(predictor, kind, texts, s, scenario, batch_size, padding)
    pt.warm_up()
    for _ in range(s.repeats):
        pt.run_round(calls_per_round(s, scenario, [pt.call_s]))  # the warm-up's mean call, then round 1's
    return pt.result()
