"""The GPU verification kit and check (benchmarks/gpu_kit.py, gpu_check.py) on tiny models, on the CPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
from safetensors.torch import load_file

from accelbench.exceptions import ConfigError

pytestmark = pytest.mark.usefixtures("restore_registries")
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
TINY = {"n_eval": 12, "max_new_tokens": 4, "min_time_s": 0.02, "n_bootstrap": 20}
ENV = ("ACCELBENCH_DATA_DIR", "ACCELBENCH_CACHE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
       "TOKENIZERS_PARALLELISM", "HF_DATASETS_CACHE")  # fmt: skip


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kit_mod, check_mod = _script("gpu_kit"), _script("gpu_check")


@pytest.fixture
def kit(tmp_path, tiny_bert, tiny_t5, data_root) -> Path:
    folder = tmp_path / ".gpu"
    kit_mod.build_kit(folder, {"tiny-bert": (tiny_bert, "k-bert"), "tiny-t5": (tiny_t5, "k-t5")}, data=data_root,
                      wheels=(), travelling={"tracked": 1000})  # fmt: skip
    return folder


@pytest.fixture
def env(monkeypatch):
    """``prepare`` sets the package's environment; the test's own values come back afterwards."""
    for name in ENV:
        monkeypatch.setenv(name, "unset-by-test")


def test_kit_holds_fp16_weights_eval_data_and_sizes(kit, tiny_bert, data_root):
    manifest = json.loads((kit / "manifest.json").read_text())
    assert set(manifest["models"]) == {"tiny-bert", "tiny-t5"} and manifest["weights_dtype"] == "float16"
    weights = load_file(kit / "models" / "tiny-bert" / kit_mod.KIT_WEIGHTS)
    original = load_file(tiny_bert / "model.safetensors")
    assert weights.keys() == original.keys()
    assert {str(v.dtype) for v in weights.values() if v.is_floating_point()} == {"torch.float16"}
    assert not (kit / "models" / "tiny-bert" / "model.safetensors").exists()  # never loaded as it is
    assert (kit / "data" / "sst2" / "dev.tsv").read_bytes() == (data_root / "sst2" / "dev.tsv").read_bytes()
    train = (kit / "data" / "sst2" / "train.tsv").read_text().splitlines()
    assert 1 < len(train) <= kit_mod.STUB_LINES
    assert manifest["sizes"]["tracked"] == 1000 and manifest["sizes"]["model tiny-bert"] > 0


def test_kit_over_the_limit_is_refused(tmp_path, tiny_bert, data_root):
    with pytest.raises(ConfigError, match="over the 0.0 MiB limit"):
        kit_mod.build_kit(tmp_path / ".gpu", {"tiny-bert": (tiny_bert, "k")}, data=data_root, wheels=(),
                          travelling={"tracked": 10}, limit=1000)  # fmt: skip


def test_exclude_line_is_added_once(tmp_path):
    (tmp_path / ".git" / "info").mkdir(parents=True)
    kit_mod.ensure_excluded(tmp_path)
    kit_mod.ensure_excluded(tmp_path)
    assert (tmp_path / ".git" / "info" / "exclude").read_text().splitlines().count("/.gpu/") == 1


def test_prepare_upcasts_to_float32_and_registers(kit, tmp_path, tiny_bert, env):
    from accelbench.models import MODELS

    placed = check_mod.prepare(kit, tmp_path / "work")
    assert placed["tiny-bert"]["registered_as"] == "folder" and "tiny-bert" in MODELS
    upcast = load_file(Path(placed["tiny-bert"]["path"]) / "model.safetensors")
    original = load_file(tiny_bert / "model.safetensors")
    assert {str(v.dtype) for v in upcast.values() if v.is_floating_point()} == {"torch.float32"}
    worst = max(
        float((upcast[k] - original[k]).abs().max()) for k in original if original[k].is_floating_point()
    )
    assert 0 < worst < 1e-3  # rounded to float16, nothing more


def test_cpu_check_records_and_verdicts(kit, tmp_path, env, monkeypatch):
    monkeypatch.setattr(
        "accelbench.experiment.measure_peaks", lambda *a, **k: {}, raising=False
    )  # seconds of CPU matmuls
    out = tmp_path / "out"
    result = check_mod.check(kit, out, device="cpu", quick=True, work=tmp_path / "work", classifier="tiny-bert",
                             seq2seq="tiny-t5", compiled=False, overrides=TINY)  # fmt: skip
    assert {k for k, v in result["steps"].items() if v["status"] != "ok"} == set(), result["steps"]
    saved = json.loads((out / "gpu_check.json").read_text())
    assert set(saved["targets"]) == set(check_mod.TARGETS)
    assert {t["verdict"] for t in saved["targets"].values()} == {check_mod.NO_CUDA}
    assert saved["environment"]["cuda_available"] is False and saved["environment"]["versions"]["datasets"]
    assert set(saved["not_run"]) == {"tiny-bert:tf32", "tiny-bert:fp16", "tiny-t5:fp16"}
    records = pd.read_json(out / "records.jsonl", lines=True)
    ok = records[records["status"] == "ok"]
    assert {"tiny-bert:fp32", "tiny-t5:fp32"} <= set(ok["variant"])
    assert set(ok[ok["model"] == "tiny-bert"]["batch_size"]) == {1, 32, 256}
    assert set(records["device"]) == {"cpu"} and (ok["speedup_vs_fp32"] > 0).all()
    timer = saved["targets"]["timer"]["measured"]
    assert timer["fp32"]["wall_median_s"] > 0 and timer["calls"] == 5
    assert "fp32" in check_mod.summary(result)


def _rows(
    speedup: float, metric: float, base_metric: float, method: str, model: str, batch: int
) -> pd.DataFrame:
    common = {"model": model, "status": "ok", "scenario": "batch", "batch_size": batch, "error": None}
    return pd.DataFrame([{**common, "method": "fp32", "variant": f"{model}:fp32", "speedup_vs_fp32": 1.0,
                          "metric": base_metric},
                         {**common, "method": method, "variant": f"{model}:{method}", "speedup_vs_fp32": speedup,
                          "metric": metric}])  # fmt: skip


@pytest.mark.parametrize(("speedup", "metric", "verdict"), [(3.2, 0.90, "pass"), (2.9, 0.91, "fail"),
                                                           (3.5, 0.88, "fail")])  # fmt: skip
def test_classifier_target_verdicts(speedup, metric, verdict):
    df = _rows(speedup, metric, 0.90, "bf16[compile=True]", "minilm-sst2", 256)
    target = check_mod.evaluate(df, None, "cuda")["minilm_bf16_compiled"]
    assert target["verdict"] == verdict and target["speedup_vs_fp32"] == speedup


@pytest.mark.parametrize(("speedup", "bleu", "verdict"), [(1.6, 30.6, "pass"), (1.6, 30.4, "fail"),
                                                         (1.4, 31.0, "fail")])  # fmt: skip
def test_seq2seq_target_verdicts(speedup, bleu, verdict):
    df = _rows(speedup, bleu, 31.0, "bf16", "t5-multi30k", 64)
    assert check_mod.evaluate(df, None, "cuda")["t5_bf16"]["verdict"] == verdict


def test_a_skipped_variant_is_not_measured_with_its_reason():
    df = _rows(4.0, 0.9, 0.9, "bf16", "t5-multi30k", 64)
    df.loc[1, ["status", "error"]] = ["skipped", "cannot run on this machine: no bf16"]
    assert check_mod.evaluate(df, None, "cuda")["t5_bf16"]["verdict"] == (
        "not measured: skipped: cannot run on this machine: no bf16"
    )


@pytest.mark.parametrize(("ratio", "verdict"), [(1.03, "pass"), (0.96, "pass"), (1.08, "fail")])
def test_timer_target_verdicts(ratio, verdict):
    timer = {"calls": 50, "fp32": {"ratio": 1.0}, "bf16": {"ratio": ratio}}
    assert check_mod.timer_target(timer, "cuda")["verdict"] == verdict
    assert check_mod.timer_target(timer, "cpu")["verdict"] == check_mod.NO_CUDA


def test_device_command_fits_the_tool():
    assert len(check_mod.COMMAND) < 2000 and check_mod.CARRY == [".gpu"]
    assert check_mod.COMMAND in check_mod.__doc__ and "--target /tmp/site" in check_mod.COMMAND


def test_time_calls_reads_the_wall_clock_on_the_cpu():
    import time

    row = check_mod.time_calls(lambda: time.sleep(0.01), "cpu", calls=5, warmup=1)
    assert 0.009 < row["wall_median_s"] < 0.05 and "ratio" not in row  # no CUDA events without a GPU


@pytest.mark.slow
def test_cpu_check_compiles_the_classifier(kit, tmp_path, env, monkeypatch):
    from accelbench.environment import cxx_compiler

    if cxx_compiler() is None:
        pytest.skip("torch.compile needs a C++ compiler on the CPU")
    monkeypatch.setattr("accelbench.experiment.measure_peaks", lambda *a, **k: {}, raising=False)
    result = check_mod.check(kit, tmp_path / "out", device="cpu", quick=True, work=tmp_path / "work",
                             classifier="tiny-bert", seq2seq="tiny-t5", overrides=TINY)  # fmt: skip
    compiled = [v for v in result["variants"] if v["variant"] == "tiny-bert:fp32[compile=True]"]
    assert compiled and {v["status"] for v in compiled} == {"ok"}
    assert {v["compile_mode"] for v in compiled} == {check_mod.COMPILED_MODE}
    assert not [v for v in result["variants"] if "tiny-t5" in v["variant"] and "compile" in v["variant"]]
