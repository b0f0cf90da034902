"""Tasks: what to predict, from which data, scored by which metric; a registry of them.

A task is a small registered definition. Built-ins: ``sst2`` (binary sentiment, GLUE) and
``multi30k`` (English->German translation). Users add their own CSV/TSV/JSONL task in YAML
with a column mapping (``register_task_from_dict`` / the ``tasks:`` section of a sweep config).

Every loader returns a ``datasets.DatasetDict`` with normalised columns:
classification -> ``text``, ``label`` (int index into ``label_names``); seq2seq -> ``source``, ``target``.
Local files are read through the datasets library's csv/json/text builders; users with network
access can load the same tasks from the hub (``source="hub"``).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import ConfigError, DataError
from .paths import data_dir
from .registry import Registry

logger = logging.getLogger(__name__)

KINDS = ("classification", "seq2seq")
FAMILY_FOR_KIND = {"classification": "bert", "seq2seq": "t5"}  # the model family that can do each kind
FORMATS = ("tsv", "csv", "json", "parallel-text")
SOURCES = ("auto", "local", "hub")
PRIMARY_METRIC = {"classification": "accuracy", "seq2seq": "bleu"}


@dataclass
class Task:
    """A task definition. ``files`` maps split name -> path (relative to ``data_dir()/folder``)."""

    name: str
    kind: str
    files: dict[str, Any]
    format: str
    train_split: str = "train"
    eval_split: str = "dev"
    validation_split: str | None = None
    folder: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    source_column: str = "source"
    target_column: str = "target"
    label_names: list[str] = field(default_factory=list)
    hub: dict[str, Any] | None = None
    base_dir: Path | None = None  # for user tasks: paths are relative to their YAML file
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"task {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}",
                "set `kind: classification` or `kind: seq2seq`",
            )
        if self.format not in FORMATS:
            raise ConfigError(
                f"task {self.name!r}: format must be one of {', '.join(FORMATS)}, got {self.format!r}",
                "set `format:` to tsv, csv, json (JSON lines) or parallel-text",
            )
        if self.kind == "classification" and len(self.label_names) < 2:
            raise ConfigError(
                f"task {self.name!r}: a classification task needs at least two label_names",
                "list the labels in index order, e.g. `label_names: [negative, positive]`",
            )
        for split in (self.train_split, self.eval_split):
            if split not in self.files and not self.hub:
                raise ConfigError(
                    f"task {self.name!r}: split {split!r} has no file (files: {', '.join(self.files) or 'none'})",
                    f"add `{split}: <path>` under `files:`",
                )

    @property
    def metric(self) -> str:
        return PRIMARY_METRIC[self.kind]

    @property
    def family(self) -> str:
        """The model family that can do this task (bert for classification, t5 for seq2seq)."""
        return FAMILY_FOR_KIND[self.kind]

    @property
    def reference_column(self) -> str:
        return "label" if self.kind == "classification" else "target"

    @property
    def input_column(self) -> str:
        return "text" if self.kind == "classification" else "source"

    def local_dir(self) -> Path:
        if self.base_dir is not None:
            return self.base_dir
        return data_dir() / (self.folder or self.name)

    def local_paths(self, split: str) -> list[Path]:
        spec = self.files[split]
        specs = list(spec.values()) if isinstance(spec, dict) else [spec]
        return [Path(p) if Path(p).is_absolute() else self.local_dir() / p for p in specs]

    def has_local_files(self) -> bool:
        return all(p.exists() for s in self.files for p in self.local_paths(s))


TASKS: Registry[Task] = Registry("task", "use a built-in task or define it under `tasks:` in the config")


def register_task(task: Task, overwrite: bool = False) -> Task:
    return TASKS.register(task.name, task, overwrite=overwrite)


def register_task_from_dict(name: str, spec: dict[str, Any], base_dir: Path | None = None) -> Task:
    """Register a user task written in YAML (no code): kind, format, files, columns, label_names."""
    allowed = {
        "kind", "format", "files", "train_split", "eval_split", "validation_split", "text_column",
        "label_column", "source_column", "target_column", "label_names", "description", "hub",
    }  # fmt: skip
    unknown = set(spec) - allowed
    if unknown:
        raise ConfigError(
            f"task {name!r}: unknown field(s) {', '.join(sorted(unknown))}",
            f"use only: {', '.join(sorted(allowed))}",
        )
    if "files" not in spec or not isinstance(spec["files"], dict):
        raise ConfigError(
            f"task {name!r}: no `files:` mapping", "add `files: {train: train.csv, dev: dev.csv}`"
        )
    task = Task(name=name, base_dir=base_dir or Path.cwd(), **spec)
    return register_task(task, overwrite=True)


def get_task(name: str) -> Task:
    return TASKS.get(name)


def list_tasks() -> list[str]:
    return sorted(TASKS.names())


def _read_local(task: Task):
    import datasets

    datasets.disable_progress_bars()  # one bar per tiny split is noise; our loops have their own bars
    missing = [str(p) for s in task.files for p in task.local_paths(s) if not p.exists()]
    if missing:
        raise DataError(
            f"task {task.name!r}: data file(s) not found: {', '.join(missing)}",
            "run `make data` (copies ../shared/data into data/), set ACCELBENCH_DATA_DIR to the folder "
            "that holds them, or load from the hub with source='hub'",
        )
    paths = {s: [str(p) for p in task.local_paths(s)] for s in task.files}
    if task.format in ("tsv", "csv", "json"):
        kw = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if task.format == "tsv" else {}
        try:
            return datasets.load_dataset("json" if task.format == "json" else "csv", data_files=paths, **kw)
        except Exception as e:  # datasets reports an empty file as "corresponds to no data"
            empty = "no data" in str(e)
            raise DataError(
                f"task {task.name!r}: {'a split is empty' if empty else 'cannot read'} "
                f"{', '.join(p for v in paths.values() for p in v)} ({type(e).__name__}: {str(e)[:200]})",
                "point the task at files with a header row and at least one data row"
                if empty
                else f"check that the files are valid {task.format.upper()} with the named columns",
            ) from e
    # parallel-text: each split is {source_column: file, target_column: file}, line i aligned with line i
    out = {}
    for split, spec in task.files.items():
        cols = {}
        for col in spec:
            (path,) = [p for p in task.local_paths(split) if p.name == Path(spec[col]).name]
            cols[col] = datasets.load_dataset("text", data_files={split: str(path)})[split]["text"]
        lengths = {c: len(v) for c, v in cols.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(
                f"task {task.name!r}, split {split!r}: the parallel files are not line-aligned ({lengths})",
                "give files with the same number of lines, line i of one translating line i of the other",
            )
        out[split] = datasets.Dataset.from_dict(cols)
    return datasets.DatasetDict(out)


def _read_hub(task: Task):
    import datasets

    if not task.hub:
        raise DataError(f"task {task.name!r} has no hub source", "provide local files (see data/README.md)")
    try:
        ds = datasets.load_dataset(task.hub["path"], task.hub.get("name"))
    except Exception as e:  # network errors come in many types
        raise DataError(
            f"task {task.name!r}: could not load {task.hub['path']} from the hub ({type(e).__name__}: {e})",
            "without network, run `make data` to use the local copies in data/",
        ) from e
    renamed = datasets.DatasetDict({task.hub.get("splits", {}).get(k, k): v for k, v in ds.items()})
    return renamed.rename_columns({k: v for k, v in task.hub.get("columns", {}).items()})


def _normalise(task: Task, ds):
    """Rename to the standard columns, map string labels to indices, check labels and emptiness."""
    import datasets

    cols = (
        {task.text_column: "text", task.label_column: "label"}
        if task.kind == "classification"
        else {task.source_column: "source", task.target_column: "target"}
    )
    out = {}
    for split, d in ds.items():
        missing = [c for c in cols if c not in d.column_names]
        if missing:
            raise DataError(
                f"task {task.name!r}, split {split!r}: column(s) {', '.join(missing)} not found; "
                f"the file has: {', '.join(d.column_names)}",
                "set text_column/label_column (or source_column/target_column) to the file's column names",
            )
        d = d.select_columns(list(cols)).rename_columns({k: v for k, v in cols.items() if k != v})
        if len(d) == 0:
            raise DataError(
                f"task {task.name!r}: split {split!r} is empty", "point the task at a file with rows"
            )
        if task.kind == "classification":
            d = _check_labels(task, split, d)
        out[split] = d
    return datasets.DatasetDict(out)


def _check_labels(task: Task, split: str, d):
    names = [str(n) for n in task.label_names]
    labels = d["label"]
    index = {n: i for i, n in enumerate(names)}
    mapped = []
    for row, v in enumerate(labels):
        if isinstance(v, str) and v in index:
            mapped.append(index[v])
        elif isinstance(v, str) and v.strip().lstrip("-").isdigit() and 0 <= int(v) < len(names):
            mapped.append(int(v))
        elif isinstance(v, int | float) and float(v).is_integer() and 0 <= int(v) < len(names):
            mapped.append(int(v))
        else:
            raise DataError(
                f"task {task.name!r}, split {split!r}, row {row}: label {v!r} is outside the label set "
                f"{names} (indices 0..{len(names) - 1})",
                "fix the data, or list every label under `label_names:` in index order",
            )
    return d.remove_columns("label").add_column("label", mapped)


def load_task(name: str, source: str = "auto"):
    """Load a task's splits as a normalised ``DatasetDict``.

    ``source``: ``local`` reads files from ``data_dir()``; ``hub`` loads from the Hugging Face hub;
    ``auto`` uses local files when present, else the hub.
    """
    if source not in SOURCES:
        raise ConfigError(
            f"data source must be one of {', '.join(SOURCES)}, got {source!r}", "use source='auto'"
        )
    task = get_task(name)
    use_local = source == "local" or (source == "auto" and (task.has_local_files() or not task.hub))
    ds = _read_local(task) if use_local else _read_hub(task)
    for split in (task.train_split, task.eval_split):
        if split not in ds:
            raise DataError(
                f"task {name!r}: split {split!r} missing (found {', '.join(ds)})",
                "name the split's file under `files:` or fix train_split/eval_split",
            )
    ds = _normalise(task, ds)
    logger.info("loaded task %s from %s: %s", name, "local files" if use_local else "the hub",
                {k: len(v) for k, v in ds.items()})  # fmt: skip
    return ds


def eval_split(name: str, n: int | None = None, source: str = "auto"):
    """The evaluation split (first ``n`` rows when given) — what quality and speed are measured on."""
    task = get_task(name)
    d = load_task(name, source)[task.eval_split]
    if n is not None:
        if n <= 0:
            raise ConfigError(f"n_eval must be positive, got {n}", "use a positive number or leave it unset")
        d = d.select(range(min(n, len(d))))
    return d


register_task(
    Task(
        name="sst2",
        kind="classification",
        format="tsv",
        files={"train": "train.tsv", "dev": "dev.tsv"},
        eval_split="dev",
        text_column="sentence",
        label_column="label",
        label_names=["negative", "positive"],
        hub={"path": "glue", "name": "sst2", "splits": {"validation": "dev"}},
        description="GLUE SST-2 binary sentiment (67,349 train / 872 dev sentences)",
    )
)
register_task(
    Task(
        name="multi30k",
        kind="seq2seq",
        format="parallel-text",
        files={
            "train": {"en": "train.en.gz", "de": "train.de.gz"},
            "val": {"en": "val.en.gz", "de": "val.de.gz"},
            "test_2016_flickr": {"en": "test_2016_flickr.en.gz", "de": "test_2016_flickr.de.gz"},
        },
        eval_split="test_2016_flickr",
        validation_split="val",
        source_column="en",
        target_column="de",
        hub={"path": "bentrevett/multi30k", "splits": {"validation": "val", "test": "test_2016_flickr"}},
        description="Multi30k task 1 English->German (29,000 train / 1,014 val / 1,000 test_2016_flickr)",
    )
)
