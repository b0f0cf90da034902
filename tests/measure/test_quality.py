"""Metrics, bootstrap intervals and agreement on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from accelbench.measure import quality as evaluate


def test_classification_metrics_and_interval():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    preds = np.where(rng.random(400) < 0.8, labels, 1 - labels)  # about 80% right
    m = evaluate.classification_metrics(preds, labels, n_bootstrap=300)
    assert m["accuracy"] == pytest.approx((preds == labels).mean())
    assert m["accuracy_ci_low"] < m["accuracy"] < m["accuracy_ci_high"]
    assert (
        0.03 < m["accuracy_ci_high"] - m["accuracy_ci_low"] < 0.12
    )  # ~ 2 * 1.96 * sqrt(.8 * .2 / 400) = 0.078
    assert m["macro_f1_ci_low"] <= m["macro_f1"] <= m["macro_f1_ci_high"]


def test_interval_narrows_with_more_data():
    def width(n):
        y = np.arange(n) % 2
        p = y.copy()
        p[: n // 5] = 1 - p[: n // 5]
        m = evaluate.classification_metrics(p, y, n_bootstrap=300)
        return m["accuracy_ci_high"] - m["accuracy_ci_low"]

    assert width(2000) < width(100) / 2


def test_translation_metrics():
    refs = ["ein mann fährt fahrrad .", "zwei hunde spielen im schnee .", "eine frau liest ein buch ."] * 10
    perfect = evaluate.translation_metrics(refs, refs, n_bootstrap=50)
    assert perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)
    worse = evaluate.translation_metrics(["ein mann ."] * 30, refs, n_bootstrap=50)
    assert worse["bleu"] < 20 and worse["bleu_ci_low"] <= worse["bleu_ci_high"]


def test_agreement():
    assert evaluate.agreement([1, 0, 1, 1], [1, 1, 1, 1]) == 0.75
    assert evaluate.agreement(["a b", "c"], ["a b", "c"]) == 1.0
    with pytest.raises(ValueError):
        evaluate.agreement([1], [1, 2])


def test_predict_keeps_input_order():
    class Echo:
        def classify(self, texts, **kw):
            return np.array([len(t) for t in texts])

    texts = ["aaaa", "a", "aaa", "aa", "aaaaa"]
    assert evaluate.predict(Echo(), texts, "classification", batch_size=2, progress=False) == [4, 1, 3, 2, 5]
