"""The servable variant: the same predictor the benchmark times, answering JSON-ready dicts."""

from __future__ import annotations

import json

import pytest

from accelbench.exceptions import ConfigError
from accelbench.serving.variant import VariantSpec, build_variant, sample_items


def test_classifier_answers_labels_with_scores(tiny_bert):
    served = build_variant(VariantSpec("sst2", str(tiny_bert), "fp32", threads=1))
    texts = sample_items("sst2", 3)
    out = served.predict(texts)
    assert len(out) == 3 and json.dumps(out)  # JSON-ready
    ids = served.predictor.classify(texts)
    assert [o["label_id"] for o in out] == ids.tolist()
    assert all(o["label"] in ("negative", "positive") for o in out)
    assert all(
        abs(sum(o["scores"].values()) - 1) < 1e-5 and o["score"] == max(o["scores"].values()) for o in out
    )
    assert served.predict([]) == []
    served.close()


def test_generator_answers_outputs_and_int8_variant(tiny_t5):
    served = build_variant(VariantSpec("multi30k", str(tiny_t5), "dynamic-int8", max_new_tokens=4))
    out = served.predict(["a man rides a bike ."])
    assert len(out) == 1 and isinstance(out[0]["output"], str)
    assert served.method_label == "dynamic-int8"


def test_classification_task_refuses_a_generator(tiny_t5):
    with pytest.raises(ConfigError, match="does not classify"):
        build_variant(VariantSpec("sst2", str(tiny_t5), "fp32"))


def test_threads_must_be_positive(tiny_bert):
    with pytest.raises(ConfigError, match="threads"):
        build_variant(VariantSpec("sst2", str(tiny_bert), "fp32", threads=0))
