"""Crosscheck: re-time a run's recorded speed-ups in separate processes, with a timer outside the benchmark code.

A record's ``speedup_vs_fp32`` comes from the benchmark's own rounds (``measure.scenarios``). This check
shares none of that timing code: each variant (and the fp32 it is compared with) runs in a child process of
its own (``worker_main``) that loads it through the package, builds length-sorted batches of the task's
evaluation texts, does one warm-up pass, prints ``READY`` and then, for every ``GO <passes>`` line on its
stdin, runs that many full passes and prints ``DONE``. The parent times each turn with ``time.perf_counter``
from sending ``GO`` to reading ``DONE``. The children of a task stay alive and take turns round by round
(the order reversed every other round), so each round gives one paired ratio variant / fp32; the crosscheck
speed-up is the median of those ratios, reported beside the record's figure. They agree when they differ by
at most ``TOLERANCE`` (10%).

    accelbench crosscheck --run results/default --batch-size 32 --passes 1 --rounds 5
"""

from __future__ import annotations

import json
import logging
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .analysis.markdown import is_missing, markdown_table
from .config import use_config
from .environment import collect_environment
from .exceptions import ConfigError, ModelError
from .measure.settings import BenchmarkSettings
from .methods import get_method
from .models import MODELS, resolve_model
from .records import BASELINE_METHOD, OK_STATUS, read_current
from .tasks import eval_split, get_task
from .training import load_model

logger = logging.getLogger(__name__)

CROSSCHECK_FILE = "crosscheck.json"
TOLERANCE = 0.10  # the crosscheck and the record agree when they differ by at most 10%
DEFAULT_BATCH_SIZE = 32
DEFAULT_PASSES = 1
DEFAULT_ROUNDS = 5
TOP_VARIANTS = 3  # per task, by default: the fastest non-fp32 variants at the batch size
PADDING = "dynamic"
BASELINE_SEP = "@"  # model:method@other-model compares with other-model's fp32 (a student with its teacher)
READY_TIMEOUT_S = 3600.0  # a child builds its variant first (pt2e compiles for minutes on 2 cores)
TURN_TIMEOUT_S = 3600.0
# a pause before each turn, so that the previous child's worker threads stop spin-waiting (OpenMP: to 200 ms)
SETTLE_S = 0.25
LOG_TAIL_CHARS = 1500
TIMER = "time.perf_counter() in the parent process, from sending GO to reading DONE"


@dataclass(frozen=True)
class Job:
    """One child process: the variant it loads and the measurement settings of its records."""

    task: str
    model: str
    method: str  # the label records use, e.g. ort-static-int8[calibration=entropy]
    method_name: str
    method_options: str | None  # JSON of every option, as records keep it
    model_path: str | None
    model_key: str | None
    batch_size: int
    n_eval: int | None
    max_length: int
    max_new_tokens: int
    num_beams: int
    threads: int | None
    config: str | None = None  # the run's config file, whose own tasks and models the child registers

    @property
    def variant(self) -> str:
        return f"{self.model}:{self.method}"


@dataclass
class Case:
    """One comparison: a variant against an fp32, with the record's speed-up (None when it has none)."""

    variant: Job
    baseline: Job
    record: float | None = None
    record_ci_low: float | None = None
    record_ci_high: float | None = None
    record_source: str | None = None  # speedup_vs_fp32 (the benchmark's paired figure) or throughput ratio


def _value(row: pd.Series | dict, column: str) -> Any:
    value = row.get(column)
    return None if is_missing(value) else value


def _int(value: Any) -> int | None:
    return None if is_missing(value) else int(value)


