"""ONNX Runtime methods (bert family): an fp32 graph with fused transformer operators, dynamic int8, static int8.

Every method exports the classifier with ``export_classifier`` into a temporary folder that the variant's
``OrtPredictor`` owns (removed by ``predictor.close()``), checks the exported logits against PyTorch, then
builds on that graph:

- ``ort-fp32``: ONNX Runtime's transformer optimizer (``optimize_model(model_type="bert")``) fuses
  embeddings, attention, skip-LayerNorm and GELU into contrib operators; the fusion counts are recorded.
- ``ort-dynamic-int8``: the optimized graph with int8 weights (``quantize_dynamic``), activations quantized
  per batch at run time; the fused ``Attention`` becomes ``QAttention``.
- ``ort-static-int8``: QDQ static quantization of the optimized graph, activation ranges calibrated on
  real training texts of the model's task (MinMax, Entropy or Percentile).

Export notes (torch 2.13, transformers 5): the TorchScript exporter (``dynamo=False``) is used first; it is
deprecated but still present, fast (<1 s for small models) and the only one whose graph ONNX Runtime's
attention fusion recognises. The model is exported from a copy switched to ``attn_implementation="eager"``:
the SDPA path (and every dynamo-exported graph) carries a mask pattern (IsNaN/Where, GatherND) that the
fusion does not match, which leaves attention unfused. The dynamo exporter (``dynamic_shapes``) is the
fallback when the TorchScript one fails or is gone.

``onnxruntime``/``onnx`` are imported lazily: without them this module imports and the methods report
themselves unavailable.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import io
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..environment import supports_int8_vnni
from ..exceptions import ConfigError, MethodNotApplicableError, ModelError
from ..runtimes.base import DEFAULT_MAX_LENGTH
from .base import Method, Variant, register_method
from .calibration import CALIBRATION_SEED, calibration_task, calibration_texts

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
EXPORT_RTOL = 1e-4  # exported logits must match torch within 1e-4 * max(1, max |logit|)
EXPORT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
CALIBRATIONS = ("minmax", "entropy", "percentile")
CALIBRATION_BATCH_SIZE = 1  # one text per calibration batch: no padding tokens in the activation ranges
CALIBRATION_STRIDE = 1  # calibration batches per collect_data call (see OrtStaticInt8._finish)
# What static QDQ quantizes: the linear layers. Quantizing LayerNorm, Softmax, Gather, Where... as
# well costs accuracy and buys little on CPU, where ORT runs the fused float kernels for those.
STATIC_OP_TYPES = ("MatMul", "Gemm")

_SAMPLE_TEXTS = ("a short text", "a longer text, which pads the first one in this batch of two")
_CHECK_BATCHES = (
    ["one"],
    ["a good film", "bad", "a much longer sentence than the texts that the graph was traced with , by far"],
)


@functools.lru_cache(maxsize=1)
def _missing() -> str | None:
    """Why the ONNX methods cannot run here (a missing library), or None."""
    for module in ("onnxruntime", "onnx"):
        try:
            __import__(module)
        except ImportError as e:
            return f"{module} is not importable ({e}); pip install onnxruntime onnx"
    return None


# ----------------------------------------------------------------------------------------------- export


def export_input_names(model, tokenizer) -> list[str]:
    """The tokenizer outputs the model's ``forward`` accepts, in export order."""
    produced = tokenizer(["a"], return_tensors="np")
    params = inspect.signature(model.forward).parameters
    names = [n for n in EXPORT_INPUTS if n in produced and n in params]
    if names[:2] != ["input_ids", "attention_mask"]:
        raise ModelError(
            f"cannot export a classifier whose inputs are {names} (input_ids and attention_mask are needed)",
            "use a bert-family checkpoint whose tokenizer returns input_ids and attention_mask",
        )
    return names


def _eager_copy(model):
    """A copy of ``model`` in eval mode with eager attention (``loaded.model`` itself is never changed)."""
    m = copy.deepcopy(model).eval()
    try:
        if hasattr(m, "set_attn_implementation"):
            m.set_attn_implementation("eager")
        else:
            m.config._attn_implementation = "eager"
    except Exception as e:  # a model without an eager path: export what it has
        logger.warning(
            "cannot switch %s to eager attention (%s); attention may not fuse", type(m).__name__, e
        )
    return m


