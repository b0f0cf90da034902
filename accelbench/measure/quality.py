"""Quality: predictions over the evaluation split, metrics with 95% bootstrap intervals, agreement.

Classification: accuracy and macro-F1 (scikit-learn), percentile bootstrap over examples.
Generation: sacreBLEU BLEU and chrF with sacreBLEU's own bootstrap over sentences; for a task scored by ROUGE
also ROUGE-1/2/L/Lsum F-measures (Google's rouge-score, Porter stemming, the usual summarization setting),
averaged over examples with a percentile bootstrap. BLEU, chrF and ROUGE are on a 0..100 scale.
A variant against its baseline: the paired delta, its paired bootstrap interval and a significance test.
Everything runs offline: no metric is fetched from a hub.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..exceptions import ConfigError, UnknownNameError
from ..runtimes.base import Predictor
from ..taskdata.inputs import item_length

logger = logging.getLogger(__name__)

N_BOOTSTRAP = 1000
CONFIDENCE = 0.95
EVAL_BATCH_SIZE = 64
BOOTSTRAP_CHUNK = 4_000_000  # resample indices or weights held at once by a vectorized bootstrap
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ROUGE_STEMMER = True  # Porter stemming, as summarization papers report ROUGE
# The metrics a task may name as its primary one (``metric:`` in YAML), and the default of each kind.
METRICS = {"classification": ("accuracy", "macro_f1"), "seq2seq": ("bleu", "chrf", *ROUGE_TYPES)}
DEFAULT_METRIC = {"classification": "accuracy", "seq2seq": "bleu"}
METRIC_ALIASES = {"rouge": "rougeL"}  # `metric: rouge` means ROUGE-L F


def _length_order(texts: list) -> np.ndarray:
    return np.argsort([item_length(t) for t in texts], kind="stable")


def predict(
    predictor: Predictor,
    texts: list[str],
    kind: str,
    batch_size: int = EVAL_BATCH_SIZE,
    max_new_tokens: int = 64,
    num_beams: int = 1,
    progress: bool = True,
    desc: str = "predict",
) -> list:
    """Predictions in input order; batches are length-sorted so little time goes to padding."""
    from tqdm.auto import tqdm

    if batch_size <= 0:
        raise ConfigError(f"batch size must be positive, got {batch_size}", "use e.g. 64")
    order = _length_order(texts)
    out: list[Any] = [None] * len(texts)
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, disable=not progress, unit="batch"):
        idx = order[start : start + batch_size]
        batch = [texts[i] for i in idx]
        if kind == "classification":
            preds = predictor.classify(batch).tolist()
        else:
            preds = predictor.generate(batch, max_new_tokens=max_new_tokens, num_beams=num_beams).texts
        for i, p in zip(idx, preds, strict=True):
            out[i] = p
    return out


def bootstrap_ci(
    fn,
    *arrays: np.ndarray,
    n: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    rows: Callable[..., np.ndarray] | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``fn(*arrays)`` resampling examples with replacement.

    ``rows``, when given, computes the statistic of many resamples at once: it gets each array indexed by a
    (resamples, size) matrix and returns one value per row. The draws are the same either way (one seeded
    stream, row after row), so both give the same interval; ``rows`` is for statistics such as macro-F1,
    where a call per resample (scikit-learn's) cost 2 s per variant on 872 examples."""
    rng = np.random.default_rng(seed)
    size = len(arrays[0])
    if rows is not None:
        step = max(1, BOOTSTRAP_CHUNK // max(size, 1))  # index matrices of (step, size): bounded memory
        parts = []
        for start in range(0, n, step):
            idx = rng.integers(0, size, (min(step, n - start), size))
            parts.append(np.asarray(rows(*(a[idx] for a in arrays)), dtype=float))
        stats = np.concatenate(parts) if parts else np.empty(0)
    else:
        stats = np.empty(n)
        for b in range(n):
            idx = rng.integers(0, size, size)
            stats[b] = fn(*(a[idx] for a in arrays))
    alpha = (1 - confidence) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def macro_f1_rows(y: np.ndarray, p: np.ndarray, labels) -> np.ndarray:
    """Macro-F1 over ``labels`` of each row of (resamples, size) label matrices: per label 2 TP / (predicted
    + true), 0 where a label is neither predicted nor true (scikit-learn's ``zero_division=0``)."""
    total = np.zeros(y.shape[0])
    for c in labels:
        yc, pc = y == c, p == c
        tp = (yc & pc).sum(axis=1)
        denom = yc.sum(axis=1) + pc.sum(axis=1)
        total += np.divide(2.0 * tp, denom, out=np.zeros(len(denom)), where=denom > 0)
    return total / max(len(labels), 1)


def classification_metrics(preds, labels, n_bootstrap: int = N_BOOTSTRAP, seed: int = 0) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    p, y = np.asarray(preds), np.asarray(labels)
    labels_set = np.unique(np.concatenate([p, y]))

    def f1(a, b):
        return f1_score(a, b, average="macro", labels=labels_set, zero_division=0)

    out = {"accuracy": float(accuracy_score(y, p)), "macro_f1": float(f1(y, p))}
    out["accuracy_ci_low"], out["accuracy_ci_high"] = bootstrap_ci(
        lambda a, b: (a == b).mean(), y, p, n=n_bootstrap, seed=seed, rows=lambda a, b: (a == b).mean(axis=1)
    )
    out["macro_f1_ci_low"], out["macro_f1_ci_high"] = bootstrap_ci(
        f1, y, p, n=n_bootstrap, seed=seed, rows=lambda a, b: macro_f1_rows(a, b, labels_set)
    )
    return out


def translation_metrics(hyps: list[str], refs: list[str], n_bootstrap: int = N_BOOTSTRAP) -> dict[str, float]:
    from sacrebleu.metrics import BLEU, CHRF

    out: dict[str, float] = {}
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF())):
        s = metric.corpus_score(hyps, [refs], n_bootstrap=n_bootstrap)
        out[name] = float(s.score)
        mean, half = float(getattr(s, "_mean", s.score)), float(getattr(s, "_ci", 0.0))
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = mean - half, mean + half
    return out


