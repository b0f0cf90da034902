"""The planner checked against a real server: predicted against measured p99 at shares of the predicted peak.

For one server configuration (variant, replicas, threads, largest batch, wait) and the variant's service
curves at that configuration (threads, co-located replicas):
1. the model-alone prediction: the highest Poisson rate whose simulated p99 meets the bound;
2. calibration, in two short load runs at ``CALIBRATION_SHARES`` of that rate against the real server: the
   front's CPU per request (the slope of its CPU use between the two rates), the co-located load generator's
   (the same from its own CPU), what stays busy at rate 0, the per-batch hand-off to a replica (the p50
   left over after simulating the rest) and a wake-up delay (an exponential delay a batch pays when its
   replica sat idle, whose mean makes the simulated p50, p90 and p99 of the calibration runs fit the
   measured ones: an idle replica's threads sleep, and waking them on cores shared with the front and the
   generator costs the tail more than the mean, more at low rates than at high). Both CPU costs take cores
   from replicas that fill every core (``simulate.SharedCores``). Calibrating at a few requests/s instead
   is wrong by 5-10 ms: with long idle gaps the replica's threads sleep, and each request pays to wake
   them, which loaded servers never do;
3. the prediction with those overheads: the peak again, and at each of ``LEVELS`` times it the p99 of a
   load run as long as the measured ones (the median of ``WINDOWS`` simulated runs, with the 10-90% range
   that queueing alone spreads them over; a 30-s run's p99 is not the long-run p99), and the long-run p99;
4. open-loop Poisson load tests (``loadgen.run_load``) in ``repeats`` rounds, each round running every
   level once in an order rotated round by round (a slow phase of a shared machine then falls on all levels
   alike), run i of each level with seed ``seed + i``; the run with the median p99 stands for the level, and
   every run is kept. The server's own batch counters (/metrics) give each run's mean batch time against the
   curves' at the same batch size: a run whose batches took far longer than in the calibration ran on a
   slower machine than the curves were measured on, which no prediction from them can know.

``benchmarks/plan_validate.py`` is the command line; notebook 05 runs a short one when ``validate`` is set.
Run it on a quiet machine: other work on the cores moves the measured tail, not the predicted one.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from ..environment import collect_environment
from ..measure.trackers import usable_cpus
from .loadgen import LoadConfig, run_load
from .planner import FINAL_REQUESTS, policy_rate, service_model, shared_cores, spare_cores
from .simulate import WithOverhead, simulate
from .validate_report import read_validations, write_validation
from .variant import sample_items

LEVELS = (0.5, 0.8, 0.95)
WINDOWS = 20  # simulated load runs of the measured length per level: a run's predicted p99 and its spread
WINDOW_RANGE = (10, 90)  # percentiles of the simulated runs' p99 shown as the predicted range
CALIBRATION_SHARES = (0.2, 0.4)  # of the model-alone peak: warm replicas, little queueing, below the levels
MIN_CALIBRATION_RATE = 2.0
# Mean wake-up delay of a batch reaching an idle replica (simulate's wake_s), fitted to the calibration runs
WAKE_GRID_MS = tuple(0.5 * i for i in range(21))  # 0 to 10 ms; each with the hand-off its p50s leave
FIT_WINDOWS = 6  # simulated calibration runs per rate in the fit
HEALTH_TIMEOUT_S = 600.0
N_TEXTS = 256
VALIDATION_DIR = "validation"


@dataclass(frozen=True)
class ValidationSettings:
    replicas: int = 1
    threads: int = 1
    max_batch_size: int = 8
    max_wait_ms: float = 0.0
    p99_ms: float = 100.0
    duration_s: float = 30.0  # measured seconds of each load run
    warmup_s: float = 3.0
    calibration_s: float = 10.0
    repeats: int = 3
    seed: int = 0


def _get_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - a loopback URL
        return json.loads(r.read())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    task: str,
    model: str,
    method: str,
    s: ValidationSettings,
    config: str | None = None,
    log: Any = None,
    extra: Sequence[str] = (),
) -> tuple[subprocess.Popen, str]:
    """``accelbench serve`` for the configuration (and ``extra`` options) on a free loopback port; returns
    once /health says ok."""
    port = _free_port()
    cmd = [sys.executable, "-m", "accelbench", "serve", "--task", task, "--model", model, "--method", method,
           "--replicas", str(s.replicas), "--threads", str(s.threads), "--max-batch-size", str(s.max_batch_size),
           "--max-wait-ms", str(s.max_wait_ms), "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    cmd += (["--config", config] if config else []) + list(extra)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT if log is not None else None)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server for {model}:{method} exited with {proc.returncode}")
        try:
            if _get_json(f"{url}/health").get("status") == "ok":
                return proc, url
        except OSError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"the server did not become healthy within {HEALTH_TIMEOUT_S:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)  # graceful: in-flight requests finish
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def server_batches(url: str) -> dict[str, float] | None:
    """The server's batch counters from its /metrics (batches, items, seconds); None without them."""
    from prometheus_client.parser import text_string_to_metric_families

    names = {"accelbench_batch_seconds_count": "batches", "accelbench_batch_size_sum": "items",
             "accelbench_batch_seconds_sum": "seconds"}  # fmt: skip
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:  # noqa: S310 - a loopback URL
            text = r.read().decode()
        found = {names[x.name]: float(x.value) for f in text_string_to_metric_families(text)
                 for x in f.samples if x.name in names}  # fmt: skip
    except (OSError, ValueError):
        return None
    return found if len(found) == len(names) else None


