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


# paired_delta: a variant against its baseline on the same examples


def _paired(kind, metric, preds, base, refs, **kw):
    return evaluate.paired_delta(kind, metric, list(preds), list(base), list(refs), **kw)


def test_mcnemar_exact_against_hand_computed_p():
    refs = [1] * 30
    base = [0] * 10 + [1] * 20  # the baseline misses the first 10
    out = _paired("classification", "accuracy", refs, base, refs)  # the variant gets all 30
    assert out["metric_delta_test"] == "mcnemar-exact"
    assert out["metric_delta"] == pytest.approx(10 / 30)
    assert out["metric_delta_p"] == pytest.approx(2 * 0.5**10)
    assert out["metric_delta_significant"] and out["metric_delta_ci_low"] > 0
    # 8 discordant pairs one way, 2 the other: p = 2 * P(X <= 2 | n=10, 1/2) = 2 * (1 + 10 + 45) / 1024
    preds = [0] * 2 + [1] * 28
    base = [1] * 2 + [0] * 8 + [1] * 20
    out = _paired("classification", "accuracy", preds, base, refs)
    assert out["metric_delta"] == pytest.approx(6 / 30)
    assert out["metric_delta_p"] == pytest.approx(112 / 1024)
    assert not out["metric_delta_significant"]
    reverse = _paired("classification", "accuracy", base, preds, refs)
    assert reverse["metric_delta"] == pytest.approx(-6 / 30)
    assert reverse["metric_delta_p"] == pytest.approx(out["metric_delta_p"])


def test_identical_predictions_run_no_bootstrap(monkeypatch):
    def boom(*a, **kw):
        raise AssertionError("no bootstrap for identical predictions")

    monkeypatch.setattr(evaluate, "paired_bootstrap_deltas", boom)
    cases = [
        ("classification", "accuracy", [0, 1, 1, 0], [0, 1, 0, 0]),
        ("classification", "macro_f1", [0, 1, 1, 0], [0, 1, 0, 0]),
        ("seq2seq", "bleu", ["ein mann .", "zwei hunde"], ["ein mann fährt .", "zwei hunde"]),
    ]
    for kind, metric, preds, refs in cases:
        out = _paired(kind, metric, preds, preds, refs)
        assert out == {
            "metric_delta": 0.0,
            "metric_delta_ci_low": 0.0,
            "metric_delta_ci_high": 0.0,
            "metric_delta_p": 1.0,
            "metric_delta_test": evaluate.PAIRED_METRICS[kind][metric].test,
            "metric_delta_significant": False,
        }


def _labels(n, seed=0, k=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, k, n), rng


def _corrupt(labels, share, rng, k=3):
    """A copy of ``labels`` with about ``share`` of them replaced by another class."""
    out = labels.copy()
    hit = rng.random(len(labels)) < share
    out[hit] = (labels[hit] + rng.integers(1, k, hit.sum())) % k
    return out


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_clearly_better_system_is_significant(metric):
    refs, rng = _labels(400)
    good, bad = _corrupt(refs, 0.1, rng), _corrupt(refs, 0.4, rng)
    out = _paired("classification", metric, good, bad, refs)
    assert out["metric_delta"] > 0.2
    assert 0 < out["metric_delta_ci_low"] < out["metric_delta"] < out["metric_delta_ci_high"]
    assert (
        out["metric_delta_p"] < 0.01 and out["metric_delta_significant"]
    )  # 2 / 1001 at least for the bootstrap
    worse = _paired("classification", metric, bad, good, refs)
    assert worse["metric_delta"] == pytest.approx(-out["metric_delta"])
    assert worse["metric_delta_ci_high"] < 0 and worse["metric_delta_significant"]


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_tiny_random_difference_is_not_significant(metric):
    refs, rng = _labels(1000)
    base = _corrupt(refs, 0.2, rng)
    preds = base.copy()
    fixed = rng.choice(np.flatnonzero(base != refs), 4, replace=False)  # 4 fixes, 3 new errors
    broken = rng.choice(np.flatnonzero(base == refs), 3, replace=False)
    preds[fixed] = refs[fixed]
    preds[broken] = (refs[broken] + 1) % 3
    out = _paired("classification", metric, preds, base, refs)
    assert out["metric_delta"] != 0
    assert out["metric_delta_ci_low"] <= 0 <= out["metric_delta_ci_high"]
    assert out["metric_delta_p"] > 0.2 and not out["metric_delta_significant"]


