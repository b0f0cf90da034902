"""Ray Data batch inference against in-process batches: the issue's target is at least 80% of in-process.

Both sides run the same variant at the same batch size on the same total threads: in-process, one ``Served``
with ``actors x threads`` intra-op threads predicts the rows batch by batch; on Ray Data, ``actors`` actors
with ``threads`` threads each (``accelbench batch-infer``). Ray's steady throughput (after the first batch
is back: actor start-up and model loading excluded, as the in-process side excludes its load) and its whole
wall-clock throughput are both reported. ``--sweep-actors 1,2,4`` adds throughput against the number of actors.

    python benchmarks/batch_infer_vs_inprocess.py --model minilm-sst2 --input data/sst2/train.tsv \\
        --rows 8192 --batch-size 32 --actors 2 --threads 1 --out results/batch_infer_vs_inprocess.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from accelbench.environment import collect_environment
from accelbench.serving.batch_infer import (
    BatchJob,
    default_text_column,
    run_batch_infer,
    throughput_vs_actors,
)
from accelbench.serving.batch_shards import read_shards
from accelbench.serving.ray_session import ray_session
from accelbench.serving.variant import VariantSpec, build_variant

TARGET = 0.8


def in_process(spec: VariantSpec, texts: list[str], batch_size: int) -> dict:
    served = build_variant(spec)
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        served.predict(texts[i : i + batch_size])
    seconds = time.perf_counter() - start
    served.close()
    return {"rows": len(texts), "seconds": round(seconds, 3), "rows_per_s": round(len(texts) / seconds, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="sst2")
    p.add_argument("--model", default="minilm-sst2")
    p.add_argument("--method", default="fp32")
    p.add_argument("--input", type=Path, default=Path("data/sst2/train.tsv"))
    p.add_argument("--text-column")
    p.add_argument("--rows", type=int, default=8192)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="threads per actor")
    p.add_argument("--cpus-per-actor", type=float)
    p.add_argument("--sweep-actors", help="e.g. 1,2,4: throughput against the number of actors too")
    p.add_argument("--out", type=Path, default=Path("results/batch_infer_vs_inprocess.json"))
    p.add_argument("--output", type=Path, help="keep Ray Data's predictions here (default: a temporary file)")
    p.add_argument("--shard-rows", type=int, help="rows per resumable shard (default: an eighth of the rows)")
    a = p.parse_args()

    column = a.text_column or default_text_column(a.task)
    texts = read_shards(a.input, column, None, a.rows, limit=a.rows)[0]["text"].tolist()
    total_threads = a.actors * a.threads
    inproc = in_process(VariantSpec(a.task, a.model, a.method, threads=total_threads), texts, a.batch_size)
    print(f"in-process: {inproc['rows_per_s']} rows/s ({total_threads} threads, batch {a.batch_size})")

    spec = VariantSpec(a.task, a.model, a.method, threads=a.threads)
    with tempfile.TemporaryDirectory() as tmp, ray_session(num_cpus=os.cpu_count()):
        job = BatchJob(input=a.input, output=a.output or Path(tmp) / "out.jsonl", spec=spec, text_column=column,
                       batch_size=a.batch_size, actors=a.actors, cpus_per_actor=a.cpus_per_actor,
                       shard_rows=a.shard_rows or max(a.batch_size, a.rows // 8), limit=a.rows, resume=False)  # fmt: skip
        ray_stats = run_batch_infer(job, progress=False)
        sweep = None
        if a.sweep_actors:
            counts = [int(x) for x in a.sweep_actors.split(",")]
            sweep = [
                {k: s[k] for k in ("actors", "rows_per_s", "steady_rows_per_s", "seconds", "cpus_per_actor")}
                for s in throughput_vs_actors(job, counts, workdir=Path(tmp))
            ]
    steady = ray_stats["steady_rows_per_s"] or ray_stats["rows_per_s"]
    ratio = steady / inproc["rows_per_s"]
    result = {
        "variant": spec.label, "task": a.task, "rows": len(texts), "batch_size": a.batch_size,
        "actors": a.actors, "threads_per_actor": a.threads, "total_threads": total_threads,
        "in_process": inproc,
        "ray_data": {k: ray_stats[k] for k in ("rows_per_s", "steady_rows_per_s", "seconds", "total_seconds",
                                                "cpus_per_actor", "ray")},
        "output": str(a.output) if a.output else None, "rows_written": ray_stats.get("rows_out"), "verified": ray_stats.get("verified"),
        "ratio_steady": round(ratio, 3),
        "ratio_wall": round(ray_stats["rows_per_s"] / inproc["rows_per_s"], 3),
        "target": TARGET, "meets_target": ratio >= TARGET,
        "throughput_vs_actors": sweep,
        "load_average": os.getloadavg(),
        "environment": collect_environment(),
    }  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(
        f"ray data: {steady} rows/s steady, {ray_stats['rows_per_s']} rows/s wall ({a.actors} x {a.threads}); "
        f"{ratio:.0%} of in-process (target {TARGET:.0%}): {'met' if ratio >= TARGET else 'NOT met'}; {a.out}"
    )
    if sweep:
        for s in sweep:
            print(f"  {s['actors']} actor(s): {s['steady_rows_per_s']} rows/s steady, {s['rows_per_s']} wall")


if __name__ == "__main__":
    main()
