"""Interleaved full passes of two variants over a task's evaluation split: the ratio of their throughputs.

A single 5 s benchmark point on a shared 2-core machine moves by 10-15% from run to run. Alternating full
passes of the two variants, several times, and taking the median of the per-pair ratios shows how much of
a speed-up survives that noise. Classification tasks only.

    python benchmarks/paired_passes.py --model minilm-sst2 --task sst2 --methods fp32 dynamic-int8 --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import time

from accelbench.compress import get_method
from accelbench.models import load_model
from accelbench.tasks import eval_split


def full_pass(predictor, batches: list[list[str]]) -> float:
    start = time.perf_counter()
    for b in batches:
        predictor.classify(b)
    return sum(map(len, batches)) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="minilm-sst2")
    p.add_argument("--task", default="sst2")
    p.add_argument("--methods", nargs=2, default=["fp32", "dynamic-int8"], metavar=("BASE", "OTHER"))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    loaded = load_model(args.model, progress=False)
    texts = list(eval_split(args.task)["text"])
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # length-sorted, dynamic padding
    batches = [
        [texts[i] for i in order[j : j + args.batch_size]] for j in range(0, len(order), args.batch_size)
    ]
    predictors = {m: get_method(m).apply(loaded).predictor for m in args.methods}
    for pred in predictors.values():
        full_pass(pred, batches[:3])  # warm-up
    runs: dict[str, list[float]] = {m: [] for m in args.methods}
    for _ in range(args.repeats):
        for m, pred in predictors.items():
            runs[m].append(full_pass(pred, batches))
    base, other = args.methods
    ratios = [o / b for o, b in zip(runs[other], runs[base], strict=True)]
    for m, v in runs.items():
        print(f"{m:>16}: samples/s per pass {[round(x) for x in v]}")
    print(f"{other} / {base} at batch {args.batch_size}: median {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x, {args.repeats} interleaved full passes each)")  # fmt: skip


if __name__ == "__main__":
    main()
