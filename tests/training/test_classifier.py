"""Fine-tuning on user tasks from YAML: headerless files with mapped labels and joined columns, and sentence
pairs (segment B carries token type 1); the label count and names come from the task's label map."""

from __future__ import annotations

import json

import pytest

import accelbench.training.classifier as clf
from accelbench.models import ModelSpec
from accelbench.tasks import register_task_from_dict
from accelbench.training import load_model

pytestmark = pytest.mark.usefixtures("restore_registries")  # tasks/models a test registers go after it


NEWS = "".join(f'{1 + i % 4},"Headline {i}, with a comma","Story {i}.\nMore."\n' for i in range(16))


@pytest.fixture
def batches_seen(monkeypatch):
    seen = []
    real = clf.train_loop

    def spy(model, batches, *args, **kw):
        seen.extend(batches())
        return real(model, batches, *args, **kw)

    monkeypatch.setattr(clf, "train_loop", spy)
    return seen


def _train(name, task, tiny_bert):
    spec = ModelSpec(name=name, family="bert", base=str(tiny_bert), recipe={
        "kind": "classifier", "task": task, "train_size": 16, "batch_size": 8, "epochs": None, "max_steps": 2})  # fmt: skip
    return load_model(spec, progress=False)


def test_fine_tune_on_a_headerless_file_with_mapped_labels(tmp_path, tiny_bert, batches_seen):
    (tmp_path / "news.csv").write_text(NEWS)
    register_task_from_dict("ft-news", {
        "kind": "classification", "files": {"train": "news.csv", "dev": "news.csv"}, "header": False,
        "columns": ["label", "title", "description"], "text_columns": ["title", "description"],
        "label_names": {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tech"}}, base_dir=tmp_path)  # fmt: skip
    loaded = _train("ft-news-model", "ft-news", tiny_bert)
    assert loaded.model.config.num_labels == 4
    assert loaded.model.config.id2label == {0: "World", 1: "Sports", 2: "Business", 3: "Sci/Tech"}
    assert sorted({int(y) for b in batches_seen for y in b["labels"]}) == [0, 1, 2, 3]
    assert all("token_type_ids" not in b for b in batches_seen)


def test_fine_tune_on_sentence_pairs_with_inferred_labels(tmp_path, tiny_bert, batches_seen):
    rows = [{"p": {"a": f"A man plays song {i}.", "b": h}, "y": y}
            for i in range(12) for h, y in (("He sleeps.", "no"), ("He plays.", "yes"))]  # fmt: skip
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    register_task_from_dict("ft-pairs", {
        "kind": "classification", "files": {"train": "t.jsonl", "dev": "t.jsonl"}, "text_column": "p.a",
        "text_pair_column": "p.b", "label_column": "y"}, base_dir=tmp_path)  # fmt: skip
    loaded = _train("ft-pairs-model", "ft-pairs", tiny_bert)
    assert loaded.model.config.id2label == {0: "no", 1: "yes"}
    types = [b["token_type_ids"] for b in batches_seen]
    assert types and all(int(t.max()) == 1 and int(t[:, 0].max()) == 0 for t in types)  # [CLS] a is type 0
    assert all(t.shape == b["input_ids"].shape for t, b in zip(types, batches_seen, strict=True))
