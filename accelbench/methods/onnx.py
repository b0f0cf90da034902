"""ONNX Runtime methods: ``ort-fp32`` (fused graph), ``ort-dynamic-int8``, ``ort-static-int8``.

Every method builds in a temporary folder that the variant's predictor owns (removed by
``predictor.close()``), on the model's export (for the bert family made once per loaded model and shared by
its ort variants, ``export.onnx_shared``):

- bert family: ``export.onnx_classifier.export_classifier`` (checked against PyTorch), then ONNX Runtime's
  transformer optimizer (``export.onnx_graph.optimize_graph``), then ``_finish``: nothing (``ort-fp32``),
  ``quantize_dynamic`` (``ort-dynamic-int8``: int8 weights, activations per batch; the fused ``Attention``
  becomes ``QAttention``) or QDQ ``quantize_static`` calibrated on training texts (``ort-static-int8``).
- t5 family: ``export.onnx_t5.export_t5`` (encoder and one-token decoder graphs, checked against
  ``generate``), then ``_finish_seq2seq``: nothing, or ``quantize_dynamic`` of both graphs.

The int8 methods take ``fp32_units``: the nodes of those units (``methods.units.onnx_node_units``) are
passed to the quantizer as ``nodes_to_exclude`` and stay float.

``onnxruntime``/``onnx`` are imported lazily: without them this module imports and the methods report
themselves unavailable.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..environment import supports_int8_vnni
from ..exceptions import ConfigError, MethodNotApplicableError
from ..export.onnx_graph import (
    CALIBRATION_BATCH_SIZE,
    calibration_reader,
    fusion_report,
    graph_inputs,
    preprocess_for_quantization,
    quant_extra_options,
    quantized_ops,
    split_pairs,
)
from ..export.onnx_shared import Workdirs, shared_graphs
from ..export.onnx_t5 import DECODER_FILE, ENCODER_FILE, export_t5
from ..runtimes.onnxruntime import OrtPredictor, OrtSeq2SeqPredictor
from .base import Method, Variant, check_bool, check_positive_int, folder_mb, register_method
from .calibration import (
    CALIBRATION_SEED,
    DEFAULT_SAMPLES,
    calibration_task,
    calibration_texts,
    check_calibration_options,
)
from .units import FallbackUnits, fallback_details, normalize_units_field, onnx_exclusions, onnx_node_units

logger = logging.getLogger(__name__)

CALIBRATIONS = ("minmax", "entropy", "percentile")
CALIBRATION_STRIDE = 1  # calibration batches per collect_data call (see OrtStaticInt8._finish)
# What static QDQ quantizes: the linear layers. Quantizing LayerNorm, Softmax, Gather, Where... as
# well costs accuracy and buys little on CPU, where ORT runs the fused float kernels for those.
STATIC_OP_TYPES = ("MatMul", "Gemm")
FUSION_CHECK_TEXTS = 64  # two batches of 32 task texts
FUSION_CHECK_RUNS = 6  # alternating runs of each graph after 3 warm-ups (10 before: 4 s more per model)


@functools.lru_cache(maxsize=1)
def _missing() -> str | None:
    """Why the ONNX methods cannot run here (a missing library), or None."""
    for module in ("onnxruntime", "onnx"):
        try:
            __import__(module)
        except ImportError as e:
            return f"{module} is not importable ({e}); pip install onnxruntime onnx"
    return None


def _reduce_range(option: bool | None) -> bool:
    """7-bit weights only where int8 dot products saturate: x86 without VNNI (see ``OrtDynamicInt8``)."""
    return (not supports_int8_vnni()) if option is None else bool(option)


@dataclass(frozen=True)
class OrtOptions:
    """Settings of every ONNX Runtime method.

    ``require_fusion``: when ONNX Runtime's optimizer fuses no attention (an architecture its pattern
    matcher does not know), raise ``MethodNotApplicableError`` instead of the default, which keeps the
    (correct, unfused) graph, logs a warning and records ``details["optimizer"]["attention_fused"] = False``.
    ``intra_op_num_threads``: the session's threads (None: ``torch.get_num_threads()``).
    """

    require_fusion: bool = False
    intra_op_num_threads: int | None = None

    def __post_init__(self) -> None:
        check_bool("require_fusion", self.require_fusion)
        check_positive_int("intra_op_num_threads", self.intra_op_num_threads, "null", allow_none=True)


@dataclass(frozen=True)
class OrtFP32Options(OrtOptions):
    """``check_fusion``: time the fused graph against the unfused export (``details["fusion_check"]``)."""

    check_fusion: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bool("check_fusion", self.check_fusion)


@dataclass(frozen=True)
class OrtQuantOptions(OrtOptions):
    """``per_channel``: one weight scale per output column; ``reduce_range``: 7-bit weights (None: auto);
    ``fp32_units``: units (``methods.units.units(model)``) whose nodes the quantizer leaves float."""

    per_channel: bool = False
    reduce_range: bool | None = None
    fp32_units: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bool("per_channel", self.per_channel)
        check_bool("reduce_range", self.reduce_range, allow_none=True)
        normalize_units_field(self)


@dataclass(frozen=True)
class OrtStaticInt8Options(OrtQuantOptions):
    """``calibration`` (minmax | entropy | percentile), ``samples`` training texts, ``task`` (None: own)."""

    calibration: str = "minmax"
    samples: int = DEFAULT_SAMPLES
    task: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(
                f"unknown calibration method {self.calibration!r}; valid: {', '.join(CALIBRATIONS)}",
                f"use calibration='minmax' (or one of {', '.join(CALIBRATIONS)})",
            )
        check_calibration_options(self.samples, self.task)


class _OrtMethod(Method):
    """Shared pipeline: export into a variant-owned temp folder, optimize (bert), then ``_finish``."""

    families = ("bert",)
    runtime = "onnxruntime"
    Options = OrtOptions

    def unavailable_reason(self) -> str | None:
        return _missing()

    def _finish(self, loaded, work: Path, graph: Path, details: dict[str, Any]) -> Path:
        """Turn the (optimized) graph into the final one; return its path. Default: the graph itself."""
        return graph

    def _finish_seq2seq(self, loaded, work: Path, folder: Path, details: dict[str, Any]) -> Path:
        """Turn the exported T5 graphs (``folder``) into the final ones' folder (default: as is)."""
        return folder

    def _fusion_check(self, loaded, paths: dict[str, Path]) -> dict[str, Any]:
        """``fusion_report`` on two batches of 32 task texts: is the fused graph faster than the export?"""
        try:
            texts = calibration_texts(calibration_task(loaded, None), FUSION_CHECK_TEXTS)
            texts, pairs = split_pairs(texts)
            texts = [loaded.spec.prefix + t for t in texts]
            batches = [dict(loaded.tokenizer(texts[i : i + 32], None if pairs is None else pairs[i : i + 32],
                                             padding=True, return_tensors="np",
                                             truncation=False if pairs is None else "longest_first"))
                       for i in range(0, len(texts), 32)]  # fmt: skip
            report = fusion_report(paths["exported"], paths["optimized"], batches, runs=FUSION_CHECK_RUNS,
                                   intra_op_num_threads=self.opts.intra_op_num_threads)  # fmt: skip
        except Exception as e:  # the check informs; it never fails the variant
            logger.warning("fused-vs-unfused check failed: %s", e)
            return {"error": f"{type(e).__name__}: {e}"}
        if not report["fused_not_slower"]:
            logger.warning(
                "the fused graph of %s is slower than the unfused one: %s", loaded.spec.name, report
            )
        return report

    def _apply_seq2seq(self, loaded, tmp) -> Variant:
        """T5: encoder and one-token decoder graphs (``export_t5``), then ``_finish_seq2seq``."""
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
            intra_op_num_threads=self.opts.intra_op_num_threads, workdir=tmp,
            graph_paths={"exported": str(work / "exported"), "final": str(final)},
        )  # fmt: skip
        details["session"] = predictor.settings
        return Variant(self.label, predictor, self.runtime, self.dtype, folder_mb(final), details)

    def _apply_classifier(self, loaded, tmp) -> Variant:
        """bert: export, check, optimize (``export.onnx_shared.shared_graphs``), ``_finish``."""
        work = Path(tmp.name)
        shared, export, opt = shared_graphs(loaded)
        tmp = Workdirs(tmp, shared)  # the predictor keeps the shared graphs as long as its own files
        paths = {"exported": Path(shared.name) / "exported" / "model.onnx",
                 "optimized": Path(shared.name) / "optimized" / "model.onnx"}  # fmt: skip
        details: dict[str, Any] = {"opset": export["opset"], "export": export, "optimizer": opt}
        if getattr(self.opts, "check_fusion", False):
            details["fusion_check"] = self._fusion_check(loaded, paths)
        if not opt["attention_fused"]:
            msg = (
                f"ONNX Runtime's optimizer fused no attention in {loaded.spec.name!r} "
                f"(fusions: {opt['fusions'] or 'none'}); the graph runs, unfused"
            )
            if self.opts.require_fusion:
                raise MethodNotApplicableError(msg, "drop require_fusion, or this method for this model")
            logger.warning(msg)
        final = self._finish(loaded, work, paths["optimized"], details)
        paths["final"] = final
        predictor = OrtPredictor(
            final, loaded.tokenizer, loaded.family, loaded.spec.prefix,
            intra_op_num_threads=self.opts.intra_op_num_threads, workdir=tmp,
            graph_paths={k: str(v) for k, v in paths.items()},
        )  # fmt: skip
        details["session"] = predictor.settings
        return Variant(self.label, predictor, self.runtime, self.dtype, folder_mb(final.parent), details)

    def apply(self, loaded) -> Variant:
        self.check(loaded.family)
        tmp = tempfile.TemporaryDirectory(prefix=f"accelbench-{self.name}-")
        try:
            if loaded.family == "t5":
                return self._apply_seq2seq(loaded, tmp)
            return self._apply_classifier(loaded, tmp)
        except BaseException:
            tmp.cleanup()
            raise


