"""Where a variant runs: ``cpu`` (the default), ``cuda`` or ``cuda:N``; what is there; GPU-correct timing.

A CUDA kernel launch returns before the kernel finishes, so a wall-clock timer around a GPU call measures the
launch unless the device is synchronised at both ends (``synchronize``, which every timed call in
``measure.scenarios`` goes through). ``EventTimer`` times the same calls with CUDA events, the device's own
clock, as an independent check of that timer. ``DeviceMemory`` reads the caching allocator's peak
(allocated and reserved) around a measurement: on a GPU the process's RSS says nothing about the model.

Nothing here imports torch at module level, and every function works without a GPU: ``cuda_unavailable``
says why a CUDA device cannot be used, as text a record or an error message can carry.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .exceptions import ConfigError

logger = logging.getLogger(__name__)

CPU = "cpu"
CUDA = "cuda"
DEVICE_TYPES = (CPU, CUDA)
_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")
NVIDIA_SMI_TIMEOUT_S = 10
NVIDIA_SMI_FIELDS = {  # nvidia-smi --query-gpu name -> environment field
    "driver_version": "gpu_driver",
    "clocks.sm": "gpu_clock_sm_mhz",
    "clocks.max.sm": "gpu_clock_max_sm_mhz",
    "clocks.mem": "gpu_clock_mem_mhz",
    "power.limit": "gpu_power_limit_w",
}


def parse_device(value: Any) -> str:
    """The canonical device string (``cpu``, ``cuda``, ``cuda:N``), or a ConfigError naming the forms."""
    text = str(value).strip().lower() if isinstance(value, str) else None
    match = _DEVICE.match(text) if text else None
    if match is None or (match.group(1) == CPU and match.group(2) is not None):
        raise ConfigError(
            f"device must be cpu, cuda or cuda:N, got {value!r}",
            "set device: cpu (the default) or device: cuda (the first GPU) or cuda:1",
        )
    return text


def device_type(device: str) -> str:
    """``cpu`` or ``cuda``."""
    return parse_device(device).split(":")[0]


def torch_device_index(device: str) -> int:
    """The device's index (``cuda:1`` -> 1; ``cuda`` and ``cpu`` -> 0)."""
    parts = parse_device(device).split(":")
    return int(parts[1]) if len(parts) > 1 else 0


def is_cuda(device: str | None) -> bool:
    return device is not None and device_type(device) == CUDA


def cuda_unavailable(device: str = CUDA) -> str | None:
    """Why ``device`` (a CUDA one) cannot be used here, or None when it can."""
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a dependency
        return f"PyTorch is not importable ({e})"
    if not torch.cuda.is_available():
        build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
        return f"no CUDA GPU is visible to PyTorch {torch.__version__} ({build})"
    index = torch.device(parse_device(device)).index
    count = torch.cuda.device_count()
    if index is not None and index >= count:
        return f"{device} asked for, but only {count} CUDA device(s) are visible (cuda:0 to cuda:{count - 1})"
    return None


def check_device(device: str) -> str:
    """The canonical device, or a ConfigError when it cannot be used here (the error and the fix)."""
    device = parse_device(device)
    if is_cuda(device) and (reason := cuda_unavailable(device)):
        raise ConfigError(
            f"device {device!r} cannot be used: {reason}",
            "run on a machine with an NVIDIA GPU and a CUDA build of PyTorch, or set device: cpu",
        )
    return device


def torch_device(device: str):
    """The ``torch.device`` of a device string."""
    import torch

    return torch.device(parse_device(device))


@contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """Run a block under ``torch.set_float32_matmul_precision(precision)`` (``highest``: IEEE fp32;
    ``high``: TF32 on a GPU), then restore the previous one."""
    import torch

    old = torch.get_float32_matmul_precision()
    if old == precision:
        yield
        return
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def synchronize(device: str | None) -> None:
    """Wait until every kernel queued on a CUDA device has finished; nothing to do on the CPU."""
    if is_cuda(device):
        import torch

        torch.cuda.synchronize(torch_device(device))