def _job(row: pd.Series | dict, batch_size: int, config: str | None) -> Job:
    """The child's job from a variant's record: method with its options, model checkpoint, settings."""
    defaults = BenchmarkSettings()
    setting = {
        name: _value(row, f"setting_{name}")
        for name in ("n_eval", "max_length", "max_new_tokens", "num_beams")
    }
    return Job(
        task=str(row["task"]), model=str(row["model"]), method=str(row["method"]),
        method_name=str(_value(row, "method_name") or row["method"]), method_options=_value(row, "method_options"),
        model_path=_value(row, "model_path"), model_key=_value(row, "model_key"), batch_size=int(batch_size),
        n_eval=_int(setting["n_eval"]),
        max_length=_int(setting["max_length"]) or defaults.max_length,
        max_new_tokens=_int(setting["max_new_tokens"]) or defaults.max_new_tokens,
        num_beams=_int(setting["num_beams"]) or defaults.num_beams,
        threads=_int(_value(row, "threads")) or _int(_value(row, "setting_threads")), config=config,
    )  # fmt: skip


def _ratio(row: pd.Series, base: pd.Series | None) -> tuple[float | None, float | None, float | None]:
    """throughput / the baseline's, with the conservative interval of the two recorded intervals."""
    if base is None or not _value(base, "throughput"):
        return None, None, None
    ratio = float(row["throughput"]) / float(base["throughput"])
    lo, hi = _value(row, "throughput_ci_low"), _value(row, "throughput_ci_high")
    b_lo, b_hi = _value(base, "throughput_ci_low"), _value(base, "throughput_ci_high")
    if None in (lo, hi, b_lo, b_hi) or not b_lo:
        return ratio, None, None
    return ratio, float(lo) / float(b_hi), float(hi) / float(b_lo)


def record_speedup(row: pd.Series, base: pd.Series | None, own_baseline: bool = True) -> dict[str, Any]:
    """The record's speed-up of ``row`` over the fp32 ``base`` (a batch row at the same batch size).

    Against its own model's fp32, the record's ``speedup_vs_fp32`` (the median of the benchmark's paired
    per-round ratios) with its interval; records without that field, and a comparison with another model's
    fp32, fall back to the ratio of the two recorded throughputs.
    """
    if own_baseline and _value(row, "speedup_vs_fp32") is not None:
        lo, hi = _value(row, "speedup_vs_fp32_ci_low"), _value(row, "speedup_vs_fp32_ci_high")
        return {"record": float(row["speedup_vs_fp32"]), "record_ci_low": None if lo is None else float(lo),
                "record_ci_high": None if hi is None else float(hi), "record_source": "speedup_vs_fp32"}  # fmt: skip
    ratio, lo, hi = _ratio(row, base)
    source = None if ratio is None else "throughput ratio"
    return {"record": ratio, "record_ci_low": lo, "record_ci_high": hi, "record_source": source}


def _run_config(run_dir: Path) -> str | None:
    """The config file the run was made from (its snapshot names it), when it still exists."""
    snapshot = Path(run_dir) / "config.yaml"
    try:
        source = (yaml.safe_load(snapshot.read_text()) or {}).get("source") if snapshot.exists() else None
    except (OSError, yaml.YAMLError) as e:
        logger.warning("cannot read %s: %s", snapshot, e)
        return None
    return str(source) if source and Path(source).exists() else None


def read_run_records(run_dir: str | Path) -> pd.DataFrame:
    """The run's current records; ConfigError (with the fix) for a folder that holds none."""
    run_dir = Path(run_dir)
    records = read_current(run_dir) if run_dir.is_dir() else pd.DataFrame()
    if records.empty or not {"task", "model", "method", "variant", "scenario"} <= set(records.columns):
        raise ConfigError(
            f"no records in {run_dir}" + ("" if run_dir.is_dir() else " (no such folder)"),
            "give the folder of a finished run, e.g. --run results/default (accelbench run writes it)",
        )
    return records


