"""The capacity and cost planner: the cheapest deployment of each variant that meets a p99 bound.

For each variant with measured service curves it searches threads per replica, replicas per machine, the
batching policy (largest batch, longest wait) and the machine type, then the number of machines, by
simulation (``simulate``): first the highest rate one machine sustains within the bound (bisection on the
rate, every batching policy tried at each rate), then per machine type the machines the peak traffic needs
(traffic split evenly by a load balancer: one machine simulated at its share), then the cheapest choice is
checked again with more simulated requests (one more machine while it fails). Costs come from the price file.

Assumptions, stated in every plan: a machine type's cores are as fast as those the curves were measured on;
replicas beyond the co-location measured share cores as the most co-located measurement did (flagged
``extrapolated_colocation``); no replica's threads oversubscribe the machine's cores. With ``front_ms`` the
HTTP front is a FIFO stage every request passes, and its CPU time, beyond the cores the replicas leave idle,
is taken from the replicas (``SharedCores``: their batches stretch with the rate).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..exceptions import ConfigError
from .prices import Machine
from .simulate import (
    EmpiricalService,
    ServiceModel,
    SharedCores,
    WithOverhead,
    capacity,
    mmc_wait_quantile,
    simulate,
)
from .traffic import Traffic

logger = logging.getLogger(__name__)

DEFAULT_WAITS_MS = (0.0, 2.0, 5.0, 10.0, 20.0)
SEARCH_REQUESTS = 4_000  # per simulation while searching
FINAL_REQUESTS = 20_000  # per simulation when the chosen deployment is checked
LOW_RATE_SHARE = 0.02  # the lowest rate probed, as a share of the capacity
BISECTION_STEPS = 7  # rate precision: capacity / 2**7
MAX_VERIFY_TRIES = 4
# No policy is planned above this share of what its full batches can carry: near capacity the tail depends on
# the luck of a finite simulation (and of the real day), and a small drift in service time tips it over.
MAX_LOAD = 0.9
P99_TIE = 1.1  # policies whose p99 is within 10% of the lowest count as equally fast
MEMORY_HEADROOM = 0.8  # share of a machine's memory replicas may fill
P90_Z = 1.2816  # standard normal 90% quantile: a lognormal from p50 and p90 when samples are missing
SECONDS_PER_HOUR = 3600.0
VARIANT_KEYS = ("task", "model", "method")


@dataclass
class PlanOptions:
    """The bound and the search space. ``batch_sizes`` None: every measured size."""

    p99_ms: float
    batch_sizes: Sequence[int] | None = None
    waits_ms: Sequence[float] = DEFAULT_WAITS_MS
    search_requests: int = SEARCH_REQUESTS
    final_requests: int = FINAL_REQUESTS
    seed: int = 0
    min_machines: int = 1
    front_ms: float = 0.0  # the HTTP front's CPU time per request (0: not modelled)
    dispatch_ms: float = 0.0  # added to every batch: handing it to a replica process and back

    def __post_init__(self) -> None:
        if not self.p99_ms > 0:
            raise ConfigError(f"the p99 bound must be positive, got {self.p99_ms} ms", "pass --p99-ms 100")
        if self.batch_sizes is not None and any(int(b) < 1 for b in self.batch_sizes):
            raise ConfigError(f"batch sizes must be at least 1: {list(self.batch_sizes)}", "e.g. 1 2 4 8")
        if self.front_ms < 0 or self.dispatch_ms < 0:
            raise ConfigError("overheads must be 0 or more", "pass --front-ms and --dispatch-ms >= 0")
        if any(w < 0 for w in self.waits_ms):
            raise ConfigError(f"waits must be 0 or more: {list(self.waits_ms)}", "e.g. --waits-ms 0 2 5")


def _samples_ms(row: pd.Series) -> np.ndarray:
    """A row's service-time samples (ms), or a lognormal's quantiles fitted to its p50 and p90."""
    samples = row.get("service_ms_samples")
    if isinstance(samples, list | tuple | np.ndarray) and len(samples):
        return np.asarray(samples, dtype=float)
    p50 = float(row["service_ms_p50"])
    p90 = float(row.get("service_ms_p90", p50) or p50)
    sigma = max(math.log(max(p90, p50) / p50) / P90_Z, 0.0)
    z = np.linspace(-3, 3, 61)
    return p50 * np.exp(sigma * z)


def service_model(rows: pd.DataFrame) -> EmpiricalService:
    """The service-time model of one variant at one (threads, colocated): measured batch size -> samples."""
    return EmpiricalService({int(r["batch_size"]): _samples_ms(r) for _, r in rows.iterrows()}, scale=1e-3)


@dataclass
class _Sustained:
    rate: float  # highest per-machine rate found within the bound (0: none)
    batch: int = 1
    wait_ms: float = 0.0
    reason: str = ""


@dataclass
class VariantSearch:
    """The search for one variant: its curves per (threads, colocated), and cached sustainable rates."""

    rows: pd.DataFrame
    opts: PlanOptions
    measured_cores: int
    models: dict[tuple[int, int], ServiceModel] = field(default_factory=dict)
    cache: dict[tuple[int, int, int, float], _Sustained] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for (t, k), g in self.rows.groupby(["threads", "colocated"]):
            svc = service_model(g)
            self.models[(int(t), int(k))] = (
                WithOverhead(svc, self.opts.dispatch_ms / 1e3) if self.opts.dispatch_ms else svc
            )

    def curve_for(self, threads: int, replicas: int) -> tuple[int, bool] | None:
        """The co-location level whose curve stands for ``replicas`` replicas, and whether it extrapolates."""
        ks = sorted(k for t, k in self.models if t == threads and k * threads <= self.measured_cores)
        if not ks:
            return None
        return (replicas, False) if replicas in ks else (ks[-1], True)

    def policies(self, svc: ServiceModel) -> list[tuple[int, float]]:
        sizes = self.opts.batch_sizes or svc.measured_sizes
        waits = [w for w in self.opts.waits_ms if w < self.opts.p99_ms] or [0.0]
        return [(int(b), float(w)) for b in sorted(sizes, reverse=True) if b <= svc.max_batch for w in waits]

    def shared(self, replicas: int, spare_cores: float) -> SharedCores | None:
        """The front's CPU work on the machine's cores (none modelled without ``front_ms``)."""
        return shared_cores(self.opts.front_ms, spare_cores, replicas)

    def run(self, svc, rate, replicas, batch, wait_ms, n, spare_cores=0.0):
        return simulate(svc, rate, replicas=replicas, max_batch=batch, max_wait_s=wait_ms / 1e3,
                        n_requests=n, seed=self.opts.seed, front_s=self.opts.front_ms / 1e3,
                        shared=self.shared(replicas, spare_cores))  # fmt: skip

    def feasible(self, svc, rate, replicas, first=None, n=None, spare_cores=0.0):
        """The first batching policy meeting the bound at ``rate``, or None."""
        order = self.policies(svc)
        if first in order:
            order.remove(first)
            order.insert(0, first)
        for b, w in order:
            if MAX_LOAD * capacity(svc, replicas, b, self.opts.front_ms / 1e3) < rate:
                continue
            sim = self.run(svc, rate, replicas, b, w, n or self.opts.search_requests, spare_cores)
            if sim.stable and sim.latency_ms_p99 <= self.opts.p99_ms:
                return (b, w), sim
        return None

    def sustained(self, threads: int, k: int, replicas: int, spare_cores: float = 0.0) -> _Sustained:
        key = (threads, k, replicas, spare_cores)
        if key in self.cache:
            return self.cache[key]
        svc = self.models[(threads, k)]
        bound = self.opts.p99_ms
        if svc.time(1, 0.99) * 1e3 > bound:
            out = _Sustained(0.0, reason=f"one request alone takes {svc.time(1, 0.99) * 1e3:.1f} ms at p99")
        else:
            cap = MAX_LOAD * capacity(
                svc, replicas, max(b for b, _ in self.policies(svc)), self.opts.front_ms / 1e3
            )
            lo, hi, best = 0.0, cap, None
            probe = self.feasible(svc, LOW_RATE_SHARE * cap, replicas, spare_cores=spare_cores)
            if probe is None:
                out = _Sustained(0.0, reason="no batching policy meets the bound even at low load")
            else:
                lo, best = LOW_RATE_SHARE * cap, probe[0]
                for _ in range(BISECTION_STEPS):
                    mid = (lo + hi) / 2
                    found = self.feasible(svc, mid, replicas, first=best, spare_cores=spare_cores)
                    lo, hi, best = (mid, hi, found[0]) if found else (lo, mid, best)
                out = _Sustained(lo, *best)
        self.cache[key] = out
        return out


def measured_cores_of(rows: pd.DataFrame) -> int:
    if "env_cores_available" in rows.columns and rows["env_cores_available"].notna().any():
        return int(rows["env_cores_available"].max())
    return int(rows["threads"].max() * rows["colocated"].max())


def spare_cores(cores: int, threads: int, replicas: int) -> float:
    """Cores of a machine its replicas leave idle (the front's work goes there first)."""
    return float(max(0, cores - threads * replicas))


def shared_cores(
    cpu_per_request_ms: float, spare_cores: float, replicas: int, base_cores: float = 0.0
) -> SharedCores | None:
    """The CPU other processes spend on the replicas' cores (per request, and whatever the rate), or None."""
    if cpu_per_request_ms <= 0 and base_cores <= 0:
        return None
    return SharedCores(cpu_per_request_ms / 1e3, spare_cores, replicas, base_cores)


def _replica_limit(machine: Machine, threads: int, rows: pd.DataFrame) -> int:
    limit = machine.cores // threads
    if "replica_rss_mb" in rows.columns and rows["replica_rss_mb"].notna().any():
        rss = float(rows["replica_rss_mb"].max())
        limit = min(limit, int(machine.memory_gb * 1024 * MEMORY_HEADROOM // rss))
    return limit


def check_curves(rows: pd.DataFrame, opts: PlanOptions, variant: str) -> None:
    """A variant's curves must start at batch size 1 and reach every batch size the search asks for."""
    sizes = set(rows["batch_size"].astype(int))
    needed = {1, *(opts.batch_sizes or ())}
    missing = sorted(needed - sizes)
    if missing:
        raise ConfigError(
            f"the service curves of {variant} miss batch size(s) {missing} (measured: {sorted(sizes)})",
            f"measure them: accelbench curves ... --batch-sizes {' '.join(map(str, sorted(sizes | needed)))}",
        )


def _options(search: VariantSearch, machines: Sequence[Machine], peak: float) -> list[dict]:
    """Per machine type, its cheapest (threads, replicas): machines needed at the peak and the cost."""
    out = []
    threads = sorted({t for t, _ in search.models})
    for m in machines:
        best = None
        for t in threads:
            r_max = _replica_limit(m, t, search.rows)
            if r_max < 1:
                continue
            ks = {k for tt, k in search.models if tt == t}
            for r in sorted({k for k in ks if k <= r_max} | {r_max}):
                curve = search.curve_for(t, r)
                if curve is None:
                    continue
                s = search.sustained(t, curve[0], r, spare_cores(m.cores, t, r))
                if s.rate <= 0:
                    continue
                n = max(search.opts.min_machines, math.ceil(peak / s.rate))
                cand = {"machine": m, "threads": t, "replicas": r, "curve": curve, "sustained": s, "machines": n,
                        "cost_per_hour": n * m.price_per_hour}  # fmt: skip
                if best is None or (cand["cost_per_hour"], n, -s.rate) < (
                    best["cost_per_hour"],
                    best["machines"],
                    -best["sustained"].rate,
                ):
                    best = cand
        if best is not None:
            out.append(best)
    return sorted(out, key=lambda c: (c["cost_per_hour"], c["machines"]))


def policy_rate(
    svc: ServiceModel,
    replicas: int,
    batch: int,
    wait_ms: float,
    p99_ms: float,
    lo: float = 0.0,
    n_requests: int = SEARCH_REQUESTS,
    seed: int = 0,
    front_ms: float = 0.0,
    shared: SharedCores | None = None,
    wake_ms: float = 0.0,
) -> float:
    """The highest rate one batching policy on ``replicas`` replicas sustains within the p99 bound, by
    bisection below MAX_LOAD of its full-batch capacity (``lo``: a rate known to meet it). ``wake_ms``: the
    simulator's mean wake-up delay of an idle replica (``simulate``'s ``wake_s``), as calibrated."""
    hi = MAX_LOAD * capacity(svc, replicas, batch, front_ms / 1e3)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        sim = simulate(svc, mid, replicas=replicas, max_batch=batch, max_wait_s=wait_ms / 1e3,
                       n_requests=n_requests, seed=seed, front_s=front_ms / 1e3, shared=shared,
                       wake_s=wake_ms / 1e3)  # fmt: skip
        lo, hi = (mid, hi) if sim.stable and sim.latency_ms_p99 <= p99_ms else (lo, mid)
    return lo


def _verify(search: VariantSearch, choice: dict, peak: float) -> tuple | None:
    """Simulate the choice at its per-machine rate with more requests, adding machines while it fails.
    Among the batching policies that pass, those within P99_TIE of the lowest p99 tie, and the largest batch
    with the shortest wait wins (most headroom for the same latency); its own sustainable rate is found."""
    t, (k, _), r = choice["threads"], choice["curve"], choice["replicas"]
    svc = search.models[(t, k)]
    spare = spare_cores(choice["machine"].cores, t, r)
    n = choice["machines"]
    for _ in range(MAX_VERIFY_TRIES):
        rate = peak / n
        passing = []
        for b, w in search.policies(svc):
            if MAX_LOAD * capacity(svc, r, b, search.opts.front_ms / 1e3) < rate:
                continue
            sim = search.run(svc, rate, r, b, w, search.opts.final_requests, spare)
            if sim.stable and sim.latency_ms_p99 <= search.opts.p99_ms:
                passing.append(((b, w), sim))
        if passing:
            best = min(sim.latency_ms_p99 for _, sim in passing)
            policy, sim = min(
                passing, key=lambda x: (x[1].latency_ms_p99 > P99_TIE * best, -x[0][0], x[0][1])
            )
            o = search.opts
            shared = search.shared(r, spare)
            sustained = policy_rate(
                svc, r, *policy, o.p99_ms, rate, o.search_requests, o.seed, o.front_ms, shared
            )
            return n, policy, sim, sustained
        n += 1
    return None


def plan_variant(
    rows: pd.DataFrame, machines: Sequence[Machine], traffic: Traffic, opts: PlanOptions
) -> dict:
    """The cheapest deployment of one variant (a flat dict; ``feasible`` False with a ``reason`` if none)."""
    first = rows.iloc[0]
    row: dict = {k: first.get(k) for k in VARIANT_KEYS}
    row["variant"] = first.get("variant") or f"{first['model']}:{first['method']}"
    row.update({"p99_bound_ms": opts.p99_ms, "traffic_peak": traffic.peak, "traffic_mean": traffic.mean,
                "front_ms": opts.front_ms, "dispatch_ms": opts.dispatch_ms})  # fmt: skip
    check_curves(rows, opts, row["variant"])
    search = VariantSearch(rows, opts, measured_cores_of(rows))
    options = _options(search, machines, traffic.peak)
    if not options:
        reasons = {s.reason for s in search.cache.values() if s.reason} or {"no machine type fits a replica"}
        return {**row, "feasible": False, "reason": "; ".join(sorted(reasons))}
    choice = options[0]
    checked = _verify(search, choice, traffic.peak)
    if checked is None:
        return {**row, "feasible": False, "reason": "the chosen deployment failed its final check"}
    n, (b, w), sim, per_machine = checked
    m, t, r = choice["machine"], choice["threads"], choice["replicas"]
    hourly = [min(n, max(opts.min_machines, math.ceil(x / per_machine))) for x in traffic.rates]
    requests_per_day = sum(traffic.rates) * SECONDS_PER_HOUR
    cost_period = sum(hourly) * m.price_per_hour
    svc = search.models[(t, choice["curve"][0])]
    mu1 = 1.0 / svc.mean(1)
    erlang = mmc_wait_quantile(traffic.peak, mu1, n * r, 0.99)
    return {
        **row, "feasible": True, "reason": "",
        "machine": m.name, "machine_cores": m.cores, "machine_memory_gb": m.memory_gb, "machines": n,
        "replicas_per_machine": r, "threads": t, "max_batch_size": b, "max_wait_ms": w,
        "rate_per_machine": traffic.peak / n, "sustainable_rate_per_machine": per_machine,
        "predicted_p50_ms": sim.latency_ms_p50, "predicted_p90_ms": sim.latency_ms_p90,
        "predicted_p99_ms": sim.latency_ms_p99, "predicted_mean_ms": sim.latency_ms_mean, "utilisation": sim.utilisation, "mean_batch": sim.mean_batch,
        "max_queue": sim.max_queue, "cost_per_hour": n * m.price_per_hour,
        "cost_per_million": cost_period / requests_per_day * 1e6 if requests_per_day else math.nan,
        "cost_per_million_peak_sized": n * len(traffic.rates) * m.price_per_hour / requests_per_day * 1e6,
        "currency": m.currency, "price_source": m.source, "price_date": m.date,
        "machines_per_hour": hourly, "replicas_per_hour": [h * r for h in hourly],
        "curve_colocated": choice["curve"][0], "extrapolated_colocation": choice["curve"][1],
        "measured_cores": search.measured_cores,
        "erlang_c_p99_ms_unbatched": (erlang + svc.mean(1)) * 1e3 if math.isfinite(erlang) else math.inf,
        "options": [{"machine": o["machine"].name, "machines": o["machines"], "threads": o["threads"],
                     "replicas_per_machine": o["replicas"], "cost_per_hour": o["cost_per_hour"],
                     "sustainable_rate_per_machine": o["sustained"].rate} for o in options],
    }  # fmt: skip


def plan(
    curves: pd.DataFrame, traffic: Traffic, machines: Sequence[Machine], opts: PlanOptions
) -> pd.DataFrame:
    """One row per variant: its cheapest deployment meeting the bound (or why none does), cheapest first."""
    if curves.empty:
        raise ConfigError(
            "no service curves to plan from", "measure them first: accelbench curves --task ..."
        )
    if not machines:
        raise ConfigError("no machine types to choose from", "pass --prices configs/prices.yaml")
    rows = [
        plan_variant(g, machines, traffic, opts) for _, g in curves.groupby(list(VARIANT_KEYS), sort=True)
    ]
    df = pd.DataFrame(rows)
    if "cost_per_million" not in df.columns:
        df["cost_per_million"] = math.nan
    return df.sort_values(["feasible", "cost_per_million"], ascending=[False, True]).reset_index(drop=True)
