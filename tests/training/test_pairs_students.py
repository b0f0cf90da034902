"""A distill-classifier student on a sentence-pair task: the teacher's logits and the batches see both
sentences, with token type ids, as the fine-tuned classifier does."""

from __future__ import annotations

import json

import pytest
import torch

import accelbench.training.students as st
from accelbench.models import ModelSpec, register_model
from accelbench.tasks import register_task_from_dict
from accelbench.training import load_model

pytestmark = pytest.mark.usefixtures("restore_registries")  # tasks/models a test registers go after it


@pytest.fixture(scope="module")
def sharp_bert(tiny_bert, tmp_path_factory):
    """The tiny BERT with its classifier and token types scaled up: which inputs it saw shows in its logits."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("sharp-pair-bert")
    m = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    with torch.no_grad():
        m.classifier.weight.mul_(40.0)
        m.bert.embeddings.token_type_embeddings.weight.mul_(50.0)  # segment B visibly changes the logits
    m.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(out)
    return out


@pytest.fixture
def seen(monkeypatch):
    """What the student trained on (its batches) and the teacher logits it was given."""
    out = {"batches": [], "logits": []}
    real_loop, real_logits = st.train_loop, st.teacher_logits

    def loop(model, batches, *args, **kw):
        out["batches"].extend(batches())
        return real_loop(model, batches, *args, **kw)

    def logits(*args, **kw):
        out["logits"].append(real_logits(*args, **kw))
        return out["logits"][-1]

    monkeypatch.setattr(st, "train_loop", loop)
    monkeypatch.setattr(st, "teacher_logits", logits)
    return out


def test_pair_student_distils_teacher_logits_of_both_sentences(tmp_path, sharp_bert, seen):
    rows = [{"a": f"a man plays song {i} .", "b": h, "y": y}
            for i in range(8) for h, y in (("he sleeps .", "no"), ("he plays loud music on a guitar .", "yes"))]  # fmt: skip
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    register_task_from_dict("kd-pairs", {
        "kind": "classification", "files": {"train": "t.jsonl", "dev": "t.jsonl"}, "text_column": "a",
        "text_pair_column": "b", "label_column": "y", "label_names": ["no", "yes"]}, base_dir=tmp_path)  # fmt: skip
    register_model(ModelSpec(name="pair-teacher", base=str(sharp_bert), task="kd-pairs"), overwrite=True)
    register_model(ModelSpec(name="pair-student", family="bert", task="kd-pairs", recipe={
        "kind": "distill-classifier", "teacher": "pair-teacher", "layers": [0], "batch_size": 8,
        "epochs": None, "max_steps": 2, "losses": {"kd": 1.0, "ce": 0.5},
        "bf16": False}), overwrite=True)  # fp32 logits, compared exactly below  # fmt: skip
    student = load_model("pair-student", progress=False)
    assert student.model.config.num_hidden_layers == 1
    types = [b["token_type_ids"] for b in seen["batches"]]
    assert len(types) == 2 and all(int(t.max()) == 1 and int(t[:, 0].max()) == 0 for t in types)
    assert all(t.shape == b["input_ids"].shape for t, b in zip(types, seen["batches"], strict=True))

    # the cached teacher logits are those of each (a, b) pair with its token types, row by row
    (cached,) = seen["logits"]
    teacher = load_model("pair-teacher", progress=False)
    tok, data = teacher.tokenizer, st.load_task("kd-pairs")["train"].shuffle(seed=0)
    with torch.inference_mode():
        enc = tok(list(data["text"]), list(data["text_pair"]), padding=True, return_tensors="pt")
        pairs = teacher.model(**enc).logits
        untyped = teacher.model(**{**enc, "token_type_ids": torch.zeros_like(enc["token_type_ids"])}).logits
        firsts = teacher.model(**tok(list(data["text"]), padding=True, return_tensors="pt")).logits
    assert torch.allclose(cached, pairs, atol=1e-5)
    assert (cached - firsts).abs().max() > 1e-3 and (cached - untyped).abs().max() > 1e-3
