"""Tasks: what to predict, from which data, scored by which metric; a registry of them.

A task is a small registered definition. Built-ins: ``sst2`` (binary sentiment, GLUE) and
``multi30k`` (English->German translation). Users add their own CSV/TSV/JSONL task in YAML
with a column mapping (``register_task_from_dict`` / the ``tasks:`` section of a sweep config).

Every loader returns a ``datasets.DatasetDict`` with normalised columns: classification -> ``text``
(the text columns joined), ``text_pair`` (pair tasks), ``label`` (int index into ``label_names``); seq2seq ->
``source``, ``target``. Files are read as they are by ``taskdata`` (headerless CSV/TSV, JSON lines with nested
fields, gzip), which checks them before any work; users with network access can load a task from the hub
(``source="hub"``). ``task_inputs`` turns a loaded split into what a predictor takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import ConfigError, DataError
from .paths import data_dir
from .registry import Registry
from .taskdata.checks import (
    check_data_dir,
    check_header_row,
    check_reading_fields,
    check_text_fields,
    drop_empty,
)
from .taskdata.files import Table, format_of, read_parallel, read_table
from .taskdata.hub import read_hub
from .taskdata.inputs import DEFAULT_SEPARATOR, column_plan, extract
from .taskdata.inputs import task_inputs as _task_inputs
from .taskdata.labels import LabelMap, infer_label_map, label_map, map_labels

logger = logging.getLogger(__name__)

KINDS = ("classification", "seq2seq")
FAMILY_FOR_KIND = {"classification": "bert", "seq2seq": "t5"}  # the model family that can do each kind
FORMATS = ("tsv", "csv", "json", "parallel-text", "hub")
SOURCES = ("auto", "local", "hub")
PRIMARY_METRIC = {"classification": "accuracy", "seq2seq": "bleu"}  # each kind's default metric
MAX_CACHED = 4  # loaded tasks kept per process
METRICS_FOR_KIND = {
    "classification": ("accuracy", "macro_f1"),
    "seq2seq": ("bleu", "chrf", "rouge", "rouge1", "rouge2", "rougeL", "rougeLsum"),
}


@dataclass
class Task:
    """A task definition. ``files`` maps split name -> path (relative to ``data_dir()/folder``, or for user
    tasks to their YAML file), a list of paths, or for parallel text ``{column: path}``.

    Reading (CSV/TSV/JSON lines, optionally .gz): ``header``, ``columns``, ``delimiter``, ``quotechar``.
    Inputs: ``text_column``, or ``text_columns`` joined by ``text_separator``, plus ``text_pair_column`` for
    sentence pairs. ``label_names``: a list (index order), a mapping from file values to names, or omitted
    (inferred from the training split when the task is loaded).
    """

    name: str
    kind: str
    files: dict[str, Any] = field(default_factory=dict)
    format: str | None = None  # None: from the file names (.csv, .tsv, .jsonl/.json, each optionally .gz)
    train_split: str = "train"
    eval_split: str = "dev"
    validation_split: str | None = None
    folder: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    source_column: str = "source"
    target_column: str = "target"
    label_names: Any = field(default_factory=list)  # list[str] once known; see LabelMap for the forms given
    hub: dict[str, Any] | None = None
    base_dir: Path | None = None  # for user tasks: paths are relative to their YAML file
    description: str = ""
    test_split: str | None = None  # a held-out split that confirms the choice made on eval_split
    metric_name: str | None = None  # None: the kind's default (PRIMARY_METRIC); YAML field `metric:`
    prefix: str | None = None  # prepended to sources for hub T5 checkpoints that carry no prefix
    header: bool | None = None  # None: a header row unless `columns:` is given
    columns: list[str] | None = None
    delimiter: str | None = None
    quotechar: str | None = None
    text_columns: list[str] | None = None
    text_separator: str = DEFAULT_SEPARATOR
    text_pair_column: str | None = None
    # filled when loaded: the label map in use and rows dropped per split (empty texts; see taskdata.checks)
    labels: LabelMap | None = field(default=None, repr=False, compare=False)
    dropped: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"task {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}",
                "set `kind: classification` or `kind: seq2seq`",
            )
        self.format = self.format or self._implied_format()
        if self.format not in FORMATS:
            raise ConfigError(
                f"task {self.name!r}: format must be one of {', '.join(FORMATS)}, got {self.format!r}",
                "set `format:` to tsv, csv, json (JSON lines) or parallel-text (or hub with `hub:`)",
            )
        if self.format == "hub" and not self.hub:
            raise ConfigError(f"task {self.name!r}: `format: hub` needs `hub: {{path: <data set id>}}`",
                              "add `hub: {path: ag_news}` (optionally name:, splits:, columns:)")  # fmt: skip
        if self.hub is not None and (not isinstance(self.hub, dict) or not self.hub.get("path")):
            raise ConfigError(f"task {self.name!r}: `hub:` needs a `path:` (the data set id), got {self.hub!r}",
                              "write `hub: {path: ag_news}` or `hub: {path: glue, name: mnli}`")  # fmt: skip
        self.read_options = check_reading_fields(self)
        check_text_fields(self)
        if self.kind == "classification":
            self.labels = label_map(self.name, self.label_names)
            self.label_names = self.labels.names if self.labels else []
        if self.metric_name is not None and self.metric_name not in METRICS_FOR_KIND[self.kind]:
            raise ConfigError(
                f"task {self.name!r}: metric {self.metric_name!r} does not score {self.kind} tasks",
                f"use one of {', '.join(METRICS_FOR_KIND[self.kind])} (or leave `metric:` out for "
                f"{PRIMARY_METRIC[self.kind]})",
            )
        for split in (self.train_split, self.eval_split, *([self.test_split] if self.test_split else [])):
            if split not in self.files and not self.hub:
                raise ConfigError(
                    f"task {self.name!r}: split {split!r} has no file (files: {', '.join(self.files) or 'none'})",
                    f"add `{split}: <path>` under `files:`",
                )

    def _implied_format(self) -> str | None:
        if not self.files:
            return "hub" if self.hub else None
        spec = next(iter(self.files.values()))
        if isinstance(spec, dict):
            return "parallel-text"
        implied = {format_of(p) for s in self.files.values() for p in ([s] if isinstance(s, str) else s)}
        if len(implied) != 1 or None in implied:
            raise ConfigError(f"task {self.name!r}: cannot tell the format from the file names",
                              "set `format:` to csv, tsv or json")  # fmt: skip
        return implied.pop()

    @property
    def metric(self) -> str:
        """The metric quality is scored by: the task's ``metric:`` or the kind's default."""
        return self.metric_name or PRIMARY_METRIC[self.kind]

    @property
    def family(self) -> str:
        """The model family that can do this task (bert for classification, t5 for seq2seq)."""
        return FAMILY_FOR_KIND[self.kind]

    @property
    def reference_column(self) -> str:
        return "label" if self.kind == "classification" else "target"

    @property
    def input_column(self) -> str:
        """The (first) text of each row; use ``task_inputs`` to get pairs as well."""
        return "text" if self.kind == "classification" else "source"

    def local_dir(self) -> Path:
        if self.base_dir is not None:
            return self.base_dir
        return data_dir() / (self.folder or self.name)

    def local_paths(self, split: str) -> list[Path]:
        spec = self.files[split]
        specs = (
            list(spec.values()) if isinstance(spec, dict) else [spec] if isinstance(spec, str) else list(spec)
        )
        return [Path(p) if Path(p).is_absolute() else self.local_dir() / p for p in specs]

    def has_local_files(self) -> bool:
        return bool(self.files) and all(p.exists() for s in self.files for p in self.local_paths(s))


TASKS: Registry[Task] = Registry("task", "use a built-in task or define it under `tasks:` in the config")
YAML_FIELDS = (
    "kind", "format", "files", "train_split", "eval_split", "validation_split", "test_split", "text_column",
    "text_columns", "text_separator", "text_pair_column", "label_column", "source_column", "target_column",
    "label_names", "description", "hub", "metric", "prefix", "header", "columns", "delimiter", "quotechar",
)  # fmt: skip


_LOADED: dict[tuple, tuple] = {}  # cache key -> (DatasetDict, labels, dropped)


def register_task(task: Task, overwrite: bool = False) -> Task:
    return TASKS.register(task.name, task, overwrite=overwrite)


def register_task_from_dict(name: str, spec: dict[str, Any], base_dir: Path | None = None) -> Task:
    """Register a user task written in YAML (no code): kind, files (or hub), columns, labels."""
    if not isinstance(spec, dict):
        raise ConfigError(f"task {name!r} is not a mapping", "write `kind:`, `files:` and columns under it")
    unknown = set(spec) - set(YAML_FIELDS)
    if unknown:
        raise ConfigError(
            f"task {name!r}: unknown field(s) {', '.join(sorted(unknown))}",
            f"use only: {', '.join(sorted(YAML_FIELDS))}",
        )
    if not isinstance(spec.get("files", {}), dict) or ("files" not in spec and not spec.get("hub")):
        raise ConfigError(
            f"task {name!r}: no `files:` mapping", "add `files: {train: train.csv, dev: dev.csv}` (or `hub:`)"
        )
    spec = dict(spec)
    if "metric" in spec:
        spec["metric_name"] = spec.pop("metric")
    task = Task(name=name, base_dir=base_dir or Path.cwd(), **spec)
    return register_task(task, overwrite=True)


def get_task(name: str) -> Task:
    return TASKS.get(name)


def list_tasks() -> list[str]:
    return sorted(TASKS.names())


def _read_local(task: Task) -> dict[str, list[Table]]:
    missing = [str(p) for s in task.files for p in task.local_paths(s) if not p.exists()]
    if missing:
        raise DataError(
            f"task {task.name!r}: data file(s) not found: {', '.join(missing)}",
            "run `make data` (copies ../shared/data into data/), set ACCELBENCH_DATA_DIR to the folder "
            "that holds them, or load from the hub with source='hub'",
        )
    if task.format != "parallel-text":
        return {s: [read_table(p, task.read_options) for p in task.local_paths(s)] for s in task.files}
    # parallel-text: each split is {source_column: file, target_column: file}, line i aligned with line i
    return {
        s: [
            read_parallel(
                dict(zip(spec, task.local_paths(s), strict=True)), f"task {task.name!r}, split {s!r}"
            )
        ]
        for s, spec in task.files.items()
    }


def _normalise(task: Task, raw: dict[str, list[Table]]):
    """Standard columns (text[, text_pair], label | source, target); empty texts dropped; labels mapped."""
    import datasets

    plan = column_plan(task)
    hint = (
        "; for a file without a header row set `header: false` and `columns:`"
        if task.format in ("csv", "tsv")
        else ""
    )
    cols = {}
    for split, tables in raw.items():
        for table in tables:
            if task.read_options is not None:
                check_header_row(task.name, table, task.read_options)
        c = extract(task.name, split, tables, plan, task.text_separator, hint)
        if len(c) == 0:
            raise DataError(
                f"task {task.name!r}: split {split!r} is empty", "point the task at a file with rows"
            )
        cols[split], task.dropped[split] = drop_empty(task.name, split, c, plan)
    if task.kind == "classification":
        if task.labels is None or task.labels.inferred:
            train = cols[task.train_split]
            where = ", ".join(sorted({str(p) for p, _ in train.where}))
            task.labels = infer_label_map(task.name, train.data["label"], where)
        task.label_names = task.labels.names
        for c in cols.values():
            c.data["label"] = map_labels(task.name, c.data["label"], task.labels, c.where,
                                         header_hint=task.read_options is not None and not task.read_options.header)  # fmt: skip
    return datasets.DatasetDict({s: datasets.Dataset.from_dict(c.data) for s, c in cols.items()})


def _cache_key(task: Task) -> tuple | None:
    try:
        stats = tuple(
            (str(p), p.stat().st_mtime_ns, p.stat().st_size) for s in task.files for p in task.local_paths(s)
        )
    except OSError:
        return None
    return (repr(task), stats)


def load_task(name: str, source: str = "auto"):
    """Load a task's splits as a normalised ``DatasetDict``.

    ``source``: ``local`` reads files from ``data_dir()``; ``hub`` loads from the Hugging Face hub;
    ``auto`` uses local files when present, else the hub. Every check on the data runs here.
    """
    if source not in SOURCES:
        raise ConfigError(
            f"data source must be one of {', '.join(SOURCES)}, got {source!r}", "use source='auto'"
        )
    task = get_task(name)
    if source != "hub" and task.files and task.base_dir is None:
        check_data_dir(name)  # a wrong ACCELBENCH_DATA_DIR is the cause, not the hub
    use_local = source == "local" or (source == "auto" and (task.has_local_files() or not task.hub))
    key = _cache_key(task) if use_local else None
    if key in _LOADED:  # the same definition and unchanged files: parsed once per process
        ds, task.labels, task.dropped = _LOADED[key]
        task.label_names = task.labels.names if task.labels else task.label_names
        return ds
    raw = _read_local(task) if use_local else read_hub(task)
    for split in (task.train_split, task.eval_split, *([task.test_split] if task.test_split else [])):
        if split not in raw:
            raise DataError(
                f"task {name!r}: split {split!r} missing (found {', '.join(raw)})",
                "name the split's file under `files:` or fix train_split/eval_split/test_split",
            )
    ds = _normalise(task, raw)
    if key is not None:
        if len(_LOADED) >= MAX_CACHED:
            del _LOADED[next(iter(_LOADED))]
        _LOADED[key] = (ds, task.labels, dict(task.dropped))
    logger.info("loaded task %s from %s: %s", name, "local files" if use_local else "the hub",
                {k: len(v) for k, v in ds.items()})  # fmt: skip
    return ds


def split_data(name: str, split: str, n: int | None = None, source: str = "auto"):
    """One split of a task (first ``n`` rows when given), normalised as ``load_task`` does."""
    if n is not None and n <= 0:
        raise ConfigError(f"n_eval must be positive, got {n}", "use a positive number or leave it unset")
    ds = load_task(name, source)
    if split not in ds:
        raise DataError(f"task {name!r} has no split {split!r} (found {', '.join(ds)})",
                        "name a split the task's `files:` list")  # fmt: skip
    d = ds[split]
    return d.select(range(min(n, len(d)))) if n is not None else d


def eval_split(name: str, n: int | None = None, source: str = "auto"):
    """The evaluation split (first ``n`` rows when given) — what quality and speed are measured on."""
    return split_data(name, get_task(name).eval_split, n, source)


def label_names(name: str) -> list[str]:
    """The task's class names in index order; inferred labels are read from the training split first."""
    task = get_task(name)
    if (
        task.kind == "classification"
        and (task.labels is None or task.labels.inferred)
        and not task.label_names
    ):
        load_task(name)
    return list(task.label_names)


def task_inputs(task: Task | str, dataset) -> list[str | tuple[str, str]]:
    """What a predictor takes for each row of a loaded split: texts, or (text, text_pair) for pair tasks."""
    return _task_inputs(get_task(task) if isinstance(task, str) else task, dataset)


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
