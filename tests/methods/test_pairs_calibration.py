"""Calibration on a sentence-pair task: both sentences with token type ids; single-text tasks as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from accelbench.export.onnx_graph import DEFAULT_MAX_LENGTH, calibration_reader, split_pairs  # noqa: E402
from accelbench.methods import get_method  # noqa: E402
from accelbench.methods.calibration import calibration_texts  # noqa: E402
from accelbench.models import load_checkpoint  # noqa: E402
from accelbench.tasks import register_task_from_dict  # noqa: E402

NAMES = ["input_ids", "attention_mask", "token_type_ids"]


@pytest.fixture(autouse=True)
def _restore_registries():
    """Tasks registered by a test are gone after it (other tests list the known names)."""
    from accelbench.tasks import TASKS

    saved = dict(TASKS._entries)
    yield
    TASKS._entries.clear()
    TASKS._entries.update(saved)


@pytest.fixture
def pair_task(tmp_path) -> str:
    rows = [{"a": f"a man plays song {i} .", "b": h, "y": y}
            for i in range(12) for h, y in (("he sleeps .", "no"), ("he plays music .", "yes"))]  # fmt: skip
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    register_task_from_dict("cal-pairs", {
        "kind": "classification", "files": {"train": "t.jsonl", "dev": "t.jsonl"}, "text_column": "a",
        "text_pair_column": "b", "label_column": "y"}, base_dir=tmp_path)  # fmt: skip
    return "cal-pairs"


@pytest.fixture(scope="module")
def loaded(tiny_bert):
    return load_checkpoint(str(tiny_bert))


def test_split_pairs():
    assert split_pairs(["a", "b"]) == (["a", "b"], None)
    assert split_pairs([("a", "x"), ("b", "y")]) == (["a", "b"], ["x", "y"])
    assert split_pairs([]) == ([], None)


def test_reader_feeds_both_sentences_of_a_pair_task(pair_task, loaded):
    items = calibration_texts(pair_task, 6)
    assert len(items) == 6 and all(isinstance(i, tuple) and len(i) == 2 for i in items)
    feeds = list(iter(calibration_reader(loaded.tokenizer, items, NAMES).get_next, None))
    assert len(feeds) == 6
    sep = loaded.tokenizer.sep_token_id
    for f, (a, b) in zip(feeds, items, strict=True):
        types, ids = f["token_type_ids"][0], f["input_ids"][0]
        assert types[0] == 0 and types.max() == 1 and (ids == sep).sum() == 2  # [CLS] a [SEP] b [SEP]
        assert ids.tolist() == loaded.tokenizer(a, b)["input_ids"]


def test_reader_feeds_of_a_single_text_task_are_unchanged(loaded):
    texts = calibration_texts("sst2", 8)
    assert all(isinstance(t, str) for t in texts)
    feeds = list(iter(calibration_reader(loaded.tokenizer, texts, NAMES, batch_size=4).get_next, None))
    for k, f in enumerate(feeds):  # what the reader fed before pairs existed
        enc = loaded.tokenizer(texts[4 * k : 4 * k + 4], padding="longest", truncation=True,
                               max_length=DEFAULT_MAX_LENGTH, return_tensors="np")  # fmt: skip
        for n in NAMES:
            assert np.array_equal(f[n], enc[n].astype(np.int64)) and f[n].dtype == np.int64
        assert not f["token_type_ids"].any()


def test_static_int8_calibrates_on_a_pair_task(pair_task, loaded):
    v = get_method({"name": "ort-static-int8", "task": pair_task, "samples": 16}).apply(loaded)
    try:
        items = calibration_texts(pair_task, 24)
        enc = loaded.tokenizer(*split_pairs(items), padding=True, return_tensors="pt")
        with torch.inference_mode():
            ref = loaded.model(**enc).logits.numpy()  # fp32 PyTorch on both sentences
        out = v.predictor.logits(items)
        assert (out.argmax(-1) == ref.argmax(-1)).mean() >= 0.8
        assert np.abs(out - ref).max() <= 0.2 * np.abs(ref).max()
        q = v.details["quantization"]
        assert (q["calibration_task"], q["samples"]) == (pair_task, 16)
    finally:
        v.predictor.close()


class _Recording:
    """A tokenizer that records the second sentences it was given (None: a single-text call)."""

    def __init__(self, tok):
        self.tok, self.pairs = tok, []

    def __call__(self, texts, pairs=None, **kw):
        self.pairs.append(pairs)
        return self.tok(texts, pairs, **kw)

    def __getattr__(self, name):
        return getattr(self.tok, name)


def test_fusion_check_runs_on_both_sentences_of_the_models_pair_task(pair_task, loaded):
    import dataclasses

    rec = _Recording(loaded.tokenizer)
    model = dataclasses.replace(loaded, tokenizer=rec, spec=dataclasses.replace(loaded.spec, task=pair_task))
    v = get_method("ort-fp32").apply(model)
    try:
        check = v.details["fusion_check"]
        assert "error" not in check and check["batches"] == 1 and check["max_abs_diff"] < 1e-4
        (pairs,) = [p for p in rec.pairs if p is not None]  # the 24 training rows, one batch of pairs
        assert sorted(pairs) == sorted(b for _, b in calibration_texts(pair_task, 64))
    finally:
        v.predictor.close()


@pytest.mark.slow  # compiles
def test_pt2e_calibrates_on_both_sentences(pair_task, loaded):
    import dataclasses

    m = get_method({"name": "pt2e-int8", "task": pair_task, "samples": 8})
    if m.unavailable_reason():
        pytest.skip(m.unavailable_reason())
    rec = _Recording(loaded.tokenizer)
    v = m.apply(dataclasses.replace(loaded, tokenizer=rec))
    try:
        calls = [p for p in rec.pairs if p is not None]
        assert len(calls) == 8 and all(len(p) == 1 for p in calls)  # one (a, b) pair per calibration forward
        assert sorted(p[0] for p in calls) == sorted(b for _, b in calibration_texts(pair_task, 8))
        assert v.details["calibration_task"] == pair_task
    finally:
        v.predictor.close()
