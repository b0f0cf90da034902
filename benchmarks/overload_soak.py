"""Overload soak: does the server shed load, keep its queue bounded and its memory flat under sustained 2x
overload? (issue 11: "at 2x overload the server sheds load with 503s, its queue stays bounded and its memory
flat over a 5-minute soak").

Starts ``accelbench serve`` on a loopback port, runs ``accelbench load`` open-loop at ``--rate`` for
``--duration`` seconds (bounded: it stops by itself), and meanwhile samples every ``--every`` seconds the
resident memory of the server's process tree (front and replicas) and the queue depth from ``/metrics``.
Reports the answered, rejected (503) and failed counts from the load report, the largest queue depth against
the server's bound, and the memory at the start and end of the soak's second half with its slope, then stops
the server.

    .venv/bin/python benchmarks/overload_soak.py --method fp32 --max-batch-size 16 --max-wait-ms 5 \\
        --rate 135 --duration 300 --out results/bench/soak.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

PORT = 8102
START_TIMEOUT_S = 300
QUEUE = re.compile(r"^accelbench_queue_depth\s+([0-9.eE+-]+)$", re.M)


def tree_rss_mb(proc: psutil.Process) -> float:
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def sample(url: str, server: psutil.Process, every: float, stop: threading.Event, out: list[dict]) -> None:
    t0 = time.perf_counter()
    with httpx.Client(timeout=2.0) as client:
        while not stop.wait(every):
            row = {"t_s": round(time.perf_counter() - t0, 1), "rss_mb": round(tree_rss_mb(server), 1)}
            try:
                m = QUEUE.search(client.get(f"{url}/metrics").text)
                row["queue_depth"] = float(m.group(1)) if m else None
            except httpx.HTTPError:
                row["queue_depth"] = None
            out.append(row)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="sst2")
    p.add_argument("--model", default="minilm-sst2")
    p.add_argument("--method", default="fp32")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-batch-size", type=int, default=16)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--rate", type=float, required=True, help="offered requests/s (2x the measured peak)")
    p.add_argument("--duration", type=float, default=300.0)
    p.add_argument("--every", type=float, default=5.0, help="seconds between memory and queue samples")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    url = f"http://127.0.0.1:{PORT}"
    a.out.parent.mkdir(parents=True, exist_ok=True)
    load_report = a.out.with_suffix(".load.json")
    serve = subprocess.Popen(
        [sys.executable, "-m", "accelbench", "serve", "--task", a.task, "--model", a.model, "--method", a.method,
         "--threads", str(a.threads), "--max-batch-size", str(a.max_batch_size), "--max-wait-ms",
         str(a.max_wait_ms), "--host", "127.0.0.1", "--port", str(PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if serve.poll() is not None:
                sys.exit(f"the server exited with {serve.returncode}")
            time.sleep(1)
        else:
            sys.exit("the server did not start in time")
        samples: list[dict] = []
        stop = threading.Event()
        sampler = threading.Thread(
            target=sample, args=(url, psutil.Process(serve.pid), a.every, stop, samples)
        )
        sampler.start()
        load = subprocess.run(
            [sys.executable, "-m", "accelbench", "load", "--url", url, "--rate", str(a.rate), "--duration",
             str(a.duration), "--out", str(load_report)],
            capture_output=True, text=True, timeout=a.duration + 300,
        )  # fmt: skip
        stop.set()
        sampler.join()
    finally:
        serve.terminate()
        serve.wait(30)
    report = json.loads(load_report.read_text()) if load_report.exists() else {"error": load.stderr[-2000:]}
    half = [s for s in samples if s["t_s"] >= a.duration / 2]
    rss = [s["rss_mb"] for s in half]
    slope = None
    if len(half) > 2:
        ts = [s["t_s"] for s in half]
        mt, mr = sum(ts) / len(ts), sum(rss) / len(rss)
        slope = sum((t - mt) * (r - mr) for t, r in zip(ts, rss, strict=True)) / sum(
            (t - mt) ** 2 for t in ts
        )
    depths = [s["queue_depth"] for s in samples if s.get("queue_depth") is not None]
    result = {
        "args": vars(a) | {"out": str(a.out)},
        "load": report,
        "samples": samples,
        "max_queue_depth": max(depths) if depths else None,
        "rss_mb_second_half": [rss[0], rss[-1]] if rss else None,
        "rss_slope_mb_per_min": round(60 * slope, 2) if slope is not None else None,
    }
    a.out.write_text(json.dumps(result, indent=1, default=str))
    print(load.stdout[-1500:])
    print(f"max queue depth {result['max_queue_depth']}; RSS over the second half {result['rss_mb_second_half']} MB,"
          f" slope {result['rss_slope_mb_per_min']} MB/min; written to {a.out}")  # fmt: skip


if __name__ == "__main__":
    main()
