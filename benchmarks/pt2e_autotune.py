"""Does Inductor's max-autotune (C++ GEMM templates with fused epilogues) raise pt2e-int8's share of the int8
peak? Builds pt2e-int8 of minilm-sst2 twice (default vs max_autotune in the inductor config), checks each
against fp32 (the method's own check), then measures throughput at batch 16/32/64 over the whole sst2 dev
split, length-sorted, in 4 interleaved rounds, and prints each as a share of the measured int8 matmul peak.

    .venv/bin/python benchmarks/pt2e_autotune.py [both|default|autotune]
"""

from __future__ import annotations

import statistics
import sys
import time

import accelbench.methods.pt2e as pt2e
from accelbench.measure.peak import measure_peaks, ops_per_sample
from accelbench.methods import get_method
from accelbench.models import resolve_model
from accelbench.tasks import eval_split, get_task, task_inputs
from accelbench.training import load_model

OPTIONS = {
    "default": {"freezing": True},
    "autotune": {"freezing": True, "max_autotune": True, "max_autotune_gemm_backends": "CPP,ATEN"},
}
BATCHES, ROUNDS = (16, 32, 64), 4


def main(which: str = "both") -> None:
    loaded = load_model(resolve_model("minilm-sst2"), train=False)
    texts = task_inputs(get_task("sst2"), eval_split("sst2", None))
    variants = {}
    for name, opts in OPTIONS.items():
        if which not in ("both", name):
            continue
        pt2e.INDUCTOR_OPTIONS = opts  # read by each call of the compiled classifier
        t0 = time.time()
        v = get_method("pt2e-int8").apply(loaded)
        d = v.details
        print(f"{name}: built in {time.time() - t0:.0f} s; check against fp32: max |logit diff| "
              f"{d['check_max_abs_logit_diff']}, agreement {d['check_agreement']}", flush=True)  # fmt: skip
        variants[name] = (v.predictor, opts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    medians = {}
    for bs in BATCHES:
        batches = [[texts[i] for i in order[j : j + bs]] for j in range(0, len(order), bs)]
        for predictor, opts in variants.values():  # warm every shape
            pt2e.INDUCTOR_OPTIONS = opts
            for b in batches:
                predictor.classify(b)
        rounds: dict[str, list[float]] = {n: [] for n in variants}
        for _ in range(ROUNDS):
            for name, (predictor, opts) in variants.items():
                pt2e.INDUCTOR_OPTIONS = opts
                t0 = time.perf_counter()
                for b in batches:
                    predictor.classify(b)
                rounds[name].append(len(texts) / (time.perf_counter() - t0))
        for name, values in rounds.items():
            medians[(name, bs)] = statistics.median(values)
            print(name, bs, [round(x) for x in values], flush=True)
    peaks = measure_peaks(None)
    ids = loaded.tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    ops = ops_per_sample(loaded.model.config, "bert", sum(map(len, ids)) / len(ids))
    for (name, bs), thr in medians.items():
        share = 100 * ops * thr / (peaks["int8"] * 1e9)
        print(
            f"{name:9s} batch {bs:3d}: {thr:7.1f} samples/s, {share:5.1f}% of the int8 peak ({peaks['int8']} GOP/s)"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "both")
