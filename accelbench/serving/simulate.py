"""A discrete-event simulation of a batching inference server, and the queueing formulas that check it.

Requests arrive (Poisson at a rate, or any sorted arrival times) into one FIFO queue in front of ``replicas``
identical replicas. The dynamic batching rule is Triton's: when a replica is free, a batch is dispatched as
soon as ``max_batch`` requests wait or the oldest has waited ``max_wait_s``; the batch takes up to
``max_batch`` requests and goes to the free replica that has been busy least (so work spreads evenly). A batch
of ``b`` requests takes a service time drawn from a ``ServiceModel`` (measured curves: ``EmpiricalService``).
Each request's latency is its queueing plus batching wait plus the service of its batch.

Our own event loop (a heap of replica completions, a pointer into the sorted arrivals) instead of SimPy: the
planner runs hundreds of simulations, and a flat loop is several times faster than generator processes.
Service times come from inverse CDFs of pre-drawn uniforms, so two deployments compared with the same seed
see the same luck (common random numbers), which keeps the planner's comparisons steady.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_REQUESTS = 20_000
WARMUP_FRACTION = 0.02  # requests at the start (an empty system) left out of the statistics
QUANTILE_POINTS = 201  # resolution of an empirical service-time distribution
UNSTABLE_UTILISATION = 0.99
UNSTABLE_BACKLOG = 0.02  # a backlog at the last arrival above this share of the requests: the queue grows
MIN_UNSTABLE_BACKLOG = 50
WAKE_AFTER_S = 0.002  # idle longer than this, a replica's threads sleep (a few ms of spinning, then a futex)
MAX_STOLEN = 0.9  # share of a replica's time other work may take before the model calls the cores saturated


class ServiceModel(Protocol):
    """Service time of one batch: ``time(b, u)`` is the ``u``-quantile (0 < u < 1) for batch size ``b``."""

    max_batch: int

    def time(self, batch: int, u: float) -> float: ...

    def mean(self, batch: int) -> float: ...


@dataclass(frozen=True)
class ExponentialService:
    """Exponential service times with mean ``mean_s(b)``: the M/M/c model the closed forms describe."""

    mean_s: Callable[[int], float]
    max_batch: int = 1_000_000

    def time(self, batch: int, u: float) -> float:
        return -self.mean_s(batch) * math.log1p(-u)

    def mean(self, batch: int) -> float:
        return self.mean_s(batch)


@dataclass(frozen=True)
class DeterministicService:
    """A fixed service time ``time_s(b)`` per batch size (M/D/c)."""

    time_s: Callable[[int], float]
    max_batch: int = 1_000_000

    def time(self, batch: int, u: float) -> float:
        return self.time_s(batch)

    def mean(self, batch: int) -> float:
        return self.time_s(batch)


class EmpiricalService:
    """Service times sampled from measured ones, per batch size; sizes between two measured ones mix their
    quantile functions linearly in the batch size (a batch of 6 between 4 and 8 is halfway in every quantile).

    ``samples_s`` maps measured batch sizes to service times in seconds. Sizes above the largest measured
    one cannot be predicted and raise ``ValueError``; the caller limits ``max_batch``.
    """

    def __init__(self, samples_s: Mapping[int, Sequence[float]], scale: float = 1.0) -> None:
        sizes = sorted(int(b) for b, v in samples_s.items() if len(v))
        if not sizes:
            raise ValueError("no service-time samples")
        grid = np.linspace(0.0, 1.0, QUANTILE_POINTS)
        measured = {b: np.quantile(np.asarray(samples_s[b], dtype=float) * scale, grid) for b in sizes}
        self.measured_sizes = sizes
        self.max_batch = sizes[-1]
        self._table: list[list[float]] = [[]]  # index = batch size
        for b in range(1, self.max_batch + 1):
            if b in measured:
                q = measured[b]
            elif b < sizes[0]:  # below the smallest measured size: its times (an upper bound)
                q = measured[sizes[0]]
            else:
                hi = next(s for s in sizes if s > b)
                lo = max(s for s in sizes if s < b)
                w = (b - lo) / (hi - lo)
                q = (1 - w) * measured[lo] + w * measured[hi]
            self._table.append([float(x) for x in q])
        self._means = [0.0] + [float(np.mean(q)) for q in self._table[1:]]

    def time(self, batch: int, u: float) -> float:
        if batch > self.max_batch:
            raise ValueError(f"batch size {batch} above the largest measured ({self.max_batch})")
        q = self._table[batch]
        pos = u * (QUANTILE_POINTS - 1)
        i = int(pos)
        if i >= QUANTILE_POINTS - 1:
            return q[-1]
        return q[i] + (pos - i) * (q[i + 1] - q[i])

    def mean(self, batch: int) -> float:
        return self._means[batch]


@dataclass(frozen=True)
class WithOverhead:
    """A service model plus a fixed cost per batch (handing the batch to a replica process and back)."""

    base: ServiceModel
    per_batch_s: float

    @property
    def max_batch(self) -> int:
        return self.base.max_batch

    @property
    def measured_sizes(self) -> list[int]:
        return list(getattr(self.base, "measured_sizes", range(1, self.base.max_batch + 1)))

    def time(self, batch: int, u: float) -> float:
        return self.base.time(batch, u) + self.per_batch_s

    def mean(self, batch: int) -> float:
        return self.base.mean(batch) + self.per_batch_s


@dataclass(frozen=True)
class SharedCores:
    """Other work on the replicas' cores: the HTTP front parsing and answering (and, when a load test runs on
    the same machine, its generator) takes ``cpu_per_request_s`` of CPU per request. At rate λ that work keeps
    λ·cpu cores busy; what the ``spare_cores`` the replicas leave idle cannot absorb is taken from the
    replicas. A replica whose thread is preempted stalls at its next parallel barrier, so each of the
    ``replicas`` busy replicas loses its share in full, and its batches take ``1 / (1 - stolen)`` longer
    (the curves were measured with the cores to themselves)."""

    cpu_per_request_s: float
    spare_cores: float = 0.0
    replicas: int = 1
    base_cores: float = 0.0  # busy whatever the rate (an event loop's timers, a generator's scheduler)

    def stretch(self, rate: float) -> float:
        excess = max(0.0, self.base_cores + rate * self.cpu_per_request_s - self.spare_cores)
        return 1.0 / (1.0 - min(excess / max(self.replicas, 1), MAX_STOLEN))


@dataclass
class SimResult:
    """What one simulation predicts. Latencies are from arrival to the end of the request's batch."""

    requests: int
    offered_rate: float
    replicas: int
    max_batch: int
    max_wait_ms: float
    latency_ms_p50: float
    latency_ms_p90: float
    latency_ms_p99: float
    latency_ms_mean: float
    wait_ms_mean: float  # queueing + batching wait
    share_waited: float  # requests that waited at all (Erlang C's probability of waiting, without batching)
    service_ms_mean: float
    utilisation: float  # busy replica time over replicas x simulated time
    mean_batch: float
    max_queue: int
    throughput: float  # completed requests per second
    stable: bool
    service_stretch: float = 1.0  # service times scaled by other work on the cores (SharedCores)
    batch_ms_mean: float = math.nan  # mean service time of a batch (each batch once, as a server counts them)

    def to_dict(self) -> dict:
        return asdict(self)


