"""The device logic (issue 14) without a GPU: parsing, refusals, placement, the synchronised timer, CUDA
events, GPU memory and the environment, with torch.cuda replaced by fakes where a GPU would be needed.

``fake_cuda`` makes ``cuda`` resolve to the CPU for tensors while every device call the package makes
(synchronize, memory stats, events) is recorded, so the wiring that only a GPU run would exercise is checked
here: which calls happen, in which order, and what lands in the records.
"""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from accelbench import devices
from accelbench.exceptions import ConfigError, MethodNotApplicableError
from accelbench.measure.settings import BenchmarkSettings
from accelbench.methods import get_method
from accelbench.models import LoadedModel, resolve_model

from .conftest import QUICK

HAS_CUDA = torch.cuda.is_available()


@pytest.mark.parametrize(("given", "want"), [("cpu", "cpu"), ("cuda", "cuda"), ("CUDA:1", "cuda:1"),
                                             (" cuda:0 ", "cuda:0")])  # fmt: skip
def test_parse_device(given, want):
    assert devices.parse_device(given) == want


@pytest.mark.parametrize("bad", ["gpu", "cpu:0", "cuda:", "cuda:x", 0, None, ""])
def test_bad_device_names_the_forms(bad):
    with pytest.raises(ConfigError) as e:
        devices.parse_device(bad)
    assert "cpu, cuda or cuda:N" in e.value.message and "device: cuda" in e.value.fix


def test_device_setting_is_validated_and_kept_out_of_cpu_keys():
    assert "device" not in BenchmarkSettings().key_dict()
    assert BenchmarkSettings(device="cuda").key_dict()["device"] == "cuda"
    with pytest.raises(ConfigError):
        BenchmarkSettings.from_dict({"device": "tpu"})


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU: the no-GPU refusal cannot be seen")
def test_no_gpu_is_a_reason_and_a_clear_error():
    reason = devices.cuda_unavailable("cuda")
    assert reason and "no CUDA GPU" in reason
    with pytest.raises(ConfigError) as e:
        devices.check_device("cuda:0")
    assert "NVIDIA GPU" in e.value.fix and "device: cpu" in e.value.fix
    assert devices.check_device("cpu") == "cpu"
    assert devices.gpu_environment() == {"cuda_available": False, "cuda_unavailable": reason}
    # a sweep records such variants as skipped; a direct call refuses with the fix
    assert "no CUDA GPU" in get_method("fp16").check("bert", "skip", device="cuda")
    with pytest.raises(MethodNotApplicableError) as m:
        get_method("bf16").check("bert", device="cuda")
    assert "set the device to cpu" in m.value.fix


def test_a_method_without_a_path_on_the_device_is_refused_whatever_the_machine():
    with pytest.raises(MethodNotApplicableError) as e:
        get_method("dynamic-int8").check("bert", "skip", device="cuda")  # a config error, not a skip
    assert "no path on cuda" in e.value.message and "fp16" in e.value.fix and "bf16" in e.value.fix
    with pytest.raises(MethodNotApplicableError) as e:
        get_method("fp16").check("bert", device="cpu")
    assert "no path on cpu" in e.value.message


def test_compile_options_are_validated_and_quiet_at_their_defaults():
    assert get_method("fp32").options == {} and get_method("bf16").label == "bf16"  # old keys unchanged
    m = get_method({"name": "bf16", "compile": True, "compile_mode": "max-autotune"})
    assert m.label == "bf16[compile=True,compile_mode=max-autotune]" and m.runtime == "pytorch-inductor"
    with pytest.raises(ConfigError) as e:
        get_method({"name": "fp32", "compile": True, "compile_mode": "fastest"})
    assert "reduce-overhead" in e.value.message
    with pytest.raises(ConfigError):
        get_method({"name": "fp32", "compile": "yes"})


