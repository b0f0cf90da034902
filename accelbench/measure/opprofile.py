"""Where a variant's time goes: the share of operator time in matmuls, attention, softmax, LayerNorm, ...

A speed-up alone does not say what bounds a variant: int8 may shrink the matmuls until LayerNorm and the
quantize/dequantize steps dominate. ``profile_ops`` runs a few batches under the runtime's own profiler
(``torch.profiler`` for PyTorch eager and compiled predictors, ONNX Runtime's session profiling for ORT
ones), sums each operator's self time and groups the operators into classes by name (``OP_PATTERNS``).

Shares are of the time inside the operators the profiler saw; ``op_coverage`` says how much of a call's wall
time that was (the rest is tokenization, Python and the runtime's dispatch). CTranslate2's Python package has
no per-operator profiler: its result says so (``available: False``) instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..runtimes.base import DEFAULT_MAX_LENGTH

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32
DEFAULT_CALLS = 3
DEFAULT_WARMUP = 2
DEFAULT_TOP = 10

OTHER = "other"
# Operator classes, in the order tables and charts show them, and what each holds. Fused kernels count whole
# in one class: ORT's Attention/QAttention include the Q/K/V projections, SkipLayerNormalization the
# residual add, EmbedLayerNormalization the embedding gathers, quantized::linear_dynamic its activation
# quantization.
CLASS_HELP = {
    "matmul": "linear layers: activation x weight matrix multiplies, float or int8",
    "attention": "attention products (scores, context), SDPA, fused Attention/QAttention (with their Q/K/V "
    "projections)",
    "softmax": "softmax outside a fused attention kernel",
    "layernorm": "LayerNorm / RMSNorm, with their fused residual adds and embeddings",
    "activation": "GELU, ReLU, tanh and their fused bias adds",
    "quantize": "quantize / dequantize / choose-qparams steps outside a fused int8 matmul",
    "fused": "compiler-generated kernels (TorchInductor C++): element-wise work, norms and quantization fused",
    OTHER: "everything else: embedding gathers, reshapes, copies, casts, element-wise ops, dispatch",
}
OP_CLASSES = tuple(CLASS_HELP)

NORM_SCOPE = "accelbench::norm::"  # eager norms built from element-wise ops (T5's RMSNorm), see _norm_scopes
NORM_MODULES = re.compile(r".*(LayerNorm|RMSNorm)")  # module class names
# One table of operator-name patterns (full matches, case-sensitive), first match wins. PyTorch names are the
# profiler's (``aten::addmm``); ONNX Runtime names are node op types (``MatMul``).
OP_PATTERNS: tuple[tuple[str, str], ...] = (
    # attention first: SDPA's own name contains no "mm", fused ORT kernels are named Attention
    ("attention", r"aten::(_?scaled_dot_product\w*|_flash_attention\w*|_efficient_attention\w*|bmm|baddbmm)"),
    ("attention", r"(Q|Packed|Sparse|MultiHead|GroupQuery|Decoder|DecoderMasked\w*)?Attention"),
    ("matmul", r"aten::(addmm|mm|linear|matmul|_int_mm|_addmm_activation|_weight_int\d+pack_mm\w*)"),
    (
        "matmul",
        r"quantized::linear\w*|onednn::qlinear\w*|mkldnn::_linear\w*|mkl::_mkl_linear|fbgemm::\w*mm\w*",
    ),
    ("matmul", r"torchao::\w*(mm|linear|gemm)\w*"),
    ("matmul", r"(Fused)?MatMul|(Fused|Q)?Gemm|MatMulInteger(ToFloat)?|DynamicQuantizeMatMul|QLinearMatMul"),
    ("matmul", r"MatMulNBits|MatMulBnb4|QOrderedMatMul"),
    ("softmax", r"aten::(_safe_softmax|_?softmax|_?log_softmax)|(Log)?Softmax"),
    (
        "layernorm",
        r"aten::(layer_norm|native_layer_norm|rms_norm|_fused_rms_norm|group_norm|native_group_norm)",
    ),
    ("layernorm", r"(Skip|Embed|QEmbed|Simplified|SkipSimplified)?LayerNormalization|RMSNormalization"),
    ("activation", r"aten::(gelu_?|relu_?|tanh_?|silu_?|sigmoid_?|hardswish_?|erf_?)|mkldnn::_gelu"),
    ("activation", r"(Fast|Bias|Quick)?Gelu|Relu|Tanh|Sigmoid|Erf|BiasSplitGelu"),
    (
        "quantize",
        r"aten::(quantize_per_\w+|dequantize\w*|_choose_qparams\w*|fake_quantize\w*|q_\w+|int_repr)",
    ),
    ("quantize", r"quantized_decomposed::\w+|torchao::\w*(quantize|qparams)\w*|onednn::qconv_prepack"),
    ("quantize", r"(Dynamic)?QuantizeLinear|DequantizeLinear|QLinear(Add|Mul|Sigmoid)"),
    ("layernorm", NORM_SCOPE + r".*"),
    ("fused", r"## Call CompiledFxGraph.*|(graph_\d+_)?cpp_fused_\w*|(triton|cpp)_\w*kernel\w*"),
)
_COMPILED = [(cls, re.compile(p)) for cls, p in OP_PATTERNS]
# Everything inside one of these is its time too: SDPA's math fallback runs bmm and softmax, a quantize
# step runs round/clamp. Elsewhere an unclassified op inherits its parent's class (aten::linear -> aten::t).
CONTAINER_CLASSES = ("attention", "quantize", "layernorm")
# An unfused ORT node inside a norm module's export scope ('/encoder/block.0/layer.0/layer_norm/Pow') is
# part of that norm (T5's RMSNorm in a quantized graph is ReduceMean, Pow, Sqrt, Div, Mul).
ORT_NORM_SCOPE = re.compile(r".*/[^/]*(layer_?norm|rms_?norm)[^/]*/.*", re.IGNORECASE)
# ORT matmuls whose first two inputs are both batched (rank >= 3) are attention products, not linear layers.
ORT_BATCHED_MATMULS = ("MatMul", "FusedMatMul", "MatMulInteger", "MatMulIntegerToFloat", "QLinearMatMul")

NO_PROFILER = {
    "ctranslate2": "CTranslate2's Python package exposes no per-operator profiler (only whole translate calls "
    "can be timed)",
}


def classify_op(name: str) -> str:
    """The class (one of ``OP_CLASSES``) of an operator name; ``other`` when no pattern matches."""
    for cls, pattern in _COMPILED:
        if pattern.fullmatch(name):
            return cls
    return OTHER


def _ort_class(op: str, input_shapes: list | None, node: str = "") -> str:
    """An ORT node's class from its op type, its input ranks (attention products) and its scope (norms)."""
    if op in ORT_BATCHED_MATMULS and input_shapes and len(input_shapes) >= 2:
        ranks = [len(next(iter(s.values()))) if isinstance(s, dict) and s else 0 for s in input_shapes[:2]]
        if min(ranks) >= 3:
            return "attention"
    cls = classify_op(op)
    return "layernorm" if cls == OTHER and ORT_NORM_SCOPE.fullmatch(node) else cls


