"""Hub data sets by id, config and split (the network faked): splits and columns renamed, ClassLabel names
used when the task lists none, only the task's splits normalised."""

from __future__ import annotations

import datasets
import pytest

import accelbench.taskdata.hub as hub
from accelbench import tasks

pytestmark = pytest.mark.usefixtures("restore_registries")  # tasks/models a test registers go after it


def test_a_hub_task_by_id_config_and_split(monkeypatch):
    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])})  # fmt: skip
    rows = {
        "premise": ["A man plays.", "A dog runs."],
        "hypothesis": ["He plays.", "It sleeps."],
        "label": [0, 2],
    }
    test = {**rows, "label": [-1, -1]}  # GLUE-style unlabeled test split: not one of the task's splits
    fake = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict(rows, features=features),
        "validation_matched": datasets.Dataset.from_dict(rows, features=features),
        "test_matched": datasets.Dataset.from_dict(test, features=datasets.Features({**features, "label": datasets.Value("int64")})),
    })  # fmt: skip
    calls = []
    monkeypatch.setattr(hub, "hub_unreachable", lambda: None)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a: calls.append(a) or fake)
    tasks.register_task_from_dict("mnli-hub", {
        "kind": "classification", "hub": {"path": "glue", "name": "mnli", "splits": {"validation_matched": "dev"},
                                          "columns": {"premise": "text"}},
        "text_pair_column": "hypothesis"})  # fmt: skip
    ds = tasks.load_task("mnli-hub")
    assert calls == [("glue", "mnli")] and set(ds) == {"train", "dev"}
    assert tasks.get_task("mnli-hub").label_names == ["entailment", "neutral", "contradiction"]
    assert ds["dev"]["label"] == [0, 2]
    assert tasks.task_inputs("mnli-hub", ds["dev"])[1] == ("A dog runs.", "It sleeps.")
