"""Percent of hardware peak: how far a variant is from what this machine's matrix units can do.

Once per run, time large square matrix multiplies in fp32, bf16 and int8 (the peaks); for each variant,
count the matrix-multiply operations its model does per sample (from the config and the real token counts)
and divide the achieved operations per second by the peak of the variant's precision.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PEAK_SIZE = 1024
PEAK_MIN_TIME_S = 1.0
PEAK_ROUNDS = 3
PEAKS_FILE = "peaks.json"
DTYPE_PEAK = {"fp32": "fp32", "bf16": "bf16", "fp16": "bf16", "int8": "int8"}


def _int_mm(n: int):
    import torch

    a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
    b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
    return lambda: torch._int_mm(a, b)  # int8 x int8 -> int32: oneDNN's kernel (fast with VNNI/AMX)


def _quantized_linear(n: int):
    import torch
    from torch.ao.nn.quantized import Linear

    lin = Linear(n, n, bias_=False)  # the x86/fbgemm u8 x s8 GEMM that dynamic-int8 and pt2e-int8 run on
    lin.set_weight_bias(torch.quantize_per_tensor(torch.randn(n, n), 0.05, 0, torch.qint8), None)
    x = torch.quantize_per_tensor(torch.randn(n, n), 0.05, 128, torch.quint8)
    return lambda: lin(x)


# Several int8 GEMMs exist and which is fastest depends on the CPU: torch._int_mm is the fast one with
# VNNI or AMX but a slow reference loop on a CPU with AVX2 only, where fbgemm's u8 x s8 kernel is fast.
# The int8 peak is the best of them, and peaks.json names the kernel that gave it.
INT8_KERNELS = {"int_mm": _int_mm, "quantized_linear": _quantized_linear}


def _mm(dtype: str, n: int, kernel: str | None = None):
    import torch

    if dtype == "int8":
        return INT8_KERNELS[kernel or "int_mm"](n)
    t = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(n, n).to(t), torch.randn(n, n).to(t)
    return lambda: a @ b


def matmul_peak(
    dtype: str, n: int = PEAK_SIZE, min_time_s: float = PEAK_MIN_TIME_S, kernel: str | None = None
) -> float | None:
    """Best operations per second (2 n^3 per multiply) of an n x n matmul; None if unsupported here.
    For int8 without ``kernel``: the best of the int8 kernels (each given ``min_time_s``)."""
    if dtype == "int8" and kernel is None:
        values = [matmul_peak(dtype, n, min_time_s, k) for k in INT8_KERNELS]
        ok = [v for v in values if v is not None]
        return max(ok) if ok else None
    try:
        fn = _mm(dtype, n, kernel)
        fn()
    except (RuntimeError, NotImplementedError, AssertionError) as e:
        logger.warning("no %s matmul (%s) on this machine: %s", dtype, kernel or "default", e)
        return None
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < min_time_s:
        t = time.perf_counter()
        fn()
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def measure_peaks(
    run_dir: str | Path | None = None,
    n: int = PEAK_SIZE,
    rounds: int = PEAK_ROUNDS,
    min_time_s: float = PEAK_MIN_TIME_S,
) -> dict[str, Any]:
    """fp32/bf16/int8 peaks in GOP/s, measured once and kept in run_dir/peaks.json.

    The dtypes take turns for ``rounds`` rounds of ``min_time_s`` each and the best of all rounds is the
    peak: on a shared machine one dtype's single window can fall in a slow spell (here the int8 peak read 1,020
    to 1,464 GOP/s in 1 s windows of three processes, and up to 2,267 in a 3 s window). ``<dtype>_rounds`` keeps each round's value.
    """
    import torch

    path = Path(run_dir) / PEAKS_FILE if run_dir else None
    if path and path.exists():
        return json.loads(path.read_text())
    peaks: dict[str, Any] = {"threads": torch.get_num_threads(), "size": n, "rounds": rounds}
    runs = [("fp32", None), ("bf16", None)] + [("int8", k) for k in INT8_KERNELS]
    seen: dict[tuple[str, str | None], list[float | None]] = {r: [] for r in runs}
    for _ in range(rounds):
        for dtype, kernel in runs:
            done = seen[(dtype, kernel)]
            if done and done[-1] is None:  # unsupported here: asked once
                continue
            value = matmul_peak(dtype, n, min_time_s, kernel)
            done.append(None if value is None else round(value / 1e9, 1))
    for dtype in ("fp32", "bf16", "int8"):
        best, best_kernel = None, None
        for (d, kernel), values in seen.items():
            if d != dtype:
                continue
            ok = [v for v in values if v is not None]
            if ok and (best is None or max(ok) > best):
                best, best_kernel = max(ok), kernel
            peaks[f"{dtype}_rounds" if kernel is None else f"{dtype}_{kernel}_rounds"] = values
        peaks[dtype] = best
        if best_kernel:
            peaks[f"{dtype}_kernel"] = best_kernel
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(peaks))
    logger.info("matmul peaks (GOP/s): %s", peaks)
    return peaks


def _get(config, *names, default=None):
    for n in names:
        v = getattr(config, n, None)
        if v is not None:
            return v
    return default


def ops_per_sample(config, family: str, tokens_in: float, tokens_out: float = 0.0) -> float:
    """Matrix-multiply operations (2 per multiply-add) of one sample's forward pass(es).

    Encoder: per token and layer 4 d^2 (attention projections) + 2 d f (feed-forward) multiply-adds, plus
    2 T d for attention scores and values; a pruned encoder (``heads_per_layer``, ``intermediate_per_layer``)
    counts each layer's kept attention width a and feed-forward width i instead: 4 d a + 2 d i + 2 T a; a
    pruned T5 (``encoder_ff_per_layer`` / ``decoder_ff_per_layer``) each block's own feed-forward width. T5 decoding adds, per generated token and decoder layer, self-
    and cross-attention projections and the feed-forward, and the d x vocab output projection; the cross-
    attention keys/values of the source are projected once per sample.
    """
    d = _get(config, "hidden_size", "d_model")
    f = _get(config, "intermediate_size", "d_ff")
    n_enc = _get(config, "num_hidden_layers", "num_layers")
    heads = getattr(config, "heads_per_layer", None)  # a pruned encoder: each layer's own widths
    ffn = getattr(config, "intermediate_per_layer", None)
    enc_ff = getattr(config, "encoder_ff_per_layer", None)  # a pruned T5: each block's own FFN width
    if heads and ffn and len(heads) == len(ffn) == n_enc:
        head_size = getattr(config, "attention_head_size", None) or d // config.num_attention_heads
        widths = [(h * head_size, i) for h, i in zip(heads, ffn, strict=True)]
    elif enc_ff and len(enc_ff) == n_enc:
        widths = [(d, i) for i in enc_ff]
    else:
        widths = [(d, f)] * n_enc
    macs = sum(tokens_in * (4 * d * a + 2 * d * i + 2 * tokens_in * a) for a, i in widths)
    if family == "t5" and tokens_out:
        n_dec = _get(config, "num_decoder_layers", default=n_enc)
        vocab = config.vocab_size
        dec_ff = getattr(config, "decoder_ff_per_layer", None) or [f] * n_dec
        per_token = (
            sum(4 * d * d + 2 * d * d + 2 * d * i + 2 * (tokens_out / 2 + tokens_in) * d for i in dec_ff)
            + d * vocab
        )
        macs += tokens_out * per_token + n_dec * tokens_in * 2 * d * d
    elif family != "t5":
        macs += d * d  # pooler
    return 2.0 * macs


def peak_for(dtype: str, peaks: dict[str, Any]) -> float | None:
    """The measured peak (GOP/s) matching a variant's precision; None where none was measured (int16).
    A GPU's peaks (``measure.gpu_peak``, with a ``device``) are measured per precision, tf32 and fp16 too."""
    if str(peaks.get("device", "cpu")).startswith("cuda"):
        return peaks.get(dtype)
    return peaks.get(DTYPE_PEAK[dtype]) if dtype in DTYPE_PEAK else None


def percent_of_peak(ops_per_s: float, dtype: str, peaks: dict[str, Any]) -> float | None:
    peak = peak_for(dtype, peaks)
    return None if not peak else 100.0 * ops_per_s / (peak * 1e9)