def logits_module(model, names: list[str]):
    """A module whose positional inputs are ``names`` and whose only output is the logits tensor."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kw = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kw["token_type_ids"] = token_type_ids
            return self.inner(**kw).logits

    # eval() matters: the TorchScript exporter restores the wrapper's mode after export, and a wrapper left
    # in training mode would switch the inner model's dropout on.
    return Logits(model).eval()


def _export_torchscript(wrapper, args, path: Path, names: list[str], opset: int) -> None:
    import torch

    kw: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch"}
    torch.onnx.export(
        wrapper,
        args,
        str(path),
        input_names=names,
        output_names=["logits"],
        dynamic_axes=axes,
        opset_version=opset,
        do_constant_folding=True,
        **kw,
    )


def _export_dynamo(wrapper, args, path: Path, names: list[str], opset: int, max_length: int) -> None:
    import torch

    batch = torch.export.Dim("batch")
    seq = torch.export.Dim("sequence", max=max_length)
    torch.onnx.export(
        wrapper,
        args,
        str(path),
        input_names=names,
        output_names=["logits"],
        dynamic_shapes={n: {0: batch, 1: seq} for n in names},
        opset_version=max(opset, 18),  # the dynamo exporter's lowest supported opset
        dynamo=True,
        external_data=False,
        optimize=True,
    )


def export_classifier(
    model,
    tokenizer,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    rtol: float = EXPORT_RTOL,
) -> dict[str, Any]:
    """Export a sequence classifier to ONNX with dynamic batch and sequence axes, and check it.

    ``exporter``: ``"torchscript"`` (``torch.onnx.export(dynamo=False)``), ``"dynamo"``, or ``"auto"``:
    TorchScript, else dynamo. The graph's logits are compared with the PyTorch model's on batches of 1 and
    3 texts of other lengths than the traced ones; a difference above ``rtol * max(1, max |logit|)``
    raises ``ModelError``. Returns what was done (exporter, opset, inputs, the largest difference).
    """
    import torch

    if exporter not in ("auto", "torchscript", "dynamo"):
        raise ConfigError(
            f"exporter must be auto, torchscript or dynamo, got {exporter!r}", "use exporter='auto'"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = export_input_names(model, tokenizer)
    wrapper = logits_module(_eager_copy(model), names)
    enc = tokenizer(list(_SAMPLE_TEXTS), padding="longest", return_tensors="pt")
    args = tuple(enc[n] for n in names)
    max_length = int(getattr(model.config, "max_position_embeddings", 512) or 512)
    tries = ["torchscript", "dynamo"] if exporter == "auto" else [exporter]
    errors = []
    used = None
    for name in tries:
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(io.StringIO()),
                torch.inference_mode(False),
            ):
                warnings.simplefilter(
                    "ignore"
                )  # TracerWarnings, the TorchScript exporter's deprecation notice
                if name == "torchscript":
                    _export_torchscript(wrapper, args, path, names, opset)
                else:
                    _export_dynamo(wrapper, args, path, names, opset, max_length)
            used = name
            break
        except Exception as e:
            logger.info("ONNX export with the %s exporter failed: %s", name, e)
            errors.append(
                f"{name}: {type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
            )
    if used is None:
        raise ModelError(
            f"cannot export the model to ONNX ({'; '.join(errors)})", "use the PyTorch methods for this model"
        )
    import onnx

    graph = onnx.load(str(path), load_external_data=False)
    graph_opset = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), opset)
    diff = check_export(model, tokenizer, path, rtol)
    return {
        "exporter": used,
        "opset": int(graph_opset),
        "inputs": [i.name for i in graph.graph.input],
        "max_abs_diff": diff,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
    }


def torch_logits(model, tokenizer, texts: list[str]) -> np.ndarray:
    import torch

    enc = tokenizer(
        texts, padding="longest", truncation=True, max_length=DEFAULT_MAX_LENGTH, return_tensors="pt"
    )
    with torch.inference_mode():
        return model(**enc).logits.float().numpy()


def ort_logits(session, tokenizer, texts: list[str]) -> np.ndarray:
    from ..runtimes.onnxruntime import feeds_for

    enc = tokenizer(
        texts, padding="longest", truncation=True, max_length=DEFAULT_MAX_LENGTH, return_tensors="np"
    )
    return session.run(None, feeds_for(session, enc))[0]


def check_export(model, tokenizer, path: str | os.PathLike, rtol: float = EXPORT_RTOL) -> float:
    """Largest |ORT - torch| logit difference over the check batches; raises ModelError above tolerance."""
    from ..runtimes.onnxruntime import make_session

    session = make_session(path)
    worst = 0.0
    for texts in _CHECK_BATCHES:
        ref = torch_logits(model, tokenizer, texts)
        out = ort_logits(session, tokenizer, texts)
        if out.shape != ref.shape:
            raise ModelError(
                f"the exported graph returns logits of shape {out.shape}, PyTorch {ref.shape}",
                "report this model; use the PyTorch methods for it meanwhile",
            )
        diff = float(np.abs(out - ref).max())
        worst = max(worst, diff)
        tol = rtol * max(1.0, float(np.abs(ref).max()))
        if diff > tol:
            raise ModelError(
                f"the exported ONNX graph disagrees with PyTorch: max |logit difference| {diff:.3g} > {tol:.3g} "
                f"on a batch of {len(texts)}",
                "report this model; use the PyTorch methods for it meanwhile",
            )
    return worst


# -------------------------------------------------------------------------------------------- optimizer


def optimize_graph(src: str | os.PathLike, dst: str | os.PathLike, config) -> dict[str, Any]:
    """ONNX Runtime's transformer optimizer on a BERT-like graph, with the model's real head count and width.

    Returns the optimizer settings and the non-zero fused-operator counts, e.g. ``{"Attention": 6,
    "SkipLayerNormalization": 12, "BiasGelu": 6, "EmbedLayerNormalization": 1}``, and ``attention_fused``.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    num_heads = int(config.num_attention_heads)
    hidden_size = int(config.hidden_size)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    opt = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size)
    stats = opt.get_fused_operator_statistics()
    opt.save_model_to_file(str(dst))
    fusions = {k: int(v) for k, v in stats.items() if v}
    return {
        "model_type": "bert",
        "num_heads": num_heads,
        "hidden_size": hidden_size,
        "fusions": fusions,
        "attention_fused": bool(fusions.get("Attention") or fusions.get("MultiHeadAttention")),
    }


