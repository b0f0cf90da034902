"""Service curves: how long one batch takes, over batch sizes, threads per replica and co-located replicas.

The planner's simulator draws service times from these curves, so each point keeps its samples (up to
MAX_SAMPLES order statistics), not only a median. Batches are real texts of the task, drawn the same way in
every run (seeded by batch size and round). Co-location is measured as it happens in a server: R replica
processes, each with its own predictor and threads, time their batches at the same time on the shared cores;
only batches that ended while every replica was still timing are kept, so a replica that runs on alone does
not report interference-free times. A point is bounded by a time budget (with a minimum of rounds).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import math
import multiprocessing as mp
import os
import queue as _queue
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..environment import collect_environment
from ..exceptions import ConfigError, ModelError
from ..measure.stats import median_interval
from ..records import OK_STATUS, append_records, config_hash
from .curve_records import CURVES_FILE, curves_path
from .variant import VariantSpec, build_variant, sample_items

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32)
DEFAULT_THREADS = (1,)
DEFAULT_COLOCATED = (1, 2)
DEFAULT_BUDGET_S = 10.0  # per point (batch size), shared by its rounds
MIN_ROUNDS = 5
MAX_ROUNDS = 500
POOL_SIZE = 256  # texts the batches are drawn from
MAX_SAMPLES = 200  # stored per point: more are thinned to evenly spaced order statistics
START_TIMEOUT_S = 600.0  # a replica process must have built its variant by then
SAMPLE_DECIMALS = 3
LOG_TAIL_CHARS = 800  # of a failed replica's log, in its error


@dataclass(frozen=True)
class CurveSettings:
    """What to measure for each variant, and for how long."""

    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES
    threads: Sequence[int] = DEFAULT_THREADS
    colocated: Sequence[int] = DEFAULT_COLOCATED
    budget_s: float = DEFAULT_BUDGET_S
    min_rounds: int = MIN_ROUNDS
    max_rounds: int = MAX_ROUNDS
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_sizes", "threads", "colocated"):
            values = list(getattr(self, name))
            if not values or any(int(v) < 1 for v in values):
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} needs values of 1 or more, got {values}", f"e.g. {flag} 1 2")
        if not self.budget_s > 0:
            raise ConfigError(
                f"the time budget must be positive, got {self.budget_s} s", "pass --budget-s 10"
            )
        if not 1 <= self.min_rounds <= self.max_rounds:
            raise ConfigError(
                f"rounds: min {self.min_rounds}, max {self.max_rounds}", "1 <= min <= max rounds"
            )


def draw_batch(pool: Sequence, size: int, round_index: int, seed: int = 0) -> list:
    """The batch of round ``round_index`` for ``size``: the same texts in every run, process and variant."""
    rng = random.Random(f"{seed}:{size}:{round_index}")  # str seeds are hashed stably (sha512)
    return [pool[rng.randrange(len(pool))] for _ in range(size)]


def time_batches(served: Any, pool: Sequence, sizes: Sequence[int], s: CurveSettings) -> list[tuple]:
    """Rounds of one batch per size until the budget is spent (at least ``min_rounds``): a list of
    ``(size, start, end)`` on the system-wide monotonic clock, comparable across processes."""
    for b in sizes:  # warm-up: the first batch of a size allocates
        served.predict(draw_batch(pool, b, -1, s.seed))
    events = []
    deadline = time.monotonic() + s.budget_s * len(sizes)
    for k in range(s.max_rounds):
        if k >= s.min_rounds and time.monotonic() > deadline:
            break
        for b in sizes:
            batch = draw_batch(pool, b, k, s.seed)
            t0 = time.monotonic()
            served.predict(batch)
            events.append((b, t0, time.monotonic()))
    return events


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _replica(index: int, spec: VariantSpec, pool: list, sizes: list, s: CurveSettings, barrier, out) -> None:
    """One co-located replica process: build, wait for the others, time, report.

    Its stderr (library warnings, weight-loading bars) goes to a log file, whose tail an error carries: the
    parent's output, an executed notebook's included, keeps only the curves."""
    log = tempfile.NamedTemporaryFile(
        "w+", prefix=f"accelbench-replica-{index}-", suffix=".log", delete=False
    )
    os.dup2(log.fileno(), 2)
    try:
        served = build_variant(spec)
        for b in sizes:
            served.predict(draw_batch(pool, b, -1, s.seed))
        barrier.wait(timeout=START_TIMEOUT_S)
        events = time_batches(served, pool, sizes, s)
        out.put(("ok", index, events, _rss_mb(), served.method_label))
        os.unlink(log.name)  # kept only when the replica failed
    except Exception as e:  # noqa: BLE001 - the parent reports it and stops the others
        try:
            barrier.abort()
        finally:
            log.flush()
            tail = " ".join(Path(log.name).read_text(errors="replace")[-LOG_TAIL_CHARS:].split())
            out.put(("error", index, f"{type(e).__name__}: {e} (log {log.name}: ...{tail})", None, None))


def _colocated_events(spec: VariantSpec, pool: list, sizes: list, s: CurveSettings, replicas: int):
    """Run ``replicas`` replica processes at once; their events, the largest RSS and the method label."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(replicas), ctx.Queue()
    procs = [ctx.Process(target=_replica, args=(i, spec, pool, sizes, s, barrier, out), daemon=True)
             for i in range(replicas)]  # fmt: skip
    for p in procs:
        p.start()
    results, errors = [], []
    limit = time.monotonic() + START_TIMEOUT_S + s.budget_s * len(sizes) * 3 + 60
    try:
        while len(results) + len(errors) < replicas:
            try:
                status, i, events, rss, label = out.get(timeout=max(1.0, limit - time.monotonic()))
            except _queue.Empty:
                errors.append("timed out")
                break
            (results if status == "ok" else errors).append(
                (i, events, rss, label) if status == "ok" else events
            )
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    if errors:
        raise ModelError(f"a co-located replica of {spec.label} failed: {errors[0]}",
                         "check that the variant builds: accelbench serve ... with --replicas 1")  # fmt: skip
    return [r[1] for r in results], max(r[2] for r in results), results[0][3]


