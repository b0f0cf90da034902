"""Work on an exported ONNX graph: ONNX Runtime's transformer optimizer, its timing, quantization inputs.

- ``optimize_graph``: ``optimize_model(model_type="bert")`` fuses embeddings, attention, skip-LayerNorm and
  GELU into contrib operators, with the model's real head count and width; the fusion counts are returned.
- ``fusion_report``: times the unfused and the fused graph on the same inputs.
- ``preprocess_for_quantization``, ``calibration_reader``, ``quant_extra_options``: what ONNX Runtime's
  quantizers need; ``quantized_ops`` counts what they produced.

``onnx`` and ``onnxruntime`` are imported lazily.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ConfigError
from ..runtimes.base import DEFAULT_MAX_LENGTH
from ..runtimes.onnxruntime import feeds_for, make_session

CALIBRATION_BATCH_SIZE = 1  # one text per calibration batch: no padding tokens in the activation ranges


def optimize_graph(src: str | os.PathLike, dst: str | os.PathLike, config) -> dict[str, Any]:
    """ONNX Runtime's transformer optimizer on a BERT-like graph, with the model's real head count and width.

    Returns the optimizer settings and the non-zero fused-operator counts, e.g. ``{"Attention": 6,
    "SkipLayerNormalization": 12, "BiasGelu": 6, "EmbedLayerNormalization": 1}``, and ``attention_fused``.

    A pruned BERT (``heads_per_layer`` in its config) has no one head count: ``num_heads=0`` makes the
    optimizer read each layer's from the graph's head reshape (``PrunedBertSelfAttention`` writes it there),
    and every fused ``Attention`` node's count is checked against the config. Should any differ, the graph is
    optimized again without attention fusion (``attention_note`` says so): unfused, but right.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    per_layer = getattr(config, "heads_per_layer", None)
    num_heads = 0 if per_layer else int(config.num_attention_heads)
    hidden_size = 0 if per_layer else int(config.hidden_size)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    # a pruned layer's attention width (heads x head size) is below the model's width, which the fusion warns
    # about once per layer; the Attention operator takes the two widths apart (checked against PyTorch)
    # (ORT's transformers folder is on sys.path, so its logger is named "fusion_attention" as well)
    fusion_logs = [
        logging.getLogger(n) for n in ("fusion_attention", "onnxruntime.transformers.fusion_attention")
    ]
    levels = [log.level for log in fusion_logs]
    for log in fusion_logs if per_layer else []:
        log.setLevel(logging.ERROR)
    try:
        opt = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size)
    finally:
        for log, level in zip(fusion_logs, levels, strict=True):
            log.setLevel(level)
    out: dict[str, Any] = {"model_type": "bert", "num_heads": num_heads, "hidden_size": hidden_size}
    if per_layer:
        out["heads_per_layer"] = list(per_layer)
        fused = _attention_heads(opt.model)
        if fused and fused != list(per_layer):
            from onnxruntime.transformers.fusion_options import FusionOptions

            options = FusionOptions("bert")
            options.enable_attention = False
            opt = optimize_model(
                str(src), model_type="bert", num_heads=0, hidden_size=0, optimization_options=options
            )
            out["attention_note"] = (f"attention not fused: the fused head counts {fused} differ from the pruned "
                                     f"model's {list(per_layer)}")  # fmt: skip
        elif not fused:
            out["attention_note"] = "attention not fused: no layer's head count was found in the graph"
    stats = opt.get_fused_operator_statistics()
    opt.save_model_to_file(str(dst))
    fusions = {k: int(v) for k, v in stats.items() if v}
    out["fusions"] = fusions
    out["attention_fused"] = bool(fusions.get("Attention") or fusions.get("MultiHeadAttention"))
    return out


def _attention_heads(model) -> list[int]:
    """The ``num_heads`` of each fused attention node, in graph order (one per encoder layer)."""
    out = []
    for node in model.graph.node:
        if node.op_type in ("Attention", "MultiHeadAttention"):
            out += [int(a.i) for a in node.attribute if a.name == "num_heads"]
    return out


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
    ``1 + tolerance`` of the unfused one. Costs ``2 * (runs + warmup)`` passes over the inputs.
    """
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


def graph_inputs(path: str | os.PathLike) -> list[str]:
    """The graph's real inputs (initializers listed as inputs excluded)."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    return [i.name for i in g.input if i.name not in inits]


def preprocess_for_quantization(src: str | os.PathLike, dst: str | os.PathLike) -> dict[str, Any]:
    """ONNX Runtime's quantization pre-processing: symbolic shape inference (it knows the contrib operators
    of the optimized graph, which plain ONNX shape inference cannot type), no further graph optimization.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    quant_pre_process(str(src), str(dst), skip_optimization=True, auto_merge=True)
    return {"preprocess": "quant_pre_process(symbolic shape inference, skip_optimization=True)"}


def quant_extra_options(**extra: Any) -> dict[str, Any]:
    """``extra_options`` for ONNX Runtime's quantizers: ``extra`` plus a float default tensor type."""
    import onnx

    # a tensor whose type inference still missed (an operator unknown to it) is float
    return {"DefaultTensorType": onnx.TensorProto.FLOAT, **extra}


def quantized_ops(path: str | os.PathLike) -> dict[str, int]:
    """Counts of the quantization operators in a graph (QAttention, MatMulInteger, QuantizeLinear...)."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        if node.op_type.startswith(("Q", "Dequantize", "DynamicQuantize")) or "Integer" in node.op_type:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def split_pairs(items: list) -> tuple[list[str], list[str] | None]:
    """Texts and, for ``(text, text_pair)`` items (a pair task), the second sentences; else None.

    The tokenizer call then is ``tokenizer(texts, pairs, truncation=True if pairs is None else
    "longest_first")``: a single-text task's call is the same as before pairs existed.
    """
    if items and not isinstance(items[0], str):
        return [t[0] for t in items], [t[1] for t in items]
    return list(items), None


def calibration_reader(tokenizer, texts: list, input_names: list[str], prefix: str = "",
                       batch_size: int = CALIBRATION_BATCH_SIZE, max_length: int = DEFAULT_MAX_LENGTH):  # fmt: skip
    """An ``onnxruntime.quantization.CalibrationDataReader`` over ``texts``, padded per batch, int64 feeds.

    ``texts`` may be ``(text, text_pair)`` items (a pair task): encoded as every predictor encodes them, with
    token type ids. Feeds carry exactly ``input_names`` (the graph's inputs); ``rewind()`` starts over; ``set_range``
    restricts it to some batches (strided calibration).
    """
    from onnxruntime.quantization import CalibrationDataReader

    class TextReader(CalibrationDataReader):
        def __init__(self):
            self.batches = []
            for i in range(0, len(texts), batch_size):
                chunk, pairs = split_pairs(texts[i : i + batch_size])
                enc = tokenizer(
                    [prefix + t for t in chunk], pairs, padding="longest",
                    truncation=True if pairs is None else "longest_first", max_length=max_length,
                    return_tensors="np",
                )  # fmt: skip
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
