"""T5 to ONNX: an encoder graph and a one-token decoder graph with its key/value cache as inputs and outputs.

``optimum-onnx`` (which exports T5 for ONNX Runtime elsewhere) pins transformers below 5, so accelbench exports
T5 itself, in the layout optimum's ``ORTModelForSeq2SeqLM`` uses (encoder, then a decoder step with past):

- ``encoder.onnx``: ``input_ids``, ``attention_mask`` (B, S) -> ``cross_key_i``, ``cross_value_i`` (B, H, S,
  d_kv) for every decoder block ``i``: the encoder runs once per batch, and the cross-attention keys and
  values it feeds are projected once too, not at every generated token.
- ``decoder.onnx``: one new token per sequence. Inputs ``input_ids`` (B, 1), ``encoder_attention_mask`` (B,
  S), ``relative_position`` (T + 1,) = ``[-T, ..., 0]`` (the key positions relative to the new token: T5's
  position bias, given as an input so the graph holds no shape-derived constants), the self-attention cache
  ``past_key_i``/``past_value_i`` (B, H, T, d_kv; T = 0 at the first step) and the cross keys/values.
  Outputs ``logits`` (B, vocab) for the new token and ``present_key_i``/``present_value_i`` (B, H, T + 1, d_kv).

The decoder step is written here from the model's own modules (embedding, LayerNorms, q/k/v/o projections,
feed-forward, the relative-attention-bias table, ``lm_head``), with T5's arithmetic: unscaled dot products, the
position bias of block 0 shared by every block, no position bias across attention, decoder outputs scaled by
``d_model ** -0.5`` before ``lm_head`` when ``config.scale_decoder_outputs`` (original T5; v1.1 does not). Any
feed-forward variant (ReLU, gated-GELU) works: the block's own ``T5LayerFF`` module is called.

``export_t5`` checks the two graphs against ``model.generate`` (greedy tokens equal on check sentences of other
lengths than the traced ones; first-step logits within a tolerance) and raises ``ModelError`` otherwise.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ModelError
from ..runtimes.onnxruntime import OrtSeq2SeqPredictor
from .classifier import first_line

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
LOGITS_RTOL = 1e-3  # first-step logits within 1e-3 * max(1, max |logit|) of PyTorch's
ENCODER_FILE, DECODER_FILE = "encoder.onnx", "decoder.onnx"
_TRACE_TEXTS = ("a man rides a bike .", "two dogs play in the snow near a tree .")
_CHECK_BATCHES = (
    ["a dog ."],
    ["a woman in a red coat is walking down a busy street with her two children .", "men at work .", "hi"],
)


def layer_names(n_layers: int) -> dict[str, list[str]]:
    """The graph's cache tensor names: past/present self-attention keys and values, cross keys and values."""
    names: dict[str, list[str]] = {k: [] for k in ("past", "present", "cross")}
    for i in range(n_layers):
        names["past"] += [f"past_key_{i}", f"past_value_{i}"]
        names["present"] += [f"present_key_{i}", f"present_value_{i}"]
        names["cross"] += [f"cross_key_{i}", f"cross_value_{i}"]
    return names


def _split_heads(x, n_heads: int, d_kv: int):
    b, s, _ = x.shape
    return x.view(b, s, n_heads, d_kv).transpose(1, 2)  # (B, H, S, d_kv)


