"""Model inputs: text columns joined, sentence pairs as (text, pair) tuples; pairs give the same labels through
PyTorch and ONNX Runtime, and the second sentence really is segment B (token type 1)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from accelbench.exceptions import DataError
from accelbench.taskdata.files import Table
from accelbench.taskdata.inputs import column_plan, extract, item_length, task_inputs

PAIRS = [
    ("A man is playing a guitar on a stage.", "A man is playing an instrument."),
    ("A dog is chasing a red ball across a park.", "A dog is asleep on a sofa."),
    ("Two children are building a sandcastle.", "Two children are building a sandcastle for a contest."),
    ("short", "a much longer second sentence that pads the batch , with commas and words"),
]


def _task(**kw):
    base = {"kind": "classification", "text_column": "text", "text_columns": None, "label_column": "label",
            "text_pair_column": None, "source_column": "source", "target_column": "target"}  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def test_text_columns_are_joined_with_the_separator_skipping_empty_parts():
    rows = [
        {"title": "Oil slips", "body": "Brent fell.", "y": "3"},
        {"title": " Talks ", "body": "", "y": "1"},
    ]
    table = Table(Path("news.csv"), ["title", "body", "y"], rows, [1, 3])
    plan = column_plan(_task(text_columns=["title", "body"], label_column="y"))
    cols = extract("news", "train", [table], plan, " | ")
    assert cols.data == {"text": ["Oil slips | Brent fell.", "Talks"], "label": ["3", "1"]}
    assert cols.where == [(Path("news.csv"), 1), (Path("news.csv"), 3)]
    with pytest.raises(DataError) as e:
        extract("news", "train", [table], column_plan(_task(text_column="headline", label_column="y")))
    assert "column(s) headline not found; the file has: title, body, y (news.csv)" in e.value.message


def test_task_inputs_gives_texts_or_pairs_and_lengths_count_both_sides():
    ds = {"text": ["a", "b"], "text_pair": ["x y", "z"], "label": [0, 1], "source": ["s"], "target": ["t"]}
    assert task_inputs(_task(), ds) == ["a", "b"]
    assert task_inputs(_task(text_pair_column="hyp"), ds) == [("a", "x y"), ("b", "z")]
    assert task_inputs(_task(kind="seq2seq"), ds) == ["s"]
    assert item_length("abc") == 3 and item_length(("ab", "cde")) == 5


@pytest.fixture(scope="module")
def loaded(tiny_bert):
    from accelbench.models import load_checkpoint

    return load_checkpoint(str(tiny_bert))


def test_pairs_are_encoded_as_cls_a_sep_b_sep_with_token_types(loaded):
    from accelbench.methods import get_method

    enc = get_method("fp32").apply(loaded).predictor.encode(PAIRS[:1])
    tok = loaded.tokenizer
    ids, types = list(enc["input_ids"][0]), list(enc["token_type_ids"][0])
    a, b = (
        tok(PAIRS[0][0], add_special_tokens=False)["input_ids"],
        tok(PAIRS[0][1], add_special_tokens=False)["input_ids"],
    )
    assert ids == [tok.cls_token_id, *a, tok.sep_token_id, *b, tok.sep_token_id]
    assert types == [0] * (len(a) + 2) + [1] * (len(b) + 1)


def test_pairs_give_the_same_labels_through_pytorch_and_onnx_runtime(loaded):
    pytest.importorskip("onnxruntime")
    from accelbench.methods import get_method

    torch_pred = get_method("fp32").apply(loaded).predictor
    ort = get_method({"name": "ort-fp32", "check_fusion": False}).apply(loaded)
    try:
        ref, out = torch_pred.logits(PAIRS), ort.predictor.logits(PAIRS)
        assert np.allclose(out, ref, atol=1e-4)
        assert (ort.predictor.classify(PAIRS) == torch_pred.classify(PAIRS)).all()
        # the graph takes the token types: the same tokens all as segment A give other logits
        enc = ort.predictor.encode(PAIRS)
        assert ort.predictor.session.get_inputs()[-1].name == "token_type_ids"
        feeds = {i.name: np.asarray(enc[i.name], dtype=np.int64) for i in ort.predictor.session.get_inputs()}
        feeds["token_type_ids"] = np.zeros_like(feeds["token_type_ids"])
        assert not np.allclose(ort.predictor.session.run(None, feeds)[0], ref, atol=1e-4)
    finally:
        ort.predictor.close()
