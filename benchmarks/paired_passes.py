"""Variants of different models (a teacher and its students) in one interleaved rotation: paired speed-ups.

Within one experiment the package already pairs every variant with its own model's fp32 (``repeats`` rounds,
the variants taking turns). This thin script puts variants of *several* models into one rotation, with the
package's own scenario code (``measure.scenarios.run_interleaved``), so a student's speed-up over its teacher
is paired too. Variants are ``model:method``; the first is the base of every ratio.

    python benchmarks/paired_passes.py --task sst2 --repeats 7 \
        --variants minilm-sst2:fp32 minilm-sst2-l3:fp32 minilm-sst2-l3:pt2e-int8
    python benchmarks/paired_passes.py --task multi30k --repeats 6 \
        --variants t5-multi30k:fp32 t5-multi30k-half:fp32 t5-multi30k-half:ct2-int8
"""

from __future__ import annotations

import argparse

from accelbench.config import use_config
from accelbench.measure.scenarios import add_speedups, run_interleaved
from accelbench.measure.settings import BenchmarkSettings
from accelbench.methods import get_method
from accelbench.tasks import eval_split, get_task
from accelbench.training import load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="sst2")
    p.add_argument("--variants", nargs="+", default=["minilm-sst2:fp32", "minilm-sst2:dynamic-int8"],
                   help="model:method, the first is the base of every ratio")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--min-time-s", type=float, default=12.0, help="measured seconds per variant, all rounds")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--config", help="a sweep config whose own models (e.g. a student) to register")
    args = p.parse_args()
    use_config(args.config)
    if len(args.variants) < 2 or any(":" not in v for v in args.variants):
        p.error("give at least two variants as model:method, e.g. minilm-sst2:fp32 minilm-sst2:dynamic-int8")
    task = get_task(args.task)
    texts = list(eval_split(args.task)[task.input_column])
    s = BenchmarkSettings(batch_sizes=[args.batch_size], realtime=False, min_time_s=args.min_time_s,
                          repeats=args.repeats, max_new_tokens=args.max_new_tokens, time_limit_s=None)  # fmt: skip
    loaded: dict[str, object] = {}
    predictors = {}
    for v in args.variants:
        model, method = v.rsplit(":", 1)
        loaded.setdefault(model, load_model(model, progress=False))
        predictors[v] = get_method(method).apply(loaded[model]).predictor
    result = run_interleaved(predictors, task.kind, texts, s)
    add_speedups(result.rows, args.variants[0] if args.variants[0] in result.rows else None)
    for v, (row,) in result.rows.items():
        print(f"{v:>36}: {row['throughput']:7.1f} samples/s [{row['throughput_ci_low']:.1f}, "
              f"{row['throughput_ci_high']:.1f}]  {row['speedup_vs_fp32']:.2f}x [{row['speedup_vs_fp32_ci_low']:.2f}, "
              f"{row['speedup_vs_fp32_ci_high']:.2f}] vs {args.variants[0]}  (batch {args.batch_size}, "
              f"{row['repeats']} rounds, {row['speed_ci_level']:.1%} intervals)")  # fmt: skip
    for v, err in result.failed.items():
        print(f"{v:>36}: FAILED {err}")


if __name__ == "__main__":
    main()