def _modules():
    import torch

    class Encoder(torch.nn.Module):
        """input_ids, attention_mask -> the cross-attention keys and values of every decoder block."""

        def __init__(self, model):
            super().__init__()
            self.encoder = model.encoder
            self.blocks = model.decoder.block
            self.n_heads, self.d_kv = model.config.num_heads, model.config.d_kv

        def forward(self, input_ids, attention_mask):
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            out = []
            for block in self.blocks:
                att = block.layer[1].EncDecAttention
                out += [_split_heads(att.k(h), self.n_heads, self.d_kv),
                        _split_heads(att.v(h), self.n_heads, self.d_kv)]  # fmt: skip
            return tuple(out)

    class DecoderStep(torch.nn.Module):
        """One token through the decoder with an explicit key/value cache (see the module doc)."""

        def __init__(self, model):
            super().__init__()
            cfg = model.config
            self.decoder, self.lm_head = model.decoder, model.lm_head
            self.n_heads, self.d_kv, self.n_layers = cfg.num_heads, cfg.d_kv, len(model.decoder.block)
            self.bias_attention = model.decoder.block[0].layer[0].SelfAttention
            self.scale = float(cfg.d_model) ** -0.5 if getattr(cfg, "scale_decoder_outputs", True) else None

        @staticmethod
        def _attend(q, k, v, bias):
            scores = torch.matmul(q, k.transpose(-1, -2)) + bias  # T5: no 1/sqrt(d) scaling
            return torch.matmul(torch.softmax(scores.float(), dim=-1).to(q.dtype), v)

        def _merge(self, x):
            b = x.shape[0]
            return x.transpose(1, 2).reshape(b, -1, self.n_heads * self.d_kv)

        def forward(self, input_ids, encoder_attention_mask, relative_position, *cache):
            n = self.n_layers
            past, cross = cache[: 2 * n], cache[2 * n :]
            att0 = self.bias_attention
            bucket = att0._relative_position_bucket(
                relative_position[None, :], bidirectional=False,
                num_buckets=att0.relative_attention_num_buckets, max_distance=att0.relative_attention_max_distance,
            )  # fmt: skip
            bias = att0.relative_attention_bias(bucket).permute(2, 0, 1).unsqueeze(0)  # (1, H, 1, T + 1)
            mask = encoder_attention_mask[:, None, None, :].to(torch.float32)
            cross_bias = (1.0 - mask) * torch.finfo(torch.float32).min  # (B, 1, 1, S)
            h = self.decoder.embed_tokens(input_ids)  # (B, 1, D)
            present = []
            for i, block in enumerate(self.decoder.block):
                sa = block.layer[0]
                x = sa.layer_norm(h)
                att = sa.SelfAttention
                q = _split_heads(att.q(x), self.n_heads, self.d_kv)
                k = torch.cat([past[2 * i], _split_heads(att.k(x), self.n_heads, self.d_kv)], dim=2)
                v = torch.cat([past[2 * i + 1], _split_heads(att.v(x), self.n_heads, self.d_kv)], dim=2)
                present += [k, v]
                h = h + att.o(self._merge(self._attend(q, k, v, bias)))
                ca = block.layer[1]
                x = ca.layer_norm(h)
                q = _split_heads(ca.EncDecAttention.q(x), self.n_heads, self.d_kv)
                h = h + ca.EncDecAttention.o(
                    self._merge(self._attend(q, cross[2 * i], cross[2 * i + 1], cross_bias))
                )
                h = block.layer[-1](h)  # T5LayerFF: LayerNorm, feed-forward, residual
            h = self.decoder.final_layer_norm(h)
            if self.scale is not None:
                h = h * self.scale
            return (self.lm_head(h)[:, -1, :], *present)

    return Encoder, DecoderStep


def _eager(model):
    m = copy.deepcopy(model).eval()
    with contextlib.suppress(Exception):
        m.set_attn_implementation("eager")
    return m


def _onnx_export(module, args, path: Path, inputs: list[str], outputs: list[str], axes: dict, opset: int):
    import torch

    kw: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        torch.inference_mode(False),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore")  # TracerWarnings, the TorchScript exporter's deprecation notice
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=opset, do_constant_folding=True, **kw)  # fmt: skip


