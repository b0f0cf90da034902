"""The crosscheck's child processes: ``worker_main`` (the child) and ``_Child`` / ``time_task`` (the parent's side).

Each child loads its variant through the package, builds length-sorted batches of the task's evaluation
texts, does one warm-up pass, prints ``READY`` and then, for every ``GO <passes>`` line on its stdin, runs
that many full passes and prints ``DONE``; the parent times each turn from sending ``GO`` to reading ``DONE``.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..config import use_config
from ..exceptions import ConfigError, ModelError
from ..methods import get_method
from ..models import MODELS, apply_task_prefix, resolve_model
from ..tasks import eval_split, get_task, task_inputs
from ..training import load_model
from .cases import LOG_TAIL_CHARS, PADDING, READY_TIMEOUT_S, SETTLE_S, TURN_TIMEOUT_S, Job

logger = logging.getLogger(__name__)


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
        texts = task_inputs(task, eval_split(job.task, job.n_eval))
        batches = length_sorted_batches(texts, job.batch_size)
        loaded = apply_task_prefix(_load(job), task)
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
        code = "import sys; from accelbench.crosscheck.worker import worker_main; sys.exit(worker_main())"
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


def time_task(jobs: list[Job], passes: int, rounds: int, log_dir: Path, progress: bool) -> dict[Job, Any]:
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
