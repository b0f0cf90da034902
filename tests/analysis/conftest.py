"""Fixtures of the analysis tests: the hand-made records of ``samples``."""

from __future__ import annotations

import pandas as pd
import pytest

from .samples import make_records


@pytest.fixture
def records() -> pd.DataFrame:
    return make_records()
