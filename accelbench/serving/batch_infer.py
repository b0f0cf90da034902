"""``accelbench batch-infer``: a variant's prediction for every row of a large CSV/TSV/JSONL file, on Ray Data.

Why Ray Data: the same command runs on one machine (a small local Ray started here) and on a cluster (when
``RAY_ADDRESS`` is set) without a change. The driver reads the input and writes the output, so a cluster needs
no shared file system; Ray Data streams the rows through a fixed pool of actors (``map_batches`` with an
``ActorPoolStrategy``), each actor holding one ``Served`` built by ``variant.build_variant`` (the variant
served is the variant measured). Outputs come back shard by shard into ``batch_shards.ShardStore``, which makes
the job resumable and checks the merged output row by row.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from ..exceptions import AccelbenchError, ConfigError
from ..methods import get_method
from ..tasks import get_task
from ..version import __version__
from .batch_shards import (
    DEFAULT_SHARD_ROWS,
    ID_COLUMN,
    KEEP_PREFIX,
    OUTPUT_FORMATS,
    ShardStore,
    file_format,
    read_shards,
)
from .ray_session import RaySession, ray_session, require_ray, worker_env
from .variant import VariantSpec, build_variant

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32
DEFAULT_ACTORS = 1
DEFAULT_THREADS_PER_ACTOR = 1
STATS_SUFFIX = ".stats.json"


@dataclass(frozen=True)
class BatchJob:
    """One batch-inference job. ``spec.threads`` is each actor's intra-op thread count."""

    input: Path
    output: Path
    spec: VariantSpec
    text_column: str | None = None  # None: the task's text (or source) column
    pair_column: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    actors: int = DEFAULT_ACTORS
    cpus_per_actor: float | None = (
        None  # None: the actor's threads, capped so that all actors fit the cluster
    )
    shard_rows: int = DEFAULT_SHARD_ROWS
    limit: int | None = None  # only the first `limit` rows (a quick try before the long run)
    resume: bool = True
    keep_columns: tuple[str, ...] = ()  # input columns copied into the output rows; ("all",): every one

    def __post_init__(self) -> None:
        for name, flag in (
            ("batch_size", "--batch-size"),
            ("actors", "--actors"),
            ("shard_rows", "--shard-rows"),
        ):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"{flag} must be at least 1, got {getattr(self, name)}", f"pass {flag} 1 or more"
                )
        if self.limit is not None and self.limit < 1:
            raise ConfigError(
                f"--limit must be at least 1, got {self.limit}", "pass --limit 1 or more, or leave it out"
            )
        if self.cpus_per_actor is not None and self.cpus_per_actor <= 0:
            raise ConfigError(
                f"--cpus-per-actor must be above 0, got {self.cpus_per_actor}",
                "pass e.g. --cpus-per-actor 0.5",
            )
        file_format(Path(self.output), OUTPUT_FORMATS, "output")
        if Path(self.input).resolve() == Path(self.output).resolve():
            raise ConfigError("--output is the --input file", "write the predictions to another file")

    @property
    def threads(self) -> int:
        return self.spec.threads or DEFAULT_THREADS_PER_ACTOR


class _Predict:
    """The actor: one ``Served`` per actor, built once; each call predicts one batch of rows."""

    def __init__(self, spec: VariantSpec):
        self.served = build_variant(spec)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        texts = batch["text"].tolist()
        items = list(zip(texts, batch["pair"].tolist(), strict=True)) if "pair" in batch else texts
        outs = self.served.predict(items)
        return pd.DataFrame({ID_COLUMN: batch[ID_COLUMN].to_numpy(), "result": [json.dumps(o) for o in outs]})


def default_text_column(task_name: str) -> str:
    task = get_task(task_name)
    return task.text_column if task.kind == "classification" else task.source_column


def stats_path(output: Path) -> Path:
    return output.with_name(output.name + STATS_SUFFIX)