FUSION_CHECK_TEXTS = 64
FUSION_CHECK_RUNS = 10


def fusion_report(
    unfused_path: str | os.PathLike,
    fused_path: str | os.PathLike,
    sample_inputs,
    runs: int = 20,
    warmup: int = 3,
    intra_op_num_threads: int | None = None,
    tolerance: float = 0.05,
) -> dict[str, Any]:
    """Time the unfused and the fused graph on the same inputs: is the fused one not slower?

    ``sample_inputs``: a tokenizer output (mapping name -> array) or a list of them (several batches); each
    session is fed the inputs it declares. The two sessions run alternately, ``runs`` times each after
    ``warmup``, to spread machine noise evenly. ``fused_not_slower``: the fused median is within
    ``1 + tolerance`` of the unfused one. Costs ``2 * (runs + warmup)`` passes: never run by ``apply``.
    """
    from ..runtimes.onnxruntime import feeds_for, make_session

    if runs <= 0:
        raise ConfigError(f"runs must be positive, got {runs}", "use runs=20")
    batches = [sample_inputs] if hasattr(sample_inputs, "keys") else list(sample_inputs)
    sessions = {
        "unfused": make_session(unfused_path, intra_op_num_threads),
        "fused": make_session(fused_path, intra_op_num_threads),
    }
    feeds = {k: [feeds_for(s, b) for b in batches] for k, s in sessions.items()}
    outputs = {k: [s.run(None, f)[0] for f in feeds[k]] for k, s in sessions.items()}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for i in range(warmup + runs):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            for f in feeds[k]:
                s.run(None, f)
            if i >= warmup:
                times[k].append(time.perf_counter() - t0)
    unfused_ms = statistics.median(times["unfused"]) * 1e3
    fused_ms = statistics.median(times["fused"]) * 1e3
    diff = max(float(np.abs(a - b).max()) for a, b in zip(outputs["unfused"], outputs["fused"], strict=True))
    return {
        "runs": runs,
        "batches": len(batches),
        "unfused_ms": round(unfused_ms, 4),
        "fused_ms": round(fused_ms, 4),
        "speedup": round(unfused_ms / fused_ms, 3) if fused_ms > 0 else None,
        "fused_not_slower": fused_ms <= unfused_ms * (1 + tolerance),
        "max_abs_diff": diff,
        "intra_op_num_threads": sessions["fused"].get_session_options().intra_op_num_threads,
    }


