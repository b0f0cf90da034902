"""Traffic to plan for: a constant rate, or a daily profile of hourly rates whose peak sizes the deployment.

A profile file is YAML, either absolute rates (``rates: [40, 35, ..., 150, ...]``, requests per second, one
value per hour) or a shape scaled to a peak (``shape: [0.2, ..., 1.0]`` with ``--traffic`` as the peak).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..exceptions import ConfigError

PROFILE_FIX = (
    "write `rates: [r0, r1, ...]` (requests/s per hour) or `shape: [...]` with --traffic as the peak"
)


@dataclass(frozen=True)
class Traffic:
    """Requests per second in each hour (one value: a constant rate)."""

    rates: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.rates or any(not (math.isfinite(r) and r >= 0) for r in self.rates) or self.peak <= 0:
            raise ConfigError(
                f"traffic must be positive requests per second, got {list(self.rates)}",
                "pass --traffic 150 (requests/s), or a profile whose peak is above 0",
            )

    @property
    def peak(self) -> float:
        return max(self.rates)

    @property
    def mean(self) -> float:
        return sum(self.rates) / len(self.rates)

    @property
    def constant(self) -> bool:
        return len(set(self.rates)) == 1

    def describe(self) -> str:
        if self.constant:
            return f"{self.peak:g} req/s"
        return f"a daily profile peaking at {self.peak:g} req/s (mean {self.mean:.3g})"


def _values(data: object, key: str, origin: str) -> list[float]:
    values = data.get(key) if isinstance(data, dict) else None
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        raise ConfigError(f"{origin}: `{key}` must be a list of numbers", PROFILE_FIX)
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: `{key}` holds a value that is not a number", PROFILE_FIX) from exc


def load_traffic(rate: float | None = None, profile: str | os.PathLike[str] | None = None) -> Traffic:
    """A constant ``rate``, a profile's rates, or a profile's shape scaled so that its peak is ``rate``."""
    if profile is None:
        if rate is None:
            raise ConfigError("no traffic given", "pass --traffic 150 (requests/s) or --profile profile.yaml")
        return Traffic((float(rate),))
    p = Path(profile)
    if not p.is_file():
        raise ConfigError(f"profile {p} not found", PROFILE_FIX)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"profile {p} is not valid YAML: {exc}", PROFILE_FIX) from exc
    if isinstance(data, dict) and "rates" in data:
        rates = _values(data, "rates", str(p))
        if rate is not None:  # rescale so the peak is the given rate
            top = max(rates)
            rates = [r / top * float(rate) if top > 0 else 0.0 for r in rates]
        return Traffic(tuple(rates))
    shape = _values(data, "shape", str(p))
    if rate is None:
        raise ConfigError(f"profile {p} gives a shape, not rates", "pass --traffic as the peak rate")
    top = max(shape)
    if not top > 0:
        raise ConfigError(f"profile {p}: the shape's largest value must be above 0", PROFILE_FIX)
    return Traffic(tuple(s / top * float(rate) for s in shape))
