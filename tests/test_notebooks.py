"""Each notebook executed through papermill with tiny models and quick settings, then rendered to HTML;
their set-up cell and parameters; ``make lab``'s command line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from accelbench.paths import notebooks_dir
from accelbench.records import read_records
from accelbench.report import check_offline, render_notebook_html

from .conftest import QUICK

NOTEBOOKS_DIR = notebooks_dir()
ROOT = Path(__file__).resolve().parents[1]


def _execute(name: str, out, **parameters):
    import papermill as pm

    pm.execute_notebook(str(NOTEBOOKS_DIR / name), str(out), parameters=parameters, kernel_name="python3",
                        progress_bar=False, cwd=str(NOTEBOOKS_DIR))  # fmt: skip
    return json.loads(out.read_text())


@pytest.mark.slow
def test_notebooks_end_to_end(tiny_bert, tiny_t5, tmp_path):
    run_dir = tmp_path / "run"
    common = {"run_dir": str(run_dir), "settings": QUICK}
    nb = _execute("01_baseline.ipynb", tmp_path / "01.ipynb", task="sst2", model=str(tiny_bert), **common)
    assert nb["metadata"]["papermill"]["parameters"]["task"] == "sst2"  # the output documents its inputs
    sensitivity = {"methods": ["dynamic-int8"], "n_eval": 16, "units": ["layer.0", "classifier"], "max_attempts": 2,
                   "settings": {"batch_sizes": [4], "min_time_s": 0.05}}  # fmt: skip
    nb02 = _execute("02_quantization.ipynb", tmp_path / "02.ipynb", task="sst2", model=str(tiny_bert),
                    methods=["dynamic-int8"], sensitivity=sensitivity, run_dir=str(run_dir),
                    settings={**QUICK, "offline": True, "offline_max_batch": 16, "op_profile": True})  # fmt: skip
    text02 = json.dumps([o for c in nb02["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])])
    assert "Offline batch-size search" in text02 or "offline (samples/s)" in text02
    assert "matmul" in text02  # the operator-share table
    assert "No sensitivity pass" not in text02 and "fp32_units" in text02
    _execute("01_baseline.ipynb", tmp_path / "01t5.ipynb", task="multi30k", model=str(tiny_t5), paddings=["dynamic"],
             **common)  # fmt: skip
    nb = _execute("04_pareto.ipynb", tmp_path / "04.ipynb", run_dir=str(run_dir))
    df = read_records(run_dir)
    assert {m.split("[")[0] for m in df["method"]} == {"fp32", "dynamic-int8"}
    assert df["method"].str.contains("fp32_units=", regex=False).any()  # the mixed-precision attempts
    assert (df["scenario"] == "offline").any()
    assert set(df["task"]) == {"sst2", "multi30k"}
    assert (df["status"] == "ok").all()
    # fixed-length padding was measured by the baseline notebook beside dynamic padding
    assert set(df[df["task"] == "sst2"]["padding"]) == {"dynamic", "max_length"}
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the Pareto notebook shows no plot"
    text = json.dumps(outputs)
    assert "Deploy" in text or "No variant" in text, "the Pareto notebook gives no recommendation"
    html = render_notebook_html(tmp_path / "04.ipynb")
    assert html.stat().st_size > 10_000 and "<html" in html.read_text()[:2000].lower()
    assert check_offline(html.read_text()) == []


@pytest.mark.slow
def test_scaling_notebook_measures_curves_and_plans(tiny_bert, tmp_path):
    run_dir = tmp_path / "run"
    nb = _execute("05_scaling.ipynb", tmp_path / "05.ipynb", run_dir=str(run_dir), task="sst2", model=str(tiny_bert),
                  methods=["fp32"], traffic=20.0, p99_ms=500.0, batch_sizes=[1, 2], threads=[1], colocated=[1],
                  budget_s=0.2, validate=True, validate_s=1.0, progress=False)  # fmt: skip
    serving = run_dir / "serving"
    assert (serving / "service_curves.jsonl").exists() and (serving / "plan.md").exists()
    assert {p.suffix for p in (serving / "autoscaling").iterdir()} >= {".json", ".yaml"}
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    text = json.dumps(outputs)
    assert "cost only" in text  # no quality records in this run
    assert "req/s" in text or "requests" in text  # the sentence to act on
    # curves, the hockey stick, throughput against replicas, predicted against measured
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
    validation = json.loads(next((serving / "validation").glob("plan_validation_fp32_*.json")).read_text())
    assert [round(r["level"], 2) for r in validation["levels"]] == [0.5, 0.8, 0.95]
    for r in validation["levels"]:
        # No request failed. A loaded machine may push 95% of the predicted peak past what the server holds:
        # the bounded queue then answers 503 (rejected), which is the service working, not failing.
        c = r["counts"]
        assert c["ok"] > 0 and c["client_error"] == c["server_error"] == 0, (r["level"], c)
    assert "Planner validation" in text and "measured p99" in text


def test_every_parameter_line_parses_for_papermill():
    """papermill reads the parameters cell to document and type the inputs; a line it cannot parse is dropped."""
    from papermill.translators import PythonTranslator

    for path in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(cells) == 1, f"{path.name}: one parameters cell"
        source = "".join(cells[0]["source"])
        assert not any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), (
            f"{path.name} has outputs"
        )
        lines = [line for line in source.splitlines() if line.strip()]
        assert len(PythonTranslator.inspect({"source": source})) == len(lines), path.name


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_every_notebook_sets_up_first_and_passes_progress_on():
    """``progress`` (False from the suite) reaches every call that draws a bar; set-up shows the environment."""
    for path in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        cells = _code_cells(path)
        assert "progress = True" in cells[0], f"{path.name}: no progress parameter"
        assert "notebook.setup(progress)" in cells[1], f"{path.name}: the set-up cell does not call setup"
        source = "\n".join(cells[1:])
        for call in ("run_experiment(", "load_model(", "ensure_trained(", "ensure_teacher_baseline("):
            for chunk in source.split(call)[1:]:
                args = chunk.split(")\n")[0]
                assert "progress" in args, f"{path.name}: {call}{args[:80]}... does not pass progress"


@pytest.mark.parametrize("uid, root", [("0", True), ("1000", False)])
def test_make_lab_binds_loopback_and_allows_root_only_as_root(uid, root):
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    done = subprocess.run(["make", "-n", "lab", f"LAB_UID={uid}"], cwd=ROOT, capture_output=True, text=True,
                          check=True)  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if "jupyter lab" in x)
    args = line.split()
    assert "--ip=127.0.0.1" in args and "--notebook-dir=notebooks" in args
    assert ("--allow-root" in args) is root