@register_method
class OrtFP32(_OrtMethod):
    """The fused fp32 graph. ``check_fusion`` (default on) times it against the unfused export on the same
    batches and records the result (``fusion_check`` in the variant details); the int8 methods share the
    same optimized graph, so checking it once per model is enough."""

    name = "ort-fp32"
    description = (
        "ONNX Runtime, float32; bert: the transformer optimizer's fused attention/LayerNorm/GELU; t5: encoder "
        "and cached one-token decoder graphs"
    )
    families = ("bert", "t5")
    Options = OrtFP32Options


class _OrtQuantMethod(FallbackUnits, _OrtMethod):
    """An int8 ONNX Runtime method: ``fp32_units`` checked against the model before the export."""

    def apply(self, loaded) -> Variant:
        self.check(loaded.family)
        self.fallback_units(loaded)  # an unknown unit fails before any work
        return super().apply(loaded)


@register_method
class OrtDynamicInt8(_OrtQuantMethod):
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
    Options = OrtQuantOptions

    def _finish(self, loaded, work: Path, graph: Path, details: dict[str, Any]) -> Path:
        out = work / "int8" / "model.onnx"
        out.parent.mkdir(parents=True, exist_ok=True)
        pre, reduce_range, excluded, found = self._quantize(
            loaded, graph, work / "preprocessed" / "model.onnx", out
        )
        details["quantization"] = {**self._dynamic_details(pre, reduce_range, [out]),
                                   **fallback_details(self.opts.fp32_units, excluded, found)}  # fmt: skip
        return out

    def _finish_seq2seq(self, loaded, work: Path, folder: Path, details: dict[str, Any]) -> Path:
        out = work / "int8"
        out.mkdir(parents=True, exist_ok=True)
        excluded: list[str] = []
        found: set[str] = set()
        for name in (ENCODER_FILE, DECODER_FILE):
            # weights only: the attention products (query x key, weights x value) have no constant side
            pre, reduce_range, ex, units = self._quantize(loaded, folder / name, work / "preprocessed" / name,
                                                          out / name, MatMulConstBOnly=True)  # fmt: skip
            excluded, found = excluded + ex, found | units
        details["quantization"] = {
            **self._dynamic_details(pre, reduce_range, [out / ENCODER_FILE, out / DECODER_FILE]),
            **fallback_details(self.opts.fp32_units, excluded, found),
        }
        return out

    def _quantize(
        self, loaded, src: Path, preprocessed: Path, dst: Path, **extra: Any
    ) -> tuple[dict[str, Any], bool, list[str], set[str]]:
        """Pre-process ``src``, quantize it into ``dst`` (the ``fp32_units`` nodes left float); returns the
        pre-processing, reduce_range, the nodes left float and their units."""
        from onnxruntime.quantization import QuantType, quantize_dynamic

        pre = preprocess_for_quantization(src, preprocessed)
        reduce_range = _reduce_range(self.opts.reduce_range)
        units, kept = self.fallback_units(loaded)
        node_units = onnx_node_units(preprocessed, loaded.model, units) if kept else {}
        excluded = onnx_exclusions(node_units, kept)
        quantize_dynamic(
            str(preprocessed), str(dst), weight_type=QuantType.QInt8, per_channel=self.opts.per_channel,
            reduce_range=reduce_range, nodes_to_exclude=excluded, extra_options=quant_extra_options(**extra),
        )  # fmt: skip
        return pre, reduce_range, excluded, {node_units[n] for n in excluded}

    def _dynamic_details(self, pre: dict[str, Any], reduce_range: bool, graphs: list[Path]) -> dict[str, Any]:
        ops: dict[str, int] = {}
        for g in graphs:
            for k, v in quantized_ops(g).items():
                ops[k] = ops.get(k, 0) + v
        return {
            **pre, "mode": "dynamic", "weight_type": "QInt8", "activation_type": "QUInt8 (per batch)",
            "per_channel": self.opts.per_channel, "reduce_range": reduce_range,
            "vnni": supports_int8_vnni(), "quantized_ops": dict(sorted(ops.items())),
        }  # fmt: skip