def export_t5(model, tokenizer, folder: str | os.PathLike, opset: int = DEFAULT_OPSET, prefix: str = "",
              check: bool = True) -> dict[str, Any]:  # fmt: skip
    """Export ``encoder.onnx`` and ``decoder.onnx`` into ``folder`` and check them; returns what was done."""
    import torch

    folder = Path(folder)
    m = _eager(model)
    cfg = m.config
    n = len(m.decoder.block)
    names = layer_names(n)
    Encoder, DecoderStep = _modules()
    enc = tokenizer([prefix + t for t in _TRACE_TEXTS], padding="longest", return_tensors="pt")
    try:
        encoder = Encoder(m).eval()
        with torch.no_grad():
            cross = encoder(enc["input_ids"], enc["attention_mask"])
        seq = {0: "batch", 2: "source"}
        _onnx_export(encoder, (enc["input_ids"], enc["attention_mask"]), folder / ENCODER_FILE,
                     ["input_ids", "attention_mask"], names["cross"],
                     {"input_ids": {0: "batch", 1: "source"}, "attention_mask": {0: "batch", 1: "source"},
                      **{c: seq for c in names["cross"]}}, opset)  # fmt: skip
        b = enc["input_ids"].shape[0]
        past_len = 3  # traced with a non-empty cache; the graph takes any length, 0 included
        past = [torch.randn(b, cfg.num_heads, past_len, cfg.d_kv) for _ in range(2 * n)]
        ids = torch.full((b, 1), int(cfg.decoder_start_token_id or 0), dtype=torch.long)
        rel = torch.arange(-past_len, 1, dtype=torch.long)
        cache_axes = {0: "batch", 2: "past"}
        _onnx_export(DecoderStep(m).eval(), (ids, enc["attention_mask"], rel, *past, *cross), folder / DECODER_FILE,
                     ["input_ids", "encoder_attention_mask", "relative_position", *names["past"], *names["cross"]],
                     ["logits", *names["present"]],
                     {"input_ids": {0: "batch"}, "encoder_attention_mask": {0: "batch", 1: "source"},
                      "relative_position": {0: "past_plus_one"}, **{p: cache_axes for p in names["past"]},
                      **{c: seq for c in names["cross"]}, "logits": {0: "batch"},
                      **{p: {0: "batch", 2: "past_plus_one"} for p in names["present"]}}, opset)  # fmt: skip
    except Exception as e:
        raise ModelError(f"cannot export the T5 model to ONNX ({type(e).__name__}: {first_line(e)})",
                         "use ct2-int8 or the PyTorch methods for this model") from e  # fmt: skip
    info: dict[str, Any] = {"exporter": "torchscript", "opset": opset, "graphs": [ENCODER_FILE, DECODER_FILE],
                            "decoder_layers": n, "torch": torch.__version__}  # fmt: skip
    if check:
        info["check"] = check_t5_export(model, tokenizer, folder, prefix)
    return info


def check_t5_export(model, tokenizer, folder: str | os.PathLike, prefix: str = "", max_new_tokens: int = 12):
    """Greedy tokens from the graphs equal ``model.generate``'s on the check batches; first-step logits agree."""
    import torch

    pred = OrtSeq2SeqPredictor(folder, tokenizer, prefix=prefix,
                               decoder_start_token_id=model.config.decoder_start_token_id)  # fmt: skip
    worst = 0.0
    try:
        for texts in _CHECK_BATCHES:
            enc = tokenizer([prefix + t for t in texts], padding="longest", return_tensors="pt")
            with torch.inference_mode():
                ref = model.generate(**enc, max_new_tokens=max_new_tokens, num_beams=1, do_sample=False)
                start = ref[:, :1]
                ref_logits = model(**enc, decoder_input_ids=start).logits[:, -1].float().numpy()
            out, logits = pred.greedy_ids(texts, max_new_tokens, return_first_logits=True)
            diff = float(np.abs(logits - ref_logits).max())
            worst = max(worst, diff)
            tol = LOGITS_RTOL * max(1.0, float(np.abs(ref_logits).max()))
            if diff > tol:
                raise ModelError(f"the exported T5 graphs disagree with PyTorch: first-step logits differ by "
                                 f"{diff:.3g} > {tol:.3g} on a batch of {len(texts)}",
                                 "report this model; use ct2-int8 or the PyTorch methods for it meanwhile")  # fmt: skip
            ref_ids = ref[:, 1:].numpy()
            width = max(ref_ids.shape[1], out.shape[1])
            pad = int(tokenizer.pad_token_id or 0)
            a = np.pad(ref_ids, ((0, 0), (0, width - ref_ids.shape[1])), constant_values=pad)
            b = np.pad(out, ((0, 0), (0, width - out.shape[1])), constant_values=pad)
            if not np.array_equal(a, b):
                raise ModelError("the exported T5 graphs generate other tokens than PyTorch's greedy search",
                                 "report this model; use ct2-int8 or the PyTorch methods for it meanwhile")  # fmt: skip
    finally:
        pred.close()
    return {"max_abs_logit_diff": worst, "greedy_tokens_equal": True, "batches": len(_CHECK_BATCHES)}
