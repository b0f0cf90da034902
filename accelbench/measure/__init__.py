"""Measurement: settings, trackers, scenarios (speed), quality (metrics with intervals) and matmul peaks."""

from .quality import agreement, predict, score
from .scenarios import run_scenarios
from .settings import BenchmarkSettings

__all__ = ["BenchmarkSettings", "agreement", "predict", "run_scenarios", "score"]