def poisson_arrivals(rate: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s) of ``n`` requests of a Poisson process at ``rate`` per second."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    return np.cumsum(rng.exponential(1.0 / rate, n))


def capacity(service: ServiceModel, replicas: int, max_batch: int, front_s: float = 0.0) -> float:
    """The highest request rate the server can serve at all (every batch full at its best size, and the
    front's time per request), per second."""
    best = max(b / service.mean(b) for b in range(1, min(max_batch, service.max_batch) + 1))
    return min(replicas * best, 1.0 / front_s if front_s > 0 else math.inf)


def simulate(
    service: ServiceModel,
    rate: float | None = None,
    *,
    replicas: int = 1,
    max_batch: int = 1,
    max_wait_s: float = 0.0,
    n_requests: int = DEFAULT_REQUESTS,
    seed: int = 0,
    arrivals: np.ndarray | None = None,
    warmup: float = WARMUP_FRACTION,
    front_s: float = 0.0,
    shared: SharedCores | None = None,
    wake_s: float = 0.0,
    wake_after_s: float = WAKE_AFTER_S,
) -> SimResult:
    """Run the server on ``n_requests`` Poisson arrivals at ``rate`` (or on given ``arrivals``) and predict
    its latencies, utilisation and batches; bounded by the number of requests.

    ``front_s``: the HTTP front's time per request (parsing, routing, answering), a single FIFO server that
    every request passes before it reaches the batching queue; 0 leaves the front out. ``shared``: CPU work
    outside the replicas on their cores, which stretches every service time at this rate. ``wake_s``: the mean
    of an exponential delay a batch pays when its replica sat idle more than ``wake_after_s`` (its threads went
    to sleep and must be woken; back-to-back batches of a busy replica do not pay it)."""
    if replicas < 1 or max_batch < 1 or max_wait_s < 0:
        raise ValueError(f"replicas {replicas}, max_batch {max_batch}, max_wait_s {max_wait_s}: out of range")
    if max_batch > service.max_batch:
        raise ValueError(f"max_batch {max_batch} above the service model's largest size {service.max_batch}")
    rng = np.random.default_rng(seed)
    arr = poisson_arrivals(rate, n_requests, rng) if arrivals is None else np.asarray(arrivals, float)
    n = len(arr)
    if n == 0:
        raise ValueError("no requests to simulate")
    us = rng.random(n).tolist()  # one uniform per batch at most
    arr_span = float(arr[-1] - arr[0]) if n > 1 else 0.0
    offered = float(rate) if rate is not None else (n / arr_span if arr_span > 0 else 0.0)
    stretch = shared.stretch(offered) if shared is not None else 1.0
    arr_l = arr.tolist()
    if front_s > 0:  # Lindley's recursion through the front: when each request reaches the queue
        t_free = -math.inf
        for i, t in enumerate(arr_l):
            t_free = max(t, t_free) + front_s
            arr_l[i] = t_free
    inf = math.inf
    start = [0.0] * n
    finish = [0.0] * n
    busy_total = [0.0] * replicas
    free = list(range(replicas))
    idle_since = [-inf if wake_s else 0.0] * replicas  # when each replica finished its last batch
    running: list[tuple[float, int]] = []  # (finish time, replica)
    head = 0  # first request not yet dispatched
    nxt = 0  # next request to arrive
    k = 0  # batches dispatched
    max_queue = 0
    backlog_at_last = 0
    B, W, t_of = max_batch, max_wait_s, service.time
    while head < n:
        t_arr = arr_l[nxt] if nxt < n else inf
        t_done = running[0][0] if running else inf
        t_timer = arr_l[head] + W if (free and head < nxt) else inf
        t = min(t_arr, t_done, t_timer)
        if t == t_done:
            while running and running[0][0] <= t:
                end_r, r_done = heapq.heappop(running)
                free.append(r_done)
                idle_since[r_done] = end_r
        elif t == t_arr:
            nxt += 1
            if nxt == n:
                backlog_at_last = nxt - head
        while free and head < nxt and (nxt - head >= B or t >= arr_l[head] + W):
            b = min(B, nxt - head)
            r = min(free, key=busy_total.__getitem__) if len(free) > 1 else free[0]
            free.remove(r)
            s = t_of(b, us[k]) * stretch
            if wake_s and t - idle_since[r] > wake_after_s:
                s -= wake_s * math.log1p(-us[k])
            k += 1
            end = t + s
            for i in range(head, head + b):
                start[i] = t
                finish[i] = end
            busy_total[r] += s
            heapq.heappush(running, (end, r))
            head += b
        if nxt - head > max_queue:
            max_queue = nxt - head
    span = max(finish) - arr_l[0] if n > 1 else max(finish)
    first = min(int(n * warmup), n - 1)
    a, st, fi = arr[first:], np.asarray(start[first:]), np.asarray(finish[first:])
    lat = (fi - a) * 1e3
    util = sum(busy_total) / (replicas * span) if span > 0 else 0.0
    grows = backlog_at_last > max(MIN_UNSTABLE_BACKLOG, UNSTABLE_BACKLOG * n)
    return SimResult(
        requests=n,
        offered_rate=offered if offered > 0 else math.nan,
        replicas=replicas,
        max_batch=max_batch,
        max_wait_ms=max_wait_s * 1e3,
        latency_ms_p50=float(np.percentile(lat, 50)),
        latency_ms_p90=float(np.percentile(lat, 90)),
        latency_ms_p99=float(np.percentile(lat, 99)),
        latency_ms_mean=float(lat.mean()),
        wait_ms_mean=float((st - a).mean() * 1e3),
        share_waited=float(((st - a) > 0).mean()),
        service_ms_mean=float((fi - st).mean() * 1e3),
        utilisation=float(min(util, 1.0)),
        mean_batch=n / k,
        max_queue=int(max_queue),
        throughput=float(n / span) if span > 0 else math.nan,
        stable=bool(util < UNSTABLE_UTILISATION and not grows),
        service_stretch=stretch,
        batch_ms_mean=sum(busy_total) / k * 1e3 if k else math.nan,
    )