# ---------------------------------------------------------------------------------------- calibration


def calibration_reader(tokenizer, texts: list[str], input_names: list[str], prefix: str = "",
                       batch_size: int = CALIBRATION_BATCH_SIZE, max_length: int = DEFAULT_MAX_LENGTH):  # fmt: skip
    """An ``onnxruntime.quantization.CalibrationDataReader`` over ``texts``, padded per batch, int64 feeds.

    Feeds carry exactly ``input_names`` (the graph's inputs); ``rewind()`` starts over; ``set_range``
    restricts it to some batches (strided calibration).
    """
    from onnxruntime.quantization import CalibrationDataReader

    class TextReader(CalibrationDataReader):
        def __init__(self):
            self.batches = []
            for i in range(0, len(texts), batch_size):
                chunk = [prefix + t for t in texts[i : i + batch_size]]
                enc = tokenizer(
                    chunk, padding="longest", truncation=True, max_length=max_length, return_tensors="np"
                )
                feed = {}
                for n in input_names:
                    if n in enc:
                        feed[n] = np.asarray(enc[n], dtype=np.int64)
                    elif n == "token_type_ids":
                        feed[n] = np.zeros_like(np.asarray(enc["input_ids"]), dtype=np.int64)
                    else:
                        raise KeyError(f"the graph wants input {n!r}, which the tokenizer does not produce")
                self.batches.append(feed)
            self._it = iter(self.batches)

        def get_next(self):
            return next(self._it, None)

        def rewind(self):
            self._it = iter(self.batches)

        def set_range(self, start_index: int, end_index: int):
            """ORT's strided calibration (``CalibStridedMinMax``) reads the batches a stride at a time."""
            self._it = iter(self.batches[start_index:end_index])

        def __len__(self):
            return len(self.batches)

    return TextReader()


# -------------------------------------------------------------------------------------------- methods


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _graph_inputs(path: Path) -> list[str]:
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    return [i.name for i in g.input if i.name not in inits]


