"""The command line: bad input gives one message naming the fix and exit code 2; records survive."""

from __future__ import annotations

import textwrap

import pytest

from accelbench.cli import main
from accelbench.records import append_records, read_records


def _config(tmp_path, body: str):
    path = tmp_path / "configs" / "c.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return str(path)


GOOD = """
    run: r
    results_dir: {results}
    experiments:
      - task: {task}
        models: [minilm-sst2]
        methods: [fp32, {method}]
    benchmark: {{batch_sizes: [{bs}]}}
"""


@pytest.mark.parametrize(
    "fields, message, fix",
    [
        ({"task": "sst3"}, "unknown task 'sst3'; known: multi30k, ", "fix:"),
        ({"method": "int3"}, "unknown method 'int3'", "dynamic-int8"),
        ({"bs": 0}, "batch sizes must be positive", "fix: use e.g. [1, 8, 32]"),
        ({"task": "multi30k"}, "is bert-family but task 'multi30k' is seq2seq", "fix: pair seq2seq"),
    ],
)
def test_bad_config_exits_2_with_fix(tmp_path, capsys, fields, message, fix):
    results = tmp_path / "results"
    append_records(results / "r", [{"key": "k0", "status": "ok", "metric": 0.9}])  # already recorded
    values = {"results": results, "task": "sst2", "method": "dynamic-int8", "bs": 1, **fields}
    code = main(["run", "--config", _config(tmp_path, GOOD.format(**values))])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and fix in err
    assert err.count("error:") == 1
    assert len(read_records(results / "r")) == 1  # nothing recorded is lost


def test_missing_config_and_bad_yaml(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["run", "--config", _config(tmp_path, "run: [unclosed\n")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["run", "--config", _config(tmp_path, "run: x\nexperimentz: []\n")]) == 2
    assert "unknown config field(s): experimentz" in capsys.readouterr().err


def test_list_and_env(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dynamic-int8" in out and "t5-multi30k" in out and "multi30k" in out
    assert "minilm-sst2-l3" in out and "[student of minilm-sst2]" in out
    assert main(["env"]) == 0
    assert "env_cpu_model" in capsys.readouterr().out


def test_unknown_model_exits_2(tmp_path, capsys):
    body = GOOD.format(results=tmp_path / "results", task="sst2", method="dynamic-int8", bs=1)
    code = main(["run", "--config", _config(tmp_path, body.replace("[minilm-sst2]", "[minilm-sst3]"))])
    err = capsys.readouterr().err
    assert (
        code == 2
        and "cannot load model 'minilm-sst3'" in err
        and "fix: use a built-in model (minilm-sst2" in err
    )


def test_missing_model_folder_is_named_as_a_folder(tmp_path, capsys):
    """A path-like model that is not there is a missing folder, not a malformed hub id."""
    body = GOOD.format(results=tmp_path / "results", task="sst2", method="dynamic-int8", bs=1)
    missing = tmp_path / "no-such-checkpoint"
    code = main(["run", "--config", _config(tmp_path, body.replace("[minilm-sst2]", f"[{missing}]"))])
    err = capsys.readouterr().err
    assert code == 2 and f"no folder '{missing}'" in err and "fix: check the path" in err
    assert "Repo id" not in err


def test_failures_come_last_with_cause_and_fix_and_set_the_exit_code(capsys):
    from accelbench.cli import _print_failures
    from accelbench.suite import Failure

    old = Failure("variant", "sst2 · m:bf16", "RuntimeError: no kernel", "rerun", earlier=True)
    assert _print_failures([old]) == 0  # recorded by an earlier run and not retried: told in summary.md
    assert "1 failure(s) recorded by an earlier run" in capsys.readouterr().err
    new = Failure("notebook", "01_baseline__sst2__bad.ipynb", "ModelError: cannot load (header too large)",
                  "check the checkpoint", task="sst2")  # fmt: skip
    assert _print_failures([old, new]) == 1
    err = capsys.readouterr().err
    assert err.rstrip().endswith(
        "  notebook sst2 · 01_baseline__sst2__bad.ipynb: ModelError: cannot load (header too large)\n"
        "    fix: check the checkpoint"
    )


def test_profile_prints_operator_shares_and_refuses_bad_sizes(tiny_bert, capsys):
    argv = ["profile", "--task", "sst2", "--model", str(tiny_bert), "--method", "fp32", "--calls", "1"]
    assert main([*argv, "--batch-size", "4"]) == 0
    assert "matmul" in capsys.readouterr().out
    assert main([*argv, "--batch-size", "0"]) == 2
    assert "fix: use e.g. --batch-size 1" in capsys.readouterr().err


def test_sensitivity_refuses_a_method_without_fallback_and_a_unit_that_does_not_exist(
    tiny_bert, tmp_path, capsys
):
    argv = ["sensitivity", "--task", "sst2", "--model", str(tiny_bert), "--results-dir", str(tmp_path)]
    assert main([*argv, "--method", "fp32"]) == 2
    assert "no fp32_units option" in capsys.readouterr().err
    assert main([*argv, "--method", "dynamic-int8", "--units", "layer.9"]) == 2
    assert "its units are layer.0" in capsys.readouterr().err
    assert not (tmp_path / "sensitivity" / "records.jsonl").exists()  # refused before any work
