"""Command line: ``accelbench run --config configs/default.yaml`` and friends.

Every user error ends with one clear message that names the fix and exit code 2; a suite in which anything
failed (a model, a notebook, a variant) exits 1 after finishing the rest, its failures listed last with their
causes and fixes; success exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from .analysis import write_summary
from .config import load_config
from .crosscheck import (
    CROSSCHECK_FILE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_PASSES,
    DEFAULT_ROUNDS,
    TOLERANCE,
    crosscheck_table,
    run_crosscheck,
)
from .devices import CPU, gpu_environment
from .environment import collect_environment
from .exceptions import AccelbenchError, ConfigError
from .measure.opprofile import DEFAULT_CALLS, profile_ops
from .methods import get_method, list_methods
from .models import MODELS, apply_task_prefix, resolve_model
from .notebook import quiet_library_warnings
from .paths import results_dir
from .report import build_report
from .sensitivity import run_block
from .serving import batch_infer, curves, load_command, plan_report, server
from .suite import Failure, run_suite, time_breakdown
from .tasks import TASKS, eval_split, get_task, task_inputs
from .training import ensure_trained, load_model

logger = logging.getLogger("accelbench")


def _quiet_defaults() -> None:
    # The fast tokenizers' own thread pool fights the benchmark's threads after a fork (papermill kernels).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cmd_run(args: argparse.Namespace) -> int:
    overrides = {"run": args.run, "results_dir": args.results_dir}
    config = load_config(args.config, overrides)
    if args.force:
        for sub in ("predictions",):
            shutil.rmtree(config.run_dir / sub, ignore_errors=True)
        records = config.run_dir / "records.jsonl"
        if records.exists():
            records.rename(config.run_dir / f"records.{int(time.time())}.jsonl.bak")
    result = run_suite(config, progress=not args.quiet, only=args.only)
    print(f"\nrun: {result.run_dir}")
    if result.summary:
        print(f"summary: {result.summary}")
        print(result.summary.read_text().split("\n## Failures")[0][-3000:] if args.show else "", end="")
    if result.report:
        print(f"report: {result.report} (opens from disk; the folder can be zipped and shared)")
    for r in result.runs:
        print(f"  {'ok    ' if r.ok else 'FAILED'} {r.seconds:6.0f} s  {r.output.name}")
    print(f"where the time went ({result.seconds / 60:.1f} min):")
    for part, sec in time_breakdown(result):
        print(f"  {sec:6.0f} s  {part}")
    return _print_failures(result.failures)


def _print_failures(failures: list[Failure]) -> int:
    """The run's failures, last on stderr with their causes and fixes; the exit code: 1 if this run had any."""
    now = [f for f in failures if not f.earlier]
    earlier = len(failures) - len(now)
    sys.stdout.flush()  # the failures come last, also when both streams go to one file
    if earlier:
        print(
            f"{earlier} failure(s) recorded by an earlier run into this folder and not retried now are listed "
            "in summary.md's Failures section.",
            file=sys.stderr,
        )
    if not now:
        return 0
    print(f"\n{len(now)} failure(s); everything else ran and its records are kept:", file=sys.stderr)
    for f in now:
        print(f"  {f.what} {f'{f.task} · ' if f.task else ''}{f.name}: {f.cause}", file=sys.stderr)
        if f.fix:
            print(f"    fix: {f.fix}", file=sys.stderr)
    return 1


