"""The load generator: open-loop Poisson traffic (or closed-loop workers) against ``POST /predict``.

Open loop is what a public endpoint sees: requests arrive on their own schedule whether or not the server keeps
up. Each request has a scheduled time from a seeded Poisson schedule and its latency is measured from *that*
time, so a server (or a generator) that falls behind shows its queueing in the latencies instead of hiding it
by sending later (no coordinated omission). How late each send actually left is recorded as *send lag*: when it
grows, the generator is near its own ceiling and says so. Closed loop (``concurrency`` workers, each sending
when its previous request answered) measures throughput at a fixed number of outstanding requests.

Every run is bounded: sends stop at ``duration``, outstanding replies get a grace period, and whatever did not
come back is counted as a timeout, so ``sent == ok + 4xx + rejected + 5xx + timeouts + connection errors``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import numpy as np
import psutil

from ..exceptions import ConfigError
from .schedule import DEFAULT_SEED, poisson_schedule
from .validity import (
    DEFAULT_MIN_DURATION_S,
    DEFAULT_MIN_QUERIES,
    ValidityRules,
    check_validity,
    percentile_interval,
)

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_DURATION_S = 10.0
DEFAULT_N_TEXTS = 256
DEFAULT_TEXTS_PER_REQUEST = 1
DEFAULT_CONNECTIONS = 1024  # more than any laptop server keeps in flight: the pool never delays a send
GRACE_S = 10.0  # after the last send, replies get this long (plus the p99 bound) before counting as timeouts
START_DELAY_S = 0.05  # the schedule starts this long after the loop is ready
# warn when the p99 send lag exceeds max(LAG_WARN_MS, LAG_WARN_FRACTION x the mean interval); asyncio timers
# wake up to ~1 ms late even on an idle machine (epoll's millisecond timeouts), so 1 ms would always warn
LAG_WARN_MS = 2.0
LAG_WARN_FRACTION = 0.01
HEALTH_TIMEOUT_S = 5.0
PERCENTILES = (0.5, 0.9, 0.99)
FIND_PEAK_STEPS = 8  # runs, bracketing included
FIND_PEAK_PRECISION = 0.05  # stop bisecting when the bracket's ends are within 5%
CEILING_RATES = (50.0, 250.0, 500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0)
CEILING_DURATION_S = 2.0
CEILING_LAG_MS = 5.0  # p99 send lag allowed at the ceiling: 5% of a 100 ms bound ...
CEILING_LAG_FACTOR = 3.0  # ... or 3x the lag at the lowest rate, on a machine whose floor is higher
FALLBACK_TEXTS = ["a short sentence about the length of a review, sent when no task is known ."]

TIMEOUT, CONNECTION_ERROR = -1, -2  # status codes for requests that got no HTTP answer
OUTCOMES = ("ok", "client_error", "rejected", "server_error", "timeout", "connection_error")


@dataclass
class LoadConfig:
    """One load test. Open loop when ``rate`` is set, closed loop when ``concurrency`` is set (one of them)."""

    url: str = DEFAULT_URL
    rate: float | None = None  # requests per second (Poisson)
    duration: float = DEFAULT_DURATION_S  # seconds of measured sending
    concurrency: int | None = None  # closed-loop workers
    texts_per_request: int = DEFAULT_TEXTS_PER_REQUEST
    seed: int = DEFAULT_SEED
    p99_ms: float | None = None
    warmup_s: float = 0.0  # sent before the measured window, at the same rate, not counted
    connections: int = DEFAULT_CONNECTIONS  # at most this many requests in flight (1: a coordinated sender)
    grace_s: float = GRACE_S
    min_duration_s: float = DEFAULT_MIN_DURATION_S
    min_queries: int = DEFAULT_MIN_QUERIES
    early_stopping: bool = True

    def __post_init__(self) -> None:
        if self.rate is None and self.concurrency is None:
            raise ConfigError("no load given", "pass --rate R (open loop) or --concurrency C (closed loop)")
        if self.rate is not None and self.concurrency is not None:
            raise ConfigError(
                "both --rate and --concurrency given",
                "pass --rate (open loop) or --concurrency (closed loop)",
            )
        if self.rate is not None and not (self.rate > 0 and math.isfinite(self.rate)):
            raise ConfigError(
                f"rate must be positive, got {self.rate}", "pass --rate > 0 requests per second"
            )
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError(
                f"concurrency must be at least 1, got {self.concurrency}", "pass --concurrency >= 1"
            )
        if not (self.duration > 0 and math.isfinite(self.duration)):
            raise ConfigError(
                f"duration must be positive, got {self.duration} s", "pass --duration > 0 seconds"
            )
        if self.texts_per_request < 1:
            raise ConfigError(
                f"texts per request must be at least 1, got {self.texts_per_request}",
                "pass --texts-per-request >= 1",
            )
        if self.warmup_s < 0 or self.grace_s <= 0 or self.connections < 1:
            raise ConfigError(
                f"warmup {self.warmup_s} s, grace {self.grace_s} s, connections {self.connections}",
                "pass --warmup-s >= 0, a positive grace and --connections >= 1",
            )
        self.rules()  # checks the p99 bound

    def rules(self) -> ValidityRules:
        return ValidityRules(
            self.min_duration_s, self.min_queries, self.p99_ms, early_stopping=self.early_stopping
        )

    @property
    def mode(self) -> str:
        return "open" if self.rate is not None else "closed"

    @property
    def timeout_s(self) -> float:
        return self.grace_s + (self.p99_ms or 0.0) / 1000.0


@dataclass
class _Log:
    """Per-request times (perf_counter seconds) and HTTP status (0: no answer yet)."""

    sched: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    status: list[int] = field(default_factory=list)

    def add(self, t: float) -> int:
        self.sched.append(t)
        self.sent.append(math.nan)
        self.done.append(math.nan)
        self.status.append(0)
        return len(self.sched) - 1


def _item(t):
    """A payload item as the HTTP contract wants it: a text, or a sentence pair as an object."""
    return t if isinstance(t, str) else {"text": t[0], "text_pair": t[1]}


def bodies_for(texts: list, texts_per_request: int) -> list[bytes]:
    """Request bodies cycling through ``texts``, ``texts_per_request`` per request (pre-encoded: JSON costs
    the generator nothing while it sends). Request i uses ``bodies[i % len(bodies)]``."""
    if not texts:
        raise ConfigError("no texts to send", "pass a --task whose evaluation split has texts")
    n, k = len(texts), texts_per_request
    count = n // math.gcd(n, k)
    return [
        json.dumps({"inputs": [_item(texts[(i * k + j) % n]) for j in range(k)]}).encode()
        for i in range(count)
    ]


async def _drive(cfg: LoadConfig, bodies: list[bytes], log: _Log) -> tuple[float, float]:
    """Send the load; returns (start of the measured window, its end) in perf_counter seconds."""
    url = cfg.url.rstrip("/") + "/predict"
    slots = asyncio.Semaphore(cfg.connections)
    timeout = aiohttp.ClientTimeout(total=cfg.timeout_s)
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=cfg.connections, force_close=False)

    async def send(session: aiohttp.ClientSession, i: int) -> None:
        async with slots:  # waiting here is a late send: it shows as send lag
            log.sent[i] = time.perf_counter()
            try:
                async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as resp:
                    await resp.read()
                    log.status[i] = resp.status
            except asyncio.TimeoutError:
                log.status[i] = TIMEOUT
            except (aiohttp.ClientError, OSError):
                log.status[i] = CONNECTION_ERROR
            log.done[i] = time.perf_counter()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks: list[asyncio.Task] = []
        t0 = time.perf_counter() + START_DELAY_S
        start, end = t0 + cfg.warmup_s, t0 + cfg.warmup_s + cfg.duration
        if cfg.mode == "open":
            offsets = poisson_schedule(cfg.rate, cfg.warmup_s + cfg.duration, cfg.seed)
            for off in offsets:
                i = log.add(t0 + off)
                delay = log.sched[i] - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(session, i)))
        else:

            async def worker() -> None:
                while True:
                    now = time.perf_counter()
                    if now >= end:
                        return
                    await send(session, log.add(now))

            await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
            tasks = [asyncio.create_task(worker()) for _ in range(cfg.concurrency)]
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
        left = end + cfg.timeout_s - time.perf_counter()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, left))
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    for i, s in enumerate(log.status):
        if s == 0:  # never answered within the grace period: a timeout, whether sent or still waiting
            log.status[i] = TIMEOUT
    return start, end


def _run_loop(coro: Any) -> Any:
    """Run the load's event loop to the end. Where this thread already runs one (a Jupyter kernel), the load
    gets a thread of its own: an event loop cannot be nested."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _new_loop(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="loadgen") as pool:
        return pool.submit(_new_loop, coro).result()