@register_method
class OrtStaticInt8(_OrtQuantMethod):
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
    Options = OrtStaticInt8Options

    def _finish(self, loaded, work: Path, graph: Path, details: dict[str, Any]) -> Path:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        o = self.opts
        task = calibration_task(loaded, o.task)
        texts = calibration_texts(task, o.samples)
        src = work / "preprocessed" / "model.onnx"
        pre = preprocess_for_quantization(graph, src)
        units, kept = self.fallback_units(loaded)
        node_units = onnx_node_units(src, loaded.model, units) if kept else {}
        excluded = onnx_exclusions(node_units, kept)
        reader = calibration_reader(loaded.tokenizer, texts, graph_inputs(src), loaded.spec.prefix)
        method = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[o.calibration]
        out = work / "int8" / "model.onnx"
        out.parent.mkdir(parents=True, exist_ok=True)
        reduce_range = _reduce_range(o.reduce_range)
        # ORT calibrates in its own temp folder and print()s progress for histogram calibrators
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            quantize_static(
                str(src), str(out), reader, quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(STATIC_OP_TYPES), per_channel=o.per_channel,
                reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=method, nodes_to_exclude=excluded,
                # despite its name, quantize_static applies this stride to every calibrator: it collects one
                # batch per call, so the histogram calibrators never stack batches of different lengths
                # (which fails) nor keep every activation of the calibration set in memory
                extra_options=quant_extra_options(CalibStridedMinMax=CALIBRATION_STRIDE),
            )  # fmt: skip
        details["quantization"] = {
            **pre, "mode": "static", "format": "QDQ", "calibration": o.calibration,
            "samples": len(texts), "samples_requested": o.samples, "calibration_task": task,
            "calibration_batch_size": CALIBRATION_BATCH_SIZE, "calibration_stride": CALIBRATION_STRIDE,
            "seed": CALIBRATION_SEED, "per_channel": o.per_channel, "reduce_range": reduce_range,
            "activation_type": "QUInt8", "weight_type": "QInt8", "op_types": list(STATIC_OP_TYPES),
            "vnni": supports_int8_vnni(), "quantized_ops": quantized_ops(out),
            **fallback_details(kept, excluded, {node_units[n] for n in excluded}),
        }  # fmt: skip
        return out
