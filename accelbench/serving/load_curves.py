"""What-if curves around a plan, for notebook 05: latency against offered load (the hockey stick) for the
planned batching policy and for no batching, and the rate one machine sustains against its replica count.

Both come from the same simulation and search as the plan (``planner``), on the machine the curves were
measured on (its cores decide what is spare for the HTTP front's work).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .planner import PlanOptions, VariantSearch, measured_cores_of, shared_cores, spare_cores
from .simulate import capacity, simulate

LOAD_POINTS = 12
LOAD_SPAN = (0.1, 1.15)  # of the planned policy's sustainable rate: below it, through the bound, beyond
MAX_LOAD = 0.97  # of a policy's full-batch capacity: beyond it the simulated queue only grows


def _variant(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    return str(first.get("variant") or f"{first['model']}:{first['method']}")


def latency_vs_load(
    rows: pd.DataFrame, deployment: pd.Series, opts: PlanOptions, points: int = LOAD_POINTS
) -> pd.DataFrame:
    """Predicted p50/p99 against offered rate on one machine of the planned deployment (its replicas, threads
    and curve), for its batching policy and without batching (largest batch 1, no wait): one row per rate."""
    search = VariantSearch(rows, opts, measured_cores_of(rows))
    t, r = int(deployment["threads"]), int(deployment["replicas_per_machine"])
    k = int(deployment["curve_colocated"])
    svc = search.models[(t, k)]
    shared = shared_cores(opts.front_ms, spare_cores(search.measured_cores, t, r), r)
    top = float(deployment["sustainable_rate_per_machine"]) * LOAD_SPAN[1]
    out = []
    policies = {(int(deployment["max_batch_size"]), float(deployment["max_wait_ms"])), (1, 0.0)}
    for b, w in sorted(policies, reverse=True):
        cap = MAX_LOAD * capacity(svc, r, b, opts.front_ms / 1e3)
        for rate in np.linspace(LOAD_SPAN[0] * top / LOAD_SPAN[1], min(top, cap), points):
            sim = simulate(svc, float(rate), replicas=r, max_batch=b, max_wait_s=w / 1e3,
                           n_requests=opts.search_requests, seed=opts.seed, front_s=opts.front_ms / 1e3,
                           shared=shared)  # fmt: skip
            out.append({"variant": _variant(rows), "policy": f"{_variant(rows)}: batches up to {b}, wait {w:g} ms",
                        "max_batch_size": b, "max_wait_ms": w, "replicas": r, "threads": t,
                        "offered_rate": float(rate), "latency_ms_p50": sim.latency_ms_p50,
                        "latency_ms_p99": sim.latency_ms_p99, "utilisation": sim.utilisation,
                        "mean_batch": sim.mean_batch, "stable": sim.stable})  # fmt: skip
    return pd.DataFrame(out)


def throughput_vs_replicas(rows: pd.DataFrame, opts: PlanOptions, cores: int | None = None) -> pd.DataFrame:
    """The highest rate one machine of ``cores`` cores (default: the measuring machine's) sustains within the
    bound, against replicas per machine, per thread count; beyond the co-location measured the interference is
    the most co-located measurement's (``extrapolated``)."""
    search = VariantSearch(rows, opts, measured_cores_of(rows))
    cores = cores or search.measured_cores
    out = []
    for t in sorted({t for t, _ in search.models}):
        for r in range(1, max(1, cores // t) + 1):
            curve = search.curve_for(t, r)
            if curve is None:
                continue
            s = search.sustained(t, curve[0], r, spare_cores(cores, t, r))
            out.append({"variant": _variant(rows), "threads": t, "replicas": r, "cores_used": t * r,
                        "sustainable_rate": s.rate, "max_batch_size": s.batch, "max_wait_ms": s.wait_ms,
                        "extrapolated": curve[1], "reason": s.reason})  # fmt: skip
    return pd.DataFrame(out)
