"""The GPU verification of issue 14, run on the device machine from the kit that ``gpu_kit.py`` built.

The device tool's ``run`` call (carry ``[".gpu"]``; timeout_s 600; the script itself aims at 8 minutes):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
.gpu/whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 && \
python3 benchmarks/gpu_check.py --kit .gpu --out $OUT

It installs nothing itself and fetches nothing: data come from the kit (``ACCELBENCH_DATA_DIR``), and the
kit's float16 checkpoints are upcast to float32 into a private model cache (``ACCELBENCH_CACHE``), where the
package finds them as trained, under their own keys (a model whose recipe changed since the kit was built is
registered from its folder instead). So every variant, fp32 included, starts from fp16-rounded weights.
The package's own ``run_experiment`` then measures MiniLM on sst2 (fp32, tf32, fp16, bf16, compiled fp32 and
bf16) and the T5 on multi30k (fp32, fp16, bf16); a failing variant is recorded as such and the next one
runs. Then the timer check times the same predictor calls with ``devices.timed_call`` and with
``devices.EventTimer`` inside it. (A compiled T5 is not offered: the methods refuse ``compile`` for seq2seq.)
Writes ``$OUT/records.jsonl``, ``$OUT/gpu_check.json`` (environment, targets, verdicts; rewritten after every
step) and ``$OUT/gpu_check.log``; prints the targets. ``--device cpu --quick`` runs the same code on a CPU
(methods with no CPU path are listed as not run); ``--print-command`` prints the run call as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path
from typing import Any

logger = logging.getLogger("gpu_check")

COMMAND = ("python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
           ".gpu/whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 && "
           "python3 benchmarks/gpu_check.py --kit .gpu --out $OUT")  # fmt: skip
CARRY = [".gpu"]
CLASSIFIER, SEQ2SEQ = "minilm-sst2", "t5-multi30k"
COMPILED_MODE = "default"  # max-autotune's GEMM search over dynamic shapes would not fit the device time
CLASSIFIER_METHODS = ["fp32", "tf32", "fp16", "bf16", {"name": "fp32", "compile": True, "compile_mode": COMPILED_MODE},
                      {"name": "bf16", "compile": True, "compile_mode": COMPILED_MODE}]  # fmt: skip
SEQ2SEQ_METHODS = ["fp32", "fp16", "bf16"]
FULL = {
    "realtime": False,
    "min_time_s": 2.0,
    "repeats": 3,
    "warmup": 3,
    "n_bootstrap": 300,
    "time_limit_s": 240.0,
}
QUICK = {"realtime": False, "min_time_s": 0.1, "repeats": 3, "warmup": 1, "n_eval": 32, "n_bootstrap": 50,
         "max_new_tokens": 16, "time_limit_s": 240.0}  # fmt: skip
CLASSIFIER_BATCHES, SEQ2SEQ_BATCHES = [1, 32, 256], [1, 64]
TIMER_CALLS, TIMER_WARMUP, TIMER_BATCH, TIMER_TOLERANCE = 50, 5, 256, 0.05
TARGETS = {  # issue 14
    "minilm_bf16_compiled": "MiniLM batch 256: bf16 compiled >= 3x fp32 eager throughput at >= 99% of its accuracy",
    "t5_bf16": "T5 greedy batch 64: bf16 >= 1.5x fp32 at <= 0.5 BLEU lost",
    "timer": "timer GPU figures within 5% of CUDA events",
}  # fmt: skip
NO_CUDA = "not measured: no CUDA device"


def label(method: str | dict) -> str:
    from accelbench.methods import get_method

    return get_method(method).label


def prepare(kit: Path, work: Path) -> dict[str, dict]:
    """Point the package at the kit's data and at a private cache holding the kit's models in float32."""
    import torch
    from safetensors.torch import load_file, save_file

    from accelbench.models import MODELS, ModelSpec, register_model

    os.environ.update({"ACCELBENCH_DATA_DIR": str(kit / "data"), "ACCELBENCH_CACHE": str(work / "cache"),
                       "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_CACHE": str(work / "hf-datasets")})  # fmt: skip
    manifest = json.loads((kit / "manifest.json").read_text())
    placed = {}
    for name, info in manifest["models"].items():
        registered = MODELS.get(name) if name in MODELS else None
        same = registered is not None and registered.key == info["key"]
        dest = registered.checkpoint_dir() if same else work / "models" / name
        dest.mkdir(parents=True, exist_ok=True)
        src = kit / "models" / name
        for f in src.iterdir():
            if f.name != "weights-fp16.safetensors":
                shutil.copy2(f, dest / f.name)
        state = load_file(src / "weights-fp16.safetensors")
        save_file({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()},
                  dest / "model.safetensors", metadata={"format": "pt"})  # fmt: skip
        if not same:  # the recipe changed since the kit (or a model the package does not know): by its folder
            spec = (registered.with_overrides(base=str(dest), recipe=None) if registered
                    else ModelSpec(name=name, base=str(dest)))  # fmt: skip
            register_model(spec, overwrite=True)
        placed[name] = {"path": str(dest), "kit_key": info["key"], "registered_as": "cache" if same else "folder",
                        "weights": "float16 in the kit, upcast to float32"}  # fmt: skip
    return placed


def split_by_device(methods: list, device: str) -> tuple[list, dict[str, str]]:
    """The methods with a path on ``device``'s type, and why each of the others is not run."""
    from accelbench.devices import device_type
    from accelbench.methods import get_method

    kind = device_type(device)
    keep, skip = [], {}
    for m in methods:
        method = get_method(m)
        if kind in method.devices:
            keep.append(m)
        else:
            skip[method.label] = (
                f"not run: {method.name} has no {kind} path (runs on {', '.join(method.devices)})"
            )
    return keep, skip