def run_batch_infer(
    job: BatchJob, progress: bool = True, on_shard: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Predict every input row, resuming finished shards; merge, verify, write the stats sidecar, return it.

    ``on_shard(k)`` is called after shard ``k`` is safely on disk (a hook for progress reporting and tests).
    """
    t0 = time.perf_counter()
    get_method(job.spec.method)  # unknown names fail here, in one line, before Ray starts
    text_column = job.text_column or default_text_column(job.spec.task)
    shards = read_shards(
        Path(job.input), text_column, job.pair_column, job.shard_rows, job.limit, keep=job.keep_columns
    )
    sizes = [len(s) for s in shards]
    store = ShardStore(Path(job.output), _identity(job, text_column), sizes)
    done = store.open(job.resume)
    skipped = sorted(done)
    pending = [k for k in range(len(shards)) if k not in done]
    if skipped:
        logger.info("resuming: %d of %d shards already done in %s", len(skipped), len(shards), store.parts)
    timing: dict[str, Any] = {"seconds": 0.0, "first_s": None, "first_rows": 0}
    ray_info, cpus = None, None
    if pending:
        with ray_session() as session:
            ray_info, cpus = session.to_dict(), _cpus_per_actor(job, session)
            try:
                timing = _run_pipeline(
                    job, shards, pending, store, done, text_column, cpus, progress, on_shard
                )
            except (KeyboardInterrupt, Exception) as e:
                logger.warning(
                    "stopped: %d of %d shards are saved in %s; rerun the same command to resume",
                    len(done), len(shards), store.parts,
                )  # fmt: skip
                user = _user_error(e)
                if user is not None:
                    raise user from None
                raise
    rows_out = store.merge()
    rows_in = sum(sizes)
    if rows_out != rows_in:
        raise RuntimeError(f"merged {rows_out} rows but the input has {rows_in}")
    processed = sum(sizes[k] for k in pending)
    seconds = timing["seconds"]
    stats = {
        "input": str(job.input),
        "output": str(job.output),
        "variant": job.spec.label,
        "task": job.spec.task,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "verified": True,  # merge checked ids 0..rows-1, each once, in input order
        "rows_processed": processed,
        "shards": len(shards),
        "shards_skipped": len(skipped),
        "seconds": round(seconds, 3),
        "rows_per_s": round(processed / seconds, 2) if seconds > 0 else None,
        "steady_rows_per_s": _steady(processed, timing),
        "total_seconds": round(time.perf_counter() - t0, 3),
        "batch_size": job.batch_size,
        "actors": job.actors,
        "threads_per_actor": job.threads,
        "cpus_per_actor": cpus,
        "shard_rows": job.shard_rows,
        "ray": ray_info,
        "accelbench": __version__,
    }
    stats_path(Path(job.output)).write_text(json.dumps(stats, indent=1) + "\n")
    return stats


def _run_pipeline(
    job: BatchJob,
    shards: list[pd.DataFrame],
    pending: list[int],
    store: ShardStore,
    done: set[int],
    text_column: str,
    cpus: float,
    progress: bool,
    on_shard: Callable[[int], None] | None,
) -> dict[str, Any]:
    """Stream the pending shards through the actor pool; write each shard as soon as all of its rows are back."""
    require_ray()
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # our bar counts rows written; Ray's would interleave with it
    ctx.print_on_execution_start = False
    start = time.perf_counter()
    # one block per shard, with only what the predictors read (kept columns stay here for the output)
    ds = ray.data.from_pandas(
        [shards[k][[c for c in shards[k] if not c.startswith(KEEP_PREFIX)]] for k in pending]
    )
    predicted = ds.map_batches(
        _Predict,
        fn_constructor_kwargs={"spec": job.spec},
        compute=ray.data.ActorPoolStrategy(size=job.actors),
        num_cpus=cpus,
        batch_size=job.batch_size,
        batch_format="pandas",
        runtime_env=worker_env() or None,
    )
    buffers: dict[int, list[tuple[int, str]]] = defaultdict(list)
    timing: dict[str, Any] = {"first_s": None, "first_rows": 0}
    total = sum(len(s) for s in shards)
    initial = total - sum(len(shards[k]) for k in pending)
    with tqdm(total=total, initial=initial, unit="row", desc="batch-infer", disable=not progress) as bar:
        for batch in predicted.iter_batches(batch_size=None, batch_format="pandas"):
            if timing["first_s"] is None:
                timing["first_s"], timing["first_rows"] = time.perf_counter() - start, len(batch)
            touched = set()
            for i, result in zip(batch[ID_COLUMN].tolist(), batch["result"].tolist(), strict=True):
                k = i // job.shard_rows
                buffers[k].append((i, result))
                touched.add(k)
            bar.update(len(batch))
            for k in sorted(touched):
                if len(buffers[k]) == len(shards[k]):
                    store.write(k, _records(shards[k], buffers.pop(k), text_column, job.pair_column), done)
                    if on_shard is not None:
                        on_shard(k)
    if buffers:
        raise RuntimeError(f"Ray Data returned incomplete shards {sorted(buffers)}")
    timing["seconds"] = time.perf_counter() - start
    return timing


def _records(
    shard: pd.DataFrame, results: list[tuple[int, str]], text_column: str, pair_column: str | None
) -> list:
    """The output rows of one shard: id, text(s), the prediction's fields, then the kept input columns (one
    whose name the output already has is written as ``input_<name>``)."""
    first = int(shard[ID_COLUMN].iloc[0])
    texts = shard["text"].tolist()
    pairs = shard["pair"].tolist() if pair_column else None
    kept = {c[len(KEEP_PREFIX) :]: shard[c].tolist() for c in shard.columns if c.startswith(KEEP_PREFIX)}
    out = []
    for i, result in results:
        row: dict[str, Any] = {ID_COLUMN: int(i), text_column: texts[i - first]}
        if pairs is not None:
            row[pair_column] = pairs[i - first]
        row.update(json.loads(result))
        for name, values in kept.items():
            row[f"input_{name}" if name in row else name] = values[i - first]
        out.append(row)
    return out


def _steady(processed: int, timing: dict[str, Any]) -> float | None:
    """Rows/s after the first batch came back: the pool's speed without actor start-up and model loading."""
    first = timing.get("first_s")
    rest = timing["seconds"] - first if first is not None else 0
    if not first or rest <= 0 or processed <= timing["first_rows"]:
        return None
    return round((processed - timing["first_rows"]) / rest, 2)