# --- closed forms (the simulator's checks, and the planner's quick bound) ------------------------------


def erlang_c(c: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``offered`` = λ/μ (Erlang C); 1 when
    the load reaches the servers. Computed through Erlang B's recursion, which stays stable for large c."""
    if offered >= c:
        return 1.0
    b = 1.0
    for k in range(1, c + 1):
        b = offered * b / (k + offered * b)
    rho = offered / c
    return b / (1.0 - rho * (1.0 - b))


def mmc_mean_wait(rate: float, mu: float, c: int) -> float:
    """Mean time in queue (s) of M/M/c: C(c, λ/μ) / (cμ - λ); inf when unstable."""
    if rate >= c * mu:
        return math.inf
    return erlang_c(c, rate / mu) / (c * mu - rate)


def mmc_wait_quantile(rate: float, mu: float, c: int, q: float) -> float:
    """The ``q`` quantile of the M/M/c waiting time: P(Wq > t) = C e^{-(cμ-λ)t}."""
    if rate >= c * mu:
        return math.inf
    pw = erlang_c(c, rate / mu)
    return 0.0 if pw <= 1 - q else math.log(pw / (1 - q)) / (c * mu - rate)


def mm1_mean_sojourn(rate: float, mu: float) -> float:
    """Mean time in system of M/M/1: 1/(μ - λ)."""
    return math.inf if rate >= mu else 1.0 / (mu - rate)


def mm1_sojourn_quantile(rate: float, mu: float, q: float) -> float:
    """The sojourn time of M/M/1 is exponential with rate μ - λ: its ``q`` quantile is -ln(1-q)/(μ-λ)."""
    return math.inf if rate >= mu else -math.log(1 - q) / (mu - rate)


def mg1_mean_wait(rate: float, mean_s: float, second_moment_s2: float) -> float:
    """Pollaczek–Khinchine: mean wait in M/G/1 is λ E[S²] / (2 (1 - ρ))."""
    rho = rate * mean_s
    return math.inf if rho >= 1 else rate * second_moment_s2 / (2 * (1 - rho))


def md1_mean_wait(rate: float, mu: float) -> float:
    """M/D/1 mean wait ρ / (2μ(1 - ρ)) (P-K with E[S²] = 1/μ²)."""
    return mg1_mean_wait(rate, 1.0 / mu, 1.0 / mu**2)


def load_curve(
    service: ServiceModel,
    rates: Sequence[float],
    *,
    replicas: int = 1,
    max_batch: int = 1,
    max_wait_s: float = 0.0,
    n_requests: int = DEFAULT_REQUESTS,
    seed: int = 0,
) -> list[dict]:
    """Predicted latency against offered load (the hockey stick): one simulation per rate, as flat rows."""
    return [
        simulate(service, r, replicas=replicas, max_batch=max_batch, max_wait_s=max_wait_s,
                 n_requests=n_requests, seed=seed).to_dict()
        for r in rates
    ]  # fmt: skip