def _overlap(per_replica: list[list[tuple]]) -> dict[int, list[float]]:
    """Service times (ms) per size, of batches that ended before the first replica stopped timing."""
    end = min(max(e[2] for e in events) for events in per_replica)
    times: dict[int, list[float]] = {}
    for events in per_replica:
        for b, t0, t1 in events:
            if t1 <= end:
                times.setdefault(b, []).append((t1 - t0) * 1e3)
    return times


def _thin(values: Sequence[float]) -> list[float]:
    x = np.sort(np.asarray(values, dtype=float))
    if len(x) > MAX_SAMPLES:
        x = np.quantile(x, np.linspace(0, 1, MAX_SAMPLES))
    return [round(float(v), SAMPLE_DECIMALS) for v in x]


def point_record(times_ms: Sequence[float], batch: int, threads: int, colocated: int) -> dict[str, Any]:
    """The statistics of one point: median with its interval, p90/p99, mean, and the (thinned) samples."""
    if not len(times_ms):
        raise ModelError(f"no batch of size {batch} completed while every replica was timing",
                         "raise --budget-s so that each replica finishes its rounds")  # fmt: skip
    med, lo, hi, level = median_interval(times_ms)
    x = np.asarray(times_ms, dtype=float)
    return {
        "batch_size": batch, "threads": threads, "colocated": colocated, "n_samples": len(x),
        "service_ms_p50": med, "service_ms_p50_ci_low": lo, "service_ms_p50_ci_high": hi,
        "service_ms_ci_level": level, "service_ms_p90": float(np.percentile(x, 90)),
        "service_ms_p99": float(np.percentile(x, 99)), "service_ms_mean": float(x.mean()),
        "service_ms_std": float(x.std()), "items_per_s": batch / med * 1e3 if med > 0 else math.nan,
        "service_ms_samples": _thin(x),
    }  # fmt: skip


