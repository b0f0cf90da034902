"""The papermill suite over a tiny grid: notebooks, HTML, summary, report; failures told once; resumes."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest

from accelbench.analysis.summary import failure_rows, with_failures
from accelbench.cli import main
from accelbench.models import MODELS
from accelbench.records import read_records
from accelbench.suite import cause_and_fix

from .test_report import assert_report_resolves

# What a progress bar's update or a library's noise looks like in a saved stream output.
PROGRESS_MARKS = ("it/s", "%|", "batch/s", "req/s", "step/s")
NOISE_MARKS = ("Failed to load", "register_constant", "IProgress not found", "Detected no triton")


@pytest.fixture(autouse=True)
def _forget_config_models():
    """Models a test's config registers (tiny-student, bad-student) leave the registry with the test."""
    before = set(MODELS.names())
    yield
    for name in set(MODELS.names()) - before:
        MODELS.unregister(name)


def _streams(notebook) -> list[tuple[str, str]]:
    nb = json.loads(notebook.read_text())
    return [(o["name"], "".join(o["text"])) for c in nb["cells"] if c["cell_type"] == "code"
            for o in c.get("outputs", []) if o["output_type"] == "stream"]  # fmt: skip


@pytest.mark.slow
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
    for nb in (run_dir / "notebooks").glob(
        "*.ipynb"
    ):  # results, not progress: no bar updates, no library noise
        streams = _streams(nb)
        for name, text in streams:
            assert not any(m in text for m in PROGRESS_MARKS), f"{nb.name} {name}: {text[:200]!r}"
            assert not any(m in text for m in NOISE_MARKS), f"{nb.name} {name}: {text[:200]!r}"
        assert any("accelbench 0.1" in text and "CPU" in text for _, text in streams), (
            nb.name
        )  # the setup line
    baseline = "".join(t for _, t in _streams(run_dir / "notebooks" / "01_baseline__sst2__tiny-bert0.ipynb"))
    assert "tiny-bert0:fp32: accuracy" in baseline and "on 40 examples" in baseline  # a line per step
    assert_report_resolves(run_dir)
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


def _failed_records() -> pd.DataFrame:
    common = {"run": "r", "task": "sst2", "timestamp": "2026-01-01T00:00:00+0000"}
    return pd.DataFrame([
        {**common, "key": "a", "variant": "m:fp32", "method": "fp32", "scenario": "realtime", "status": "ok"},
        {**common, "key": "b", "variant": "m:bf16", "method": "bf16", "status": "error",
         "error": "RuntimeError: no kernel for bf16\nsecond line of the message"},
        {**common, "key": "c", "variant": "m:int4", "method": "int4", "status": "timeout",
         "error": "stopped after 30 s: over time_limit_s=30 while building"},
        {**common, "key": "d", "variant": "m:ct2", "method": "ct2", "status": "skipped", "error": "no ctranslate2"},
    ])  # fmt: skip


def test_failures_section_tells_every_failure_with_cause_and_fix():
    records = _failed_records()
    rows = failure_rows(records)
    assert [(r["what"], r["task"], r["name"]) for r in rows] == [
        ("variant", "sst2", "m:bf16"),
        ("timeout", "sst2", "m:int4"),
    ]
    assert rows[0]["cause"] == "RuntimeError: no kernel for bf16"  # the exception and its message
    assert "traceback" in rows[0]["fix"] and "time_limit_s" in rows[1]["fix"]
    notebook = {"what": "notebook", "task": "sst2", "name": "01_baseline__sst2__bad.ipynb",
                "link": "notebooks/01_baseline__sst2__bad.html",
                "cause": "ModelError: cannot load bert model 'bad' (SafetensorError: header too large)",
                "fix": "check that the checkpoint is a sequence classifier"}  # fmt: skip
    summary = "# summary\n\n## sst2\n\nthe table\n\n## Failures\n\nold text\n\n## Environment\n\n- cpu\n"
    text = with_failures(summary, records.iloc[:1])  # only an ok row: nothing failed
    assert "None: every configuration ran." in text and "old text" not in text
    text = with_failures(summary, records.iloc[:1], [notebook])
    section = text.split("## Failures")[1].split("\n## ")[0]
    assert "None: every configuration ran." not in text and text.count("## Failures") == 1
    assert (
        "| sst2 | [01_baseline__sst2__bad.ipynb](notebooks/01_baseline__sst2__bad.html) | notebook |"
        in section
    )
    assert "header too large" in section and "check that the checkpoint" in section
    assert text.startswith("# summary\n\n## sst2\n\nthe table\n\n") and text.endswith(
        "## Environment\n\n- cpu\n"
    )
    section = with_failures(summary, records, [notebook]).split("## Failures")[1].split("\n## ")[0]
    assert (
        "2 failure(s)" in section
        and "| sst2 | m:bf16 | variant | RuntimeError: no kernel for bf16 |" in section
    )
    assert "1 variant(s) stopped at the time limit" in section and "no ctranslate2" not in section


