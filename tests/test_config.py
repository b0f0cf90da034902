"""Configs: every YAML in configs/ parses; the offline ones validate; user tasks and models from YAML."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from accelbench.config import load_config, use_config
from accelbench.exceptions import ConfigError, MethodNotApplicableError
from accelbench.suite import plan

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_parses(path):
    config = load_config(path)
    assert config.experiments and config.run_dir.name == config.run
    names = [r.notebook for r in plan(config)]
    assert names[-1] == "04_pareto.ipynb" and "01_baseline.ipynb" in names


@pytest.mark.parametrize(
    "name", ["default.yaml", "quick.yaml", "distill.yaml", "runtimes.yaml", "calibration.yaml"]
)
def test_offline_configs_validate(name):
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / name)
    config.validate()  # tasks, built-in models, methods, data (tiny copies here)
    assert all("fp32" in e.methods for e in config.experiments)


def test_user_task_and_model_in_yaml(tmp_path, tiny_bert):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.jsonl").write_text(
        '{"body": "great", "y": "pos"}\n{"body": "awful", "y": "neg"}\n'
    )
    (tmp_path / "d" / "dev.jsonl").write_text('{"body": "fine", "y": "pos"}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        textwrap.dedent(f"""
        run: mine
        tasks:
          opinions: {{kind: classification, format: json, files: {{train: d/train.jsonl, dev: d/dev.jsonl}},
                      text_column: body, label_column: y, label_names: [neg, pos]}}
        models:
          my-bert: {{base: "{tiny_bert}"}}
        experiments:
          - {{task: opinions, models: [my-bert], methods: [dynamic-int8]}}
    """)
    )
    config = load_config(cfg)
    config.validate()
    assert config.experiments[0].methods == ["fp32", "dynamic-int8"]  # the baseline is always measured
    assert plan(config)[0].parameters["config"] == str(cfg.resolve())  # notebooks register the same task
    from accelbench.tasks import load_task

    use_config(cfg)
    assert load_task("opinions")["train"]["label"] == [1, 0]


@pytest.mark.parametrize("body, match", [
    ("run: 'a b'\nexperiments: [{task: sst2, models: [minilm-sst2]}]", "not a plain folder name"),
    ("run: x\nexperiments: []", "has no experiments"),
    ("run: x\nfraction: 1.5\nexperiments: [{task: sst2, models: [minilm-sst2]}]", "fraction must be in"),
    ("run: x\nexperiments: [{task: sst2, models: []}]", "lists no models"),
    ("run: x\nexperiments: [{task: sst2, models: [minilm-sst2], metods: [fp32]}]", "unknown field"),
])  # fmt: skip
def test_bad_configs(tmp_path, body, match):
    (tmp_path / "c.yaml").write_text(body)
    with pytest.raises(ConfigError, match=match):
        load_config(tmp_path / "c.yaml")


def test_default_plan_runs_students_through_the_distillation_notebook():
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "default.yaml")
    config.validate()
    runs = plan(config)
    students = [r for r in runs if r.notebook == "03_distillation.ipynb"]
    assert {r.parameters["student"] for r in students} == {"minilm-sst2-l3", "t5-multi30k-half"}
    assert all("fp32" in r.parameters["methods"] and len(r.parameters["methods"]) > 1 for r in students)
    baselines = {r.parameters["model"] for r in runs if r.notebook == "01_baseline.ipynb"}
    assert baselines == {"minilm-sst2", "t5-multi30k"}  # teachers only: students get 03 instead


def test_a_method_this_machine_cannot_run_is_skipped_in_a_sweep_or_refused_on_request(tmp_path, monkeypatch):
    """The shipped configs validate on any x86-64 CPU: what the CPU cannot run is reported, not fatal."""
    from accelbench.methods import get_method

    bf16 = type(get_method("bf16"))
    monkeypatch.setattr(bf16, "unavailable_reason", lambda self: "this CPU has no native bfloat16 (faked)")
    body = "run: x\nexperiments: [{task: sst2, models: [minilm-sst2], methods: [fp32, bf16, dynamic-int8]}]\n"
    (tmp_path / "skip.yaml").write_text(body)
    skipped = load_config(tmp_path / "skip.yaml").validate()
    assert skipped == {
        "sst2: minilm-sst2:bf16": "cannot run on this machine: this CPU has no native bfloat16 (faked)"
    }
    assert plan(load_config(tmp_path / "skip.yaml"))[0].parameters["unavailable"] == "skip"
    (tmp_path / "strict.yaml").write_text("on_unavailable: error\n" + body)
    with pytest.raises(MethodNotApplicableError, match="faked"):
        load_config(tmp_path / "strict.yaml").validate()
    (tmp_path / "bad.yaml").write_text("on_unavailable: sometimes\n" + body)
    with pytest.raises(ConfigError, match="on_unavailable"):
        load_config(tmp_path / "bad.yaml")