def measure_variant(spec: VariantSpec, s: CurveSettings, pool: list | None = None) -> list[dict[str, Any]]:
    """Every (threads, colocated, batch size) point of one variant, one flat record each. Co-location 1 runs
    in this process (its torch thread count is restored afterwards); more replicas run as processes."""
    import torch

    pool = pool if pool is not None else sample_items(spec.task, POOL_SIZE)
    if not pool:
        raise ConfigError(
            f"task {spec.task} has no evaluation texts to draw batches from", "check the task data"
        )
    sizes = sorted({int(b) for b in s.batch_sizes})
    env = collect_environment()
    cores = env.get("env_cores_available") or os.cpu_count() or 1
    records = []
    for t in s.threads:
        for k in s.colocated:
            if t * k > cores:
                logger.warning("%d replicas x %d threads oversubscribe the %d cores available", k, t, cores)
            one = VariantSpec(**{**asdict(spec), "threads": int(t)})
            if k == 1:
                before = torch.get_num_threads()
                try:
                    served = build_variant(one)
                    per_replica, rss, label = (
                        [time_batches(served, pool, sizes, s)],
                        _rss_mb(),
                        served.method_label,
                    )
                    served.close()
                finally:
                    torch.set_num_threads(before)
            else:
                per_replica, rss, label = _colocated_events(one, pool, sizes, s, int(k))
            times = _overlap(per_replica)
            stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            for b in sizes:
                point = point_record(times.get(b, []), b, int(t), int(k))
                ident = {"task": spec.task, "model": spec.model, "method": label, "batch_size": b, "threads": int(t),
                         "colocated": int(k), "max_length": spec.max_length, "seed": s.seed}  # fmt: skip
                records.append({
                    **ident, **point, "variant": f"{spec.model}:{label}", "key": config_hash(ident),
                    "status": OK_STATUS, "budget_s": s.budget_s, "replica_rss_mb": round(rss, 1),
                    "busy_load_1m": round(os.getloadavg()[0], 2), "timestamp": stamp, **env,
                })  # fmt: skip
    return records


def measure_curves(
    task: str,
    model: str,
    methods: Sequence[str],
    run_dir: str | os.PathLike[str],
    s: CurveSettings,
    **spec: Any,
) -> list[dict[str, Any]]:
    """Measure every method's curves and append them to ``<run_dir>/service_curves.jsonl`` as they finish."""
    pool = sample_items(task, POOL_SIZE)
    out = []
    for method in methods:
        records = measure_variant(VariantSpec(task, model, method, **spec), s, pool)
        append_records(curves_path(run_dir), records)
        out += records
        logger.info("%s: %d points -> %s", method, len(records), curves_path(run_dir))
    return out


def cmd_curves(args: argparse.Namespace) -> int:
    s = CurveSettings(args.batch_sizes, args.threads, args.colocated, args.budget_s, seed=args.seed)
    records = measure_curves(args.task, args.model, args.methods, args.run, s, config=args.config)
    for r in records:
        print(f"{r['variant']:40s} b={r['batch_size']:<3d} threads={r['threads']} colocated={r['colocated']} "
              f"p50 {r['service_ms_p50']:.2f} ms  p90 {r['service_ms_p90']:.2f} ms")  # fmt: skip
    print(f"wrote {len(records)} points to {curves_path(args.run)}")
    return 0


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    """``accelbench curves``: service time per batch over batch sizes, threads and co-located replicas."""
    p = sub.add_parser("curves", help="measure service curves (the planner's input)")
    p.add_argument("--task", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--methods", nargs="+", default=["fp32"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=list(DEFAULT_BATCH_SIZES))
    p.add_argument("--threads", type=int, nargs="+", default=list(DEFAULT_THREADS))
    p.add_argument("--colocated", type=int, nargs="+", default=list(DEFAULT_COLOCATED))
    p.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="seconds per point")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", help="a sweep YAML whose user tasks and models to register first")
    p.add_argument("--run", default="results/serving", help=f"folder of {CURVES_FILE}")
    p.set_defaults(fn=cmd_curves)