def _batches_between(before: dict | None, after: dict | None) -> dict[str, float] | None:
    if before is None or after is None or after["batches"] <= before["batches"]:
        return None
    n = after["batches"] - before["batches"]
    return {"batches": n, "mean_batch": (after["items"] - before["items"]) / n,
            "batch_ms": (after["seconds"] - before["seconds"]) / n * 1e3}  # fmt: skip


def measure_p99(
    url: str, rate: float, duration_s: float, texts: list, s: ValidationSettings, seed: int
) -> dict:
    """One open-loop Poisson run at ``rate``: p50/p99 with intervals, counts, the generator's CPU share, and
    the server's batches in the run (mean size, mean time to a replica and back) when it counts them."""
    cfg = LoadConfig(url=url, rate=rate, duration=duration_s, p99_ms=s.p99_ms, warmup_s=s.warmup_s, seed=seed)
    before = server_batches(url)
    report = run_load(cfg, texts)
    server = _batches_between(before, server_batches(url))
    lat = report["latency_ms"]
    return {
        "measured_p50_ms": lat["p50"]["value"],
        "measured_p90_ms": lat["p90"]["value"],
        "measured_p99_ms": lat["p99"]["value"],
        "measured_p99_low_ms": lat["p99"]["low"],
        "measured_p99_high_ms": lat["p99"]["high"],
        "completed_rate": report["completed_rate"],
        "generator_cpu_percent": report.get("generator_cpu_percent"),
        "send_lag_max_ms": report["send_lag_ms"].get("max"),
        "measured_p99_from_send_ms": report["latency_from_send_ms"]["p99"]["value"],
        "counts": report["counts"],
        "valid": report["valid"],
        "warnings": report["warnings"],
        "server_batches": server,
    }


