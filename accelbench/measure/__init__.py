"""Measurement: settings, trackers, interleaved speed rounds and their statistics, quality with paired tests,
time limits and matmul peaks."""

from .offline import offline_curves
from .quality import agreement, paired_delta, predict, score
from .scenarios import run_interleaved, run_scenarios
from .settings import BenchmarkSettings

__all__ = [
    "BenchmarkSettings",
    "agreement",
    "offline_curves",
    "paired_delta",
    "predict",
    "run_interleaved",
    "run_scenarios",
    "score",
]
