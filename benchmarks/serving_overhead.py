"""What HTTP serving adds to one prediction: in-process batch-1 p50 against HTTP p50 at low load.

The same texts are timed twice: ``Served.predict([text])`` in this process, then one request at a time
(keep-alive, nothing else in flight) against ``accelbench serve`` started on a loopback port with one replica
of the same variant and thread count. ``--modes process thread`` also times the predictor in a thread of the
front (``--in-thread``), which shows what the replica's process boundary costs.

    .venv/bin/python benchmarks/serving_overhead.py --out results/serving_overhead.json
    .venv/bin/python benchmarks/serving_overhead.py --model /tmp/serve_tiny --n 100 --out /tmp/overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from accelbench.serving.variant import VariantSpec, build_variant, sample_items

START_TIMEOUT_S = 600


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": statistics.median(ms), "p90_ms": percentile(ms, 90), "p99_ms": percentile(ms, 99),
            "mean_ms": statistics.fmean(ms), "n": len(ms)}  # fmt: skip


def in_process(spec: VariantSpec, texts: list[str], warmup: int) -> list[float]:
    served = build_variant(spec)
    for t in texts[:warmup]:
        served.predict([t])
    times = []
    for t in texts:
        t0 = time.perf_counter()
        served.predict([t])
        times.append(time.perf_counter() - t0)
    served.close()
    return times


def over_http(args: argparse.Namespace, texts: list[str], in_thread: bool) -> list[float]:
    cmd = [sys.executable, "-m", "accelbench", "serve", "--task", args.task, "--model", args.model,
           "--method", args.method, "--threads", str(args.threads), "--replicas", "1", "--port", "0",
           "--max-batch-size", str(args.max_batch_size)] + (["--in-thread"] if in_thread else [])  # fmt: skip
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = _wait_url(proc, Path(log.name))
            with httpx.Client(base_url=url, timeout=60) as client:
                for t in texts[: args.warmup]:
                    client.post("/predict", json={"inputs": [t]}).raise_for_status()
                times = []
                for t in texts:
                    t0 = time.perf_counter()
                    r = client.post("/predict", json={"inputs": [t]})
                    times.append(time.perf_counter() - t0)
                    r.raise_for_status()
            return times
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_url(proc: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        m = re.search(r"serving \S+ at (http://\S+)", log.read_text(errors="replace"))
        if m:
            return m.group(1)
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    sys.exit("server did not start in time")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="sst2")
    p.add_argument("--model", default="minilm-sst2")
    p.add_argument("--method", default="fp32")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads, in-process and in the replica")
    p.add_argument("--n", type=int, default=300, help="timed predictions per side (real texts of the task)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--max-batch-size", type=int, default=8, help="the server's (sequential load: always 1)")
    p.add_argument("--modes", nargs="+", default=["process"], choices=["process", "thread"])
    p.add_argument("--out", required=True, help="JSON result file")
    args = p.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    pool = sample_items(args.task)
    texts = [pool[i % len(pool)] for i in range(args.n)]
    spec = VariantSpec(args.task, args.model, args.method, threads=args.threads)
    result = {"task": args.task, "model": args.model, "method": args.method, "threads": args.threads,
              "n": args.n, "cpus": os.cpu_count(), "python": platform.python_version(),
              "machine": platform.processor() or platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "in_process": summary(in_process(spec, texts, args.warmup)), "http": {}}  # fmt: skip
    base = result["in_process"]["p50_ms"]
    print(f"in-process batch-1 p50: {base:.3f} ms")
    for mode in args.modes:
        http = summary(over_http(args, texts, in_thread=mode == "thread"))
        http["overhead_p50_ms"] = http["p50_ms"] - base
        result["http"][mode] = http
        print(f"HTTP ({mode} replica) p50: {http['p50_ms']:.3f} ms, p90 {http['p90_ms']:.3f} ms: "
              f"+{http['overhead_p50_ms']:.3f} ms over in-process")  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