def _median_run(runs: list[dict]) -> dict:
    ranked = sorted(
        runs, key=lambda r: r["measured_p99_ms"] if r["measured_p99_ms"] is not None else math.inf
    )
    median = ranked[(len(ranked) - 1) // 2]
    return {**median, "runs": runs, "run_p99_ms": [r["measured_p99_ms"] for r in runs]}


def measure_level(url: str, rate: float, s: ValidationSettings, texts: list) -> dict:
    """``repeats`` load runs at one rate, each with its own seed; the run with the median p99 stands."""
    return measure_levels(url, [rate], s, texts)[0]


def measure_levels(url: str, rates: Sequence[float], s: ValidationSettings, texts: list,
                   progress: Any = None) -> list[dict]:  # fmt: skip
    """``repeats`` rounds of one run per rate, the order rotated each round; run i of every rate has seed
    ``seed + i``. Per rate: the run with the median p99, with every run kept."""
    runs: list[list[dict]] = [[] for _ in rates]
    n = len(rates)
    for i in range(s.repeats):
        for j in ((i + k) % n for k in range(n)):
            runs[j].append(measure_p99(url, rates[j], s.duration_s, texts, s, s.seed + i))
            if progress is not None:
                progress(
                    f"  round {i + 1}/{s.repeats}: {rates[j]:.1f}/s  p99 {runs[j][-1]['measured_p99_ms']} ms"
                )
    return [_median_run(r) for r in runs]


def batch_vs_curves(svc, run: dict) -> float | None:
    """A run's mean batch time at the server (to a replica and back) over the curves' mean at the same mean
    batch size (linear between sizes): about constant while the machine runs as fast as when the curves
    were measured, plus the hop and what other work on the cores takes."""
    b = (run.get("server_batches") or {}).get("mean_batch")
    if not b:
        return None
    lo = max(1, min(svc.max_batch, int(b)))
    hi = min(svc.max_batch, lo + 1)
    w = min(1.0, b - lo) if hi > lo else 0.0
    curve_ms = ((1 - w) * svc.mean(lo) + w * svc.mean(hi)) * 1e3
    return run["server_batches"]["batch_ms"] / curve_ms if curve_ms > 0 else None


def _shared(s: ValidationSettings, cal: dict):
    spare = spare_cores(len(usable_cpus()), s.threads, s.replicas)
    return shared_cores(cal.get("shared_ms", 0.0), spare, s.replicas, cal.get("base_cores", 0.0))


def _simulate(svc, s: ValidationSettings, rate: float, cal: dict, n: int, seed: int | None = None,
              warmup: float | None = None):  # fmt: skip
    more = {} if warmup is None else {"warmup": warmup}
    return simulate(svc, rate, replicas=s.replicas, max_batch=s.max_batch_size, max_wait_s=s.max_wait_ms / 1e3,
                    n_requests=n, seed=s.seed if seed is None else seed, front_s=cal.get("front_ms", 0.0) / 1e3,
                    shared=_shared(s, cal), wake_s=cal.get("wake_ms", 0.0) / 1e3, **more)  # fmt: skip


def _runs_p99(svc, s: ValidationSettings, rate: float, cal: dict) -> list[float]:
    """The p99 of ``WINDOWS`` simulated load runs like the measured ones (warm-up left out), sorted."""
    span = s.duration_s + s.warmup_s
    n = max(50, round(rate * span))
    return sorted(_simulate(svc, s, rate, cal, n, seed=s.seed + 1000 + w, warmup=s.warmup_s / span).latency_ms_p99
                  for w in range(WINDOWS))  # fmt: skip


def _service(curves: pd.DataFrame, cal: dict):
    """The curves' service model with the calibrated hand-off per batch."""
    svc = service_model(curves)
    dispatch_ms = cal.get("dispatch_ms", 0.0)
    return WithOverhead(svc, dispatch_ms / 1e3) if dispatch_ms else svc


def predict(curves: pd.DataFrame, s: ValidationSettings, cal: dict | None = None) -> tuple[float, list[dict]]:
    """The predicted peak rate and the prediction at each load level, with the serving overheads ``cal``
    (none: the model alone)."""
    cal = cal or {}
    svc = _service(curves, cal)
    # searched with the levels' service model and as many requests as their long-run check: batching keeps
    # the p99 nearly flat over a wide range of rates, where a short simulation's noise moves the peak 2x
    peak = policy_rate(svc, s.replicas, s.max_batch_size, s.max_wait_ms, s.p99_ms, seed=s.seed,
                       front_ms=cal.get("front_ms", 0.0), shared=_shared(s, cal),
                       wake_ms=cal.get("wake_ms", 0.0), n_requests=FINAL_REQUESTS)  # fmt: skip
    rows = []
    for level in LEVELS:
        sim = _simulate(svc, s, level * peak, cal, FINAL_REQUESTS)
        runs = _runs_p99(svc, s, level * peak, cal)
        low, high = (float(np.percentile(runs, q)) for q in WINDOW_RANGE)
        rows.append({"level": level, "rate": level * peak, "predicted_p50_ms": sim.latency_ms_p50,
                     "predicted_p99_ms": float(np.median(runs)), "predicted_p99_low_ms": low,
                     "predicted_p99_high_ms": high, "predicted_p99_long_ms": sim.latency_ms_p99,
                     "predicted_utilisation": sim.utilisation, "predicted_mean_batch": sim.mean_batch,
                     "predicted_batch_ms": sim.batch_ms_mean, "predicted_stretch": sim.service_stretch})  # fmt: skip
    return peak, rows


def _cpu_s(proc: psutil.Process | None) -> float:
    return float(sum(proc.cpu_times()[:2])) if proc is not None else 0.0


def calibrate(curves: pd.DataFrame, s: ValidationSettings, url: str, texts: list, pid: int | None,
              alone_peak: float) -> dict:  # fmt: skip
    """The serving stack's overheads from two short runs at ``CALIBRATION_SHARES`` of the model-alone peak
    (see the module's docstring). The front's CPU needs its process, known when the server was started here."""
    rates = tuple(max(MIN_CALIBRATION_RATE, share * alone_peak) for share in CALIBRATION_SHARES)
    front = psutil.Process(pid) if pid else None
    runs = []
    for rate in rates:
        cpu0, t0 = _cpu_s(front), time.monotonic()
        run = measure_p99(url, rate, s.calibration_s, texts, s, s.seed)
        runs.append((rate, (_cpu_s(front) - cpu0) / (time.monotonic() - t0), run))
    (r1, cpu1, _), (r2, cpu2, _) = runs
    front_ms = max(0.0, (cpu2 - cpu1) / (r2 - r1) * 1e3) if front else 0.0
    g1, g2 = ((run.get("generator_cpu_percent") or 0.0) / 100.0 for _, _, run in runs)
    generator_ms = max(0.0, (g2 - g1) / (r2 - r1) * 1e3)
    shared_ms = front_ms + generator_ms
    base_cores = max(0.0, cpu1 + g1 - r1 * shared_ms / 1e3)
    cal = {"front_ms": front_ms, "shared_ms": shared_ms, "base_cores": base_cores, "dispatch_ms": 0.0,
           "wake_ms": 0.0}  # fmt: skip
    measured = [(rate, run) for rate, _, run in runs]
    cs = ValidationSettings(**{**asdict(s), "duration_s": s.calibration_s})  # windows as long as these runs
    fits = []  # per wake-up delay on the grid: the hand-off its p50s leave, and the error of p50, p90, p99
    for w in WAKE_GRID_MS:
        d = _fit_dispatch(curves, cs, {**cal, "wake_ms": w}, measured)
        fits.append((_error(curves, cs, {**cal, "wake_ms": w, "dispatch_ms": d}, measured), w, d))
    _, cal["wake_ms"], cal["dispatch_ms"] = min(fits)
    svc = service_model(curves)
    return {"rate": r1, "rates": list(rates), "front_cpu_share": [cpu1, cpu2], "generator_cpu_share": [g1, g2],
            "measured_p50_ms": [run["measured_p50_ms"] for _, _, run in runs],
            "measured_p90_ms": [run.get("measured_p90_ms") for _, _, run in runs],
            "measured_p99_ms": [run["measured_p99_ms"] for _, _, run in runs], "generator_ms": generator_ms,
            **cal, "batch_vs_curves": [batch_vs_curves(svc, run) for _, _, run in runs]}  # fmt: skip


def _calibration_sims(curves: pd.DataFrame, s: ValidationSettings, cal: dict, rate: float) -> list:
    span = s.duration_s + s.warmup_s
    svc = _service(curves, cal)
    return [_simulate(svc, s, rate, cal, max(50, round(rate * span)), seed=s.seed + 2000 + w, warmup=s.warmup_s / span)
            for w in range(FIT_WINDOWS)]  # fmt: skip


def _fit_dispatch(curves: pd.DataFrame, s: ValidationSettings, cal: dict, measured: list) -> float:
    """The per-batch hand-off: the measured p50 left over after simulating everything else (mean of runs)."""
    gaps = []
    for rate, run in measured:
        sims = _calibration_sims(curves, s, {**cal, "dispatch_ms": 0.0}, rate)
        gaps.append((run["measured_p50_ms"] or 0.0) - float(np.median([x.latency_ms_p50 for x in sims])))
    return max(0.0, sum(gaps) / len(gaps))


def _error(curves: pd.DataFrame, s: ValidationSettings, cal: dict, measured: list) -> float:
    """Squared log errors of the simulated p50, p90 and p99 against the calibration runs' (runs as long)."""
    err = 0.0
    for rate, run in measured:
        sims = _calibration_sims(curves, s, cal, rate)
        for q in (50, 90, 99):
            key = f"measured_p{q}_ms"
            m = run.get(key)
            sim = float(np.median([getattr(x, f"latency_ms_p{q}") for x in sims]))
            if m and sim > 0:
                err += math.log(sim / m) ** 2
    return err


def validate(
    task: str,
    model: str,
    method: str,
    curves: pd.DataFrame,
    s: ValidationSettings,
    url: str | None = None,
    config: str | None = None,
    log: Any = None,
    progress: Any = print,
) -> dict:
    """Predict, start a server (unless ``url`` names a running one with this configuration), calibrate,
    load-test every level; the result as one dict (``markdown`` renders it, ``write_validation`` keeps it)."""
    alone_peak, alone_levels = predict(curves, s)
    proc, url = (None, url.rstrip("/")) if url else start_server(task, model, method, s, config, log)
    try:
        texts = sample_items(task, N_TEXTS)
        cal = calibrate(curves, s, url, texts, proc.pid if proc else None, alone_peak)
        peak, levels = predict(curves, s, cal)
        progress(f"{model}:{method}: front {cal['front_ms']:.2f} ms/request, generator {cal['generator_ms']:.2f} "
                 f"ms/request, dispatch {cal['dispatch_ms']:.2f} ms/batch, wake-up {cal['wake_ms']:.2f} ms; "
                 f"predicted peak {peak:.1f}/s "
                 f"({alone_peak:.1f}/s for the model alone)")  # fmt: skip
        svc = service_model(curves)
        measured = measure_levels(url, [r["rate"] for r in levels], s, texts, progress)
        for row, m in zip(levels, measured, strict=True):
            row.update(m, run_batch_vs_curves=[batch_vs_curves(svc, r) for r in m["runs"]])
            progress(f"  {row['level']:.0%}: {row['rate']:.1f}/s  predicted p99 {row['predicted_p99_ms']:.1f} ms  "
                     f"measured {row['measured_p99_ms']} ms (runs: {row['run_p99_ms']})")  # fmt: skip
    finally:
        if proc is not None:
            stop_server(proc)
    return {"variant": f"{model}:{method}", "task": task, "model": model, "method": method,
            "predicted_peak_rate": peak, "levels": levels, "calibration": cal, "windows": WINDOWS,
            "model_only": {"predicted_peak_rate": alone_peak, "levels": alone_levels}, "config": asdict(s),
            "url": url, "load_average": os.getloadavg(), "environment": collect_environment()}  # fmt: skip


def local_settings(
    deployment: pd.Series, p99_ms: float, duration_s: float, repeats: int = 1
) -> ValidationSettings:
    """The planned deployment's batching policy and threads on this machine: as many of its replicas per
    machine as this machine's cores hold (at least one)."""
    t = int(deployment["threads"])
    replicas = max(1, min(int(deployment["replicas_per_machine"]), len(usable_cpus()) // t))
    return ValidationSettings(replicas=replicas, threads=t, max_batch_size=int(deployment["max_batch_size"]),
                              max_wait_ms=float(deployment["max_wait_ms"]), p99_ms=p99_ms, duration_s=duration_s,
                              warmup_s=min(3.0, duration_s / 4), calibration_s=max(3.0, duration_s / 2),
                              repeats=repeats)  # fmt: skip


def curve_rows(df: pd.DataFrame, model: str, method: str, threads: int, replicas: int) -> pd.DataFrame:
    """One variant's curves at one configuration: ``threads`` per replica, ``replicas`` co-located."""
    if df.empty:
        return df
    keep = (df["model"] == model) & (df["method"] == method) & (df["threads"] == threads)
    return df[keep & (df["colocated"] == replicas)]


def validate_plan(
    deployments: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    p99_ms: float,
    duration_s: float,
    measure: Any,
    config: str | None = None,
    repeats: int = 1,
) -> pd.DataFrame:
    """Each feasible deployment of the plan validated on this machine (``local_settings``): its own service
    curves at its threads and replicas (``measure(method, threads, replicas)`` returns them; longer than a
    sweep's quick ones, since the tail they sample is what the p99 is predicted from), a server, the load
    levels. A variant whose validation fails is reported and the others go on. Returns
    ``read_validations(out_dir)``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for _, d in deployments[deployments["feasible"].astype(bool)].iterrows():
        s = local_settings(d, p99_ms, duration_s, repeats)
        variant, method = f"{d['model']}:{d['method']}", str(d["method"])
        rows = curve_rows(
            measure(method, s.threads, s.replicas), str(d["model"]), method, s.threads, s.replicas
        )
        if rows.empty or rows["batch_size"].max() < s.max_batch_size:
            print(f"{variant}: no service curves up to batch {s.max_batch_size}; not validated")
            continue
        log_path = out / f"serve-{method}.log"
        try:
            with log_path.open("w") as log:
                result = validate(str(d["task"]), str(d["model"]), method, rows, s, config=config, log=log)
        except Exception as e:  # noqa: BLE001 - one variant's failure must not stop the others
            print(f"{variant}: validation failed ({type(e).__name__}: {e}); see {log_path}")
            continue
        write_validation(out, result)
    return read_validations(out)