def _batch(texts: list, batch_size: int) -> list:
    if not texts:
        raise ValueError("profile_ops needs at least one text")
    return [texts[i % len(texts)] for i in range(batch_size)]


def _summary(
    times_us: dict[tuple[str, str], float], calls: int, walls_s: list[float], top: int
) -> dict[str, Any]:
    """Shares per class and the top operators from {(op name, class): self time in µs over all calls}."""
    total = sum(times_us.values())
    if total <= 0:
        raise RuntimeError("the profiler recorded no operator time")
    by_class = dict.fromkeys(OP_CLASSES, 0.0)
    for (_, cls), us in times_us.items():
        by_class[cls] += us
    shares = {c: v / total for c, v in by_class.items()}
    ranked = sorted(times_us.items(), key=lambda kv: -kv[1])
    entry = lambda k, us: {"op": k[0], "class": k[1], "ms_per_batch": round(us / calls / 1e3, 4),  # noqa: E731
                           "share": round(us / total, 4)}  # fmt: skip
    op_ms = total / calls / 1e3
    wall_ms = 1e3 * sum(walls_s) / len(walls_s)
    return {
        "available": True,
        "shares": {c: round(v, 4) for c, v in shares.items()},
        "op_ms_per_batch": round(op_ms, 4),
        "wall_ms_per_batch": round(wall_ms, 4),
        "op_coverage": round(min(1.0, op_ms / wall_ms), 4) if wall_ms else None,
        "top_ops": [entry(k, us) for k, us in ranked[:top]],
        "other_ops": [entry(k, us) for k, us in ranked if k[1] == OTHER][:top],  # what the table missed
    }


def _timed(run: Callable[[], Any], calls: int, between: Callable[[], Any] | None = None) -> list[float]:
    walls = []
    for _ in range(calls):
        t = time.perf_counter()
        run()
        walls.append(time.perf_counter() - t)
        if between is not None:
            between()
    return walls


