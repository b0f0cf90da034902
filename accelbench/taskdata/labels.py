"""Labels as they come: any values (integers from 1, strings) mapped to class indices 0..n-1.

``label_names`` is either a list (index order; a value may be a name or its index, as SST-2's 0/1) or a
mapping from the values in the file to names (``{1: World, 2: Sports, 3: Business, 4: Sci/Tech}``; index
order is the mapping's order). Omitted, the labels are inferred from the training split: its distinct values,
sorted (numerically when they are all integers), each its own name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, DataError

logger = logging.getLogger(__name__)

MAX_SHOWN = 8  # label values listed in an error message


def label_key(value: Any) -> str:
    """The form a label value is matched in: ``1``, ``1.0`` and ``"1"`` are all ``"1"``; text is stripped."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _as_int(key: str) -> int | None:
    try:
        f = float(key)
    except ValueError:
        return None
    return int(f) if f.is_integer() else None


@dataclass
class LabelMap:
    """Class names in index order and how each value found in a file maps to an index."""

    names: list[str]
    index: dict[str, int] = field(default_factory=dict)
    inferred: bool = False
    given_as: str = "list"  # list | mapping | inferred

    def lookup(self, value: Any) -> int | None:
        key = label_key(value)
        if key in self.index:
            return self.index[key]
        n = _as_int(key)  # "1.0" in a CSV file for a mapping keyed 1
        return self.index.get(str(n)) if n is not None else None

    def describe(self) -> str:
        if self.given_as == "list":
            return f"{', '.join(self.names[:MAX_SHOWN])} (or their indices 0..{len(self.names) - 1})"
        pairs = [k for k in self.index if self.index[k] is not None and k not in self.names]
        shown = [f"{k} -> {self.names[self.index[k]]}" for k in pairs[:MAX_SHOWN]]
        return ", ".join(shown) + (", ..." if len(pairs) > MAX_SHOWN else "")


def label_map(task_name: str, spec: Any) -> LabelMap | None:
    """The label map a task's ``label_names`` gives; None when omitted (labels are then inferred)."""
    if spec is None or (isinstance(spec, list | dict) and not spec):
        return None
    if isinstance(spec, dict):
        names = [str(v) for v in spec.values()]
        keys = [label_key(k) for k in spec]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"task {task_name!r}: label_names maps the same value twice ({keys})",
                              "give each label value once")  # fmt: skip
        index = {n: i for i, n in enumerate(names)}  # a file may hold the names themselves
        index.update({k: i for i, k in enumerate(keys)})
        given_as = "mapping"
    elif isinstance(spec, list | tuple):
        names = [str(n) for n in spec]
        index = {str(i): i for i in range(len(names))}
        index.update({label_key(n): i for i, n in enumerate(names)})  # a name wins over an index
        given_as = "list"
    else:
        raise ConfigError(f"task {task_name!r}: label_names must be a list or a mapping, got {spec!r}",
                          "write `label_names: [negative, positive]` or `label_names: {1: World, 2: Sports}`")  # fmt: skip
    if len(set(names)) != len(names):
        raise ConfigError(f"task {task_name!r}: label_names repeats a name ({', '.join(names)})",
                          "give every class its own name")  # fmt: skip
    if len(names) < 2:
        raise ConfigError(
            f"task {task_name!r}: a classification task needs at least two label_names",
            "list the labels in index order, e.g. `label_names: [negative, positive]`, map them "
            "(`{1: World, 2: Sports}`), or leave `label_names:` out to infer them from the training split",
        )
    return LabelMap(names, index, given_as=given_as)


def infer_label_map(task_name: str, values: list[Any], where: str) -> LabelMap:
    """Distinct values of the training split, sorted (numerically if all are integers); each is its name."""
    keys = sorted({label_key(v) for v in values})
    ints = [_as_int(k) for k in keys]
    if keys and all(n is not None and str(n) == k for n, k in zip(ints, keys, strict=True)):
        keys = [str(n) for n in sorted(n for n in ints if n is not None)]
    if len(keys) < 2:
        raise DataError(
            f"task {task_name!r}: the training split ({where}) holds {len(keys)} distinct label value(s) "
            f"({', '.join(keys)}); a classifier needs at least two",
            "check `label_column:` (it names the column the labels are in), or list `label_names:`",
        )
    logger.info("task %s: label_names inferred from the training split: %s", task_name, keys)
    return LabelMap(keys, {k: i for i, k in enumerate(keys)}, inferred=True, given_as="inferred")


def map_labels(task_name: str, values: list[Any], labels: LabelMap, where: list[tuple[Path | str, int]],
               header_hint: bool = False) -> list[int]:  # fmt: skip
    """Each value's class index; a value outside the map -> DataError naming the value, file and line."""
    out = []
    for i, v in enumerate(values):
        j = labels.lookup(v)
        if j is None:
            path, line = where[i]
            fix = (
                f"add `{label_key(v)}: <name>` to the `label_names:` mapping, fix line {line}, or leave "
                "`label_names:` out to infer the labels from the training split"
                if labels.given_as == "mapping"
                else "add the label to the training split (labels are inferred from it), or list every "
                "value under `label_names:`"
                if labels.inferred
                else "fix the data, list every label under `label_names:` in index order, or map the file's "
                "values to names (`label_names: {1: World, 2: Sports}`)"
            )
            if header_hint and i == 0:
                fix = "the first line looks like a header row: set `header: true` (keep `columns:` to rename)"
            raise DataError(
                f"task {task_name!r}: label {v!r} in {path} line {line} is not in the label map "
                f"({labels.describe()})",
                fix,
            )
        out.append(j)
    return out