def _new_loop(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _outcome(status: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "ok": (status >= 200) & (status < 300),
        "client_error": (status >= 400) & (status < 500),
        "rejected": status == 503,
        "server_error": ((status >= 500) & (status != 503)) | ((status >= 300) & (status < 400)),
        "timeout": status == TIMEOUT,
        "connection_error": status == CONNECTION_ERROR,
    }


def _ms_stats(values_s: np.ndarray) -> dict[str, Any]:
    """p50/p90/p99 (with 95% order-statistic intervals), mean and max, in ms; JSON-safe (None for unbounded)."""

    def ms(x: float) -> float | None:
        return round(x * 1000.0, 3) if math.isfinite(x) else None

    out: dict[str, Any] = {"n": int(len(values_s))}
    for q in PERCENTILES:
        v, lo, hi = percentile_interval(values_s, q)
        out[f"p{q * 100:g}"] = {"value": ms(v), "low": ms(lo), "high": ms(hi)}
    out["mean"] = ms(float(np.mean(values_s))) if len(values_s) else None
    out["max"] = ms(float(np.max(values_s))) if len(values_s) else None
    return out


def _cores() -> list[int] | None:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def run_load(cfg: LoadConfig, texts: list, ceiling: float | None = None) -> dict[str, Any]:
    """Run one load test against ``cfg.url`` with payloads from ``texts``; returns the report (a flat-ish dict)."""
    bodies = bodies_for(texts, cfg.texts_per_request)
    proc = psutil.Process()
    cpu0, wall0 = proc.cpu_times(), time.perf_counter()
    log = _Log()
    gc.collect()
    gc.disable()  # a cyclic-GC pass over thousands of live requests stalls sends by tens of ms; the run is bounded
    try:
        start, end = _run_loop(_drive(cfg, bodies, log))
    finally:
        gc.enable()
    cpu1, wall1 = proc.cpu_times(), time.perf_counter()
    sched, sent, done = (np.asarray(x, dtype=float) for x in (log.sched, log.sent, log.done))
    status = np.asarray(log.status, dtype=int)
    window = sched >= start
    warmup_sent = int((~window).sum())
    sched, sent, done, status = sched[window], sent[window], done[window], status[window]
    outcome = _outcome(status)
    counts = {"sent": int(len(status))} | {k: int(v.sum()) for k, v in outcome.items()}
    assert counts["sent"] == sum(counts[k] for k in OUTCOMES), f"requests lost in the accounting: {counts}"
    ok = outcome["ok"]
    latency = done[ok] - sched[ok]  # from the scheduled time: queueing anywhere counts
    lag = sent[np.isfinite(sent)] - sched[np.isfinite(sent)]
    last_send = float(np.nanmax(sent)) if np.isfinite(sent).any() else end
    last_ok = float(done[ok].max()) if ok.any() else end
    failed = counts["sent"] - counts["ok"]
    validity = check_validity(cfg.rules(), cfg.duration, latency, failed)
    mean_interval_ms = 1000.0 / cfg.rate if cfg.rate else None
    lag_stats = _ms_stats(lag)
    warnings = []
    lag_limit = max(LAG_WARN_MS, LAG_WARN_FRACTION * (mean_interval_ms or 0.0))
    if cfg.mode == "open" and (lag_stats["p99"]["value"] or 0.0) > lag_limit:
        warnings.append(
            f"the generator lagged: p99 send lag {lag_stats['p99']['value']:.2f} ms > {lag_limit:.2f} ms; "
            "latencies still count from the scheduled times, but the load was burstier than planned "
            "(pin the generator to its own core with --cpu, or lower --rate)"
        )
    if ceiling is not None and cfg.rate and cfg.rate > ceiling / 5:
        warnings.append(
            f"asked rate {cfg.rate:g}/s is above a fifth of the generator's ceiling ({ceiling:.0f}/s): "
            "the generator may distort the latencies"
        )
    report = {
        "url": cfg.url,
        "mode": cfg.mode,
        "config": asdict(cfg),
        "scheduled_rate": cfg.rate,
        "concurrency": cfg.concurrency,
        "duration_s": cfg.duration,
        "offered_rate": round(counts["sent"] / cfg.duration, 3),  # the Poisson count drawn, per second
        "achieved_send_rate": round(counts["sent"] / max(last_send - start, 1e-9), 3)
        if counts["sent"]
        else 0.0,
        "completed_rate": round(counts["ok"] / max(last_ok - start, 1e-9), 3) if counts["ok"] else 0.0,
        "counts": counts,
        "warmup_sent": warmup_sent,
        "latency_ms": _ms_stats(latency),
        "latency_from_send_ms": _ms_stats(done[ok] - sent[ok]),  # what a coordinated sender would report
        "send_lag_ms": lag_stats,
        "generator_cpu_percent": round(
            100.0 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / max(wall1 - wall0, 1e-9), 1
        ),
        "generator_cores": _cores(),
        "generator_ceiling": ceiling,
        "valid": validity.valid,
        "validity": validity.to_dict(),
        "warnings": warnings,
    }
    for w in warnings:
        logger.debug(w)  # in the report and its table; not logged twice
    return report


def format_report(r: dict[str, Any]) -> str:
    """The report as a short table for the terminal."""
    c, lat, lag = r["counts"], r["latency_ms"], r["send_lag_ms"]

    def iv(s: dict[str, Any]) -> str:
        def f(x: float | None) -> str:
            return "inf" if x is None else f"{x:.1f}"

        return f"{f(s['value'])} [{f(s['low'])}, {f(s['high'])}]"

    load = f"{r['scheduled_rate']:g}/s Poisson" if r["mode"] == "open" else f"{r['concurrency']} workers"
    lines = [
        f"load        {load} for {r['duration_s']:g} s against {r['url']}",
        f"rates       sent {r['achieved_send_rate']:.1f}/s, completed {r['completed_rate']:.1f}/s",
        "requests    " + ", ".join(f"{k} {v}" for k, v in c.items()),
        f"latency ms  p50 {iv(lat['p50'])}  p90 {iv(lat['p90'])}  p99 {iv(lat['p99'])}  max {lat['max']}",
        f"send lag ms p50 {lag['p50']['value']}  p99 {lag['p99']['value']}  max {lag['max']}",
        f"generator   {r['generator_cpu_percent']:.0f}% CPU on cores {r['generator_cores']}"
        + (f", ceiling {r['generator_ceiling']:.0f}/s" if r.get("generator_ceiling") else ""),
    ]
    v = r["validity"]
    est = v["early_stopping_estimate_ms"]
    lines.append(
        "early stop  p99 estimate " + (f"{est:.1f} ms" if est is not None else v["early_stopping_note"])
    )
    lines.append("result      " + ("VALID" if r["valid"] else "INVALID"))
    lines += [f"  - {reason}" for reason in v["reasons"]]
    lines += [f"warning: {w}" for w in r["warnings"]]
    return "\n".join(lines)
