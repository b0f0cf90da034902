"""ONNX Runtime predictors: exported ONNX graphs run on the CPU execution provider.

``onnxruntime`` is imported lazily, when a session is made, so that the package imports without it.
``OrtPredictor`` classifies (bert family) with one graph; ``OrtSeq2SeqPredictor`` generates (T5) with the
encoder and one-token decoder graphs that ``export.onnx_t5.export_t5`` writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .base import DEFAULT_MAX_LENGTH, Classifier, Generation, Generator, Runtime, register_runtime

PROVIDERS = ("CPUExecutionProvider",)
# ORT's intra-op worker threads spin after each run by default. On a 2-core machine that spinning took the
# cores from the Python loop that drives T5 decoding (the T5 student's ort-dynamic-int8 made 517
# translations/s with it, 689/s without, full passes at batch 32; the classifiers were unchanged), and from
# whichever variant ran next in the benchmark's rotation (a PyTorch fp32 T5 call 20-35% slower right after an
# ORT call), which inflated the T5 ORT speed-ups against full passes of one variant alone (README, Results).
ALLOW_SPINNING = False
_NUMPY_INT = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def session_options(intra_op_num_threads: int | None = None, inter_op_num_threads: int | None = None,
                    allow_spinning: bool = ALLOW_SPINNING):  # fmt: skip
    """Session options every accelbench ORT session uses: all graph optimizations, torch's thread count,
    worker threads that sleep rather than spin between runs (``ALLOW_SPINNING``).

    ``intra_op_num_threads=None`` takes ``torch.get_num_threads()``, so that ORT and PyTorch variants are
    measured with the same number of threads.
    """
    import onnxruntime as ort

    if intra_op_num_threads is None:
        import torch

        intra_op_num_threads = torch.get_num_threads()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(intra_op_num_threads)
    if inter_op_num_threads is not None:
        so.inter_op_num_threads = int(inter_op_num_threads)
    so.log_severity_level = 3  # errors only: no warnings about unused initializers on every load
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    return so


def make_session(path: str | os.PathLike, intra_op_num_threads: int | None = None, **kw):
    """An ``InferenceSession`` on ``path`` with ``session_options`` and the CPU execution provider."""
    import onnxruntime as ort

    so = session_options(intra_op_num_threads, **kw)
    return ort.InferenceSession(str(path), so, providers=list(PROVIDERS))


def session_settings(session) -> dict[str, Any]:
    """What the records keep of a session made by ``make_session``: version, providers, threads, modes."""
    import onnxruntime as ort

    so = session.get_session_options()
    return {
        "onnxruntime": ort.__version__,
        "providers": list(session.get_providers()),
        "intra_op_num_threads": int(so.intra_op_num_threads),
        "inter_op_num_threads": int(so.inter_op_num_threads),  # 0: ORT's default (unused when sequential)
        "execution_mode": "sequential",
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "allow_spinning": so.get_session_config_entry("session.intra_op.allow_spinning") == "1",
    }


def feeds_for(session, enc) -> dict[str, np.ndarray]:
    """The inputs ``session`` declares, taken from a tokenizer output, in the dtype the graph wants.

    Inputs the tokenizer did not produce (``token_type_ids`` for some tokenizers) are zeros shaped like
    ``input_ids``; inputs the graph does not declare (an exporter drops unused ones) are left out.
    """
    feeds = {}
    for arg in session.get_inputs():
        dtype = _NUMPY_INT.get(arg.type, np.int64)
        if arg.name in enc:
            feeds[arg.name] = np.asarray(enc[arg.name]).astype(dtype, copy=False)
        elif arg.name == "token_type_ids":
            feeds[arg.name] = np.zeros_like(np.asarray(enc["input_ids"]), dtype=dtype)
        else:
            raise KeyError(f"the ONNX graph wants input {arg.name!r}, which the tokenizer does not produce")
    return feeds


class OrtPredictor(Classifier):
    """Runs an ONNX sequence classifier in an ``onnxruntime.InferenceSession`` (CPUExecutionProvider).

    ``workdir``: an object that owns the graph's files (a ``tempfile.TemporaryDirectory``); the predictor
    keeps it alive and cleans it up in ``close()``. ``graph_paths`` names the graphs a method built
    (``exported``, ``optimized``, ...) so that later checks such as ``onnx_graph.fusion_report`` can use
    them while the predictor lives. ``settings`` records the session's threads, providers and versions.
    """

    runtime = "onnxruntime"
    tensor_type = "np"

    def __init__(
        self,
        model_path: str | os.PathLike,
        tokenizer,
        family: str = "bert",
        prefix: str = "",
        intra_op_num_threads: int | None = None,
        inter_op_num_threads: int | None = None,
        workdir: Any = None,
        graph_paths: dict[str, str] | None = None,
    ):
        super().__init__(tokenizer, family, prefix)

        self.model_path = str(model_path)
        self.workdir = workdir
        self.graph_paths = dict(graph_paths or {})
        self.session = make_session(
            self.model_path, intra_op_num_threads, inter_op_num_threads=inter_op_num_threads
        )
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name = "logits" if "logits" in outputs else outputs[0]
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.session_paths = {"session": self.model_path}  # attribute -> graph file (measure.opprofile)
        self.settings = {**session_settings(self.session), "inputs": list(self.input_names)}

    def logits(
        self, texts: list[str], padding: str = "dynamic", max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        """Raw logits, shape (B, num_labels), float32."""
        if self.session is None:
            raise RuntimeError("this OrtPredictor is closed")
        enc = self.encode(texts, padding, max_length)
        return self.session.run([self.output_name], feeds_for(self.session, enc))[0]

    def close(self) -> None:
        self.session = None  # release the session before its files go
        if self.workdir is not None and hasattr(self.workdir, "cleanup"):
            self.workdir.cleanup()
        self.workdir = None


class OrtSeq2SeqPredictor(Generator):
    """T5 generation with two ONNX Runtime sessions: the encoder once per batch, one decoder step per token.

    ``folder`` holds ``encoder.onnx`` and ``decoder.onnx`` (see ``export.onnx_t5``); ``encoder_file`` /
    ``decoder_file`` name other files (quantized ones). Greedy search (``num_beams=1``) follows
    ``model.generate``: start from ``decoder_start_token_id``, stop a sequence at ``</s>`` (later positions are
    padding), stop the batch when every sequence has ended or after ``max_new_tokens``. Beam search keeps
    ``num_beams`` hypotheses per text, ranks finished ones by summed log-probability over length (length
    penalty 1) and stops once ``num_beams`` have finished, like ``generate(early_stopping=True)``.
    """

    runtime = "onnxruntime"
    tensor_type = "np"

    def __init__(
        self,
        folder: str | os.PathLike,
        tokenizer,
        family: str = "t5",
        prefix: str = "",
        encoder_file: str = "encoder.onnx",
        decoder_file: str = "decoder.onnx",
        decoder_start_token_id: int | None = None,
        intra_op_num_threads: int | None = None,
        workdir: Any = None,
        graph_paths: dict[str, str] | None = None,
    ):
        super().__init__(tokenizer, family, prefix)

        folder = Path(folder)
        self.workdir = workdir
        self.graph_paths = dict(graph_paths or {})
        self.encoder = make_session(folder / encoder_file, intra_op_num_threads)
        self.decoder = make_session(folder / decoder_file, intra_op_num_threads)
        self.session_paths = {"encoder": str(folder / encoder_file), "decoder": str(folder / decoder_file)}
        inputs = {i.name: i for i in self.decoder.get_inputs()}
        self.past_names = [n for n in inputs if n.startswith("past_")]
        self.cross_names = [o.name for o in self.encoder.get_outputs()]
        shape = inputs["past_key_0"].shape  # ["batch", heads, "past", d_kv]
        self.n_heads, self.d_kv = int(shape[1]), int(shape[3])
        self.eos = int(tokenizer.eos_token_id)
        self.pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.start = self.pad if decoder_start_token_id is None else int(decoder_start_token_id)
        self.settings = {**session_settings(self.decoder), "graphs": [encoder_file, decoder_file],
                         "decoder_layers": len(self.past_names) // 2}  # fmt: skip

    def _encode(self, texts, padding, max_length):
        if self.encoder is None:
            raise RuntimeError("this OrtSeq2SeqPredictor is closed")
        enc = self.encode(texts, padding, max_length)
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        mask = np.asarray(enc["attention_mask"], dtype=np.int64)
        cross = self.encoder.run(None, {"input_ids": ids, "attention_mask": mask})
        return mask, dict(zip(self.cross_names, cross, strict=True))

    def _step(self, tokens, mask, cross, past, t):
        feeds = {"input_ids": tokens[:, None], "encoder_attention_mask": mask,
                 "relative_position": np.arange(-t, 1, dtype=np.int64), **cross, **past}  # fmt: skip
        out = self.decoder.run(None, feeds)
        return out[0], dict(zip(self.past_names, out[1:], strict=True))

    def _empty_past(self, batch: int) -> dict[str, np.ndarray]:
        return {n: np.zeros((batch, self.n_heads, 0, self.d_kv), np.float32) for n in self.past_names}

    def greedy_ids(
        self,
        texts: list[str],
        max_new_tokens: int = 64,
        padding: str = "dynamic",
        max_length: int = DEFAULT_MAX_LENGTH,
        return_first_logits: bool = False,
    ):
        """Generated token ids (B, T), padded after each sequence's ``</s>``; optionally the first logits."""
        mask, cross = self._encode(texts, padding, max_length)
        b = mask.shape[0]
        past = self._empty_past(b)
        tokens = np.full(b, self.start, dtype=np.int64)
        done = np.zeros(b, dtype=bool)
        out, first = [], None
        for t in range(max_new_tokens):
            logits, past = self._step(tokens, mask, cross, past, t)
            if first is None:
                first = logits
            tokens = np.where(done, self.pad, logits.argmax(-1)).astype(np.int64)
            out.append(tokens)
            done |= tokens == self.eos
            if done.all():
                break
        ids = np.stack(out, 1) if out else np.zeros((b, 0), np.int64)
        return (ids, first) if return_first_logits else ids

    def beam_ids(
        self,
        texts: list[str],
        num_beams: int,
        max_new_tokens: int = 64,
        padding: str = "dynamic",
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> list[list[int]]:
        """The best finished hypothesis per text (token ids, ``</s>`` included when it ended)."""
        mask, cross = self._encode(texts, padding, max_length)
        b, k = mask.shape[0], num_beams
        rows = np.repeat(np.arange(b), k)  # every text's beams, side by side
        mask = mask[rows]
        cross = {n: v[rows] for n, v in cross.items()}
        past = self._empty_past(b * k)
        scores = np.tile(np.r_[0.0, np.full(k - 1, -1e9)], b)  # one live beam per text at the start
        seqs: list[list[int]] = [[] for _ in range(b * k)]
        tokens = np.full(b * k, self.start, dtype=np.int64)
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
        closed = np.zeros(b, dtype=bool)
        for t in range(max_new_tokens):
            logits, past = self._step(tokens, mask, cross, past, t)
            logp = logits - logits.max(-1, keepdims=True)
            logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
            total = (scores[:, None] + logp).reshape(b, -1)  # (B, k * vocab)
            vocab = logp.shape[1]
            top = np.argsort(-total, axis=1)[:, : 2 * k]
            new_rows, new_tokens, new_scores = [], [], []
            for i in range(b):
                kept = 0
                for rank, j in enumerate(top[i]):
                    beam, tok, sc = i * k + j // vocab, int(j % vocab), float(total[i, j])
                    if closed[i]:
                        break
                    if tok == self.eos:
                        if rank < k:  # as in generate: </s> ends a hypothesis only among the top num_beams
                            finished[i].append((sc / (t + 1), seqs[beam] + [tok]))
                        continue
                    new_rows.append(beam)
                    new_tokens.append(tok)
                    new_scores.append(sc)
                    kept += 1
                    if kept == k:
                        break
                if closed[i] or kept < k:  # pad a closed text's beams so the batch keeps its shape
                    fill = k - kept if not closed[i] else k
                    new_rows += [i * k] * fill
                    new_tokens += [self.pad] * fill
                    new_scores += [-1e9] * fill
                if not closed[i] and len(finished[i]) >= k:  # early stopping: k hypotheses have ended
                    closed[i] = True
            idx = np.asarray(new_rows)
            past = {n: v[idx] for n, v in past.items()}
            seqs = [seqs[r] + [tok] for r, tok in zip(new_rows, new_tokens, strict=True)]
            tokens = np.asarray(new_tokens, dtype=np.int64)
            scores = np.asarray(new_scores)
            if closed.all():
                break
        best = []
        for i in range(b):
            hyps = list(finished[i])
            if not closed[i]:  # ran out of tokens: the live beams compete too
                hyps += [(scores[i * k + j] / max(1, len(seqs[i * k + j])), seqs[i * k + j]) for j in range(k)
                         if scores[i * k + j] > -1e8]  # fmt: skip
            best.append(max(hyps, key=lambda h: h[0])[1] if hyps else [])
        return best

    def generate(
        self,
        texts: list[str],
        max_new_tokens: int = 64,
        num_beams: int = 1,
        padding: str = "dynamic",
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> Generation:
        if num_beams <= 1:
            rows = [list(r) for r in self.greedy_ids(texts, max_new_tokens, padding, max_length)]
        else:
            rows = self.beam_ids(texts, num_beams, max_new_tokens, padding, max_length)
        # count through the first </s>, like the other runtimes; padding after it is not generated work
        cut = [r[: r.index(self.eos) + 1] if self.eos in r else [x for x in r if x != self.pad] for r in rows]
        texts_out = self.tokenizer.batch_decode(cut, skip_special_tokens=True)
        return Generation(texts_out, sum(len(r) for r in cut))

    def close(self) -> None:
        self.encoder = self.decoder = None
        if self.workdir is not None and hasattr(self.workdir, "cleanup"):
            self.workdir.cleanup()
        self.workdir = None


register_runtime(
    Runtime(
        "onnxruntime",
        "ONNX Runtime, CPU execution provider",
        classifier=OrtPredictor,
        generator=OrtSeq2SeqPredictor,
        libraries=("onnxruntime",),
    )
)