def test_interval_is_paired():
    """Two systems that differ on few examples: the paired interval is far narrower than either system's own."""
    refs, rng = _labels(1000)
    base = _corrupt(refs, 0.2, rng)
    preds = base.copy()
    wrong = np.flatnonzero(base != refs)[:20]
    preds[wrong] = refs[wrong]  # 20 fixes: +0.02
    out = _paired("classification", "accuracy", preds, base, refs)
    assert out["metric_delta"] == pytest.approx(0.02)
    own = evaluate.classification_metrics(base, refs, n_bootstrap=200)
    assert out["metric_delta_ci_high"] - out["metric_delta_ci_low"] < 0.4 * (
        own["accuracy_ci_high"] - own["accuracy_ci_low"]
    )
    assert out["metric_delta_ci_low"] > 0  # every resample fixes some errors and makes none


def test_classification_delta_is_the_difference_of_scores():
    refs, rng = _labels(300)
    base = _corrupt(refs, 0.3, rng)
    preds = _corrupt(refs, 0.25, rng)
    preds[:5] = 7  # a label the references never use: it joins this system's macro-F1 label set only
    a, b = evaluate.score("classification", preds, refs, 10), evaluate.score("classification", base, refs, 10)
    for metric in ("accuracy", "macro_f1"):
        out = _paired("classification", metric, preds, base, refs, n_bootstrap=200)
        assert out["metric_delta"] == pytest.approx(a[metric] - b[metric], abs=1e-12)


def _translations(n=200, seed=0):
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(80)]
    refs = [" ".join(rng.choice(vocab, rng.integers(6, 15))) for _ in range(n)]

    def noisy(share):
        return [" ".join(t if rng.random() > share else rng.choice(vocab) for t in r.split()) for r in refs]

    return refs, noisy


@pytest.mark.parametrize("metric", ["bleu", "chrf"])
def test_sacrebleu_delta_interval_and_p(metric):
    from sacrebleu.significance import Result, _paired_bs_test

    refs, noisy = _translations()
    base, preds = noisy(0.3), noisy(0.28)
    out = _paired("seq2seq", metric, preds, base, refs, seed=3)
    a, b = evaluate.score("seq2seq", preds, refs, 2), evaluate.score("seq2seq", base, refs, 2)
    assert out["metric_delta"] == pytest.approx(a[metric] - b[metric], abs=1e-9)
    assert out["metric_delta_ci_low"] < out["metric_delta"] < out["metric_delta_ci_high"]
    assert out["metric_delta_test"] == "sacrebleu-paired-bs"
    # the p-value is sacreBLEU's own paired bootstrap test, run on the same resamples
    m = evaluate._sacrebleu_metric(metric)
    bl_stats = m._extract_corpus_statistics(base, [refs])
    baseline = {"x": (bl_stats, Result(m._aggregate_and_compute(bl_stats).score))}
    _, res = _paired_bs_test(baseline, "variant", preds, [refs], {"x": m}, n_samples=1000, seed=3)
    assert out["metric_delta_p"] == pytest.approx(res["x"].p_value)


def test_bleu_clearly_better_and_tiny_difference():
    refs, noisy = _translations(300, seed=1)
    base = noisy(0.5)
    better = _paired("seq2seq", "bleu", noisy(0.1), base, refs)
    assert better["metric_delta"] > 20 and better["metric_delta_ci_low"] > 0
    assert better["metric_delta_significant"] and better["metric_delta_p"] < 0.01
    tiny = list(base)
    tiny[0] = refs[0]  # one sentence fixed out of 300
    out = _paired("seq2seq", "bleu", tiny, base, refs)
    assert 0 < out["metric_delta"] < 1
    assert not out["metric_delta_significant"] and out["metric_delta_ci_low"] <= 0


def test_paired_delta_is_deterministic_for_a_seed():
    refs, rng = _labels(300)
    preds, base = _corrupt(refs, 0.2, rng), _corrupt(refs, 0.25, rng)
    for metric in ("accuracy", "macro_f1"):
        first = _paired("classification", metric, preds, base, refs, seed=5)
        assert _paired("classification", metric, preds, base, refs, seed=5) == first
        other = _paired("classification", metric, preds, base, refs, seed=6)
        assert other["metric_delta"] == first["metric_delta"]
        assert (other["metric_delta_ci_low"], other["metric_delta_ci_high"]) != (
            first["metric_delta_ci_low"],
            first["metric_delta_ci_high"],
        )


