"""Quality: predictions over the evaluation split, metrics with 95% bootstrap intervals, agreement.

Classification: accuracy and macro-F1 (scikit-learn), percentile bootstrap over examples.
Translation: sacreBLEU BLEU and chrF with sacreBLEU's own bootstrap over sentences.
Everything runs offline: no metric is fetched from a hub.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..exceptions import ConfigError
from ..runtimes.base import Predictor

logger = logging.getLogger(__name__)

N_BOOTSTRAP = 1000
CONFIDENCE = 0.95
EVAL_BATCH_SIZE = 64


def _length_order(texts: list[str]) -> np.ndarray:
    return np.argsort([len(t) for t in texts], kind="stable")


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
    fn, *arrays: np.ndarray, n: int = N_BOOTSTRAP, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``fn(*arrays)`` resampling examples with replacement."""
    rng = np.random.default_rng(seed)
    size = len(arrays[0])
    stats = np.empty(n)
    for b in range(n):
        idx = rng.integers(0, size, size)
        stats[b] = fn(*(a[idx] for a in arrays))
    alpha = (1 - confidence) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def classification_metrics(preds, labels, n_bootstrap: int = N_BOOTSTRAP, seed: int = 0) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    p, y = np.asarray(preds), np.asarray(labels)
    labels_set = np.unique(np.concatenate([p, y]))

    def f1(a, b):
        return f1_score(a, b, average="macro", labels=labels_set, zero_division=0)

    out = {"accuracy": float(accuracy_score(y, p)), "macro_f1": float(f1(y, p))}
    out["accuracy_ci_low"], out["accuracy_ci_high"] = bootstrap_ci(
        lambda a, b: (a == b).mean(), y, p, n=n_bootstrap, seed=seed
    )
    out["macro_f1_ci_low"], out["macro_f1_ci_high"] = bootstrap_ci(f1, y, p, n=n_bootstrap, seed=seed)
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


def score(kind: str, preds: list, refs: list, n_bootstrap: int = N_BOOTSTRAP) -> dict[str, float]:
    """All metrics of a task kind; the primary one is ``accuracy`` or ``bleu``."""
    if kind == "classification":
        return classification_metrics(preds, refs, n_bootstrap)
    return translation_metrics(preds, refs, n_bootstrap)


def agreement(preds: list, baseline_preds: list) -> float:
    """Share of predictions identical to the baseline's (labels, or whole output sentences)."""
    if len(preds) != len(baseline_preds):
        raise ValueError(f"{len(preds)} predictions vs {len(baseline_preds)} baseline predictions")
    return float(np.mean([a == b for a, b in zip(preds, baseline_preds, strict=True)]))
