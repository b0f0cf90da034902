"""Matrix-multiply peaks of a CUDA device, for the percent-of-peak figures of the variants that run on it.

The same idea as ``measure.peak`` on the CPU: once per run and device, time large square matmuls in each
precision a GPU variant can use — fp32 (true IEEE float32, ``highest``), tf32 (``high``: TensorFloat-32 on the
tensor cores), fp16 and bf16 — with CUDA events (the device's clock) after a warm-up, the dtypes taking turns
for a few rounds; the best of all rounds is the peak. Kept in ``peaks-<device>.json`` beside the CPU's
``peaks.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..devices import EventTimer, matmul_precision, parse_device, torch_device

logger = logging.getLogger(__name__)

CUDA_PEAK_SIZE = 8192  # large enough to keep an H100's tensor cores busy
CUDA_PEAK_CALLS = 10  # timed products per dtype and round, after CUDA_PEAK_WARMUP
CUDA_PEAK_WARMUP = 3
CUDA_PEAK_ROUNDS = 3
CUDA_DTYPES = {"fp32": ("float32", "highest"), "tf32": ("float32", "high"), "fp16": ("float16", "highest"),
               "bf16": ("bfloat16", "highest")}  # fmt: skip


def peaks_file(device: str) -> str:
    return f"peaks-{parse_device(device).replace(':', '')}.json"


def cuda_matmul_peak(device: str, dtype: str, n: int = CUDA_PEAK_SIZE, calls: int = CUDA_PEAK_CALLS,
                     warmup: int = CUDA_PEAK_WARMUP) -> float | None:  # fmt: skip
    """Best operations per second (2 n^3 per product) of an n x n matmul in ``dtype`` on ``device``."""
    import torch

    torch_dtype, precision = CUDA_DTYPES[dtype]
    dev = torch_device(device)
    try:
        a = torch.randn(n, n, device=dev).to(getattr(torch, torch_dtype))
        b = torch.randn(n, n, device=dev).to(getattr(torch, torch_dtype))
        timer = EventTimer(device)
        with matmul_precision(precision):
            for _ in range(warmup):
                a @ b
            for _ in range(calls):
                timer.time(lambda: a @ b)
    except (RuntimeError, NotImplementedError) as e:
        logger.warning("no %s matmul on %s: %s", dtype, device, e)
        return None
    return 2 * n**3 / min(timer.times)


def measure_cuda_peaks(run_dir: str | Path | None, device: str, n: int = CUDA_PEAK_SIZE,
                       rounds: int = CUDA_PEAK_ROUNDS) -> dict[str, Any]:  # fmt: skip
    """fp32/tf32/fp16/bf16 peaks of ``device`` in GOP/s, measured once and kept in run_dir."""
    path = Path(run_dir) / peaks_file(device) if run_dir else None
    if path and path.exists():
        return json.loads(path.read_text())
    seen: dict[str, list[float | None]] = {d: [] for d in CUDA_DTYPES}
    for _ in range(rounds):
        for dtype in CUDA_DTYPES:
            value = cuda_matmul_peak(device, dtype, n)
            seen[dtype].append(None if value is None else round(value / 1e9, 1))
    peaks: dict[str, Any] = {
        "device": parse_device(device),
        "size": n,
        "rounds": rounds,
        "timer": "cuda events",
    }
    for dtype, values in seen.items():
        ok = [v for v in values if v is not None]
        peaks[dtype] = max(ok) if ok else None
        peaks[f"{dtype}_rounds"] = values
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(peaks))
    logger.info("%s matmul peaks (GOP/s): %s", device, peaks)
    return peaks
