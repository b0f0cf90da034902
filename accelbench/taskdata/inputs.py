"""Model inputs from a task's columns: one text column, several joined with a separator, or a sentence pair.

A loaded classification split has the columns ``text`` (the text columns joined), ``label`` and, for a pair
task, ``text_pair``; a seq2seq split has ``source`` and ``target``. ``task_inputs`` is the one way to get what
a predictor takes from a loaded split: texts, or ``(text, text_pair)`` tuples that the tokenizer encodes as
``[CLS] a [SEP] b [SEP]`` with token type ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import DataError
from .files import Table

DEFAULT_SEPARATOR = " "
TEXT_KEYS = ("text", "text_pair", "source", "target")  # normalised columns that hold text


def column_plan(task: Any) -> dict[str, list[str]]:
    """Normalised column -> the file column(s) it is made of, for a task (any object with its fields)."""
    if task.kind != "classification":
        return {"source": [task.source_column], "target": [task.target_column]}
    plan = {"text": list(task.text_columns or [task.text_column]), "label": [task.label_column]}
    if task.text_pair_column:
        plan["text_pair"] = [task.text_pair_column]
    return plan


def as_text(value: Any) -> str:
    """A field as text: None is empty, numbers are written as they are."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


@dataclass
class Columns:
    """A split's normalised columns and, per row, the file and line it came from."""

    data: dict[str, list[Any]]
    where: list[tuple[Path | str, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.where)

    def select(self, keep: list[int]) -> Columns:
        return Columns({k: [v[i] for i in keep] for k, v in self.data.items()}, [self.where[i] for i in keep])


def extract(task_name: str, split: str, tables: list[Table], plan: dict[str, list[str]],
            separator: str = DEFAULT_SEPARATOR, hint: str = "") -> Columns:  # fmt: skip
    """Take the planned columns out of a split's tables; a missing column names the ones that are there."""
    out = Columns({k: [] for k in plan})
    for table in tables:
        wanted = [c for cols in plan.values() for c in cols]
        missing = [c for c in wanted if not table.has(c)] if table.rows else []
        if missing:
            raise DataError(
                f"task {task_name!r}, split {split!r}: column(s) {', '.join(missing)} not found; "
                f"the file has: {', '.join(table.columns) or 'no columns'} ({table.path})",
                "set text_column/text_columns/text_pair_column/label_column (or source_column/target_column) "
                "to the file's column names" + hint,
            )
        for key, cols in plan.items():
            if key == "label":
                out.data[key].extend(table.values(cols[0]))
                continue
            parts = [[as_text(v).strip() for v in table.values(c)] for c in cols]
            out.data[key].extend(
                separator.join(p for p in row if p) if len(cols) > 1 else row[0]
                for row in zip(*parts, strict=True)
            )
        out.where.extend((table.path, line) for line in table.lines)
    return out


def task_inputs(task: Any, dataset: Any) -> list[str | tuple[str, str]]:
    """What a predictor takes for each row of a loaded split: a text, or a ``(text, text_pair)`` tuple."""
    if task.kind != "classification":
        return [str(t) for t in dataset["source"]]
    texts = [str(t) for t in dataset["text"]]
    if getattr(task, "text_pair_column", None):
        return list(zip(texts, (str(t) for t in dataset["text_pair"]), strict=True))
    return texts


def item_length(item: str | tuple[str, str]) -> int:
    """Characters in an input (both sides of a pair): what length-sorted batching orders by."""
    return len(item) if isinstance(item, str) else sum(len(t) for t in item)