class FakeCuda:
    """Records the device calls; ``cuda`` tensors stay on the CPU (``devices.torch_device``)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.reserved = 0

    def synchronize(self, device=None) -> None:
        self.calls.append("sync")

    def reset_peak_memory_stats(self, device=None) -> None:
        self.calls.append("reset")

    def max_memory_allocated(self, device=None) -> int:
        return 3 * 2**20

    def max_memory_reserved(self, device=None) -> int:
        return 8 * 2**20


@pytest.fixture
def fake_cuda(monkeypatch):
    fake = FakeCuda()
    monkeypatch.setattr(devices, "cuda_unavailable", lambda device="cuda": None)
    monkeypatch.setattr(devices, "cuda_bf16_unavailable", lambda device: None)
    monkeypatch.setattr(devices, "torch_device", lambda device: torch.device("cpu"))
    for name in ("synchronize", "reset_peak_memory_stats", "max_memory_allocated", "max_memory_reserved"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    return fake


def _loaded(tiny_bert, device):
    from accelbench.models import load_checkpoint

    loaded = load_checkpoint(str(tiny_bert))
    return LoadedModel(resolve_model("minilm-sst2"), loaded.model, loaded.tokenizer, "bert", str(tiny_bert),
                       device=device)  # fmt: skip


def test_timed_call_synchronises_on_both_sides(fake_cuda):
    out, secs = devices.timed_call(lambda: fake_cuda.calls.append("call") or 7, "cuda")
    assert out == 7 and secs >= 0 and fake_cuda.calls == ["sync", "call", "sync"]
    fake_cuda.calls.clear()
    devices.timed_call(lambda: None, "cpu")
    assert fake_cuda.calls == []  # nothing to wait for on the CPU


def test_device_memory_reads_the_allocator_peaks(fake_cuda):
    with devices.DeviceMemory("cuda") as m:
        pass
    assert fake_cuda.calls[:2] == ["sync", "reset"]
    assert m.fields() == {"gpu_peak_allocated_mb": 3.0, "gpu_peak_reserved_mb": 8.0}
    with devices.DeviceMemory("cpu") as c:
        pass
    assert c.fields() == {}


def test_event_timer_times_with_the_events(monkeypatch):
    class Event:
        clock = 0.0

        def __init__(self, enable_timing=False):
            self.t = None

        def record(self):
            Event.clock += 12.5  # ms between two records
            self.t = Event.clock

        def synchronize(self):
            pass

        def elapsed_time(self, end):
            return end.t - self.t

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "device", lambda d: __import__("contextlib").nullcontext())
    monkeypatch.setattr(devices, "torch_device", lambda device: torch.device("cpu"))
    timer = devices.EventTimer("cuda")
    assert timer.time(lambda: "out") == "out"
    assert timer.times == [pytest.approx(0.0125)]
    with pytest.raises(ConfigError):
        devices.EventTimer("cpu")


def test_gpu_environment_from_torch_and_nvidia_smi(monkeypatch, tmp_path):
    class Props:
        name, major, minor, total_memory, multi_processor_count = "Fake H100", 9, 0, 80 * 2**30, 132

    monkeypatch.setattr(devices, "cuda_unavailable", lambda device="cuda": None)
    monkeypatch.setattr(devices, "torch_device", lambda device: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '580.159.04, 1980, 1980, 2619, [N/A]'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    env = devices.gpu_environment("cuda")
    assert env["gpu_name"] == "Fake H100" and env["gpu_capability"] == "9.0" and env["gpu_memory_gb"] == 80
    assert env["gpu_driver"] == "580.159.04" and env["gpu_clock_max_sm_mhz"] == 1980.0
    assert "gpu_power_limit_w" not in env  # [N/A] is no reading


@pytest.mark.parametrize("method", ["fp32", "tf32", "bf16", "fp16"])
def test_placement_and_precision_on_a_gpu(tiny_bert, fake_cuda, method):
    loaded = _loaded(tiny_bert, "cuda")
    seen = []
    variant = get_method(method).apply(loaded)
    model = variant.predictor.model
    model.register_forward_pre_hook(lambda *a: seen.append(torch.get_float32_matmul_precision()))
    logits = variant.predictor.logits(["a fine film", "dull"])
    assert logits.shape == (2, 2) and logits.dtype == "float32"
    assert variant.predictor.device == "cuda" and variant.details["device"] == "cuda"
    assert model is not loaded.model  # the loaded model stays where it was
    assert next(model.parameters()).dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}.get(
        method, torch.float32
    )
    # tf32 holds during its own calls only; fp32 gets true float32 matmuls
    assert seen == ["high" if method == "tf32" else "highest"]
    assert torch.get_float32_matmul_precision() == "highest"
    fake_cuda.calls.clear()
    variant.predictor.synchronize()
    assert fake_cuda.calls == ["sync"]


def test_scenarios_synchronise_every_timed_call_and_record_gpu_memory(tiny_bert, fake_cuda):
    from accelbench.measure.scenarios import run_interleaved

    predictor = get_method("fp32").apply(_loaded(tiny_bert, "cuda")).predictor
    calls = []
    classify = predictor.classify
    predictor.classify = lambda *a, **k: calls.append("call") or classify(*a, **k)
    orig_sync = predictor.synchronize
    predictor.synchronize = lambda: calls.append("sync") or orig_sync()
    texts = ["a good one", "bad", "it was long and fine", "meh"] * 3
    result = run_interleaved({"fp32": predictor}, "classification", texts, BenchmarkSettings(**QUICK), False)
    n_calls = calls.count("call")
    assert n_calls > 0 and calls.count("sync") >= n_calls
    # every call is followed by a synchronisation before its timer stops
    assert all(calls[i + 1] == "sync" for i, c in enumerate(calls) if c == "call")
    row = result.rows["fp32"][0]
    assert row["gpu_peak_allocated_mb"] == 3.0 and row["gpu_peak_reserved_mb"] == 8.0


@pytest.mark.slow  # a whole experiment, measured
def test_an_experiment_on_a_gpu_records_its_device(tiny_bert, fake_cuda, tmp_path, monkeypatch):
    import accelbench.experiment as experiment

    monkeypatch.setattr(
        experiment, "gpu_environment", lambda device: {"cuda_available": True, "gpu_name": "Fake"}
    )
    fake_peaks = {"device": "cuda", "fp32": 1000.0, "tf32": 4000.0, "fp16": 8000.0, "bf16": 8000.0}
    monkeypatch.setattr(experiment, "measure_cuda_peaks", lambda run_dir, device: fake_peaks)
    df = experiment.run_experiment("sst2", str(tiny_bert), ["fp32", "bf16"], tmp_path / "run",
                                   {**QUICK, "device": "cuda"}, progress=False)  # fmt: skip
    assert set(df["device"]) == {"cuda"} and set(df["status"]) == {"ok"}
    assert all(v.endswith(":fp32 (cuda)") or v.endswith(":bf16 (cuda)") for v in df["variant"])
    assert (df["gpu_name"] == "Fake").all() and df["gpu_peak_allocated_mb"].notna().all()
    bf16 = df[(df["method"] == "bf16") & (df["scenario"] == "batch")]
    assert (bf16["peak_gops"] == 8000.0).all()
    # a method with no path on the GPU is refused before any work, in sweeps too
    with pytest.raises(MethodNotApplicableError):
        experiment.run_experiment("sst2", str(tiny_bert), ["dynamic-int8"], tmp_path / "run2",
                                  {**QUICK, "device": "cuda"}, progress=False, unavailable="skip")  # fmt: skip
    assert not (tmp_path / "run2" / "records.jsonl").exists()
    details = json.loads(df[df["method"] == "bf16"]["variant_details"].iloc[0])
    assert details["device"] == "cuda"


def test_ctranslate2_on_a_gpu_says_what_it_lacks(monkeypatch):
    ct2 = pytest.importorskip("ctranslate2")
    monkeypatch.setattr(devices, "cuda_unavailable", lambda device="cuda": None)  # as if torch saw a GPU
    with pytest.raises(MethodNotApplicableError):
        get_method("ct2-fp16").check("t5", "skip", device="cpu")  # no CPU path
    if ct2.get_cuda_device_count() == 0:
        reason = get_method("ct2-fp16").check("t5", "skip", device="cuda")
        assert "sees 0 CUDA device" in reason and "CUDA 12" in reason
    assert get_method("ct2-fp32").check("t5", "skip", device="cpu") is None


def test_the_summary_shows_the_gpu_of_gpu_runs():
    from accelbench.analysis.capabilities import capabilities_markdown
    from accelbench.environment import collect_environment

    cpu = collect_environment()
    gpu = {**cpu, "gpu_name": "NVIDIA H100 80GB HBM3", "gpu_capability": "9.0", "cuda_version": "13.0"}
    lines = capabilities_markdown([cpu, gpu])
    row = next(line for line in lines if line.startswith("| GPU |"))
    assert "none used" in row and "NVIDIA H100 80GB HBM3; sm 9.0" in row and "CUDA 13.0" in row
    assert not any(line.startswith("| GPU |") for line in capabilities_markdown([cpu]))


def test_one_frontier_marks_the_device_of_each_point():
    import pandas as pd

    from accelbench.analysis.frontier_plot import _shape_key

    rows = pd.DataFrame({"method": ["fp32", "fp32", "bf16"], "device": ["cpu", "cuda", None]})
    keys = [_shape_key(r, True) for _, r in rows.iterrows()]
    assert keys == ["fp32 (cpu)", "fp32 (cuda)", "bf16 (cpu)"]
    assert [_shape_key(r, False) for _, r in rows.iterrows()] == ["fp32", "fp32", "bf16"]


def test_compile_is_refused_for_seq2seq_before_work():
    with pytest.raises(MethodNotApplicableError) as e:
        get_method({"name": "bf16", "compile": True}).check("t5", "skip", device="cuda")
    assert "applies to classifiers" in e.value.message and "ct2-fp16" in e.value.fix
    with pytest.raises(MethodNotApplicableError):
        get_method({"name": "fp32", "compile": True}).check("t5")
