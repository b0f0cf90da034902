"""Resumable batch output: the input cut into fixed row ranges, each range's output written whole or not at all.

Why: a long batch job gets interrupted (Ctrl-C, a preempted node, a lost driver). Shard ``k`` always holds
input rows ``[k*S, (k+1)*S)`` and its output file appears only complete (written to a temporary file, then
renamed), so a rerun skips exactly the shards on disk and redoes the rest: nothing lost, nothing twice. A
manifest records what the parts were made from, so a rerun against another input or variant is refused
instead of mixing outputs. The merge checks the ids it writes (every input row once, in input order).
No Ray here: this is plain file handling, testable on its own.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import ConfigError, DataError

logger = logging.getLogger(__name__)

DEFAULT_SHARD_ROWS = 2048
MANIFEST_NAME = "manifest.json"
ID_COLUMN = "id"
KEEP_ALL = "all"  # --keep-columns all: every input column besides the text(s)
KEEP_PREFIX = "keep:"  # a kept input column inside a shard (never sent to the predictors)
INPUT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
OUTPUT_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")


def file_format(path: Path, formats: dict[str, str], what: str) -> str:
    """``csv``, ``tsv`` or ``jsonl`` from the file name (a compression suffix such as ``.gz`` is looked through)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    fmt = formats.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise ConfigError(
            f"cannot tell the format of {what} file {path.name!r} from its name",
            f"name it with one of {', '.join(formats)} (optionally followed by .gz)",
        )
    return fmt


def _plain(v: Any) -> Any:
    """A kept value as JSON writes it: NaN (a field a JSON line lacks) becomes None."""
    return None if isinstance(v, float) and math.isnan(v) else v


def _kept_columns(keep: Sequence[str], columns: Sequence, texts: Sequence[str], name: str) -> list:
    """The input columns ``keep`` names (``all``: every one besides the texts), checked against the input's."""
    if list(keep) == [KEEP_ALL]:
        return [c for c in columns if c not in texts]
    missing = [c for c in keep if c not in columns]
    if missing:
        raise ConfigError(
            f"input {name} has no column {missing[0]!r} to keep; its columns: {', '.join(map(str, columns))}",
            "pass --keep-columns with the input's column names, or --keep-columns all",
        )
    return [c for c in dict.fromkeys(keep) if c not in texts]  # the texts are in the output anyway


