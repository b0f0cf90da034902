"""The ``accelbench load`` command and the searches built on single runs: the server's health, ``find_peak``
(the highest Poisson rate meeting a p99 bound) and ``measure_ceiling`` (the generator's own limit against a
no-op endpoint)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Any

from ..exceptions import ConfigError
from .loadgen import (
    CEILING_DURATION_S,
    CEILING_LAG_FACTOR,
    CEILING_LAG_MS,
    CEILING_RATES,
    DEFAULT_CONNECTIONS,
    DEFAULT_DURATION_S,
    DEFAULT_N_TEXTS,
    DEFAULT_TEXTS_PER_REQUEST,
    DEFAULT_URL,
    FALLBACK_TEXTS,
    FIND_PEAK_PRECISION,
    FIND_PEAK_STEPS,
    HEALTH_TIMEOUT_S,
    LoadConfig,
    _cores,
    format_report,
    run_load,
)
from .noop import NoopServer, pin
from .schedule import DEFAULT_SEED
from .validity import (
    DEFAULT_MIN_DURATION_S,
    DEFAULT_MIN_QUERIES,
)
from .variant import sample_items

logger = logging.getLogger(__name__)


def server_health(url: str, timeout: float = HEALTH_TIMEOUT_S) -> dict[str, Any]:
    """``GET /health`` of the server; waits up to ``timeout`` for one that is starting, then explains."""
    import urllib.error
    import urllib.request

    deadline, why = time.monotonic() + timeout, ""
    while True:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=min(timeout, 2.0)) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            why = f"it answered HTTP {e.code}" + (" (starting or draining)" if e.code == 503 else "")
        except (OSError, ValueError) as e:
            why = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
        if time.monotonic() > deadline:
            raise ConfigError(
                f"no server answers at {url}/health ({why})",
                "start one with `accelbench serve --task sst2 --model <model> --port 8000` (it prints its URL "
                "when ready) and pass that URL as --url",
            )
        time.sleep(0.2)


def find_peak(
    cfg: LoadConfig,
    texts: list,
    max_steps: int = FIND_PEAK_STEPS,
    precision: float = FIND_PEAK_PRECISION,
    ceiling: float | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """The highest Poisson rate whose run is VALID and meets ``cfg.p99_ms``: bracket by doubling or halving from
    ``cfg.rate``, then bisect until the bracket is within ``precision``; each step is a full run."""
    if cfg.p99_ms is None:
        raise ConfigError("--find-peak needs a latency bound", "pass --p99-ms L (milliseconds)")
    if cfg.mode != "open":
        raise ConfigError(
            "--find-peak searches a Poisson rate", "pass --rate (the first rate tried), not --concurrency"
        )
    steps: list[dict[str, Any]] = []

    def meets(rate: float) -> bool:
        r = run_load(replace(cfg, rate=rate), texts, ceiling)
        p99 = r["latency_ms"]["p99"]["value"]
        failed = r["counts"]["sent"] - r["counts"]["ok"]
        ok = failed == 0 and p99 is not None and p99 <= cfg.p99_ms  # the direction: below or above the knee
        step = {"rate": round(rate, 3), "meets_bound": ok, "valid": r["valid"], "p99_ms": p99}
        step |= {"completed_rate": r["completed_rate"], "failed": failed, "reasons": r["validity"]["reasons"]}
        steps.append(step)
        if progress:
            progress(step)
        return ok

    lo = hi = None
    rate = cfg.rate
    while len(steps) < max_steps and (lo is None or hi is None):
        if meets(rate):
            lo, rate = rate, rate * 2
        else:
            hi, rate = rate, rate / 2
    while lo is not None and hi is not None and len(steps) < max_steps and hi / lo - 1 > precision:
        mid = (lo + hi) / 2
        if meets(mid):
            lo = mid
        else:
            hi = mid
    good = [s for s in steps if s["meets_bound"] and s["valid"]]
    peak = max(good, key=lambda s: s["rate"]) if good else None
    note = (
        ""
        if peak
        else (
            "no rate met the bound"
            if lo is None
            else "rates met the bound but no run was VALID (raise --duration)"
        )
    )
    return {
        "p99_ms": cfg.p99_ms,
        "peak_rate": peak["rate"] if peak else None,
        "peak_completed_rate": peak["completed_rate"] if peak else None,
        "bracket": [lo, hi],
        "converged": lo is not None and hi is not None and hi / lo - 1 <= precision,
        "note": note,
        "steps": steps,
        "generator_ceiling": ceiling,
    }


def measure_ceiling(
    rates: tuple[float, ...] = CEILING_RATES,
    duration: float = CEILING_DURATION_S,
    lag_ms: float = CEILING_LAG_MS,
    server_cpu: list[int] | None = None,
    texts: list | None = None,
    progress: Any = None,
    lag_factor: float = CEILING_LAG_FACTOR,
) -> dict[str, Any]:
    """The generator's ceiling against a no-op endpoint (a subprocess on a loopback port, pinned to
    ``server_cpu`` if given): the highest of ``rates`` (tried in increasing order until one fails) with every
    request answered, sends keeping pace with the schedule (95% of the offered rate) and p99 send lag under
    ``max(lag_ms, lag_factor x the p99 lag at the lowest rate)``. The lowest rate's lag is the machine's floor
    (timer granularity, other processes on the same cores): the generator is the bottleneck when its lag rises
    well above that floor, not when a busy machine has a floor above ``lag_ms``."""
    steps: list[dict[str, Any]] = []
    ceiling = floor = None
    with NoopServer(cpu=server_cpu) as server:
        for rate in sorted(rates):
            cfg = LoadConfig(
                server.url, rate, duration, min_duration_s=0, min_queries=0, early_stopping=False
            )
            r = run_load(cfg, texts or FALLBACK_TEXTS)
            lag = r["send_lag_ms"]["p99"]["value"]
            floor = lag if floor is None else floor
            limit = max(lag_ms, lag_factor * (floor or 0.0))
            ok = lag is not None and lag <= limit and r["counts"]["ok"] == r["counts"]["sent"]
            ok = ok and r["achieved_send_rate"] >= 0.95 * r["offered_rate"]
            step = {"rate": rate, "sustained": ok, "p99_lag_ms": lag, "lag_limit_ms": round(limit, 3)}
            step |= {"offered_rate": r["offered_rate"], "achieved_send_rate": r["achieved_send_rate"]}
            step |= {
                "p99_latency_ms": r["latency_ms"]["p99"]["value"],
                "cpu_percent": r["generator_cpu_percent"],
            }
            steps.append(step)
            if progress:
                progress(step)
            if not ok:
                break
            ceiling = rate
    return {
        "ceiling_rate": ceiling,
        "lag_ms": lag_ms,
        "lag_factor": lag_factor,
        "floor_p99_lag_ms": floor,
        "duration_s": duration,
        "steps": steps,
        "cores": _cores(),
    }


def parse_cores(text: str | None) -> list[int] | None:
    """``"0"``, ``"0,1"`` or ``"0-3"`` -> core ids."""
    if not text:
        return None
    try:
        cores: list[int] = []
        for part in text.split(","):
            a, _, b = part.partition("-")
            cores += list(range(int(a), int(b or a) + 1))
    except ValueError:
        raise ConfigError(
            f"cannot read cores {text!r}", "pass e.g. --cpu 0, --cpu 0,1 or --cpu 0-3"
        ) from None
    return sorted(set(cores))


def _texts(task: str | None, n: int, url: str) -> tuple[list, str | None]:
    if task is None:
        task = server_health(url).get("task")
    if not task:
        logger.warning("the server names no task and --task is not given: sending a fixed English sentence")
        return FALLBACK_TEXTS, None
    return sample_items(task, n), task


def cmd_load(args: Any) -> int:
    """``accelbench load``: exit 0 when the run is VALID (or a peak was found), 1 when not, 2 on bad input."""
    ceiling_only = args.ceiling and args.rate is None and args.concurrency is None
    cfg = None
    if not ceiling_only:
        cfg = LoadConfig(
            args.url, args.rate, args.duration, args.concurrency, args.texts_per_request, args.seed,
            args.p99_ms, args.warmup_s, args.connections, min_duration_s=args.min_duration,
            min_queries=args.min_queries, early_stopping=not args.no_early_stopping,
        )  # fmt: skip
        if args.find_peak and args.p99_ms is None:
            raise ConfigError("--find-peak needs a latency bound", "pass --p99-ms L (milliseconds)")
        if args.n_texts < 1:
            raise ConfigError(f"--n-texts must be at least 1, got {args.n_texts}", "pass --n-texts >= 1")
    cores = parse_cores(args.cpu)
    why = pin(cores)
    pinning = why or (f"pinned to cores {cores}" if cores else "not pinned")
    print(f"generator: {pinning}; runs on cores {_cores()}")
    out: dict[str, Any] = {"cpu_pinning": pinning}
    ceiling = None
    if args.ceiling:
        print("measuring the generator's ceiling against a no-op endpoint ...")
        c = measure_ceiling(server_cpu=parse_cores(args.server_cpu), progress=lambda s: print(f"  {s}"))
        ceiling, out["ceiling"] = c["ceiling_rate"], c
        print(f"generator ceiling: {ceiling}/s (p99 send lag <= {c['lag_ms']} ms)")
    code = 0
    if cfg is not None:
        texts, task = _texts(args.task, args.n_texts, args.url)
        server_health(args.url)
        out["task"] = task
        if args.find_peak:
            peak = find_peak(cfg, texts, args.max_steps, ceiling=ceiling, progress=lambda s: print(f"  {s}"))
            out["find_peak"] = peak
            print(f"peak: {peak['peak_rate']}/s at p99 <= {cfg.p99_ms:g} ms {peak['note']}")
            code = 0 if peak["peak_rate"] else 1
        else:
            report = run_load(cfg, texts, ceiling)
            out["load"] = report
            print(format_report(report))
            code = 0 if report["valid"] else 1
    if args.out:
        from pathlib import Path

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        print(f"report: {args.out}")
    return code


def add_subcommand(sub: Any) -> None:
    """``accelbench load``: the load generator's command line."""
    p = sub.add_parser("load", help="open-loop (Poisson) or closed-loop load test of an accelbench server")
    p.add_argument("--url", default=DEFAULT_URL, help=f"the server (default {DEFAULT_URL})")
    p.add_argument("--rate", type=float, help="requests per second, Poisson arrivals (open loop)")
    p.add_argument(
        "--concurrency", type=int, help="workers, each sending when its last answered (closed loop)"
    )
    p.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, help="seconds of measured sending")
    p.add_argument("--task", help="payload texts from this task's evaluation split (default: the server's)")
    p.add_argument("--n-texts", type=int, default=DEFAULT_N_TEXTS, help="distinct texts, cycled")
    p.add_argument("--texts-per-request", type=int, default=DEFAULT_TEXTS_PER_REQUEST)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the Poisson schedule")
    p.add_argument("--p99-ms", type=float, help="latency bound at p99; the run is VALID only if met")
    p.add_argument("--find-peak", action="store_true", help="search the highest rate meeting --p99-ms")
    p.add_argument("--max-steps", type=int, default=FIND_PEAK_STEPS, help="runs --find-peak may make")
    p.add_argument("--min-duration", type=float, default=DEFAULT_MIN_DURATION_S, help="validity: seconds")
    p.add_argument("--min-queries", type=int, default=DEFAULT_MIN_QUERIES, help="validity: requests")
    p.add_argument(
        "--no-early-stopping", action="store_true", help="validity without LoadGen's early stopping"
    )
    p.add_argument("--warmup-s", type=float, default=0.0, help="seconds of unmeasured load first")
    p.add_argument("--connections", type=int, default=DEFAULT_CONNECTIONS, help="most requests in flight")
    p.add_argument("--cpu", help="pin the generator to these cores (e.g. 0, or 0-1)")
    p.add_argument("--ceiling", action="store_true", help="measure the generator's ceiling against a no-op")
    p.add_argument("--server-cpu", help="with --ceiling: pin the no-op endpoint to these cores (e.g. 1)")
    p.add_argument("--out", help="write the report as JSON here")
    p.set_defaults(fn=cmd_load)