def rouge_f(hyps: list[str], refs: list[str], rouge_type: str | None = None) -> dict[str, np.ndarray]:
    """Per-example ROUGE F-measures (0..1) of each type, or of ``rouge_type`` only.

    rouge-score's tokenizer keeps lowercase ASCII letters and digits only: ROUGE suits English outputs.
    rougeLsum splits summaries into sentences at newlines, as rouge-score expects.
    """
    from rouge_score.rouge_scorer import RougeScorer

    types = list(ROUGE_TYPES) if rouge_type is None else [rouge_type]
    scorer = RougeScorer(types, use_stemmer=ROUGE_STEMMER)
    scores = [scorer.score(str(r), str(h)) for h, r in zip(hyps, refs, strict=True)]
    return {t: np.array([s[t].fmeasure for s in scores], dtype=float) for t in types}


def rouge_metrics(
    hyps: list[str], refs: list[str], n_bootstrap: int = N_BOOTSTRAP, seed: int = 0
) -> dict[str, float]:
    """ROUGE-1/2/L/Lsum F-measures averaged over examples (0..100) with percentile bootstrap intervals."""
    out: dict[str, float] = {}
    for name, f in rouge_f(hyps, refs).items():
        out[name] = 100.0 * float(f.mean())
        low, high = bootstrap_ci(np.mean, f, n=n_bootstrap, seed=seed, rows=lambda a: a.mean(axis=1))
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = 100.0 * low, 100.0 * high
    return out


def resolve_metric(kind: str, metric: str | None = None) -> str:
    """The recorded name of a task's primary metric: ``rouge`` is ``rougeL``; None is the kind's default."""
    if kind not in METRICS:
        raise UnknownNameError("task kind", kind, list(METRICS))
    name = METRIC_ALIASES.get(metric, metric) if metric else DEFAULT_METRIC[kind]
    if name not in METRICS[kind]:
        raise UnknownNameError(f"{kind} metric", str(metric), [*METRICS[kind], *METRIC_ALIASES],
                               "set the task's `metric:` to one of these")  # fmt: skip
    return name


def score(
    kind: str, preds: list, refs: list, n_bootstrap: int = N_BOOTSTRAP, metric: str | None = None
) -> dict[str, float]:
    """All metrics of a task kind: accuracy and macro-F1, or BLEU and chrF plus ROUGE when ``metric`` is a
    ROUGE (rouge-score's English tokenizer would score other languages near 0, so only when asked)."""
    primary = resolve_metric(kind, metric)
    if kind == "classification":
        return classification_metrics(preds, refs, n_bootstrap)
    out = translation_metrics(preds, refs, n_bootstrap)
    if primary in ROUGE_TYPES:
        out.update(rouge_metrics(preds, refs, n_bootstrap))
    return out


def agreement(preds: list, baseline_preds: list) -> float:
    """Share of predictions identical to the baseline's (labels, or whole output sentences)."""
    if len(preds) != len(baseline_preds):
        raise ValueError(f"{len(preds)} predictions vs {len(baseline_preds)} baseline predictions")
    return float(np.mean([a == b for a, b in zip(preds, baseline_preds, strict=True)]))