def run_step(name: str, fn, result: dict, *args, **kw) -> Any:
    """``fn``; its failure is logged and kept in ``result["steps"]``, and the next step runs."""
    t0 = time.perf_counter()
    try:
        out = fn(*args, **kw)
        result["steps"][name] = {"status": "ok", "seconds": round(time.perf_counter() - t0, 1)}
        return out
    except Exception as e:  # one failing step never loses the others
        logger.error("%s failed: %s", name, e)
        result["steps"][name] = {"status": "error", "seconds": round(time.perf_counter() - t0, 1),
                                 "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=8)}  # fmt: skip
        return None


def experiment(task: str, model: str, methods: list, batches: list[int], run_dir: Path, device: str,
               quick: bool, result: dict, overrides: dict | None = None) -> None:  # fmt: skip
    from accelbench.experiment import run_experiment

    keep, skip = split_by_device(methods, device)
    result["not_run"].update({f"{model}:{k}": v for k, v in skip.items()})
    settings = {**(QUICK if quick else FULL), "batch_sizes": batches, "device": device, **(overrides or {})}
    result["settings"][f"{model} {[label(m) for m in keep]}"] = settings
    run_experiment(task, model, keep, run_dir, settings=settings, progress=False, unavailable="skip")


def time_calls(call, device: str, calls: int, warmup: int) -> dict:
    """Median seconds of ``call`` by ``timed_call``, and on a GPU by CUDA events recorded inside that
    synchronised wall-clock window, with their ratio."""
    from accelbench.devices import EventTimer, is_cuda, timed_call

    for _ in range(warmup):
        timed_call(call, device)
    events = EventTimer(device) if is_cuda(device) else None
    timed = partial(events.time, call) if events else call
    walls = [timed_call(timed, device)[1] for _ in range(calls)]
    row = {"wall_median_s": statistics.median(walls)}
    if events:
        row["event_median_s"] = statistics.median(events.times)
        row["ratio"] = row["wall_median_s"] / row["event_median_s"]
    return row


def timer_check(model: str, device: str, quick: bool, calls: int = TIMER_CALLS) -> dict:
    """Median wall-clock (``timed_call``) over median CUDA-event seconds of the same calls, fp32 and bf16."""
    import dataclasses

    from accelbench.methods import get_method
    from accelbench.models import resolve_model
    from accelbench.tasks import eval_split, get_task, task_inputs
    from accelbench.training import load_model

    loaded = load_model(resolve_model(model), train=False, progress=False)
    loaded = dataclasses.replace(loaded, device=device)
    task = get_task(loaded.spec.task or "sst2")
    texts = task_inputs(task, eval_split(task.name, TIMER_BATCH))
    calls = 5 if quick else calls
    out: dict[str, Any] = {"calls": calls, "batch_size": len(texts)}
    for name in ("fp32", "bf16"):
        method = get_method(name)
        if reason := method.check(loaded.family, "skip", device):
            out[name] = {"status": "skipped", "error": reason}
            continue
        predictor = method.apply(loaded).predictor
        try:
            out[name] = time_calls(
                partial(predictor.logits, texts), device, calls, 1 if quick else TIMER_WARMUP
            )
        finally:
            predictor.close()
    return out


def _pick(df, model: str, method: str, batch: int):
    if df is None or not len(df):
        return None
    rows = df[(df["model"] == model) & (df["method"] == method)]
    if not len(rows):
        return None
    ok = rows[
        (rows["status"] == "ok") & (rows.get("scenario") == "batch") & (rows.get("batch_size") == batch)
    ]
    return ok.iloc[-1].to_dict() if len(ok) else rows.iloc[-1].to_dict()


def _why_not(row: dict | None) -> str:
    if row is None:
        return "not measured: no record"
    return f"not measured: {row.get('status')}: {row.get('error')}"


def speed_target(df, model: str, method: str, batch: int, min_speedup: float, device: str, *,
                 min_metric_ratio: float | None = None, max_metric_loss: float | None = None) -> dict:  # fmt: skip
    """A variant's paired speed-up over fp32 eager and its metric against fp32's, with the verdict."""
    row, base = _pick(df, model, method, batch), _pick(df, model, "fp32", batch)
    if device == "cpu":  # the targets are the GPU's; a CPU run only checks the plumbing
        return {"verdict": NO_CUDA, **({"speedup_vs_fp32": row.get("speedup_vs_fp32")} if row else {})}
    if row is None or row.get("status") != "ok" or base is None or base.get("status") != "ok":
        return {"verdict": _why_not(row if row is None or row.get("status") != "ok" else base)}
    out = {"variant": row["variant"], "batch_size": batch, "speedup_vs_fp32": row.get("speedup_vs_fp32"),
           "speedup_ci": [row.get("speedup_vs_fp32_ci_low"), row.get("speedup_vs_fp32_ci_high")],
           "throughput": row.get("throughput"), "fp32_throughput": base.get("throughput"),
           "metric_name": row.get("metric_name"), "metric": row.get("metric"), "fp32_metric": base.get("metric"),
           "metric_delta": row.get("metric_delta"), "gpu_peak_allocated_mb": row.get("gpu_peak_allocated_mb")}  # fmt: skip
    ok = out["speedup_vs_fp32"] is not None and out["speedup_vs_fp32"] >= min_speedup
    if min_metric_ratio is not None:
        out["metric_ratio"] = row["metric"] / base["metric"] if base["metric"] else None
        ok = ok and out["metric_ratio"] is not None and out["metric_ratio"] >= min_metric_ratio
    if max_metric_loss is not None:
        out["metric_lost"] = base["metric"] - row["metric"]
        ok = ok and out["metric_lost"] <= max_metric_loss
    out["verdict"] = "pass" if ok else "fail"
    return out


def timer_target(timer: dict | None, device: str) -> dict:
    if device == "cpu":
        return {"verdict": NO_CUDA, **({"measured": timer} if timer else {})}
    if not timer:
        return {"verdict": "not measured: the timer check failed"}
    ratios = {k: v["ratio"] for k, v in timer.items() if isinstance(v, dict) and "ratio" in v}
    if not ratios:
        return {"verdict": "not measured: no variant timed", "measured": timer}
    ok = all(abs(r - 1) <= TIMER_TOLERANCE for r in ratios.values())
    return {"ratios": ratios, "measured": timer, "verdict": "pass" if ok else "fail"}


def evaluate(
    df, timer: dict | None, device: str, classifier: str = CLASSIFIER, seq2seq: str = SEQ2SEQ
) -> dict:
    """Each target of the issue with its figures and verdict: pass, fail or ``not measured: <why>``."""
    return {
        "minilm_bf16_compiled": speed_target(df, classifier, label(CLASSIFIER_METHODS[-1]), 256, 3.0, device,
                                             min_metric_ratio=0.99),
        "t5_bf16": speed_target(df, seq2seq, "bf16", 64, 1.5, device, max_metric_loss=0.5),
        "timer": timer_target(timer, device),
    }  # fmt: skip


def check(kit: Path, out: Path, device: str = "cuda", quick: bool = False, work: Path | None = None,
          classifier: str = CLASSIFIER, seq2seq: str = SEQ2SEQ, compiled: bool = True,
          overrides: dict | None = None) -> dict:  # fmt: skip
    """The whole check; returns environment, steps and targets, written to ``out/gpu_check.json`` after every
    step (a run stopped at the tool's limit keeps what it measured). ``overrides``: benchmark settings over
    FULL / QUICK (tests shrink the run with them)."""
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    own_work = work is None  # a folder of our own (the float32 checkpoints, the run) goes at the end
    work = Path(work or tempfile.mkdtemp(prefix="gpu_check-"))
    run_dir = work / "run"
    result: dict[str, Any] = {"device": device, "quick": quick, "command": COMMAND, "carry": CARRY,
                              "steps": {}, "not_run": {}, "settings": {}}  # fmt: skip
    timer = None

    def save() -> None:
        df = run_step("records", _records, result, run_dir, out)
        result["targets"] = evaluate(df, timer, device, classifier, seq2seq)
        result["variants"] = _variant_table(df)
        result["wall_s"] = round(time.perf_counter() - t0, 1)
        (out / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str))

    result["models"] = run_step("prepare", prepare, result, kit, work)
    result["environment"] = run_step("environment", _environment, result, device)
    cls_methods = CLASSIFIER_METHODS if compiled else CLASSIFIER_METHODS[:4]
    run_step("classifier", experiment, result, "sst2", classifier, cls_methods, CLASSIFIER_BATCHES, run_dir,
             device, quick, result, overrides)  # fmt: skip
    save()
    run_step("seq2seq", experiment, result, "multi30k", seq2seq, SEQ2SEQ_METHODS, SEQ2SEQ_BATCHES, run_dir,
             device, quick, result, overrides)  # fmt: skip
    save()
    timer = run_step("timer", timer_check, result, classifier, device, quick)
    save()
    if own_work:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _environment(device: str) -> dict:
    import importlib.metadata

    from accelbench.devices import gpu_environment
    from accelbench.environment import collect_environment

    versions = {}
    for p in ("torch", "transformers", "datasets", "dill", "multiprocess", "pyarrow", "fsspec", "huggingface-hub",
              "sacrebleu", "numpy", "pandas"):  # fmt: skip
        try:
            versions[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            versions[p] = None
    return {
        **collect_environment(),
        **gpu_environment(device if device != "cpu" else "cuda"),
        "versions": versions,
    }


def _records(run_dir: Path, out: Path):
    from accelbench.records import read_current

    src = run_dir / "records.jsonl"
    if src.exists():
        shutil.copy2(src, out / "records.jsonl")
    return read_current(run_dir)


def _variant_table(df) -> list[dict]:
    """One line per record: what the summary and a reader of gpu_check.json need, compile mode included."""
    if df is None or not len(df):
        return []
    cols = [c for c in ("variant", "status", "batch_size", "throughput", "speedup_vs_fp32", "metric", "metric_delta",
                        "gpu_peak_allocated_mb", "error") if c in df.columns]  # fmt: skip
    rows = df[cols].to_dict("records")
    details = df["variant_details"] if "variant_details" in df.columns else [None] * len(df)
    for row, text in zip(rows, details, strict=True):
        d = json.loads(text) if isinstance(text, str) else {}
        row.update({k: d[k] for k in ("compile_mode", "compile_s") if k in d})
    return rows


def summary(result: dict) -> str:
    lines = [f"device {result['device']} ({(result.get('environment') or {}).get('gpu_name', 'no GPU')}), "
             f"{result['wall_s']} s"]  # fmt: skip
    for key, text in TARGETS.items():
        t = result["targets"][key]
        figures = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in t.items()
                   if k in ("speedup_vs_fp32", "metric_ratio", "metric_lost", "ratios")}  # fmt: skip
        lines.append(f"{t['verdict'][:60]:<60} {text} {figures or ''}")
    failed = {k: v["error"] for k, v in result["steps"].items() if v["status"] != "ok"}
    lines += [f"step {k} failed: {e}" for k, e in failed.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kit", type=Path, default=Path(".gpu"))
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_check_out")))
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="a few seconds per variant: checks the plumbing")
    p.add_argument("--print-command", action="store_true", help="print the device tool's run call and exit")
    args = p.parse_args(argv)
    if args.print_command:
        print(json.dumps({"command": COMMAND, "carry": CARRY, "timeout_s": 600}))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        handlers=[logging.StreamHandler(), logging.FileHandler(args.out / "gpu_check.log")])  # fmt: skip
    result = check(args.kit, args.out, args.device, args.quick)
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
