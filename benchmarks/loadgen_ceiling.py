"""The load generator's own ceiling: the highest Poisson rate it sustains against a no-op endpoint.

A load test is only as good as its generator: when the generator cannot send on time, the offered load is
burstier than planned. This script starts the no-op endpoint (FastAPI + uvicorn, like the real server) in a
subprocess on a loopback port, drives it at increasing rates with the same generator ``accelbench load`` uses,
and reports the highest rate with p99 send lag under the threshold (the issue's target: at least 5x the highest
rate a load test asks for). On 2 cores, pin the two apart; the machine's load average is recorded because other
work on the same cores lowers the ceiling.

    python benchmarks/loadgen_ceiling.py --generator-cpu 0 --server-cpu 1 --out results/loadgen_ceiling.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from accelbench.environment import collect_environment
from accelbench.serving.load_command import measure_ceiling, parse_cores
from accelbench.serving.loadgen import CEILING_DURATION_S, CEILING_LAG_FACTOR, CEILING_LAG_MS, CEILING_RATES
from accelbench.serving.noop import pin


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--rates", type=float, nargs="+", default=list(CEILING_RATES), help="tried in increasing order"
    )
    p.add_argument("--duration", type=float, default=CEILING_DURATION_S, help="seconds per rate")
    p.add_argument("--lag-ms", type=float, default=CEILING_LAG_MS, help="p99 send lag allowed at the ceiling")
    p.add_argument(
        "--lag-factor", type=float, default=CEILING_LAG_FACTOR, help="... or this x the lowest rate's"
    )
    p.add_argument("--generator-cpu", help="pin this process (the generator) to these cores, e.g. 0")
    p.add_argument("--server-cpu", help="pin the no-op endpoint to these cores, e.g. 1")
    p.add_argument("--out", default="results/loadgen_ceiling.json")
    args = p.parse_args()
    why = pin(parse_cores(args.generator_cpu))
    if why:
        print(f"generator: {why}")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    t0 = time.time()
    result = measure_ceiling(
        tuple(args.rates),
        args.duration,
        args.lag_ms,
        server_cpu=parse_cores(args.server_cpu),
        lag_factor=args.lag_factor,
        progress=lambda s: print(
            f"{s['rate']:>8.0f}/s  {'ok  ' if s['sustained'] else 'FAIL'}  p99 lag {s['p99_lag_ms']} ms "
            f"(limit {s['lag_limit_ms']})  "
            f"sent {s['achieved_send_rate']:.0f}/s  p99 latency {s['p99_latency_ms']} ms  CPU {s['cpu_percent']}%"
        ),
    )
    result |= {
        "generator_cpu": args.generator_cpu,
        "server_cpu": args.server_cpu,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "seconds": round(time.time() - t0, 1),
        "environment": collect_environment(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(
        f"generator ceiling: {result['ceiling_rate']}/s (p99 send lag under max({args.lag_ms} ms, "
        f"{args.lag_factor:g} x {result['floor_p99_lag_ms']} ms at the lowest rate)); written to {out}"
    )


if __name__ == "__main__":
    main()
