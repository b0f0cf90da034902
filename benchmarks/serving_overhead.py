"""What HTTP serving adds to one prediction: in-process batch-1 p50 against HTTP p50 at low load.

The same texts are timed in-process (``Served.predict([text])`` in this process) and over HTTP (one request at
a time, keep-alive, nothing else in flight) against ``accelbench serve`` started on a loopback port with one
replica of the same variant and thread count. The two take turns in ``--rounds`` rounds, so a slow phase of a
shared machine hits both alike; the overhead is the median of the per-round differences of p50s, with its
range. Two clients are timed: httpx (what a Python user would reach for) and the standard library's
http.client (the least a client can add), so the service's own share shows apart from the client's.

The server's /metrics splits the HTTP time in three: outside the request handler (the client, the TCP hop,
uvicorn's parsing), inside it (validation, queueing, JSON), and the replica hop (dispatch to answer, which
contains the prediction). ``--modes process thread`` also times the predictor in a thread of the front
(``--in-thread``): what the replica's process boundary costs.

    .venv/bin/python benchmarks/serving_overhead.py --out results/serving_overhead.json
    .venv/bin/python benchmarks/serving_overhead.py --model /tmp/serve_tiny --n 100 --out /tmp/overhead.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from accelbench.serving.validate import ValidationSettings, start_server, stop_server
from accelbench.serving.variant import VariantSpec, build_variant, sample_items

CLIENTS = ("httpx", "http.client")


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": statistics.median(ms), "p90_ms": percentile(ms, 90), "p99_ms": percentile(ms, 99),
            "mean_ms": statistics.fmean(ms), "n": len(ms)}  # fmt: skip


class StdlibClient:
    """Keep-alive POSTs with http.client: no client library between the benchmark and the socket."""

    def __init__(self, url: str):
        u = urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def post(self, body: dict) -> None:
        self.conn.request("POST", "/predict", json.dumps(body).encode(), {"Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")

    def close(self) -> None:
        self.conn.close()


def _metrics(client: httpx.Client) -> dict[str, float]:
    out = {}
    for line in client.get("/metrics").text.splitlines():
        m = re.match(r"accelbench_(request_latency|batch)_seconds_(sum|count)\s+(\S+)", line)
        if m:
            out[f"{m.group(1)}_{m.group(2)}"] = float(m.group(3))
    return out


def _start(args: argparse.Namespace, in_thread: bool, log: Path) -> tuple[subprocess.Popen, str]:
    s = ValidationSettings(replicas=1, threads=args.threads, max_batch_size=args.max_batch_size)
    with log.open("w") as out:
        try:
            return start_server(args.task, args.model, args.method, s, log=out,
                                extra=["--in-thread"] if in_thread else [])  # fmt: skip
        except RuntimeError as e:
            sys.exit(f"{e}:\n{log.read_text(errors='replace')[-2000:]}")


def _timed(fn, texts: list[str]) -> list[float]:
    times = []
    for t in texts:
        t0 = time.perf_counter()
        fn(t)
        times.append(time.perf_counter() - t0)
    return times


def measure_mode(args: argparse.Namespace, served, texts: list[str], in_thread: bool) -> dict:
    """In-process and both clients, round by round, against one server of this mode."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start(args, in_thread, Path(tmp) / "serve.log")
        try:
            with httpx.Client(base_url=url, timeout=60) as hx:
                std = StdlibClient(url)
                calls = {
                    "in_process": lambda t: served.predict([t]),
                    "httpx": lambda t: hx.post("/predict", json={"inputs": [t]}).raise_for_status(),
                    "http.client": lambda t: std.post({"inputs": [t]}),
                }
                for fn in calls.values():  # warm every path
                    _timed(fn, texts[: args.warmup])
                times: dict[str, list[float]] = {k: [] for k in calls}
                per_round: dict[str, list[float]] = {k: [] for k in calls}
                handler = {c: [0.0, 0.0, 0] for c in CLIENTS}  # request seconds, batch seconds, count
                chunk = max(1, len(texts) // args.rounds)
                for r in range(args.rounds):
                    part = texts[r * chunk : (r + 1) * chunk]
                    for name, fn in calls.items():
                        before = _metrics(hx) if name in CLIENTS else None
                        t = _timed(fn, part)
                        times[name] += t
                        per_round[name].append(statistics.median(t) * 1e3)
                        if before is not None:
                            after = _metrics(hx)
                            h = handler[name]
                            h[0] += after["request_latency_sum"] - before["request_latency_sum"]
                            h[1] += after["batch_sum"] - before["batch_sum"]
                            h[2] += int(after["batch_count"] - before["batch_count"])
                std.close()
        finally:
            stop_server(proc)
    base = per_round["in_process"]
    out = {"in_process": summary(times["in_process"]), "rounds": args.rounds, "clients": {}}
    for c in CLIENTS:
        diffs = sorted(h - b for h, b in zip(per_round[c], base, strict=True))
        client_s = summary(times[c])
        req_s, batch_s, n = handler[c]
        out["clients"][c] = {
            **client_s,
            "overhead_p50_ms": statistics.median(diffs),
            "overhead_p50_ms_range": [diffs[0], diffs[-1]],
            "overhead_p50_ms_pooled": client_s["p50_ms"] - out["in_process"]["p50_ms"],
            # means, from the server's own histograms: where the time between client and model goes
            "mean_ms_outside_handler": client_s["mean_ms"] - req_s / n * 1e3,
            "mean_ms_in_handler_outside_replica": (req_s - batch_s) / n * 1e3,
            "mean_ms_replica_hop_minus_in_process": batch_s / n * 1e3 - out["in_process"]["mean_ms"],
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="sst2")
    p.add_argument("--model", default="minilm-sst2")
    p.add_argument("--method", default="fp32")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads, in-process and in the replica")
    p.add_argument("--n", type=int, default=400, help="timed predictions per path (real texts of the task)")
    p.add_argument("--rounds", type=int, default=8, help="in-process and HTTP take turns this many times")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--max-batch-size", type=int, default=8, help="the server's (sequential load: always 1)")
    p.add_argument("--modes", nargs="+", default=["process"], choices=["process", "thread"])
    p.add_argument("--out", required=True, help="JSON result file")
    args = p.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    pool = sample_items(args.task)
    texts = [pool[i % len(pool)] for i in range(args.n)]
    served = build_variant(VariantSpec(args.task, args.model, args.method, threads=args.threads))
    result = {"task": args.task, "model": args.model, "method": args.method, "threads": args.threads,
              "n": args.n, "cpus": os.cpu_count(), "python": platform.python_version(),
              "machine": platform.processor() or platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "load_average": os.getloadavg(), "modes": {}}  # fmt: skip
    for mode in args.modes:
        r = measure_mode(args, served, texts, in_thread=mode == "thread")
        result["modes"][mode] = r
        print(f"{mode} replica: in-process batch-1 p50 {r['in_process']['p50_ms']:.2f} ms")
        for c, v in r["clients"].items():
            lo, hi = v["overhead_p50_ms_range"]
            print(f"  {c:11s} HTTP p50 {v['p50_ms']:.2f} ms: +{v['overhead_p50_ms']:.2f} ms per round "
                  f"(median of {args.rounds}; {lo:+.2f} to {hi:+.2f}); means: {v['mean_ms_outside_handler']:.2f} ms "
                  f"outside the handler, {v['mean_ms_in_handler_outside_replica']:.2f} ms in it, replica hop "
                  f"{v['mean_ms_replica_hop_minus_in_process']:+.2f} ms over in-process")  # fmt: skip
    served.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