# A variant against its model's fp32 baseline, on the same examples: the delta of one metric, its paired
# bootstrap interval and a paired significance test. Each metric is one PairedMetric: per-example statistics
# whose column sums give the metric (accuracy: [correct, 1]; BLEU: sacreBLEU's n-gram counts), so a resample
# is one weight vector over examples applied to both systems. ROUGE: per-example F-scores as [100 f, 1], their
# ratio the mean.


@dataclass(frozen=True)
class PairedMetric:
    """How to compare two systems on one metric over the same examples."""

    test: str  # the name recorded as metric_delta_test
    stats: Callable[[list, list, list], tuple[np.ndarray, np.ndarray]]  # (preds, base, refs) -> (n, k) each
    from_stats: Callable[[np.ndarray], np.ndarray]  # (B, k) summed statistics -> (B,) metric values
    p_value: Callable[[np.ndarray, np.ndarray, np.ndarray, float], float]  # (a, b, deltas, delta) -> p


def _correct_stats(preds: list, base_preds: list, refs: list) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(refs)
    return tuple(
        np.stack([np.asarray(p) == y, np.ones(len(y))], axis=1).astype(float) for p in (preds, base_preds)
    )


def _ratio(s: np.ndarray) -> np.ndarray:
    return s[:, 0] / s[:, 1]


def _f1_stats(preds: list, base_preds: list, refs: list) -> tuple[np.ndarray, np.ndarray]:
    """Per example and label: [true positive, predicted, true]; each system's own labels, as in score()."""
    y = np.asarray(refs)
    out = []
    for p in (np.asarray(preds), np.asarray(base_preds)):
        labels = np.unique(np.concatenate([p, y]))
        pred, true = p[:, None] == labels, y[:, None] == labels
        out.append(np.concatenate([pred & true, pred, true], axis=1).astype(float))
    return out[0], out[1]


def _macro_f1(s: np.ndarray) -> np.ndarray:
    """Macro-F1 from summed [tp, predicted, true] per label; 0 for a label seen nowhere (zero_division=0)."""
    tp, pred, true = np.split(s, 3, axis=1)
    denom = pred + true
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return f1.mean(axis=1)


def _sacrebleu_metric(name: str, refs: list | None = None):
    """The metric score() uses (sacreBLEU's defaults); with ``refs``, their n-grams are computed once."""
    from sacrebleu.metrics import BLEU, CHRF

    return {"bleu": BLEU, "chrf": CHRF}[name](references=None if refs is None else [list(refs)])


def _sacrebleu_stats(name: str, preds: list, base_preds: list, refs: list) -> tuple[np.ndarray, np.ndarray]:
    """sacreBLEU's per-sentence sufficient statistics of both systems."""
    metric = _sacrebleu_metric(name, refs)
    a, b = (
        np.array(metric._extract_corpus_statistics(list(h), None), dtype=float) for h in (preds, base_preds)
    )
    return a, b


def _sacrebleu_from_stats(name: str, s: np.ndarray) -> np.ndarray:
    metric = _sacrebleu_metric(name)
    return np.array([metric._compute_score_from_stats(row).score for row in s])


def _rouge_stats(name: str, preds: list, base_preds: list, refs: list) -> tuple[np.ndarray, np.ndarray]:
    """Per example: [100 x its ROUGE F, 1] of both systems; summed and divided, the mean score()'s ROUGE."""
    a, b = (100.0 * rouge_f(h, refs, name)[name] for h in (preds, base_preds))
    return tuple(np.stack([f, np.ones(len(f))], axis=1) for f in (a, b))


def _mcnemar_p(a: np.ndarray, b: np.ndarray, deltas: np.ndarray, delta: float) -> float:
    """Exact McNemar: the discordant pairs (one system right, the other wrong) split 50/50 under the null."""
    from scipy.stats import binomtest

    a_only = int(((a[:, 0] == 1) & (b[:, 0] == 0)).sum())
    b_only = int(((a[:, 0] == 0) & (b[:, 0] == 1)).sum())
    if a_only + b_only == 0:
        return 1.0
    return float(binomtest(a_only, a_only + b_only, 0.5, alternative="two-sided").pvalue)


def _bootstrap_sign_p(a: np.ndarray, b: np.ndarray, deltas: np.ndarray, delta: float) -> float:
    """Paired bootstrap test (Koehn 2004), two-sided: twice the share of resamples that lose the sign."""
    if delta == 0:
        return 1.0
    against = int((deltas <= 0).sum() if delta > 0 else (deltas >= 0).sum())
    return min(1.0, 2 * (against + 1) / (len(deltas) + 1))


