"""Configs: every YAML in configs/ parses; the offline ones validate; user tasks and models from YAML."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from accelbench.config import load_config, use_config
from accelbench.exceptions import ConfigError, MethodNotApplicableError
from accelbench.suite import plan

pytestmark = pytest.mark.usefixtures("restore_registries")  # tasks/models a test registers go after it

NOT_SWEEPS = {"prices.yaml"}  # the planner's machine types and prices, not a sweep config
CONFIGS = sorted(
    p for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml") if p.name not in NOT_SWEEPS
)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_parses(path):
    config = load_config(path)
    assert config.experiments and config.run_dir.name == config.run
    names = [r.notebook for r in plan(config)]
    assert (
        names[-1] == ("05_scaling.ipynb" if config.serving else "04_pareto.ipynb")
        and "01_baseline.ipynb" in names
    )
    assert "04_pareto.ipynb" in names


@pytest.mark.parametrize(
    "name",
    [
        "default.yaml",
        "quick.yaml",
        "distill.yaml",
        "runtimes.yaml",
        "calibration.yaml",
        "serving.yaml",
        "gpu.yaml",
    ],
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


# --- issue 13: the example configs, YAML errors, bad inputs refused before any work ---------------------------


@pytest.mark.parametrize("name", ["news_topic.yaml", "sentence_pairs.yaml"])
def test_example_data_configs_validate(name):
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / name)
    assert config.validate() == {} or all("ort" in k or "int8" in k for k in config.validate())
    assert all("fp32" in e.methods for e in config.experiments)


def test_a_yaml_syntax_error_is_one_line_with_file_line_and_column(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "run: x\nexperiments:\n  - task: sst2\n    models: [minilm-sst2\n  methods: [fp32]\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "c.yaml")
    msg = e.value.message
    assert "\n" not in msg and msg.startswith(
        f"{tmp_path / 'c.yaml'}:5:10: not valid YAML: expected ',' or ']'"
    )
    assert "starts at line 4, column 13" in msg and e.value.fix == "fix the YAML syntax at line 5, column 10"


def _broken_copy(tiny_bert, tmp_path, how: str) -> Path:
    import shutil

    out = tmp_path / f"ckpt-{how}"
    shutil.copytree(tiny_bert, out)
    weights = out / "model.safetensors"
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif how == "garbage":
        weights.write_bytes(b"\x00" * 64)
    elif how == "no-config":
        (out / "config.json").unlink()
    elif how == "bad-config":
        (out / "config.json").write_text('{"hidden_size": 32,')
    elif how == "no-tokenizer":
        for f in ("tokenizer.json", "vocab.txt"):
            (out / f).unlink(missing_ok=True)
    return out


@pytest.mark.parametrize("how, message", [
    ("truncated", "model.safetensors is truncated: "),
    ("garbage", "model.safetensors is corrupt: no valid safetensors header"),
    ("no-config", "config.json is missing"),
    ("bad-config", "config.json is not valid JSON"),
    ("no-tokenizer", "has no tokenizer"),
])  # fmt: skip
def test_a_corrupt_or_incomplete_checkpoint_is_refused_in_validation(tmp_path, tiny_bert, how, message):
    from accelbench.exceptions import ModelError

    ckpt = _broken_copy(tiny_bert, tmp_path, how)
    (tmp_path / "c.yaml").write_text(f"run: x\nexperiments: [{{task: sst2, models: ['{ckpt}']}}]\n")
    with pytest.raises(ModelError) as e:
        load_config(tmp_path / "c.yaml").validate()
    assert message in e.value.message and "save_pretrained" in e.value.fix


BAD_INPUTS = {  # file contents, task fields, what the one error line says
    "missing column": (
        "1,Title,Body\n",
        {"text_columns": ["title", "summary"]},
        "column(s) summary not found",
    ),
    "label outside the map": ("1,Title,Body\n7,Other,Story\n", {}, "label '7' in"),
    "header row": ("label,title,description\n1,Title,Body\n", {}, "line 1 is a header row"),
    "empty pair column": (
        "1,Title,\n2,Other,\n",
        {"text_columns": None, "text_column": "title", "text_pair_column": "description"},
        "pair column 'description' is empty",
    ),  # fmt: skip
    "not utf-8": (b"1,Caf\xe9,Body\n", {}, "is not UTF-8: line 1, column 6"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS) + ["yaml syntax", "corrupt checkpoint"])
def test_bad_input_through_the_cli_exits_2_with_one_error_and_one_fix_and_records_untouched(
    tmp_path, capsys, tiny_bert, case
):
    import yaml

    from accelbench.cli import main
    from accelbench.records import append_records

    rows, fields, message = BAD_INPUTS.get(case, ("1,Title,Body\n2,Other,Story\n", {}, None))
    data = tmp_path / "news.csv"
    data.write_bytes(rows if isinstance(rows, bytes) else rows.encode())
    task = {"kind": "classification", "format": "csv", "files": {"train": "news.csv", "dev": "news.csv"},
            "header": False, "columns": ["label", "title", "description"], "label_column": "label",
            "text_columns": ["title", "description"], "label_names": {1: "World", 2: "Sports"}, **fields}  # fmt: skip
    task = {k: v for k, v in task.items() if v is not None}
    model = str(_broken_copy(tiny_bert, tmp_path, "truncated") if case == "corrupt checkpoint" else tiny_bert)
    config = {"run": "r", "results_dir": str(tmp_path / "results"), "tasks": {"news": task},
              "experiments": [{"task": "news", "models": [model], "methods": ["fp32"]}]}  # fmt: skip
    text = yaml.safe_dump(config)
    if case == "yaml syntax":
        text, message = text + "benchmark: {batch_sizes: [1, 8}\n", "not valid YAML"
    elif case == "corrupt checkpoint":
        message = "is truncated"
    (tmp_path / "c.yaml").write_text(text)
    append_records(tmp_path / "results" / "r", [{"key": "k0", "status": "ok", "metric": 0.9}])
    before = (tmp_path / "results" / "r" / "records.jsonl").read_bytes()
    code = main(["run", "--config", str(tmp_path / "c.yaml")])
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith(("error:", "fix:"))]
    assert code == 2 and [x.split(":")[0] for x in lines] == ["error", "fix"], err
    assert message in lines[0], err
    assert (tmp_path / "results" / "r" / "records.jsonl").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "results" / "r").iterdir()) == ["records.jsonl"]


@pytest.mark.parametrize(
    "serving, match",
    [
        ("[1, 2]", "not a mapping"),
        ("{task: sst2, model: minilm-sst2, traffic: 50}", "no p99_ms"),
        ("{task: sst2, model: minilm-sst2, traffic: 0, p99_ms: 100}", "traffic must be a positive number"),
        ("{task: sst2, model: minilm-sst2, traffic: 5, p99_ms: 100, batch_sizes: [2, 4]}", "must include 1"),
        ("{task: sst2, model: minilm-sst2, traffic: 5, p99_ms: 100, colocated: [0]}", "positive integers"),
        ("{task: sst2, model: minilm-sst2, traffic: 5, p99_ms: 100, prices: nowhere.yaml}", "no price file"),
        ("{task: sst2, model: minilm-sst2, traffic: 5, p99_ms: 100, replicas: 3}", "unknown field"),
        (
            "{task: sst2, model: minilm-sst2, traffic: 5, p99_ms: 100, validate: 1}",
            "validate must be true or false",
        ),
        (
            "{task: sst2, model: minilm-sst2, traffic: 5, p99_ms: 100, validate_s: 0}",
            "validate_s must be a positive",
        ),
    ],
)
def test_serving_block_errors_name_the_fix(tmp_path, serving, match):
    from accelbench.config import load_config

    cfg = tmp_path / "s.yaml"
    cfg.write_text(f"run: s\nexperiments: [{{task: sst2, models: [minilm-sst2]}}]\nserving: {serving}\n")
    with pytest.raises(ConfigError, match=match) as e:
        load_config(cfg)
    assert e.value.fix


def test_serving_block_adds_the_scaling_notebook(tmp_path):
    from accelbench.config import load_config
    from accelbench.suite import plan

    cfg = tmp_path / "s.yaml"
    cfg.write_text("run: s\nexperiments: [{task: sst2, models: [minilm-sst2]}]\n"
                   "serving: {task: sst2, model: minilm-sst2, traffic: 5, p99_ms: 100}\n")  # fmt: skip
    runs = plan(load_config(cfg))
    assert runs[-1].notebook == "05_scaling.ipynb" and runs[-1].parameters["traffic"] == 5.0
    assert runs[-1].parameters["validate"] is False and runs[-1].parameters["validate_s"] == 10.0
    assert runs[-1].parameters["progress"] is False and runs[-2].notebook == "04_pareto.ipynb"


def test_an_experiment_s_own_benchmark_settings_override_the_sweep_s(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        textwrap.dedent("""
        run: x
        benchmark: {batch_sizes: [1, 8], min_time_s: 1}
        experiments:
          - {task: sst2, models: [minilm-sst2], methods: [fp32], benchmark: {offline: true, min_time_s: 2}}
          - {task: multi30k, models: [t5-multi30k], methods: [fp32]}
    """)
    )
    runs = {
        r.parameters["task"]: r.parameters["settings"]
        for r in plan(load_config(cfg))
        if "task" in r.parameters
    }
    assert (
        runs["sst2"]["offline"] is True
        and runs["sst2"]["min_time_s"] == 2
        and runs["sst2"]["batch_sizes"] == [1, 8]
    )
    assert runs["multi30k"]["offline"] is False and runs["multi30k"]["min_time_s"] == 1
    bad = cfg.read_text().replace("offline: true", "offline_max_batch: 0")
    cfg.write_text(bad)
    with pytest.raises(ConfigError, match="offline_max_batch"):
        load_config(cfg)
    cfg.write_text(bad.replace("benchmark: {offline_max_batch: 0, min_time_s: 2}", "benchmark: [offline]"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(cfg)


def test_a_sensitivity_block_reaches_notebook_02_and_bad_ones_fail_before_work(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        textwrap.dedent("""
        run: x
        experiments:
          - {task: sst2, models: [minilm-sst2], methods: [fp32], sensitivity: {methods: [dynamic-int8], n_eval: 50}}
    """)
    )
    runs = [r for r in plan(load_config(cfg)) if "02_quantization" in r.notebook]
    assert len(runs) == 1 and runs[0].parameters["sensitivity"]["methods"] == ["dynamic-int8"]
    for bad, match in [("methods: [fp32]", "fp32_units"), ("methods: [dynamic-int8], fraction: 1.5", "fraction"),
                       ("methods: [dynamic-int8], colour: red", "colour")]:  # fmt: skip
        cfg.write_text(cfg.read_text().replace(cfg.read_text().split("sensitivity: {")[1].split("}")[0], bad))
        with pytest.raises(ConfigError, match=match):
            load_config(cfg)
        cfg.write_text(cfg.read_text().replace(bad, "methods: [dynamic-int8], n_eval: 50"))
