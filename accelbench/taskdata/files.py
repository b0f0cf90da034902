"""Reading a data file as it is: CSV/TSV with or without a header row, any delimiter and quote character,
JSON lines (or one JSON array) with nested fields, each optionally gzip-compressed.

Every row keeps the line it starts on, so that later checks (labels, empty texts) can name the file and the
line. Decoding errors name the file, the line and the byte. The whole file is decoded before parsing, which
keeps quoted fields with embedded newlines intact (Python's ``csv`` module parses them).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, DataError

FILE_FORMATS = ("csv", "tsv", "json")
DELIMITERS = {"csv": ",", "tsv": "\t"}
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "json", ".json": "json", ".ndjson": "json"}
MAX_FIELD = 1 << 24  # csv's 128 KiB default refuses long documents; 16 MiB per field is plenty
MISSING = object()


@dataclass
class ReadOptions:
    """How to parse a file: ``header`` row present or not, ``columns`` naming a headerless file's columns,
    ``delimiter`` and ``quotechar`` (None: the format's default; TSV reads quotes literally by default)."""

    format: str
    header: bool = True
    columns: list[str] | None = None
    delimiter: str | None = None
    quotechar: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FILE_FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FILE_FORMATS)}, got {self.format!r}",
                              "set `format:` to csv, tsv or json (JSON lines)")  # fmt: skip
        if self.format == "json" and (not self.header or self.columns or self.delimiter or self.quotechar):
            raise ConfigError(
                "header/columns/delimiter/quotechar apply to CSV and TSV files, not JSON lines",
                "drop them for `format: json`; name nested fields with dots, e.g. `text_column: review.body`",
            )
        if not self.header and not self.columns:
            raise ConfigError(
                "a file without a header row (`header: false`) needs `columns:`",
                "name every column in file order, e.g. `columns: [label, title, description]`",
            )
        if self.columns is not None and (
            not isinstance(self.columns, list) or len(set(map(str, self.columns))) != len(self.columns)
        ):
            raise ConfigError(f"`columns:` must be a list of distinct names, got {self.columns!r}",
                              "write e.g. `columns: [label, title, description]`")  # fmt: skip
        for name in ("delimiter", "quotechar"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or len(v) != 1):
                raise ConfigError(f"`{name}:` must be one character, got {v!r}",
                                  "write it quoted, e.g. `delimiter: ';'` or `delimiter: \"\\t\"`")  # fmt: skip


@dataclass
class Table:
    """A file's rows (dicts, possibly nested for JSON), the line each starts on, and its column names."""

    path: Path
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def has(self, column: str) -> bool:
        return any(get_field(r, column) is not MISSING for r in self.rows[:1]) or column in self.columns

    def values(self, column: str) -> list[Any]:
        """The column's values, row by row; a dotted name walks into nested JSON objects."""
        out = []
        for row, line in zip(self.rows, self.lines, strict=True):
            v = get_field(row, column)
            if v is MISSING:
                raise DataError(
                    f"{self.path} line {line}: field {column!r} is missing (this row has: "
                    f"{', '.join(flat_keys(row)) or 'nothing'})",
                    "give every row the field, or name another column",
                )
            out.append(v)
        return out


def format_of(path: str | Path) -> str | None:
    """The format a file name implies (``train.csv.gz`` -> csv), or None."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None


def get_field(row: Any, name: str) -> Any:
    """``row[name]``, or for ``a.b.c`` the nested ``row[a][b][c]``; MISSING when absent."""
    if isinstance(row, dict) and name in row:
        return row[name]
    cur = row
    for part in name.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return MISSING
        cur = cur[part]
    return cur


def flat_keys(row: Any, prefix: str = "") -> list[str]:
    """Every field name of a row, nested ones written with dots (``review.body``)."""
    if not isinstance(row, dict):
        return []
    out = []
    for k, v in row.items():
        name = f"{prefix}{k}"
        out.extend(flat_keys(v, name + ".") if isinstance(v, dict) and v else [name])
    return out


def read_text(path: Path) -> str:
    """The file's text (gzip when it ends in .gz); not UTF-8 -> DataError with the line and the byte."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix.lower() == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path} ({type(e).__name__}: {e})",
                        "check that the file is complete (a .gz file must be a whole gzip stream)") from e  # fmt: skip
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
        pos = e.start + start
        line = raw.count(b"\n", 0, pos) + 1
        column = pos - (raw.rfind(b"\n", 0, pos) + 1) + 1
        raise DataError(
            f"{path} is not UTF-8: line {line}, column {column}, byte offset {pos} is 0x{raw[pos]:02x}",
            "convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)",
        ) from e


