"""A plain, non-editable install runs the suite from another directory (notebooks ship inside the package)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_installed_package_runs_a_config_from_another_directory(tmp_path, tiny_bert, data_root):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True)  # fmt: skip
    assert (target / "accelbench" / "_notebooks" / "04_pareto.ipynb").is_file()
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "tiny.yaml").write_text(
        textwrap.dedent(f"""
        run: tiny
        models:
          tiny: {{base: "{tiny_bert}"}}
        experiments:
          - {{task: sst2, models: [tiny], methods: [fp32]}}
        benchmark: {{batch_sizes: [2], min_time_s: 0.05, warmup: 1, max_requests: 5, n_bootstrap: 50}}
        baseline_paddings: [dynamic]
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(target), "ACCELBENCH_DATA_DIR": str(data_root)}
    for var in ("ACCELBENCH_RESULTS_DIR", "ACCELBENCH_NOTEBOOKS_DIR"):
        env.pop(var, None)
    done = subprocess.run([sys.executable, "-m", "accelbench", "run", "--config", "tiny.yaml", "-q"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = work / "results" / "tiny"  # results land beside the config's directory, not in the checkout
    assert (run_dir / "summary.md").is_file() and (run_dir / "notebooks" / "04_pareto.html").is_file()
    probe = subprocess.run([sys.executable, "-c", "import accelbench; print(accelbench.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert probe.stdout.strip().startswith(str(target))  # the installed copy ran, not the checkout


def test_every_subpackage_is_listed_for_a_plain_install():
    """pyproject lists its packages (the notebooks ship as one): a new folder left out would be missing from a
    non-editable install and fail there only."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "accelbench").rglob("__init__.py")}
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"