def cmd_train(args: argparse.Namespace) -> int:
    spec = resolve_model(args.model)
    if spec.recipe is None:
        print(f"{spec.name} is a ready checkpoint; nothing to train")
        return 0
    path = ensure_trained(spec, progress=not args.quiet)
    print(path)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print("tasks:")
    for _, t in TASKS.items():
        print(f"  {t.name:<14} {t.kind:<15} {t.description}")
    print("models:")
    for _, m in MODELS.items():
        teacher = (m.recipe or {}).get("teacher")
        print(
            f"  {m.name:<18} {m.family or '?':<11} {m.description}"
            + (f"  [student of {teacher}]" if teacher else "")
        )
    print("methods:")
    for name in list_methods():
        m = get_method(name)
        why = m.unavailable_reason()
        print(
            f"  {name:<18} {','.join(m.families):<11} {','.join(m.devices):<9} {m.description}"
            + (f"  [unavailable on cpu: {why}]" if why and CPU in m.devices else "")
        )
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    for k, v in (collect_environment() | gpu_environment()).items():
        print(f"{k:<22} {v}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    path = write_summary(Path(args.run_dir), fraction=args.fraction)
    print(path.read_text())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    index = build_report(Path(args.run_dir))
    print(f"{index} (with summary.html and each notebook's HTML; opens from disk, no network needed)")
    return 0


def cmd_crosscheck(args: argparse.Namespace) -> int:
    report = run_crosscheck(args.run, task=args.task, batch_size=args.batch_size, variants=args.variants,
                            passes=args.passes, rounds=args.rounds, progress=not args.quiet)  # fmt: skip
    rows = report["rows"]
    print(crosscheck_table(rows))
    checked = [r for r in rows if r["agree"] is not None]
    print(
        f"\n{sum(bool(r['agree']) for r in checked)} of {len(checked)} speed-up(s) agree within "
        f"{100 * TOLERANCE:.0f}% ({report['rounds']} round(s) of {report['passes']} pass(es), timed by this "
        f"process); written to {Path(args.run) / CROSSCHECK_FILE}"
    )
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """One variant's operator-time shares on a task's evaluation texts, printed (nothing is recorded)."""
    for name in ("batch_size", "calls", "max_new_tokens"):
        if getattr(args, name) <= 0:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be positive, got {getattr(args, name)}", f"use e.g. {flag} 1")
    task = get_task(args.task)
    texts = task_inputs(task, eval_split(args.task, args.batch_size))
    loaded = apply_task_prefix(load_model(args.model, train=False, progress=False), task)
    variant = get_method(args.method).apply(loaded)
    gen = {"max_new_tokens": args.max_new_tokens} if task.kind == "seq2seq" else {}
    try:
        result = profile_ops(variant.predictor, task.kind, texts, batch_size=args.batch_size, calls=args.calls,
                             **gen)  # fmt: skip
    finally:
        variant.predictor.close()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if not result["available"]:
        print(f"no operator profile for {args.model}:{args.method}: {result['reason']}")
        return 0
    print(f"{args.model}:{args.method} on {args.task}, batch {args.batch_size}, {result['profiler']}: "
          f"{result['op_ms_per_batch']:.1f} ms in operators of {result['wall_ms_per_batch']:.1f} ms per call")  # fmt: skip
    for cls, share in sorted(result["shares"].items(), key=lambda kv: -kv[1]):
        if share:
            print(f"  {cls:<11} {100 * share:5.1f}%")
    print("top operators (self time):")
    for op in result["top_ops"]:
        print(f"  {op['op']:<52} {op['class']:<11} {op['ms_per_batch']:8.3f} ms {100 * op['share']:5.1f}%")
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """Per-unit sensitivity of one int8 method and the mixed-precision search, recorded in a run's records."""
    block = {"methods": [args.method], "fraction": args.fraction, "n_eval": args.n_eval,
             "max_attempts": args.max_attempts, "units": args.units}  # fmt: skip
    run_dir = Path(args.results_dir or results_dir()) / args.run
    for label, (table, search) in run_block(
        args.task, args.model, run_dir, block, progress=not args.quiet
    ).items():
        print(f"\n{label} on {args.task}: units, most harmful to quantize first")
        print(table.to_string(index=False))
        print("\nmixed-precision search:")
        print(search.to_string(index=False))
        print(search.attrs.get("message", ""))
    print(f"\nrecords: {run_dir / 'records.jsonl'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="accelbench", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="execute the notebook suite over a config's grid")
    r.add_argument("--config", default="configs/default.yaml", help="YAML sweep config")
    r.add_argument("--run", help="run name (folder under results/); default: the config's")
    r.add_argument("--results-dir", help="where runs are written; default: the config's (results/)")
    r.add_argument(
        "--force", action="store_true", help="re-measure everything (old records are kept as a .bak file)"
    )
    r.add_argument(
        "--only", nargs="+", metavar="PREFIX", help="execute only notebooks starting with these, e.g. 04"
    )
    r.add_argument("--show", action="store_true", help="print the summary tables at the end")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(fn=cmd_run)

    t = sub.add_parser("train", help="train (or find cached) a built-in model")
    t.add_argument("--model", required=True, help="e.g. minilm-sst2 or t5-multi30k")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(fn=cmd_train)

    sub.add_parser("list", help="registered tasks, models and methods").set_defaults(fn=cmd_list)
    sub.add_parser("env", help="the environment recorded with every run").set_defaults(fn=cmd_env)

    c = sub.add_parser(
        "crosscheck",
        help="re-time a run's speed-ups in separate processes, timed outside the benchmark code",
    )
    c.add_argument("--run", required=True, help="the run's folder, e.g. results/default")
    c.add_argument("--task", help="only this task of the run")
    c.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="the batch-inference point")
    c.add_argument(
        "--variants", nargs="+", metavar="MODEL:METHOD",
        help="variants as records name them (MODEL:METHOD@OTHER compares with OTHER's fp32); "
        "default: the 3 fastest per task",
    )  # fmt: skip
    c.add_argument("--passes", type=int, default=DEFAULT_PASSES, help="full passes per timed turn")
    c.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="turns of each variant and its fp32")
    c.add_argument("-q", "--quiet", action="store_true", help="no per-round log lines")
    c.set_defaults(fn=cmd_crosscheck)

    pr = sub.add_parser("profile", help="where one variant's time goes: operator-time shares per class")
    pr.add_argument("--task", required=True, help="e.g. sst2 or multi30k")
    pr.add_argument(
        "--model", required=True, help="a registered (already trained) model or a checkpoint path"
    )
    pr.add_argument("--method", required=True, help="e.g. fp32, dynamic-int8, ort-dynamic-int8, pt2e-int8")
    pr.add_argument("--batch-size", type=int, default=32)
    pr.add_argument("--calls", type=int, default=DEFAULT_CALLS, help="profiled batches, after warm-up")
    pr.add_argument("--max-new-tokens", type=int, default=64, help="seq2seq: generation limit")
    pr.add_argument("--json", action="store_true", help="the whole profile as JSON")
    pr.set_defaults(fn=cmd_profile)

    se = sub.add_parser(
        "sensitivity", help="per-layer sensitivity of an int8 method and a mixed-precision search"
    )
    se.add_argument("--task", required=True, help="e.g. sst2")
    se.add_argument("--model", required=True, help="a registered model or a checkpoint path")
    se.add_argument(
        "--method", required=True, help="dynamic-int8, ort-dynamic-int8, ort-static-int8 or pt2e-int8"
    )
    se.add_argument("--fraction", type=float, default=0.99, help="the floor: this share of fp32's metric")
    se.add_argument("--n-eval", type=int, help="evaluate on the first n examples (default: all)")
    se.add_argument("--max-attempts", type=int, help="at most this many search attempts")
    se.add_argument(
        "--units", nargs="+", help="candidate units, e.g. layer.3 layer.5 classifier (default: all)"
    )
    se.add_argument("--run", default="sensitivity", help="run name (folder under results/)")
    se.add_argument("--results-dir", help="where runs are written (default: results/)")
    se.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    se.set_defaults(fn=cmd_sensitivity)

    s = sub.add_parser("summary", help="(re)write summary.md of a run")
    s.add_argument("run_dir")
    s.add_argument("--fraction", type=float, default=0.99)
    s.set_defaults(fn=cmd_summary)

    rp = sub.add_parser(
        "report",
        help="(re)build a run's index.html: summary, notebooks and figures as HTML, readable offline",
    )
    rp.add_argument("run_dir", help="the run's folder, e.g. results/default")
    rp.set_defaults(fn=cmd_report)

    # serving and scaling (issue 11): each module adds its own subcommand
    for module in (server, load_command, curves, plan_report, batch_infer):
        module.add_subcommand(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    _quiet_defaults()
    quiet_library_warnings()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "urllib3", "papermill", "traitlets", "filelock", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for (
        handler
    ) in logging.getLogger().handlers:  # libraries logging info on the root logger (ORT's quantizer)
        handler.addFilter(lambda r: r.name != "root" or r.levelno >= logging.WARNING)
    try:
        return args.fn(args)
    except AccelbenchError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.fix:
            print(f"fix: {e.fix}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted; everything recorded so far is kept in records.jsonl", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
