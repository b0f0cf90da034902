"""The runtime registry and the predictor protocols: each predictor classifies or generates, no stubs."""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest

from accelbench.exceptions import ConfigError, UnknownNameError
from accelbench.runtimes import (
    RUNTIMES,
    Classifier,
    CompiledPredictor,
    Generation,
    Generator,
    Predictor,
    Runtime,
    TorchClassifier,
    TorchGenerator,
    get_runtime,
    list_runtimes,
    torch_predictor,
)
from accelbench.runtimes.ctranslate2 import Ct2Predictor
from accelbench.runtimes.onnxruntime import OrtPredictor, OrtSeq2SeqPredictor

PREDICTORS = {
    TorchClassifier: ("pytorch", Classifier),
    TorchGenerator: ("pytorch", Generator),
    CompiledPredictor: ("pytorch-inductor", Classifier),
    OrtPredictor: ("onnxruntime", Classifier),
    OrtSeq2SeqPredictor: ("onnxruntime", Generator),
    Ct2Predictor: ("ctranslate2", Generator),
}


def test_registry():
    assert list_runtimes() == RUNTIMES.names()
    assert set(list_runtimes()) == {"pytorch", "pytorch-inductor", "onnxruntime", "ctranslate2"}
    with pytest.raises(UnknownNameError, match="onnxruntime"):
        get_runtime("tensorrt")
    with pytest.raises(ConfigError, match="already registered"):
        RUNTIMES.register("pytorch", get_runtime("pytorch"))


@pytest.mark.parametrize("cls", list(PREDICTORS), ids=lambda c: c.__name__)
def test_each_predictor_implements_one_protocol_and_is_registered(cls):
    runtime, protocol = PREDICTORS[cls]
    other = Generator if protocol is Classifier else Classifier
    assert issubclass(cls, protocol) and not issubclass(cls, other) and not inspect.isabstract(cls)
    assert cls.runtime == runtime
    kind = "classification" if protocol is Classifier else "seq2seq"
    assert get_runtime(runtime).predictor_class(kind) is cls
    assert "NotImplementedError" not in inspect.getsource(cls)


def test_runtime_without_a_protocol_says_so():
    with pytest.raises(ConfigError, match="no predictor for 'classification'"):
        get_runtime("ctranslate2").predictor_class("classification")
    with pytest.raises(ConfigError, match="no predictor for 'seq2seq'"):
        get_runtime("pytorch-inductor").predictor_class("seq2seq")


def test_unavailable_runtime_names_the_missing_library(monkeypatch):
    assert get_runtime("pytorch").unavailable_reason() is None
    monkeypatch.setitem(sys.modules, "ctranslate2", None)
    assert "ctranslate2" in get_runtime("ctranslate2").unavailable_reason()
    assert (
        Runtime("x", "test", libraries=("no_such_module_here",))
        .unavailable_reason()
        .startswith("no_such_module_here is not importable")
    )


def test_protocols_are_abstract_and_encode_checks_padding():
    for cls in (Classifier, Generator):
        with pytest.raises(TypeError):
            cls(None, "bert")

    class Echo(Classifier):
        def __init__(self):
            super().__init__(
                lambda texts, pairs=None, **kw: {"texts": texts, "pairs": pairs, **kw}, "bert", prefix="p: "
            )

        def logits(self, texts, padding="dynamic", max_length=128):
            return np.array([[0.0, np.log(3.0)]] * len(texts))

    p = Echo()
    assert isinstance(p, Predictor) and p.encode(["a"])["texts"] == ["p: a"]
    assert (
        p.encode([("a", "b")])["pairs"] == ["b"] and p.encode([("a", "b")])["truncation"] == "longest_first"
    )
    assert p.classify(["x", "y"]).tolist() == [1, 1]
    assert np.allclose(p.scores(["x"]), [[0.25, 0.75]])
    assert p.encode(["a"], padding="max_length", max_length=8)["padding"] == "max_length"
    with pytest.raises(ConfigError, match="padding must be one of"):
        p.encode(["a"], padding="longest")
    p.close()  # nothing held, nothing to release
    assert Generation(["x"], 1).new_tokens == 1


def test_torch_predictor_by_family(tiny_bert, tiny_t5):
    from accelbench.models import load_checkpoint

    bert, t5 = load_checkpoint(str(tiny_bert)), load_checkpoint(str(tiny_t5))
    clf = torch_predictor(bert.model, bert.tokenizer, "bert")
    gen = torch_predictor(t5.model, t5.tokenizer, "t5", t5.spec.prefix)
    assert isinstance(clf, TorchClassifier) and clf.classify(["a good film", "bad"]).shape == (2,)
    scores = clf.scores(["a good film", "bad"])
    assert scores.shape[0] == 2 and np.allclose(scores.sum(-1), 1.0, atol=1e-5)
    assert (scores.argmax(-1) == clf.classify(["a good film", "bad"])).all()
    pair = bert.tokenizer("a good film", "bad")  # a pair is one sequence [CLS] a [SEP] b [SEP]
    enc = clf.encode([("a good film", "bad")])
    assert enc["input_ids"][0].tolist() == pair["input_ids"] and enc["token_type_ids"][0].tolist()[-1] == 1
    out = gen.generate(["a man rides a bike ."], max_new_tokens=4)
    assert isinstance(gen, TorchGenerator) and len(out.texts) == 1 and 0 <= out.new_tokens <= 4
