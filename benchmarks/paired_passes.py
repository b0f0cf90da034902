"""Interleaved full passes of several variants over a task's evaluation split: throughput ratios to the first.

A single 5 s benchmark point on a shared 2-core machine moves by 10-25% from run to run. Alternating full
passes of the variants, several times, and taking the median of the per-round ratios shows how much of a
speed-up survives that noise. Variants are ``model:method`` (a teacher and its students alike). For a
seq2seq task a pass is greedy generation of every source (``--max-new-tokens``), in sentences per second.

    python benchmarks/paired_passes.py --task sst2 --repeats 7 \
        --variants minilm-sst2:fp32 minilm-sst2:dynamic-int8 minilm-sst2-l3:fp32 minilm-sst2-l3:ort-dynamic-int8
    python benchmarks/paired_passes.py --task multi30k --repeats 5 \
        --variants t5-multi30k:fp32 t5-multi30k-half:fp32 t5-multi30k:ct2-int8 t5-multi30k-half:ct2-int8
    python benchmarks/paired_passes.py --config configs/distill.yaml --variants minilm-sst2:fp32 minilm-sst2-l2:fp32
"""

from __future__ import annotations

import argparse
import statistics
import time

from accelbench.config import use_config
from accelbench.methods import get_method
from accelbench.tasks import eval_split, get_task
from accelbench.training import load_model


def full_pass(predictor, batches: list[list[str]], seq2seq: bool = False, max_new_tokens: int = 64) -> float:
    start = time.perf_counter()
    for b in batches:
        if seq2seq:
            predictor.generate(b, max_new_tokens=max_new_tokens, num_beams=1)
        else:
            predictor.classify(b)
    return sum(map(len, batches)) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="sst2")
    p.add_argument("--variants", nargs="+", default=["minilm-sst2:fp32", "minilm-sst2:dynamic-int8"],
                   help="model:method, the first is the base of every ratio")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--config", help="a sweep config whose own models (e.g. a student) to register")
    args = p.parse_args()
    use_config(args.config)
    if len(args.variants) < 2 or any(":" not in v for v in args.variants):
        p.error("give at least two variants as model:method, e.g. minilm-sst2:fp32 minilm-sst2:dynamic-int8")
    task = get_task(args.task)
    seq2seq = task.kind == "seq2seq"
    texts = list(eval_split(args.task)[task.input_column])
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # length-sorted, dynamic padding
    batches = [
        [texts[i] for i in order[j : j + args.batch_size]] for j in range(0, len(order), args.batch_size)
    ]
    loaded: dict[str, object] = {}
    predictors = {}
    for v in args.variants:
        model, method = v.rsplit(":", 1)
        loaded.setdefault(model, load_model(model, progress=False))
        predictors[v] = get_method(method).apply(loaded[model]).predictor
    for pred in predictors.values():
        full_pass(pred, batches[:3], seq2seq, args.max_new_tokens)  # warm-up
    runs: dict[str, list[float]] = {v: [] for v in args.variants}
    for _ in range(args.repeats):
        for v, pred in predictors.items():
            runs[v].append(full_pass(pred, batches, seq2seq, args.max_new_tokens))
    base = args.variants[0]
    for v, r in runs.items():
        print(f"{v:>34}: samples/s per pass {[round(x) for x in r]}")
    for v in args.variants[1:]:
        ratios = [o / b for o, b in zip(runs[v], runs[base], strict=True)]
        print(f"{v} / {base} at batch {args.batch_size}: median {statistics.median(ratios):.2f}x "
              f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x, {args.repeats} interleaved full passes each)")  # fmt: skip


if __name__ == "__main__":
    main()