def test_cause_and_fix_splits_an_accelbench_message():
    assert cause_and_fix(
        "ModelError", "cannot load 'x' (SafetensorError: header too large)\n  fix: retrain it"
    ) == (
        "ModelError: cannot load 'x' (SafetensorError: header too large)",
        "retrain it",
    )
    assert cause_and_fix("ValueError", "bad\nvalue") == ("ValueError: bad value", None)


@pytest.mark.slow
def test_failures_are_told_once_with_cause_fix_and_exit_code(tiny_bert, tmp_path, capsys):
    """A checkpoint that cannot be loaded beside a good one, and a student of it that cannot be trained.

    Its files are whole (validation, which refuses corrupt files up front, lets it pass), but its config does
    not fit its weights, which only loading finds out."""
    bad = tmp_path / "bad-model"
    bad.mkdir()
    for f in tiny_bert.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "intermediate_size": 48}))  # weights are 64 wide
    cfg = tmp_path / "fail.yaml"
    cfg.write_text(
        textwrap.dedent(f"""
        run: fail
        results_dir: {tmp_path / "results"}
        models:
          bad-student:
            family: bert
            task: sst2
            recipe: {{kind: distill-classifier, teacher: "{bad}", layers: [0], batch_size: 16, max_steps: 2}}
        experiments:
          - task: sst2
            models: ["{tiny_bert}", "{bad}", bad-student]
            methods: [fp32]
        benchmark: {{batch_sizes: [2], min_time_s: 0.05, warmup: 1, max_requests: 5, n_bootstrap: 50}}
        baseline_paddings: [dynamic]
    """)
    )
    code = main(["run", "--config", str(cfg), "-q", "--only", "01", "04"])
    out, err = capsys.readouterr()
    assert code == 1
    run_dir = tmp_path / "results" / "fail"
    tail = err[err.rindex("failure(s)") :]  # the failures come last, each with its cause and fix
    assert "notebook sst2 · 01_baseline__sst2__bad-model.ipynb: ModelError: cannot load" in tail
    assert "mismatched" in tail and "fix: check that the checkpoint" in tail
    assert "training bad-student: " in tail
    lines = tail.splitlines()[1:]
    told = [line for line in lines if line.startswith("  ") and not line.startswith("    ")]
    assert len(told) == 2 and all(nxt.startswith("    fix: ") for nxt in lines[1::2])  # each with its fix
    summary = (run_dir / "summary.md").read_text()
    section = summary.split("## Failures")[1].split("\n## ")[0]
    assert "None: every configuration ran." not in summary
    assert "mismatched" in section and "check that the checkpoint" in section and "bad-student" in section
    assert "01_baseline__sst2__bad-model.html" in section  # the notebook with the traceback, linked
    assert "FAILED (see Failures)" in summary and "mismatched" not in summary.split("## Failures")[0]
    df = read_records(run_dir)
    assert set(df["model"]) == {"tiny-bert0"} and (df["status"] == "ok").all()  # the good model was measured
    assert (run_dir / "index.html").is_file() and "FAILED" in (run_dir / "index.html").read_text()
    assert_report_resolves(run_dir)


def test_summary_scaling_section_comes_from_the_plan(tmp_path):
    from accelbench.suite import _scaling_lines

    assert _scaling_lines(tmp_path) == []  # no serving block, no section
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "plan.md").write_text(
        "# Deployment plan for 50 req/s\n\n**Recommendation:** m:fp32, 1 replica\n"
    )
    lines = _scaling_lines(tmp_path)
    assert "## Scaling" in lines and "**Recommendation:** m:fp32, 1 replica" in lines
    assert not any(line.startswith("# Deployment plan") for line in lines)


def test_two_experiments_of_one_task_and_model_get_their_own_notebooks(tmp_path):
    from accelbench.config import SweepConfig
    from accelbench.suite import plan

    config = SweepConfig.from_dict({
        "run": "two", "results_dir": str(tmp_path),
        "experiments": [
            {"task": "sst2", "models": ["minilm-sst2"], "methods": ["fp32", "bf16"], "benchmark": {"device": "cuda"}},
            {"task": "sst2", "models": ["minilm-sst2"], "methods": ["fp32", "dynamic-int8"]},
            {"task": "sst2", "models": ["minilm-sst2"], "methods": ["fp32"], "benchmark": {"batch_sizes": [4]}},
        ],
    })  # fmt: skip
    names = [run.output.name for run in plan(config)]
    assert len(names) == len(set(names))  # none overwrites another
    assert "01_baseline__sst2__minilm-sst2__cuda.ipynb" in names
    assert "02_quantization__sst2__minilm-sst2__cuda.ipynb" in names
    assert (
        "01_baseline__sst2__minilm-sst2.ipynb" in names and "01_baseline__sst2__minilm-sst2__2.ipynb" in names
    )