def read_table(path: str | Path, options: ReadOptions) -> Table:
    """Read one file as it is; CSV/TSV values stay strings, JSON values keep their types."""
    path = Path(path)
    text = read_text(path)
    return _read_json(path, text) if options.format == "json" else _read_delimited(path, text, options)


def _read_delimited(path: Path, text: str, o: ReadOptions) -> Table:
    delimiter = o.delimiter or DELIMITERS[o.format]
    quotechar = o.quotechar or ('"' if o.format == "csv" else None)
    kw: dict[str, Any] = {"delimiter": delimiter}
    kw.update({"quotechar": quotechar} if quotechar else {"quoting": csv.QUOTE_NONE})
    csv.field_size_limit(MAX_FIELD)
    reader = csv.reader(io.StringIO(text, newline=""), strict=False, **kw)
    columns = [str(c) for c in o.columns] if o.columns else None
    table = Table(path, columns or [])
    last, header_pending = 0, o.header
    try:
        for record in reader:
            start, last = last + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if header_pending:
                header_pending = False
                if columns is None:
                    table.columns = [c.strip() for c in record]
                continue
            if len(record) != len(table.columns):
                shown = delimiter.replace("\t", "\\t")
                raise DataError(
                    f"{path} line {start}: {len(record)} field(s) where the "
                    f"{'header' if columns is None else '`columns:`'} has {len(table.columns)} "
                    f"({', '.join(table.columns)}), splitting on {shown!r}",
                    "quote fields that contain the delimiter, set `delimiter:`/`quotechar:`, or fix "
                    "`columns:`" + ("" if o.format == "csv" else " (TSV reads quotes literally unless "
                                    "`quotechar: '\"'` is set)"),
                )  # fmt: skip
            table.rows.append(dict(zip(table.columns, record, strict=True)))
            table.lines.append(start)
    except csv.Error as e:
        raise DataError(f"{path} line {reader.line_num}: not valid {o.format.upper()} ({e})",
                        "close the quoted field, or set `quotechar:` to the file's quote character") from e  # fmt: skip
    if o.header and not table.columns:
        raise DataError(f"{path} is empty: no header row", "give a file with a header row and data rows, or "
                        "set `header: false` with `columns:`")  # fmt: skip
    return table


def _read_json(path: Path, text: str) -> Table:
    stripped = text.lstrip()
    rows: list[Any] = []
    lines: list[int] = []
    if stripped.startswith("["):  # one JSON array rather than JSON lines
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path} line {e.lineno}, column {e.colno}: not valid JSON ({e.msg})",
                            "fix the JSON at that position") from e  # fmt: skip
        lines = list(range(1, len(rows) + 1))  # no line per record: the record's number instead
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {n}, column {e.colno}: not valid JSON ({e.msg})",
                                "write one JSON object per line (JSON lines)") from e  # fmt: skip
            lines.append(n)
    for row, n in zip(rows, lines, strict=True):
        if not isinstance(row, dict):
            raise DataError(f"{path} line {n}: a JSON {type(row).__name__}, not an object",
                            "write one JSON object per line, e.g. {\"text\": \"...\", \"label\": 1}")  # fmt: skip
    return Table(path, flat_keys(rows[0]) if rows else [], rows, lines)


def read_parallel(paths: dict[str, Path], where: str) -> Table:
    """Line-aligned text files (line i of one translates line i of the other) as one table."""
    cols = {col: read_text(Path(path)).splitlines() for col, path in paths.items()}
    lengths = {c: len(v) for c, v in cols.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(
            f"{where}: the parallel files are not line-aligned ({lengths})",
            "give files with the same number of lines, line i of one translating line i of the other",
        )
    n = next(iter(lengths.values()))
    rows = [{c: v[i] for c, v in cols.items()} for i in range(n)]
    return Table(Path(next(iter(paths.values()))), list(cols), rows, list(range(1, n + 1)))