def _sacrebleu_p(a: np.ndarray, b: np.ndarray, deltas: np.ndarray, delta: float) -> float:
    """sacreBLEU's paired bootstrap p-value, as its paired_bs test computes it (after Moses' script)."""
    from sacrebleu.significance import _compute_p_value

    diffs = np.abs(deltas)
    return float(_compute_p_value(diffs - diffs.mean(), abs(delta)))


PAIRED_METRICS: dict[str, dict[str, PairedMetric]] = {
    "classification": {
        "accuracy": PairedMetric("mcnemar-exact", _correct_stats, _ratio, _mcnemar_p),
        "macro_f1": PairedMetric("paired-bootstrap", _f1_stats, _macro_f1, _bootstrap_sign_p),
    },
    "seq2seq": {
        name: PairedMetric(
            "sacrebleu-paired-bs",
            partial(_sacrebleu_stats, name),
            partial(_sacrebleu_from_stats, name),
            _sacrebleu_p,
        )
        for name in ("bleu", "chrf")
    }
    | {
        name: PairedMetric("paired-bootstrap", partial(_rouge_stats, name), _ratio, _bootstrap_sign_p)
        for name in ROUGE_TYPES
    },
}


def paired_bootstrap_deltas(
    from_stats: Callable[[np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray, n: int, seed: int = 0
) -> np.ndarray:
    """``from_stats`` of ``a`` minus that of ``b`` on ``n`` resamples of examples, the same indices for both.

    The indices are drawn as sacreBLEU's paired_bs draws them (``default_rng(seed).choice``), so for a
    sacreBLEU metric the resamples are the very ones its own paired test would use with this seed.
    """
    size = len(a)
    idxs = np.random.default_rng(seed).choice(size, size=(n, size), replace=True)
    deltas = np.empty(n)
    step = max(1, BOOTSTRAP_CHUNK // size)  # resample weights are (rows, size): bounded memory
    for start in range(0, n, step):
        rows = idxs[start : start + step]
        offsets = rows + size * np.arange(len(rows))[:, None]
        w = np.bincount(offsets.ravel(), minlength=len(rows) * size).reshape(len(rows), size).astype(float)
        deltas[start : start + len(rows)] = from_stats(w @ a) - from_stats(w @ b)
    return deltas


def _paired_metric(kind: str, metric: str) -> PairedMetric:
    if kind not in PAIRED_METRICS:
        raise UnknownNameError("task kind", kind, list(PAIRED_METRICS))
    if metric not in PAIRED_METRICS[kind]:
        raise UnknownNameError(
            f"{kind} metric",
            metric,
            list(PAIRED_METRICS[kind]),
            "compare on one of the metrics score() reports",
        )
    return PAIRED_METRICS[kind][metric]


def paired_delta(
    kind: str,
    metric: str,
    preds: list,
    base_preds: list,
    refs: list,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """A variant's metric minus its baseline's on the same examples, with a paired interval and test.

    ``metric_delta`` is the difference of the two numbers score() reports; the (1 - alpha) interval is a
    percentile paired bootstrap (each resample scores both systems on the same examples); the p-value comes
    from the test named in ``metric_delta_test``: exact McNemar for accuracy, sacreBLEU's paired bootstrap
    for BLEU and chrF, a two-sided paired bootstrap sign test for macro-F1 and ROUGE.
    """
    paired = _paired_metric(kind, metric)
    if not len(preds) == len(base_preds) == len(refs):
        raise ConfigError(
            f"paired {metric}: {len(preds)} predictions, {len(base_preds)} baseline predictions, "
            f"{len(refs)} references",
            "compare predictions made on the same examples",
        )
    if not len(refs):
        raise ConfigError(f"paired {metric}: no examples to compare", "evaluate on at least one example")
    if n_bootstrap <= 0:
        raise ConfigError(f"n_bootstrap must be positive, got {n_bootstrap}", "use e.g. 1000")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}", "use e.g. 0.05")
    if all(p == q for p, q in zip(preds, base_preds, strict=True)):
        delta, low, high, p = 0.0, 0.0, 0.0, 1.0
    else:
        a, b = paired.stats(preds, base_preds, refs)
        delta = float(
            paired.from_stats(a.sum(0, keepdims=True))[0] - paired.from_stats(b.sum(0, keepdims=True))[0]
        )
        deltas = paired_bootstrap_deltas(paired.from_stats, a, b, n_bootstrap, seed)
        low, high = (float(q) for q in np.quantile(deltas, [alpha / 2, 1 - alpha / 2]))
        p = float(paired.p_value(a, b, deltas, delta))
    return {
        "metric_delta": delta,
        "metric_delta_ci_low": low,
        "metric_delta_ci_high": high,
        "metric_delta_p": p,
        "metric_delta_test": paired.test,
        "metric_delta_significant": bool(p < alpha),
    }
