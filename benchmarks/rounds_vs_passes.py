"""A seq2seq model's paired speed-ups from the package's rounds against full passes, in one process.

What the records measure (``measure.scenarios.run_interleaved`` at one batch size, its settings' rounds)
and what a full pass over the evaluation split gives (every length-sorted batch, the predictors taking
turns, each parked between its turns as in the rounds), one right after the other, so both see the same
phase of the machine. Prints per trial the rounds' paired median and time-weighted ratio, then per full
pass the ratio of total times, and the per-batch time of the first method and per-batch speed-ups.

    python benchmarks/rounds_vs_passes.py --model t5-multi30k --methods fp32 ort-dynamic-int8
    python benchmarks/rounds_vs_passes.py --model t5-multi30k --methods fp32 ort-dynamic-int8 --min-time-s 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from accelbench.measure.scenarios import run_interleaved
from accelbench.measure.settings import BenchmarkSettings
from accelbench.methods import get_method
from accelbench.models import apply_task_prefix, resolve_model
from accelbench.taskdata.inputs import item_length
from accelbench.tasks import eval_split, get_task, task_inputs
from accelbench.training import load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="multi30k")
    p.add_argument("--model", default="t5-multi30k")
    p.add_argument("--methods", nargs="+", default=["fp32", "ort-dynamic-int8"], help="the first is the base")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--min-time-s", type=float, default=1.5, help="as configs/default.yaml")
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--trials", type=int, default=2, help="rotations of rounds")
    p.add_argument("--passes", type=int, default=2, help="full passes of each method after the rounds")
    a = p.parse_args()

    task = get_task(a.task)
    texts = task_inputs(task, eval_split(a.task, None))
    loaded = apply_task_prefix(load_model(resolve_model(a.model), progress=False), task)
    preds = {m: get_method(m).apply(loaded).predictor for m in a.methods}
    base, others = a.methods[0], a.methods[1:]
    s = BenchmarkSettings(batch_sizes=[a.batch_size], realtime=False, offline=False, min_time_s=a.min_time_s,
                          repeats=a.repeats)  # fmt: skip
    try:
        for p_ in preds.values():
            p_.park()
        for trial in range(a.trials):
            rows = run_interleaved(preds, task.kind, texts, s, progress=False).rows
            thr = {m: np.array(rows[m][0]["throughput_rounds"]) for m in a.methods}
            for m in others:  # per round the same inputs: time is 1 / throughput up to the round's samples
                median = float(np.median(thr[m] / thr[base]))
                weighted = float(np.sum(1 / thr[base]) / np.sum(1 / thr[m]))
                print(f"rounds {trial + 1}: {m} paired median {median:.2f}x, time-weighted {weighted:.2f}x")
        order = sorted(range(len(texts)), key=lambda i: item_length(texts[i]))
        batches = [
            [texts[i] for i in order[j : j + a.batch_size]] for j in range(0, len(order), a.batch_size)
        ]
        per_batch = {m: np.zeros(len(batches)) for m in a.methods}
        for k in range(a.passes):
            total = dict.fromkeys(a.methods, 0.0)
            for m in a.methods:
                preds[m].unpark()
                for b, batch in enumerate(batches):
                    t0 = time.perf_counter()
                    preds[m].generate(batch, s.max_new_tokens, s.num_beams, padding="dynamic",
                                      max_length=s.max_length)  # fmt: skip
                    dt = time.perf_counter() - t0
                    per_batch[m][b] += dt
                    total[m] += dt
                preds[m].park()
            ratios = ", ".join(f"{m} {total[base] / total[m]:.2f}x" for m in others)
            print(f"full pass {k + 1}: {ratios}; {base} {len(texts) / total[base]:.0f}/s")
        print(
            f"{base} seconds per batch (mean over passes):", np.round(per_batch[base] / a.passes, 3).tolist()
        )
        for m in others:
            print(f"{m} per-batch speed-up:", np.round(per_batch[base] / per_batch[m], 1).tolist())
    finally:
        for p_ in preds.values():
            p_.close()


if __name__ == "__main__":
    main()