def _batch_rows(records: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    ok = records["status"] == OK_STATUS if "status" in records.columns else True
    rows = records[ok & (records["scenario"] == "batch")]
    if "padding" in rows.columns:
        rows = rows[rows["padding"].fillna(PADDING) == PADDING]
    at = rows[rows["batch_size"] == batch_size] if "batch_size" in rows.columns else rows.iloc[0:0]
    if at.empty:
        sizes = sorted({int(b) for b in rows.get("batch_size", pd.Series(dtype=float)).dropna()})
        raise ConfigError(
            f"no batch-inference records at batch size {batch_size} (padding {PADDING})",
            f"use one of the recorded batch sizes: {', '.join(map(str, sizes)) or 'none (run the batch scenario)'}",
        )
    return at


def _fp32_row(rows: pd.DataFrame, task: str, model: str) -> pd.Series | None:
    match = rows[(rows["task"] == task) & (rows["model"] == model) & (rows["method"] == BASELINE_METHOD)]
    return match.iloc[-1] if len(match) else None


def _baseline_job(records: pd.DataFrame, variant: Job, model: str) -> Job:
    """The fp32 job of ``model`` in the variant's task, with the variant's settings (they are paired)."""
    if model == variant.model:
        return replace(variant, method=BASELINE_METHOD, method_name=BASELINE_METHOD, method_options=None)
    own = records[(records["task"] == variant.task) & (records["model"] == model)]
    if "model_path" in own.columns and own["model_path"].notna().any():
        own = own[own["model_path"].notna()]
    if own.empty:
        known = sorted(set(records.loc[records["task"] == variant.task, "model"].astype(str)))
        raise ConfigError(
            f"no record of model {model!r} in task {variant.task!r} to compare {variant.variant} with",
            f"after {BASELINE_SEP} name a model of that task: {', '.join(known)}",
        )
    row = own.iloc[-1]
    return replace(variant, model=model, method=BASELINE_METHOD, method_name=BASELINE_METHOD, method_options=None,
                   model_path=_value(row, "model_path"), model_key=_value(row, "model_key"))  # fmt: skip


def select_cases(
    records: pd.DataFrame,
    batch_size: int = DEFAULT_BATCH_SIZE,
    task: str | None = None,
    variants: Sequence[str] | None = None,
    config: str | None = None,
) -> list[Case]:
    """What to crosscheck, from a run's current records.

    ``variants`` are ``model:method`` as records name them, or ``model:method@other-model`` to compare with
    another model's fp32 (a student with its teacher). Without them: per task, the ``TOP_VARIANTS`` non-fp32
    variants with the highest recorded throughput at ``batch_size``, each against its own model's fp32.
    """
    if task is not None:
        tasks = sorted(set(records["task"].dropna().astype(str)))
        if task not in tasks:
            raise ConfigError(f"task {task!r} is not in this run (it has: {', '.join(tasks)})",
                              f"use --task with one of: {', '.join(tasks)}")  # fmt: skip
        records = records[records["task"] == task]
    rows = _batch_rows(records, batch_size)
    chosen: list[tuple[pd.Series, str | None]] = []
    if variants:
        for spec in variants:
            name, _, other = spec.partition(BASELINE_SEP)
            match = rows[rows["variant"] == name]
            if match.empty:
                known = sorted(set(rows["variant"].astype(str)))
                raise ConfigError(
                    f"variant {name!r} has no ok batch record at batch size {batch_size}"
                    + (f" in task {task!r}" if task else ""),
                    f"use model:method as the records name it, one of: {', '.join(known)}",
                )
            row = match.iloc[-1]
            if row["method"] == BASELINE_METHOD and (not other or other == row["model"]):
                raise ConfigError(
                    f"{name} is the fp32 every speed-up is measured against",
                    f"name a compressed variant, or compare it with another model: {name}{BASELINE_SEP}<model>",
                )
            chosen.append((row, other or None))
    else:
        for _, group in rows[rows["method"] != BASELINE_METHOD].groupby("task", sort=True):
            top = group.sort_values("throughput", ascending=False, kind="stable").head(TOP_VARIANTS)
            chosen += [(row, None) for _, row in top.iterrows()]
        if not chosen:
            raise ConfigError(f"no compressed variant has a batch record at batch size {batch_size}",
                              "run methods other than fp32 first, or name variants with --variants")  # fmt: skip
    cases = []
    for row, other in chosen:
        job = _job(row, batch_size, config)
        base_model = other or job.model
        base_job = _baseline_job(records, job, base_model)
        base_row = _fp32_row(rows, job.task, base_model)
        figures = record_speedup(row, base_row, own_baseline=base_model == job.model)
        cases.append(Case(variant=job, baseline=base_job, **figures))
    return cases


def paired_speedup(variant: Sequence[float], baseline: Sequence[float]) -> tuple[float, float, float]:
    """Median, min and max of the per-round ratios variant / baseline (throughputs of the same rounds)."""
    ratios = [v / b for v, b in zip(variant, baseline, strict=True) if b > 0]
    if not ratios:
        raise ValueError("no round with both throughputs")
    return statistics.median(ratios), min(ratios), max(ratios)


def compare(
    record: float | None, crosscheck: float | None, tolerance: float = TOLERANCE
) -> tuple[float | None, bool | None]:
    """(crosscheck / record - 1, whether that is within ``tolerance``); (None, None) when one is missing."""
    if record is None or crosscheck is None or record <= 0:
        return None, None
    diff = crosscheck / record - 1.0
    return diff, abs(diff) <= tolerance + 1e-12


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> list[list[str]]:
    """Batches of texts of similar length (as the benchmark's dynamic padding point builds them)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [[texts[i] for i in order[j : j + batch_size]] for j in range(0, len(order), batch_size)]


def _load(job: Job):
    """The job's model, as the run loaded it: a registered spec when its key matches, else the checkpoint."""
    if job.config:
        use_config(job.config)
    registered = MODELS.get(job.model) if job.model in MODELS else None
    if registered is not None and job.model_key in (None, registered.key):
        return load_model(registered, train=False, progress=False)
    if job.model_path and Path(job.model_path).exists():
        spec = resolve_model(job.model_path)
        if registered is not None:  # the recipe changed since: its family, prefix and task still hold
            spec = registered.with_overrides(base=job.model_path, recipe=None)
        return load_model(spec, train=False, progress=False)
    raise ModelError(
        f"the checkpoint {job.variant} was measured with ({job.model_path}) is gone",
        "rerun the run's sweep (accelbench run) so that its records match the cached models",
    )


def _one_pass(predictor, kind: str, batches: list[list[str]], job: Job) -> None:
    for batch in batches:
        if kind == "classification":
            predictor.classify(batch, padding=PADDING, max_length=job.max_length)
        else:
            predictor.generate(
                batch, job.max_new_tokens, job.num_beams, padding=PADDING, max_length=job.max_length
            )


def worker_main(argv: Sequence[str] | None = None) -> int:
    """The child: load the variant, warm up, then one timed turn per ``GO <passes>`` line until stdin ends."""
    argv = sys.argv[1:] if argv is None else argv
    job = Job(**json.loads(argv[0]))
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    # the protocol keeps the real stdout; whatever a library prints (exporters do) goes to stderr, the log
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        import torch

        if job.threads:
            torch.set_num_threads(job.threads)
        task = get_task(job.task)
        texts = [str(t) for t in eval_split(job.task, job.n_eval)[task.input_column]]
        batches = length_sorted_batches(texts, job.batch_size)
        loaded = _load(job)
        method = get_method({"name": job.method_name, **json.loads(job.method_options or "{}")})
        if method.label != job.method:
            raise ConfigError(
                f"rebuilt method {method.label!r} is not the recorded {job.method!r}", "rerun the sweep"
            )
        predictor = method.apply(loaded).predictor
        _one_pass(predictor, task.kind, batches, job)  # warm-up
        print(f"READY {len(texts)} {len(batches)} {torch.get_num_threads()}", file=protocol)
        for line in sys.stdin:
            words = line.split()
            if words and words[0] == "GO":
                for _ in range(int(words[1]) if len(words) > 1 else 1):
                    _one_pass(predictor, task.kind, batches, job)
                print("DONE", file=protocol)
        predictor.close()
        return 0
    except BaseException as e:
        message = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
        print("ERROR " + " ".join(str(message).split()), file=protocol)
        logger.exception("crosscheck child failed")
        return 1


class ChildError(RuntimeError):
    """A child that failed, timed out or said something unexpected."""


class _Child:
    """A child process running ``worker_main`` for one job; its stderr goes to a log file."""

    def __init__(self, job: Job, log_path: Path) -> None:
        self.job = job
        self.log_path = log_path
        self._log = self.log_path.open("w")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        code = "import sys; from accelbench.crosscheck import worker_main; sys.exit(worker_main())"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(asdict(job))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env,
        )  # fmt: skip
        self._buffer = b""
        self.n_samples = 0
        self.threads: int | None = None

    def _tail(self) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        return " ".join(text.split())

    def expect(self, word: str, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildError(f"no {word} from the child within {timeout:.0f} s")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self.proc.wait()
                    raise ChildError(f"the child exited (code {code}) before {word}: ... {self._tail()}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        words = line.decode(errors="replace").split()
        if words and words[0] == "ERROR":
            raise ChildError(" ".join(words[1:]))
        if not words or words[0] != word:
            raise ChildError(f"expected {word} from the child, got {line[:200]!r}")
        return words[1:]

    def ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        words = self.expect("READY", timeout)
        self.n_samples, self.threads = int(words[0]), int(words[2])

    def turn(self, passes: int, timeout: float = TURN_TIMEOUT_S) -> float:
        """Samples per second of ``passes`` full passes, timed here, outside the child."""
        start = time.perf_counter()
        self.proc.stdin.write(f"GO {passes}\n".encode())
        self.proc.stdin.flush()
        self.expect("DONE", timeout)
        return passes * self.n_samples / (time.perf_counter() - start)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            self._log.close()


def _time_task(jobs: list[Job], passes: int, rounds: int, log_dir: Path, progress: bool) -> dict[Job, Any]:
    """One child per job, all started at once; then ``rounds`` rounds in which each takes a turn.

    Returns per job its throughput in each round (None for a round it did not run) and its error, if any.
    """
    children = {job: _Child(job, log_dir / f"child-{i}.log") for i, job in enumerate(jobs)}
    errors: dict[Job, str] = {}
    runs: dict[Job, list[float | None]] = {job: [] for job in jobs}
    try:
        for job, child in children.items():
            try:
                child.ready()
                logger.info("%s ready (%d samples, %s threads)", job.variant, child.n_samples, child.threads)
            except ChildError as e:
                errors[job] = str(e)
                logger.error("%s: %s", job.variant, e)
        for r in range(rounds):
            order = jobs if r % 2 == 0 else jobs[::-1]  # neither child always follows the other
            for job in order:
                value = None
                if job not in errors:
                    time.sleep(SETTLE_S)
                    try:
                        value = children[job].turn(passes)
                    except ChildError as e:
                        errors[job] = str(e)
                        logger.error("%s: %s", job.variant, e)
                runs[job].append(value)
            if progress:
                done = ", ".join(f"{j.variant} {v[-1]:.1f}/s" for j, v in runs.items() if v[-1] is not None)
                logger.info("crosscheck round %d/%d: %s", r + 1, rounds, done)
    finally:
        for child in children.values():
            child.close()
    return {job: (runs[job], errors.get(job)) for job in jobs}


def _case_row(case: Case, timed: dict[Job, Any]) -> dict[str, Any]:
    (v_runs, v_error), (b_runs, b_error) = timed[case.variant], timed[case.baseline]
    pairs = [(v, b) for v, b in zip(v_runs, b_runs, strict=True) if v is not None and b is not None]
    median = low = high = None
    if pairs:
        median, low, high = paired_speedup([v for v, _ in pairs], [b for _, b in pairs])
    diff, agree = compare(case.record, median)
    errors = [e for e in (v_error, b_error) if e]
    return {
        "task": case.variant.task, "variant": case.variant.variant, "baseline": case.baseline.variant,
        "batch_size": case.variant.batch_size, "record_speedup": case.record,
        "record_ci_low": case.record_ci_low, "record_ci_high": case.record_ci_high,
        "record_source": case.record_source, "crosscheck_speedup": median, "crosscheck_min": low,
        "crosscheck_max": high, "crosscheck_ratios": [round(v / b, 4) for v, b in pairs],
        "variant_samples_per_s": [None if v is None else round(v, 3) for v in v_runs],
        "baseline_samples_per_s": [None if b is None else round(b, 3) for b in b_runs],
        "relative_difference": diff, "agree": agree, "error": "; ".join(errors) or None,
    }  # fmt: skip


def _check_counts(passes: int, rounds: int) -> None:
    for name, value in (("passes", passes), ("rounds", rounds)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}", f"use e.g. --{name} 1")


def run_crosscheck(
    run_dir: str | Path,
    task: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    variants: Sequence[str] | None = None,
    passes: int = DEFAULT_PASSES,
    rounds: int = DEFAULT_ROUNDS,
    progress: bool = True,
) -> dict[str, Any]:
    """Re-time the run's speed-ups (``select_cases``) in child processes; writes and returns crosscheck.json.

    Bad input (no such run, task, batch size or variant) raises ConfigError before any child starts; a child
    that fails leaves its rows with an ``error`` and no crosscheck figure, and the others go on.
    """
    _check_counts(passes, rounds)
    run_dir = Path(run_dir)
    records = read_run_records(run_dir)
    cases = select_cases(records, batch_size, task, variants, _run_config(run_dir))
    rows = []
    with tempfile.TemporaryDirectory(prefix="accelbench-crosscheck-") as logs:
        for name in sorted({c.variant.task for c in cases}):
            task_cases = [c for c in cases if c.variant.task == name]
            jobs = list(dict.fromkeys(j for c in task_cases for j in (c.baseline, c.variant)))
            timed = _time_task(jobs, passes, rounds, Path(logs), progress)
            rows += [_case_row(c, timed) for c in task_cases]
    report = {
        "run": run_dir.name, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "batch_size": batch_size,
        "padding": PADDING, "passes": passes, "rounds": rounds, "tolerance": TOLERANCE, "timer": TIMER,
        "env_cpu_model": collect_environment().get("env_cpu_model"), "rows": rows,
    }  # fmt: skip
    (run_dir / CROSSCHECK_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def crosscheck_table(rows: Iterable[dict[str, Any]], tolerance: float = TOLERANCE) -> str:
    """The report's rows side by side: the record's speed-up [interval], the crosscheck's (range), agreement."""
    body = []
    for r in rows:
        record = _times(r["record_speedup"])
        if r.get("record_ci_low") is not None and r.get("record_ci_high") is not None:
            record += f" [{r['record_ci_low']:.2f}, {r['record_ci_high']:.2f}]"
        check = _times(r["crosscheck_speedup"])
        if r.get("crosscheck_min") is not None and len(r.get("crosscheck_ratios") or []) > 1:
            check += f" ({r['crosscheck_min']:.2f}–{r['crosscheck_max']:.2f})"
        diff = "–" if r["relative_difference"] is None else f"{100 * r['relative_difference']:+.1f}%"
        agree = {True: "yes", False: "NO", None: "–"}[r["agree"]]
        if r.get("error"):
            agree = f"error: {r['error'][:200]}"
        body.append([r["task"], r["variant"], r["baseline"], r["batch_size"], record, check, diff, agree])
    headers = ["task", "variant", "against", "batch", "record speed-up", "crosscheck speed-up", "difference",
               f"agree (within {100 * tolerance:.0f}%)"]  # fmt: skip
    return markdown_table(headers, body, right=[False, False, False, True, True, True, True])