@contextlib.contextmanager
def _norm_scopes(model) -> Iterator[None]:
    """Wrap each norm module's forward in a profiler scope named ``NORM_SCOPE + class name``, so that a norm
    made of element-wise ops (T5's RMSNorm: pow, mean, rsqrt, mul) counts as ``layernorm``, not ``other``."""
    import torch

    handles = []
    if isinstance(model, torch.nn.Module):
        for module in model.modules():
            name = type(module).__name__
            if not NORM_MODULES.fullmatch(name):
                continue
            scopes: list = []

            def enter(_module, _args, scopes=scopes, name=name):
                scopes.append(torch.profiler.record_function(NORM_SCOPE + name).__enter__())

            def leave(_module, _args, _out, scopes=scopes):
                if scopes:
                    scopes.pop().__exit__(None, None, None)

            handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while the profiler runs: libkineto prints a ``USDT: profiler_start/stop``
    line there on every start and stop, whatever KINETO_LOG_LEVEL says, into every notebook that profiles.
    Python-level warnings and exceptions are unaffected (a failure still raises)."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (an embedded interpreter): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _torch_profile(predictor, run: Callable[[], Any], calls: int, warmup: int, top: int) -> dict[str, Any]:
    """Self CPU time per operator over ``calls`` batches; the profiler's own first step is a discarded warm-up."""
    from torch.profiler import ProfilerActivity, profile, schedule

    for _ in range(warmup):
        run()
    active = schedule(wait=0, warmup=1, active=calls, repeat=1)
    with (
        _norm_scopes(getattr(predictor, "model", None)),
        _quiet_native_stderr(),
        profile(activities=[ProfilerActivity.CPU], schedule=active) as prof,
    ):
        run()
        prof.step()
        walls = _timed(run, calls, prof.step)
    classes: dict[int, str] = {}

    def event_class(ev) -> str:
        key = id(ev)
        if key not in classes:
            own = classify_op(ev.name)
            parent = event_class(ev.cpu_parent) if ev.cpu_parent is not None else OTHER
            classes[key] = parent if parent in CONTAINER_CLASSES or own == OTHER else own
        return classes[key]

    times: dict[tuple[str, str], float] = defaultdict(float)
    for ev in prof.events():
        if ev.name.startswith("ProfilerStep"):  # the step's self time is Python and tokenization, not an op
            continue
        times[(ev.name, event_class(ev))] += ev.self_cpu_time_total
    return {"profiler": "torch.profiler", **_summary(times, calls, walls, top)}


class _CountingSession:
    """An ``InferenceSession`` that counts its runs, so that the warm-up runs can be left out of its trace."""

    def __init__(self, session):
        self.session = session
        self.runs = 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self.session.run(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.session, name)


