"""The papermill suite over a tiny grid: notebooks, HTML, summary; a rerun measures nothing again."""

from __future__ import annotations

import textwrap

import pytest

from accelbench.cli import main
from accelbench.records import read_records

pytestmark = pytest.mark.slow


def test_suite_runs_grid_and_resumes(tiny_bert, tmp_path, capsys):
    cfg = tmp_path / "suite.yaml"
    cfg.write_text(
        textwrap.dedent(f"""
        run: tiny
        results_dir: {tmp_path / "results"}
        models:
          tiny-student:
            family: bert
            task: sst2
            recipe: {{kind: distill-classifier, teacher: "{tiny_bert}", layers: [1], batch_size: 16,
                      time_budget_s: 10}}
        experiments:
          - task: sst2
            models: ["{tiny_bert}", tiny-student]
            methods: [fp32, dynamic-int8]
        benchmark: {{batch_sizes: [1, 4], min_time_s: 0.05, warmup: 1, max_requests: 5, n_bootstrap: 50}}
        baseline_paddings: [dynamic]
    """)
    )
    assert main(["run", "--config", str(cfg), "-q"]) == 0
    run_dir = tmp_path / "results" / "tiny"
    nbs = sorted(p.name for p in (run_dir / "notebooks").glob("*.ipynb"))
    assert (
        nbs
        == [
            "01_baseline__sst2__tiny-bert0.ipynb",
            "02_quantization__sst2__tiny-bert0.ipynb",
            "03_distillation__sst2__tiny-student.ipynb",  # a student: trained, then every method against its teacher
            "04_pareto.ipynb",
        ]
    )
    assert len(list((run_dir / "notebooks").glob("*.html"))) == 4
    summary = (run_dir / "summary.md").read_text()
    assert "tiny-bert0:dynamic-int8" in summary and "## Notebooks" in summary and "FAILED" not in summary
    assert (run_dir / "config.yaml").exists()
    timing = summary.split("## Where the time went")[1]
    assert "training tiny-student" in timing and "notebook 04_pareto.ipynb" in timing
    n = len(read_records(run_dir))
    assert n == 12  # (teacher, student) x 2 methods x (realtime + 2 batch sizes)
    df = read_records(run_dir)
    assert set(df.loc[df["model"] == "tiny-student", "teacher"]) == {"tiny-bert0"}
    assert "tiny-student:dynamic-int8" in summary

    assert main(["run", "--config", str(cfg), "-q"]) == 0  # rerun: everything already recorded
    assert len(read_records(run_dir)) == n
    assert "training tiny-student" not in (run_dir / "summary.md").read_text()  # cached: nothing trained
