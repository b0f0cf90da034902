"""A task's data from the Hugging Face hub (by data set id, config name and split names), when the network is
there; offline it fails in seconds with the reason, never after the datasets library's retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..exceptions import DataError
from .checks import hub_unreachable
from .files import Table
from .labels import label_map


def read_hub(task: Any) -> dict[str, list[Table]]:
    """The task's splits from ``task.hub`` (``path``, ``name``, ``splits`` renaming hub splits, ``columns``
    renaming columns) as tables; a ClassLabel column gives the label names when the task lists none."""
    import datasets

    if not task.hub:
        raise DataError(f"task {task.name!r} has no hub source", "provide local files (see data/README.md)")
    hub_id = f"{task.hub['path']}" + (f" ({task.hub['name']})" if task.hub.get("name") else "")
    why = hub_unreachable()
    if why:
        where = f"its files are not in {task.local_dir()}; " if task.files else ""
        raise DataError(f"task {task.name!r}: {where}the hub, which holds {hub_id}, cannot be reached: {why}",
                        "give local files (`make data` for the built-in tasks), or run with network")  # fmt: skip
    try:
        ds = datasets.load_dataset(task.hub["path"], task.hub.get("name"))
    except Exception as e:  # network errors come in many types
        raise DataError(f"task {task.name!r}: could not load {hub_id} from the hub ({type(e).__name__}: {e})",
                        "check the data set id, config name and split names, or use local files") from e  # fmt: skip
    ds = datasets.DatasetDict({task.hub.get("splits", {}).get(k, k): v for k, v in ds.items()})
    ds = ds.rename_columns(dict(task.hub.get("columns", {})))
    wanted = {task.train_split, task.eval_split, task.validation_split, task.test_split} & set(ds)
    if task.kind == "classification" and task.labels is None:
        feature = ds[task.train_split].features.get(task.label_column) if task.train_split in ds else None
        if getattr(feature, "names", None):  # a ClassLabel: its names, in index order
            task.labels = label_map(task.name, list(feature.names))
    return {
        s: [
            Table(
                Path(f"hub:{hub_id}[{s}]"),
                ds[s].column_names,
                ds[s].to_list(),
                list(range(1, len(ds[s]) + 1)),
            )
        ]
        for s in wanted
    }