def preprocess_for_quantization(src: Path, dst: Path) -> dict[str, Any]:
    """ONNX Runtime's quantization pre-processing: symbolic shape inference (it knows the contrib operators
    of the optimized graph, which plain ONNX shape inference cannot type), no further graph optimization.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    dst.parent.mkdir(parents=True, exist_ok=True)
    quant_pre_process(str(src), str(dst), skip_optimization=True, auto_merge=True)
    return {"preprocess": "quant_pre_process(symbolic shape inference, skip_optimization=True)"}


def _quant_extra_options(**extra: Any) -> dict[str, Any]:
    import onnx

    # a tensor whose type inference still missed (an operator unknown to it) is float
    return {"DefaultTensorType": onnx.TensorProto.FLOAT, **extra}


def _reduce_range(option: bool | None) -> bool:
    """7-bit weights only where int8 dot products saturate: x86 without VNNI (see the methods' docs)."""
    return (not supports_int8_vnni()) if option is None else bool(option)


class _OrtMethod(Method):
    """Shared pipeline: export into a variant-owned temp folder, optimize, then ``_finish``.

    ``require_fusion``: when ONNX Runtime's optimizer fuses no attention (an architecture its pattern
    matcher does not know), raise ``MethodNotApplicableError`` instead of the default, which keeps the
    (correct, unfused) graph, logs a warning and records ``details["optimizer"]["attention_fused"] = False``.
    ``intra_op_num_threads``: the session's threads (None: ``torch.get_num_threads()``).
    """

    families = ("bert",)
    runtime = "onnxruntime"

    def __init__(self, require_fusion: bool = False, intra_op_num_threads: int | None = None):
        self.require_fusion = bool(require_fusion)
        self.intra_op_num_threads = intra_op_num_threads

    def unavailable_reason(self) -> str | None:
        return _missing()

    def _finish(self, loaded, work: Path, graph: Path, details: dict[str, Any]) -> Path:
        """Turn the (optimized) graph into the final one; return its path. Default: the graph itself."""
        return graph

    def _fusion_check(self, loaded, paths: dict[str, Path]) -> dict[str, Any] | None:
        """``fusion_report`` on two batches of 32 task texts: is the fused graph faster than the exported one?"""
        try:
            texts = calibration_texts(calibration_task(loaded, None), FUSION_CHECK_TEXTS)
            texts = [loaded.spec.prefix + t for t in texts]
            batches = [dict(loaded.tokenizer(texts[i : i + 32], padding=True, return_tensors="np"))
                       for i in range(0, len(texts), 32)]  # fmt: skip
            report = fusion_report(paths["exported"], paths["optimized"], batches, runs=FUSION_CHECK_RUNS,
                                   intra_op_num_threads=self.intra_op_num_threads)  # fmt: skip
        except Exception as e:  # the check informs; it never fails the variant
            logger.warning("fused-vs-unfused check failed: %s", e)
            return {"error": f"{type(e).__name__}: {e}"}
        if not report["fused_not_slower"]:
            logger.warning(
                "the fused graph of %s is slower than the unfused one: %s", loaded.spec.name, report
            )
        return report

    def _finish_seq2seq(self, loaded, work: Path, folder: Path, details: dict[str, Any]) -> Path:
        """Turn the exported T5 graphs (``folder``) into the final ones; return their folder. Default: as is."""
        return folder

    def _apply_seq2seq(self, loaded) -> Variant:
        """T5: encoder and one-token decoder graphs (``onnx_seq2seq.export_t5``), then ``_finish_seq2seq``."""
        from ..runtimes.onnxruntime import OrtSeq2SeqPredictor
        from .onnx_seq2seq import export_t5

        tmp = tempfile.TemporaryDirectory(prefix=f"accelbench-{self.name}-")
        try:
            work = Path(tmp.name)
            export = export_t5(loaded.model, loaded.tokenizer, work / "exported", prefix=loaded.spec.prefix)
            details: dict[str, Any] = {"opset": export["opset"], "export": export, "optimizer": {
                "model_type": None, "attention_fused": False,
                "note": "ONNX Runtime's transformer optimizer has no fusion for accelbench's T5 decoder-step graph; "
                        "the session's own graph optimizations (ORT_ENABLE_ALL) apply"}}  # fmt: skip
            final = self._finish_seq2seq(loaded, work, work / "exported", details)
            predictor = OrtSeq2SeqPredictor(
                final, loaded.tokenizer, loaded.family, loaded.spec.prefix,
                decoder_start_token_id=loaded.model.config.decoder_start_token_id,
                intra_op_num_threads=self.intra_op_num_threads, workdir=tmp,
                graph_paths={"exported": str(work / "exported"), "final": str(final)},
            )  # fmt: skip
        except BaseException:
            tmp.cleanup()
            raise
        details["session"] = predictor.settings
        return Variant(self.label, predictor, self.runtime, self.dtype, _folder_mb(final), details)

    def apply(self, loaded) -> Variant:
        from ..runtimes.onnxruntime import OrtPredictor

        self.check(loaded.family)
        if loaded.family == "t5":
            return self._apply_seq2seq(loaded)
        tmp = tempfile.TemporaryDirectory(prefix=f"accelbench-{self.name}-")
        try:
            work = Path(tmp.name)
            paths = {"exported": work / "exported" / "model.onnx"}
            export = export_classifier(loaded.model, loaded.tokenizer, paths["exported"])
            details: dict[str, Any] = {"opset": export["opset"], "export": export}
            paths["optimized"] = work / "optimized" / "model.onnx"
            opt = optimize_graph(paths["exported"], paths["optimized"], loaded.model.config)
            details["optimizer"] = opt
            if getattr(self, "check_fusion", False):
                details["fusion_check"] = self._fusion_check(loaded, paths)
            if not opt["attention_fused"]:
                msg = (
                    f"ONNX Runtime's optimizer fused no attention in {loaded.spec.name!r} "
                    f"(fusions: {opt['fusions'] or 'none'}); the graph runs, unfused"
                )
                if self.require_fusion:
                    raise MethodNotApplicableError(msg, "drop require_fusion, or this method for this model")
                logger.warning(msg)
            final = self._finish(loaded, work, paths["optimized"], details)
            paths["final"] = final
            predictor = OrtPredictor(
                final, loaded.tokenizer, loaded.family, loaded.spec.prefix,
                intra_op_num_threads=self.intra_op_num_threads, workdir=tmp,
                graph_paths={k: str(v) for k, v in paths.items()},
            )  # fmt: skip
        except BaseException:
            tmp.cleanup()
            raise
        details["session"] = predictor.settings
        return Variant(self.name, predictor, self.runtime, self.dtype, _folder_mb(final.parent), details)


@register_method
class OrtFP32(_OrtMethod):
    """The fused fp32 graph. ``check_fusion`` (default on, ~2 s) times it against the unfused export on the
    same batches and records the result (``fusion_check`` in the variant details); the int8 methods share
    the same optimized graph, so checking it once per model is enough."""

    name = "ort-fp32"
    description = (
        "ONNX Runtime, float32; bert: the transformer optimizer's fused attention/LayerNorm/GELU; t5: encoder "
        "and cached one-token decoder graphs"
    )
    families = ("bert", "t5")

    def __init__(self, check_fusion: bool = True, **kw):
        super().__init__(**kw)
        self.check_fusion = bool(check_fusion)
        self.options = {"check_fusion": self.check_fusion}


@register_method
class OrtDynamicInt8(_OrtMethod):
    """``quantize_dynamic`` of the optimized graph: int8 weights (QInt8), uint8 activations per batch.

    ``per_channel=False``: one scale per weight tensor, like PyTorch's ``dynamic-int8``; ``True`` gives one
    scale per output column (more accurate, slightly slower). ``reduce_range=None`` (auto): 7-bit weights
    only on x86 CPUs without VNNI/AMX, where ONNX Runtime's u8s8 kernel (VPMADDUBSW) can saturate; with
    VNNI (``environment.supports_int8_vnni()``) full 8-bit weights are exact and faster.
    """

    name = "ort-dynamic-int8"
    description = (
        "ONNX Runtime dynamic quantization (bert: of the optimized graph; t5: of the encoder and decoder-step "
        "graphs): int8 weights, activations per batch"
    )
    dtype = "int8"
    families = ("bert", "t5")

    def __init__(self, per_channel: bool = False, reduce_range: bool | None = None, **kw):
        super().__init__(**kw)
        self.options = {"per_channel": bool(per_channel), "reduce_range": reduce_range}

    def _finish(self, loaded, work: Path, graph: Path, details: dict[str, Any]) -> Path:
        out = work / "int8" / "model.onnx"
        out.parent.mkdir(parents=True, exist_ok=True)
        pre, reduce_range = self._quantize(graph, work / "preprocessed" / "model.onnx", out)
        details["quantization"] = self._dynamic_details(pre, reduce_range, [out])
        return out

    def _quantize(
        self, src: Path, preprocessed: Path, dst: Path, **extra: Any
    ) -> tuple[dict[str, Any], bool]:
        """Pre-process ``src`` into ``preprocessed``, quantize it into ``dst``; the pre-processing and reduce_range."""
        from onnxruntime.quantization import QuantType, quantize_dynamic

        pre = preprocess_for_quantization(src, preprocessed)
        reduce_range = _reduce_range(self.options["reduce_range"])
        quantize_dynamic(
            str(preprocessed), str(dst), weight_type=QuantType.QInt8, per_channel=self.options["per_channel"],
            reduce_range=reduce_range, extra_options=_quant_extra_options(**extra),
        )  # fmt: skip
        return pre, reduce_range

    def _dynamic_details(self, pre: dict[str, Any], reduce_range: bool, graphs: list[Path]) -> dict[str, Any]:
        ops: dict[str, int] = {}
        for g in graphs:
            for k, v in _quantized_ops(g).items():
                ops[k] = ops.get(k, 0) + v
        return {
            **pre, "mode": "dynamic", "weight_type": "QInt8", "activation_type": "QUInt8 (per batch)",
            "per_channel": self.options["per_channel"], "reduce_range": reduce_range,
            "vnni": supports_int8_vnni(), "quantized_ops": dict(sorted(ops.items())),
        }  # fmt: skip

    def _finish_seq2seq(self, loaded, work: Path, folder: Path, details: dict[str, Any]) -> Path:
        from .onnx_seq2seq import DECODER_FILE, ENCODER_FILE

        out = work / "int8"
        out.mkdir(parents=True, exist_ok=True)
        for name in (ENCODER_FILE, DECODER_FILE):
            # weights only: the attention products (query x key, weights x value) have no constant side
            pre, reduce_range = self._quantize(folder / name, work / "preprocessed" / name, out / name,
                                               MatMulConstBOnly=True)  # fmt: skip
        details["quantization"] = self._dynamic_details(
            pre, reduce_range, [out / ENCODER_FILE, out / DECODER_FILE]
        )
        return out


@register_method
class OrtStaticInt8(_OrtMethod):
    """QDQ static quantization of the optimized graph, calibrated on the task's training texts.

    Options: ``calibration`` (minmax | entropy | percentile), ``samples`` (training texts, seeded draw, one
    unpadded text per calibration batch), ``per_channel`` (weights), ``task`` (None: the task the model was
    trained for, else sst2), ``reduce_range`` (None: auto, as for ``ort-dynamic-int8``).

    Activations are uint8 and weights int8 (U8S8, what x86 VNNI multiplies natively): with S8S8, ONNX
    Runtime's session optimizer leaves the attention output projections (which feed the float
    SkipLayerNormalization) as float MatMuls behind a DequantizeLinear; with U8S8 every quantized MatMul
    runs as QLinearMatMul. Only MatMul/Gemm are quantized: in the optimized graph that is the attention
    output projection, the feed-forward layers, pooler and classifier. The fused ``Attention`` (with the
    Q/K/V projection) and ``EmbedLayerNormalization`` (the embedding tables) stay float, which is why this
    variant is larger on disk than ``ort-dynamic-int8``.
    """

    name = "ort-static-int8"
    description = "ONNX Runtime static QDQ int8 (weights and activations), calibrated on training texts"
    dtype = "int8"

    def __init__(
        self,
        calibration: str = "minmax",
        samples: int = 128,
        per_channel: bool = False,
        task: str | None = None,
        reduce_range: bool | None = None,
        **kw,
    ):
        super().__init__(**kw)
        if calibration not in CALIBRATIONS:
            raise ConfigError(
                f"unknown calibration method {calibration!r} for {self.name}; valid: {', '.join(CALIBRATIONS)}",
                f"use calibration='minmax' (or one of {', '.join(CALIBRATIONS)})",
            )
        if isinstance(samples, bool) or not isinstance(samples, int) or samples <= 0:
            raise ConfigError(f"samples must be a positive integer, got {samples!r}", "use samples=128")
        self.options = {
            "calibration": calibration,
            "samples": samples,
            "per_channel": bool(per_channel),
            "task": task,
            "reduce_range": reduce_range,
        }

    def _finish(self, loaded, work: Path, graph: Path, details: dict[str, Any]) -> Path:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        task = calibration_task(loaded, self.options["task"])
        texts = calibration_texts(task, self.options["samples"])
        src = work / "preprocessed" / "model.onnx"
        pre = preprocess_for_quantization(graph, src)
        reader = calibration_reader(loaded.tokenizer, texts, _graph_inputs(src), loaded.spec.prefix)
        method = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[self.options["calibration"]]
        out = work / "int8" / "model.onnx"
        out.parent.mkdir(parents=True, exist_ok=True)
        reduce_range = _reduce_range(self.options["reduce_range"])
        # ORT calibrates in its own temp folder and print()s progress for histogram calibrators
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            quantize_static(
                str(src), str(out), reader, quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(STATIC_OP_TYPES), per_channel=self.options["per_channel"],
                reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=method,
                # despite its name, quantize_static applies this stride to every calibrator: it collects one
                # batch per call, so the histogram calibrators never stack batches of different lengths
                # (which fails) nor keep every activation of the calibration set in memory
                extra_options=_quant_extra_options(CalibStridedMinMax=CALIBRATION_STRIDE),
            )  # fmt: skip
        details["quantization"] = {
            **pre, "mode": "static", "format": "QDQ", "calibration": self.options["calibration"],
            "samples": len(texts), "samples_requested": self.options["samples"], "calibration_task": task, "calibration_batch_size": CALIBRATION_BATCH_SIZE,
            "calibration_stride": CALIBRATION_STRIDE,
            "seed": CALIBRATION_SEED, "per_channel": self.options["per_channel"], "reduce_range": reduce_range,
            "activation_type": "QUInt8", "weight_type": "QInt8", "op_types": list(STATIC_OP_TYPES),
            "vnni": supports_int8_vnni(), "quantized_ops": _quantized_ops(out),
        }  # fmt: skip
        return out


def _quantized_ops(path: Path) -> dict[str, int]:
    """Counts of the quantization operators in a graph (QAttention, MatMulInteger, QuantizeLinear...)."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        if node.op_type.startswith(("Q", "Dequantize", "DynamicQuantize")) or "Integer" in node.op_type:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))
