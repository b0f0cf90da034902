"""Where things live: data, trained checkpoints, results and the notebooks, each overridable by environment.

The defaults work both in a source checkout (``make``, editable install: the checkout's ``data/``,
``results/`` and ``notebooks/``) and in a plain ``pip install .``: there the notebooks ship inside the
package (``accelbench/_notebooks``) and data and results default to the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent  # the source checkout, when the package runs from one

DATA_ENV = "ACCELBENCH_DATA_DIR"
CACHE_ENV = "ACCELBENCH_CACHE"
RESULTS_ENV = "ACCELBENCH_RESULTS_DIR"
NOTEBOOKS_ENV = "ACCELBENCH_NOTEBOOKS_DIR"


def _env(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def in_checkout() -> bool:
    """True when the package runs from a source checkout (it has the project's pyproject.toml beside it)."""
    return (CHECKOUT_DIR / "pyproject.toml").is_file() and (CHECKOUT_DIR / "notebooks").is_dir()


def project_dir() -> Path:
    """The checkout when there is one, else the current directory."""
    return CHECKOUT_DIR if in_checkout() else Path.cwd()


def data_dir() -> Path:
    """Local task files: $ACCELBENCH_DATA_DIR, else ``data/`` of the checkout (or of the current directory)."""
    return _env(DATA_ENV) or project_dir() / "data"


def cache_dir() -> Path:
    """Trained checkpoints and teacher outputs: $ACCELBENCH_CACHE, else ~/.cache/accelbench."""
    return _env(CACHE_ENV) or Path.home() / ".cache" / "accelbench"


def results_dir() -> Path:
    """Where runs are written unless a config says otherwise: $ACCELBENCH_RESULTS_DIR, else ``results/``."""
    return _env(RESULTS_ENV) or project_dir() / "results"


def notebooks_dir() -> Path:
    """The parameterized notebooks: $ACCELBENCH_NOTEBOOKS_DIR, the checkout's, else the installed copy."""
    env = _env(NOTEBOOKS_ENV)
    if env:
        return env
    if in_checkout():
        return CHECKOUT_DIR / "notebooks"
    return PACKAGE_DIR / "_notebooks"