def _ort_node_times(trace: list[dict], skip_runs: int, prefix: str) -> dict[tuple[str, str], float]:
    """Kernel µs per (op type, class) of the runs after the first ``skip_runs`` (the warm-up)."""
    runs = sorted(e["ts"] for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run")
    start = runs[skip_runs] if skip_runs < len(runs) else float("inf")
    times: dict[tuple[str, str], float] = defaultdict(float)
    for e in trace:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time") or e["ts"] < start:
            continue
        args = e.get("args", {})
        op = str(args.get("op_name", "?"))
        times[(prefix + op, _ort_class(op, args.get("input_type_shape"), str(e["name"])))] += float(e["dur"])
    return times


def _ort_profile(predictor, run: Callable[[], Any], calls: int, warmup: int, top: int) -> dict[str, Any]:
    """Node kernel times from profiling copies of the predictor's sessions (same graph files and settings),
    swapped in for the profiled calls; the trace files live in a temporary folder removed afterwards.

    The warm-up runs on the predictor's own sessions, then once on the copies (their first run allocates
    their memory): every traced run is kept in memory while the trace is parsed, so it stays short.
    """
    import onnxruntime as ort

    from ..runtimes.onnxruntime import PROVIDERS, session_options

    paths: dict[str, str] = predictor.session_paths
    originals = {attr: getattr(predictor, attr) for attr in paths}
    if any(s is None for s in originals.values()):
        raise RuntimeError("the predictor is closed")
    counting: dict[str, _CountingSession] = {}
    traces: dict[str, list[dict]] = {}
    for _ in range(max(0, warmup - 1)):
        run()
    with tempfile.TemporaryDirectory(prefix="accelbench-ortprof-") as tmp:
        try:
            for attr, path in paths.items():
                old = originals[attr].get_session_options()
                so = session_options(old.intra_op_num_threads, old.inter_op_num_threads)
                so.enable_profiling = True
                so.profile_file_prefix = os.path.join(tmp, attr)
                counting[attr] = _CountingSession(ort.InferenceSession(path, so, providers=list(PROVIDERS)))
                setattr(predictor, attr, counting[attr])
            if warmup:
                run()
            skip = {attr: c.runs for attr, c in counting.items()}
            walls = _timed(run, calls)
        finally:
            for attr, session in originals.items():
                setattr(predictor, attr, session)
            for attr, c in counting.items():  # end profiling while the folder exists: it writes the file
                traces[attr] = json.loads(Path(c.session.end_profiling()).read_text())
            counting.clear()
    times: dict[tuple[str, str], float] = defaultdict(float)
    for attr, trace in traces.items():
        for key, us in _ort_node_times(trace, skip[attr], f"{attr}:" if len(paths) > 1 else "").items():
            times[key] += us
    result = {"profiler": "onnxruntime", **_summary(times, calls, walls, top)}
    if len(paths) > 1:
        result["sessions_ms_per_batch"] = {
            attr: round(
                sum(us for (op, _), us in times.items() if op.startswith(f"{attr}:")) / calls / 1e3, 4
            )
            for attr in paths
        }
    return result


def _profiler_for(predictor) -> Callable[..., dict[str, Any]] | str:
    """The profiling function for a predictor's runtime, or the reason there is none."""
    runtime = getattr(predictor, "runtime", "?")
    if runtime in NO_PROFILER:
        return NO_PROFILER[runtime]
    if hasattr(predictor, "session_paths"):
        return _ort_profile
    if runtime.startswith("pytorch"):
        return _torch_profile
    return f"no per-operator profiler for runtime {runtime!r}"


def profile_ops(
    predictor,
    kind: str,
    texts: list,
    batch_size: int = DEFAULT_BATCH_SIZE,
    calls: int = DEFAULT_CALLS,
    warmup: int = DEFAULT_WARMUP,
    top: int = DEFAULT_TOP,
    padding: str = "dynamic",
    max_length: int = DEFAULT_MAX_LENGTH,
    **gen_kwargs: Any,
) -> dict[str, Any]:
    """Shares of operator time per class over ``calls`` batches of ``batch_size`` texts, after ``warmup``.

    ``kind``: ``classification`` (``logits``) or ``seq2seq`` (``generate`` with ``gen_kwargs``, e.g.
    ``max_new_tokens``, ``num_beams``); ``padding`` and ``max_length`` as in the benchmark. Returns ``available``, ``profiler``, ``shares`` (every class of ``OP_CLASSES``,
    summing to 1), ``op_ms_per_batch`` (profiled operator time), ``wall_ms_per_batch``, ``op_coverage``,
    ``top_ops`` and ``other_ops`` (name, class, ms per batch, share), and for ORT generators
    ``sessions_ms_per_batch``; or ``{"available": False, "reason": ...}`` where the runtime has no profiler or
    profiling failed (a benchmark goes on without it).
    """
    batch = _batch(list(texts), batch_size)
    if kind == "seq2seq":
        run = lambda: predictor.generate(batch, padding=padding, max_length=max_length, **gen_kwargs)  # noqa: E731
    elif kind == "classification":
        run = lambda: predictor.logits(batch, padding, max_length)  # noqa: E731
    else:
        raise ValueError(f"kind must be 'classification' or 'seq2seq', got {kind!r}")
    profiler = _profiler_for(predictor)
    if isinstance(profiler, str):
        return {"available": False, "reason": profiler}
    try:
        result = profiler(predictor, run, max(1, int(calls)), max(0, int(warmup)), top)
    except Exception as e:  # a profile is an extra: its failure must not cost the variant's records
        logger.warning("operator profile failed: %s: %s", type(e).__name__, e)
        return {"available": False, "reason": f"profiling failed: {type(e).__name__}: {e}"}
    return {**result, "batch_size": batch_size, "calls": int(calls)}


def record_fields(profile: dict[str, Any]) -> dict[str, Any]:
    """What a speed record keeps of a profile: ``op_shares`` (flattened by the records to ``op_shares_<class>``
    columns), the profiler, the operator and wall ms per batch, and the top operators as JSON text."""
    if not profile.get("available"):
        return {"op_profile_note": profile.get("reason", "not profiled")}
    top = {k: profile[k] for k in ("top_ops", "other_ops", "sessions_ms_per_batch") if k in profile}
    return {
        "op_shares": dict(profile["shares"]),
        "op_profiler": profile["profiler"],
        "op_ms_per_batch": profile["op_ms_per_batch"],
        "op_wall_ms_per_batch": profile["wall_ms_per_batch"],
        "op_top": json.dumps(top),
    }


__all__ = [
    "CLASS_HELP",
    "NO_PROFILER",
    "OP_CLASSES",
    "OP_PATTERNS",
    "classify_op",
    "profile_ops",
    "record_fields",
]