def test_bootstrap_in_chunks_gives_the_same_resamples(monkeypatch):
    refs, rng = _labels(500)
    a, b = evaluate._correct_stats(_corrupt(refs, 0.2, rng), _corrupt(refs, 0.3, rng), refs)
    whole = evaluate.paired_bootstrap_deltas(evaluate._ratio, a, b, 300, seed=1)
    monkeypatch.setattr(evaluate, "BOOTSTRAP_CHUNK", 500 * 7)  # 7 resamples at a time
    np.testing.assert_allclose(evaluate.paired_bootstrap_deltas(evaluate._ratio, a, b, 300, seed=1), whole)
    idx = np.random.default_rng(1).choice(500, size=(300, 500), replace=True)[42]  # sacreBLEU's draw
    assert whole[42] == pytest.approx(a[idx, 0].mean() - b[idx, 0].mean())


def test_paired_delta_refuses_bad_input():
    from accelbench.exceptions import ConfigError, UnknownNameError

    with pytest.raises(UnknownNameError, match="bleu"):
        _paired("classification", "bleu", [1], [0], [1])
    with pytest.raises(UnknownNameError, match="accuracy"):
        _paired("seq2seq", "accuracy", ["a"], ["b"], ["a"])
    with pytest.raises(UnknownNameError, match="kind"):
        _paired("regression", "accuracy", [1], [0], [1])
    with pytest.raises(ConfigError, match="2 predictions, 3 baseline"):
        _paired("classification", "accuracy", [1, 0], [0, 1, 1], [1, 1])
    with pytest.raises(ConfigError, match="no examples"):
        _paired("classification", "accuracy", [], [], [])
    with pytest.raises(ConfigError, match="n_bootstrap"):
        _paired("classification", "accuracy", [1], [0], [1], n_bootstrap=0)


# ROUGE (rouge-score, Porter stemming), 0..100 like BLEU and chrF


def test_rouge_on_hand_made_strings():
    same = evaluate.rouge_metrics(["the cat sat on the mat"], ["the cat sat on the mat"], n_bootstrap=20)
    assert all(same[t] == pytest.approx(100.0) for t in evaluate.ROUGE_TYPES)
    disjoint = evaluate.rouge_metrics(["dogs bark loudly"], ["the cat sat on the mat"], n_bootstrap=20)
    assert all(disjoint[t] == 0.0 for t in evaluate.ROUGE_TYPES)
    # hyp: the cat sat on the mat / ref: the cat was on the mat -> 5 of 6 unigrams shared each way
    # (the x2, cat, on, mat): P = R = F = 5/6; bigrams the-cat, on-the, the-mat: 3 of 5 -> F = 3/5;
    # longest common subsequence "the cat on the mat": 5 of 6 -> F = 5/6
    hand = evaluate.rouge_metrics(["the cat sat on the mat"], ["the cat was on the mat"], n_bootstrap=20)
    assert hand["rouge1"] == pytest.approx(100 * 5 / 6)
    assert hand["rouge2"] == pytest.approx(100 * 3 / 5)
    assert hand["rougeL"] == pytest.approx(100 * 5 / 6)
    # recall-heavy: 2 of 2 hyp words in a 4-word ref: P = 1, R = 1/2, F = 2/3
    assert evaluate.rouge_metrics(["cat mat"], ["the cat the mat"], n_bootstrap=20)[
        "rouge1"
    ] == pytest.approx(100 * 2 / 3)
    # stemming: "cats running" and "cat run" share both stems
    assert evaluate.rouge_metrics(["cats running"], ["cat run"], n_bootstrap=20)["rouge1"] == pytest.approx(
        100
    )


def test_rouge_is_the_mean_over_examples_with_an_interval():
    hyps = ["the cat sat on the mat", "dogs bark"] * 20
    refs = ["the cat sat on the mat", "the cat sat on the mat"] * 20
    m = evaluate.rouge_metrics(hyps, refs, n_bootstrap=200)
    assert m["rouge1"] == pytest.approx(50.0)
    assert m["rouge1_ci_low"] < 50 < m["rouge1_ci_high"] and m["rouge1_ci_high"] - m["rouge1_ci_low"] < 40