def read_shards(
    path: Path,
    text_column: str,
    pair_column: str | None,
    shard_rows: int,
    limit: int | None = None,
    keep: Sequence[str] = (),
) -> list[pd.DataFrame]:
    """The input as shards of ``shard_rows`` rows: columns ``id`` (the input row number), ``text`` [, ``pair``],
    and ``keep:<name>`` for each input column to copy into the output (``keep``; ``("all",)``: every column
    besides the text and pair columns)."""
    if not path.is_file():
        raise ConfigError(
            f"input file {str(path)!r} does not exist", "pass an existing CSV, TSV or JSONL file"
        )
    fmt = file_format(path, INPUT_FORMATS, "input")
    wanted = [text_column] + ([pair_column] if pair_column else [])
    if fmt == "jsonl":
        reader = pd.read_json(path, lines=True, chunksize=shard_rows, dtype=False)
    else:  # GLUE-style TSV files are unquoted and their sentences contain quote characters
        kw = {"sep": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
        reader = pd.read_csv(path, chunksize=shard_rows, dtype=str, keep_default_na=False, **kw)
    shards: list[pd.DataFrame] = []
    start = 0
    # the kept columns are decided on the first chunk: every shard (and a CSV output's header) has the same
    kept: list | None = None
    try:
        with reader:
            for chunk in reader:
                missing = [c for c in wanted if c not in chunk.columns]
                if missing:
                    raise ConfigError(
                        f"input {path.name} has no column {missing[0]!r}; its columns: {', '.join(map(str, chunk.columns))}",
                        "pass --text-column (and --pair-column) naming the input's text column(s)",
                    )
                if kept is None:
                    kept = _kept_columns(keep, chunk.columns, wanted, path.name)
                if limit is not None:
                    chunk = chunk.iloc[: max(0, limit - start)]
                if chunk.empty:
                    break
                shard = pd.DataFrame({ID_COLUMN: range(start, start + len(chunk))})
                shard["text"] = chunk[text_column].fillna("").astype(str).to_numpy()
                if pair_column:
                    shard["pair"] = chunk[pair_column].fillna("").astype(str).to_numpy()
                for c in kept:  # as read (JSON numbers stay numbers); a missing JSON field becomes null
                    values = chunk[c].tolist() if c in chunk.columns else [None] * len(chunk)
                    shard[KEEP_PREFIX + str(c)] = pd.Series([_plain(v) for v in values], dtype=object)
                shards.append(shard)
                start += len(chunk)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(
            f"cannot read {path.name} as {fmt.upper()}: {str(e).strip().splitlines()[0][:200]}",
            "check the file's format (one JSON object per line for JSONL; a header row for CSV/TSV)",
        ) from None
    if not shards:
        raise DataError(
            f"input {path.name} has no rows", "pass a file with a header row and at least one row"
        )
    return shards


class ShardStore:
    """The ``<output>.parts/`` folder: ``shard-00012.jsonl`` per finished shard and ``manifest.json``."""

    def __init__(self, output: Path, identity: dict[str, Any], sizes: list[int]):
        self.output = output
        self.parts = output.with_name(output.name + ".parts")
        self.identity = identity
        self.sizes = sizes
        self.starts = [sum(sizes[:k]) for k in range(len(sizes))]

    def shard_path(self, k: int) -> Path:
        return self.parts / f"shard-{k:05d}.jsonl"

    def open(self, resume: bool) -> set[int]:
        """Prepare the folder; the shards already finished (empty unless resuming the same job)."""
        manifest = self.parts / MANIFEST_NAME
        if self.parts.exists() and not resume:
            shutil.rmtree(self.parts)
        self.parts.mkdir(parents=True, exist_ok=True)
        if manifest.exists():
            old = json.loads(manifest.read_text()).get("identity")
            if old != self.identity:
                changed = sorted(
                    k
                    for k in set(old or {}) | set(self.identity)
                    if (old or {}).get(k) != self.identity.get(k)
                )
                raise ConfigError(
                    f"{self.parts} holds parts of another job (different {', '.join(changed) or 'settings'})",
                    "pass --no-resume to start over, or choose another --output",
                )
        done = {k for k in range(len(self.sizes)) if self._complete(k)}
        for stray in self.parts.glob("*.tmp*"):  # a write that an interruption cut short
            stray.unlink()
        self._write_manifest(done)
        return done

    def _complete(self, k: int) -> bool:
        path = self.shard_path(k)
        if not path.exists():
            return False
        with path.open("rb") as f:
            n = sum(1 for _ in f)
        if n != self.sizes[k]:  # cannot happen with atomic writes, unless someone edited the file
            logger.warning("shard %d has %d rows, expected %d: redoing it", k, n, self.sizes[k])
            path.unlink()
            return False
        return True

    def write(self, k: int, records: list[dict[str, Any]], done: set[int]) -> None:
        """Write shard ``k`` atomically (records sorted by id, all of its rows), then note it in the manifest."""
        records = sorted(records, key=lambda r: r[ID_COLUMN])
        ids = [r[ID_COLUMN] for r in records]
        expected = list(range(self.starts[k], self.starts[k] + self.sizes[k]))
        if ids != expected:
            raise RuntimeError(f"shard {k}: got ids {ids[:3]}... ({len(ids)}), expected {len(expected)} rows")
        _atomic_write(self.shard_path(k), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        done.add(k)
        self._write_manifest(done)

    def _write_manifest(self, done: set[int]) -> None:
        body = {
            "identity": self.identity,
            "shards": len(self.sizes),
            "rows": sum(self.sizes),
            "done": sorted(done),
        }
        _atomic_write(self.parts / MANIFEST_NAME, json.dumps(body, indent=1))

    def records(self) -> Iterator[list[dict[str, Any]]]:
        for k in range(len(self.sizes)):
            with self.shard_path(k).open(encoding="utf-8") as f:
                yield [json.loads(line) for line in f]

    def merge(self) -> int:
        """Join the shards into the output in input order, checking every id once; the rows written."""
        fmt = file_format(self.output, OUTPUT_FORMATS, "output")
        tmp = self.output.with_name(self.output.name + f".tmp{os.getpid()}")
        expected = 0
        with tmp.open("w", encoding="utf-8", newline="") as f:
            for k, rows in enumerate(self.records()):
                ids = [r[ID_COLUMN] for r in rows]
                if ids != list(range(expected, expected + len(rows))) or len(rows) != self.sizes[k]:
                    tmp.unlink()
                    raise DataError(
                        f"shard {k} in {self.parts} does not hold rows {expected}..{expected + self.sizes[k] - 1}",
                        "rerun with --no-resume to redo all shards",
                    )
                expected += len(rows)
                if fmt == "jsonl":
                    f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
                else:
                    df = pd.DataFrame([{c: _flat(v) for c, v in r.items()} for r in rows])
                    df.to_csv(f, sep="\t" if fmt == "tsv" else ",", header=k == 0, index=False)
        os.replace(tmp, self.output)
        return expected


def _flat(v: Any) -> Any:
    return json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