def _cpus_per_actor(job: BatchJob, session: RaySession) -> float:
    """Logical CPUs each actor reserves: as asked, or its threads capped so that all actors fit at once."""
    if job.cpus_per_actor is None:
        return round(min(float(job.threads), session.cpus / job.actors), 3)
    if job.actors * job.cpus_per_actor > session.cpus:
        raise ConfigError(
            f"{job.actors} actors x {job.cpus_per_actor} CPUs do not fit the {session.cpus:g} CPUs of Ray ({session.address})",
            f"pass --cpus-per-actor {session.cpus / job.actors:g} or fewer --actors",
        )
    return job.cpus_per_actor


def _identity(job: BatchJob, text_column: str) -> dict[str, Any]:
    """What the outputs depend on: a rerun must match this to reuse finished shards."""
    src = Path(job.input).resolve()
    st = src.stat()
    return {
        "input": str(src),
        "input_bytes": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        "text_column": text_column,
        "pair_column": job.pair_column,
        "shard_rows": job.shard_rows,
        "limit": job.limit,
        "keep_columns": list(job.keep_columns),
        "variant": {k: v for k, v in job.spec.to_dict().items() if k != "threads"},
    }


def _user_error(e: BaseException) -> AccelbenchError | None:
    """An accelbench error raised inside an actor, unwrapped from Ray's exception chain."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, AccelbenchError):
            return e
        e = getattr(e, "cause", None) or e.__cause__
    return None


def throughput_vs_actors(
    job: BatchJob, actors: Sequence[int] = (1, 2), workdir: Path | None = None
) -> list[dict[str, Any]]:
    """Run ``job`` afresh with each actor count (one Ray for all); one stats dict per count, in order."""
    out = []
    workdir = Path(workdir or Path(job.output).parent)
    with ray_session():
        for n in actors:
            run = replace(
                job, actors=n, resume=False, output=workdir / f"actors-{n}{Path(job.output).suffix}"
            )
            out.append(run_batch_infer(run, progress=False))
            logger.info("%d actor(s): %s rows/s", n, out[-1]["rows_per_s"])
    return out


def add_subcommand(sub: Any) -> None:
    p = sub.add_parser(
        "batch-infer", help="predict every row of a CSV/TSV/JSONL file on Ray Data (resumable)"
    )
    p.add_argument("--task", required=True)
    p.add_argument("--model", required=True, help="a built-in model name or a checkpoint folder")
    p.add_argument("--method", default="fp32")
    p.add_argument("--input", required=True, type=Path, help="CSV, TSV or JSONL (optionally .gz)")
    p.add_argument(
        "--output", required=True, type=Path, help=".jsonl, .csv or .tsv; parts go to <output>.parts/"
    )
    p.add_argument("--text-column", help="the input's text column (default: the task's)")
    p.add_argument("--pair-column", help="the second text of sentence-pair tasks")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    p.add_argument("--actors", type=int, default=DEFAULT_ACTORS, help="actors, each holding one predictor")
    p.add_argument("--threads-per-actor", type=int, default=DEFAULT_THREADS_PER_ACTOR)
    p.add_argument("--cpus-per-actor", type=float, help="Ray CPUs each actor reserves (default: its threads)")
    p.add_argument("--shard-rows", type=int, default=DEFAULT_SHARD_ROWS, help="rows per resumable shard")
    p.add_argument("--limit", type=int, help="only the first N rows")
    p.add_argument("--keep-columns", nargs="+", default=[], metavar="COLUMN",
                   help="input columns to copy into each output row (e.g. your own key); 'all': every one")  # fmt: skip
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="skip shards finished by an earlier run of the same job (default: on)")  # fmt: skip
    p.add_argument("--config", help="a sweep YAML whose user tasks and models to register")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(fn=cmd_batch_infer)


def cmd_batch_infer(args: argparse.Namespace) -> int:
    spec = VariantSpec(args.task, args.model, args.method, threads=args.threads_per_actor, config=args.config)
    job = BatchJob(
        input=args.input, output=args.output, spec=spec, text_column=args.text_column, pair_column=args.pair_column,
        batch_size=args.batch_size, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
        shard_rows=args.shard_rows, limit=args.limit, resume=args.resume, keep_columns=tuple(args.keep_columns),
    )  # fmt: skip
    if spec.threads is not None and spec.threads < 1:
        raise ConfigError(f"--threads-per-actor must be at least 1, got {spec.threads}", "pass 1 or more")
    try:
        s = run_batch_infer(job, progress=not args.quiet)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; finished shards are kept in {args.output}.parts/: rerun the same command to resume"
        )
        return 130
    print(
        f"{s['rows_out']} rows in, {s['rows_out']} rows out, ids unique and in input order: {args.output}\n"
        f"{s['rows_processed']} rows predicted now ({s['shards_skipped']} of {s['shards']} shards resumed) "
        f"in {s['seconds']:.1f} s: {s['rows_per_s']} rows/s with {s['actors']} actor(s) x {s['threads_per_actor']} "
        f"thread(s), batch {s['batch_size']}; stats: {stats_path(Path(args.output))}"
    )
    return 0