def test_score_adds_rouge_only_for_a_rouge_task():
    hyps, refs = ["a man rides a bike"], ["a man rides a red bike"]
    plain = evaluate.score("seq2seq", hyps, refs, 10)
    assert "bleu" in plain and "chrf" in plain and "rougeL" not in plain
    rouge = evaluate.score("seq2seq", hyps, refs, 10, metric="rouge")
    assert {"bleu", "chrf", *evaluate.ROUGE_TYPES, "rougeL_ci_low"} <= set(rouge)
    assert evaluate.resolve_metric("seq2seq", "rouge") == "rougeL"
    assert evaluate.resolve_metric("seq2seq", None) == "bleu"
    assert evaluate.resolve_metric("seq2seq", "chrf") == "chrf"
    assert evaluate.resolve_metric("classification", None) == "accuracy"
    from accelbench.exceptions import UnknownNameError

    with pytest.raises(UnknownNameError, match="rouge"):
        evaluate.resolve_metric("seq2seq", "meteor")
    with pytest.raises(UnknownNameError):
        evaluate.resolve_metric("classification", "rouge")


def _summaries(n=60, seed=0):
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(50)]
    refs = [" ".join(rng.choice(vocab, rng.integers(5, 10))) for _ in range(n)]

    def noisy(share):
        return [" ".join(t if rng.random() > share else "zz" for t in r.split()) for r in refs]

    return refs, noisy


@pytest.mark.parametrize("metric", ["rouge1", "rougeL"])
def test_paired_rouge_delta_test_and_interval(metric):
    refs, noisy = _summaries()
    good, bad = noisy(0.1), noisy(0.5)
    out = _paired("seq2seq", metric, good, bad, refs, n_bootstrap=300)
    a = evaluate.score("seq2seq", good, refs, 10, metric="rouge")
    b = evaluate.score("seq2seq", bad, refs, 10, metric="rouge")
    assert out["metric_delta"] == pytest.approx(a[metric] - b[metric], abs=1e-9)  # difference of the means
    assert out["metric_delta_test"] == "paired-bootstrap"
    assert 0 < out["metric_delta_ci_low"] < out["metric_delta"] < out["metric_delta_ci_high"]
    assert out["metric_delta_significant"] and out["metric_delta_p"] < 0.01
    worse = _paired("seq2seq", metric, bad, good, refs, n_bootstrap=300)
    assert worse["metric_delta"] == pytest.approx(-out["metric_delta"]) and worse["metric_delta_ci_high"] < 0
    # one summary out of 60 changed: not significant
    tiny = list(bad)
    tiny[0] = refs[0]
    small = _paired("seq2seq", metric, tiny, bad, refs, n_bootstrap=300)
    assert small["metric_delta"] > 0 and not small["metric_delta_significant"]
    assert small["metric_delta_ci_low"] <= 0
    same = _paired("seq2seq", metric, bad, bad, refs)
    assert same["metric_delta"] == 0.0 and same["metric_delta_p"] == 1.0


def test_vectorized_bootstrap_draws_the_same_resamples_as_the_loop(monkeypatch):
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(4)
    for k, n in ((2, 300), (4, 40), (3, 6)):  # 6 examples: most resamples miss some label entirely
        y = rng.integers(0, k, n)
        p = np.where(rng.random(n) < 0.6, y, rng.integers(0, k + 1, n))  # k + 1: a label only predicted
        labels = np.unique(np.concatenate([p, y]))

        def f1(a, b, labels=labels):
            return f1_score(a, b, average="macro", labels=labels, zero_division=0)

        loop = evaluate.bootstrap_ci(f1, y, p, n=200, seed=2)
        fast = evaluate.bootstrap_ci(f1, y, p, n=200, seed=2,
                                     rows=lambda a, b, labels=labels: evaluate.macro_f1_rows(a, b, labels))  # fmt: skip
        assert fast == pytest.approx(loop, abs=1e-12)
        monkeypatch.setattr(evaluate, "BOOTSTRAP_CHUNK", n * 7)  # 7 resamples at a time: the same draws
        chunked = evaluate.bootstrap_ci(None, y, p, n=200, seed=2,
                                        rows=lambda a, b, labels=labels: evaluate.macro_f1_rows(a, b, labels))  # fmt: skip
        monkeypatch.undo()
        assert chunked == pytest.approx(loop, abs=1e-12)
    refs, rng = _labels(872)
    preds = _corrupt(refs, 0.12, rng)
    m = evaluate.classification_metrics(preds, refs, n_bootstrap=1000)
    assert m["macro_f1_ci_low"] < m["macro_f1"] < m["macro_f1_ci_high"]
    assert m["accuracy_ci_low"] < m["accuracy"] < m["accuracy_ci_high"]