class DeviceMemory:
    """Peak GPU memory of the caching allocator during a block: ``with DeviceMemory(dev) as m: ...``.

    ``allocated_mb`` is what tensors held at most; ``reserved_mb`` what the allocator took from the driver
    (what another process on the GPU cannot have). Both are None on the CPU.
    """

    def __init__(self, device: str | None) -> None:
        self.device = device if is_cuda(device) else None
        self.allocated_mb: float | None = None
        self.reserved_mb: float | None = None

    def __enter__(self) -> DeviceMemory:
        if self.device:
            import torch

            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(torch_device(self.device))
        return self

    def __exit__(self, *exc) -> None:
        if self.device:
            import torch

            synchronize(self.device)
            dev = torch_device(self.device)
            self.allocated_mb = torch.cuda.max_memory_allocated(dev) / 2**20
            self.reserved_mb = torch.cuda.max_memory_reserved(dev) / 2**20

    def fields(self) -> dict[str, float]:
        """Record fields (none on the CPU)."""
        if self.allocated_mb is None:
            return {}
        return {
            "gpu_peak_allocated_mb": round(self.allocated_mb, 1),
            "gpu_peak_reserved_mb": round(float(self.reserved_mb or 0.0), 1),
        }


def timed_call(fn: Callable[[], Any], device: str | None) -> tuple[Any, float]:
    """``fn()`` and its wall-clock seconds, the device synchronised before and after (no launch-only times)."""
    synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - t0


class EventTimer:
    """Seconds of each call by CUDA events recorded on the device's stream around it (the device's clock)."""

    def __init__(self, device: str) -> None:
        if not is_cuda(device):
            raise ConfigError(f"CUDA events need a CUDA device, got {device!r}", "use device cuda or cuda:N")
        self.device = device
        self.times: list[float] = []

    def time(self, fn: Callable[[], Any]) -> Any:
        import torch

        with torch.cuda.device(torch_device(self.device)):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn()
            end.record()
            end.synchronize()
        self.times.append(start.elapsed_time(end) / 1e3)
        return out


def _nvidia_smi(index: int) -> dict[str, Any]:
    """Driver and clocks from ``nvidia-smi`` (absent, or failing: an empty dict)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {}
    query = ",".join(NVIDIA_SMI_FIELDS)
    try:
        out = subprocess.run([exe, f"--id={index}", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        logger.info("nvidia-smi gave nothing: %s", e)
        return {}
    values = [v.strip() for v in out.strip().splitlines()[0].split(",")] if out.strip() else []
    fields: dict[str, Any] = {}
    for (_, name), value in zip(NVIDIA_SMI_FIELDS.items(), values, strict=False):
        if value and not value.startswith("[") and value != "N/A":
            try:
                fields[name] = float(value) if name != "gpu_driver" else value
            except ValueError:
                fields[name] = value
    return fields


def gpu_environment(device: str = CUDA) -> dict[str, Any]:
    """The GPU's model, memory, compute capability, CUDA / cuDNN versions, driver and clocks, for a record;
    only ``cuda_available: False`` (and why) where there is none."""
    reason = cuda_unavailable(device)
    if reason:
        return {"cuda_available": False, "cuda_unavailable": reason}
    import torch

    dev = torch_device(device)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    env: dict[str, Any] = {
        "cuda_available": True,
        "gpu_name": props.name,
        "gpu_count": torch.cuda.device_count(),
        "gpu_capability": f"{props.major}.{props.minor}",
        "gpu_memory_gb": round(props.total_memory / 2**30, 1),
        "gpu_multiprocessors": props.multi_processor_count,
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpu_bf16": bool(torch.cuda.is_bf16_supported()),
    }
    env.update(_nvidia_smi(index))
    return env


def cuda_bf16_unavailable(device: str) -> str | None:
    """Why bfloat16 arithmetic cannot run on this CUDA device (pre-Ampere GPUs emulate it), or None."""
    if reason := cuda_unavailable(device):
        return reason
    import torch

    with torch.cuda.device(torch_device(device)):
        if not torch.cuda.is_bf16_supported(including_emulation=False):
            return f"{torch.cuda.get_device_name()} has no native bfloat16 (compute capability below 8.0)"
    return None
