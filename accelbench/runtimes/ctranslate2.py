"""CTranslate2 runtime: a converted T5 run by ``ctranslate2.Translator`` on the CPU.

How this matches ``TorchGenerator.generate`` (HF ``model.generate``):

- the source is ``prefix + text``, tokenized by the HF tokenizer with truncation at ``max_length`` tokens and
  its post-processor's ``</s>``; the ids become CTranslate2 tokens with ``convert_ids_to_tokens``
  (the converted vocabulary is the tokenizer's, in id order, so token ``i`` is id ``i``);
- ``beam_size=num_beams`` (1 is greedy), ``max_decoding_length=max_new_tokens`` (both count generated tokens,
  ``</s>`` included), ``min_decoding_length=0`` (CTranslate2 defaults to 1, HF lets ``</s>`` come first),
  ``max_input_length=0`` (no second truncation: the tokenizer already truncated), ``patience=1`` (stop when
  ``num_beams`` hypotheses are finished, like HF's ``early_stopping=True``), no sampling;
- beam search ranks finished hypotheses with CTranslate2's GNMT length penalty
  ``score / ((5 + |y|) / 6) ** length_penalty`` where HF divides by ``|y| ** length_penalty``, and the two
  prune candidates differently, so beam outputs may differ from HF's; greedy outputs are the same up to
  floating-point differences between the kernels;
- ``padding``: CTranslate2 takes unpadded token lists and pads each batch internally to its longest source,
  so ``'max_length'`` costs the padded tokenization (measured) but no extra model compute;
- ``new_tokens``: hypothesis tokens per source, ``</s>`` included when decoding ended on it (the results
  keep it: ``return_end_token=True``), ``<pad>`` excluded: the same count as ``TorchGenerator`` (which counts
  the non-pad ids after the decoder start token), so equal outputs give equal counts.
"""

from __future__ import annotations

import json
import shutil
import weakref
from pathlib import Path
from typing import Any

from ..devices import CPU, device_type, parse_device, torch_device_index
from .base import DEFAULT_MAX_LENGTH, Generation, Generator, Runtime, register_runtime

# translate_batch options fixed to reproduce HF generate (see the module docstring).
_FIXED_OPTIONS = {
    "patience": 1.0,
    "num_hypotheses": 1,
    "min_decoding_length": 0,
    "max_input_length": 0,
    "return_end_token": True,
    "return_scores": False,
    "sampling_topk": 1,
}


class Ct2Predictor(Generator):
    """Generates with a CTranslate2 ``Translator`` (seq2seq models).

    ``model_dir`` is a converted model folder; with ``owns_dir=True`` the predictor deletes it in ``close()``
    (or when garbage-collected). ``options`` are extra ``translate_batch`` keywords (length_penalty,
    repetition_penalty, no_repeat_ngram_size) taken from the model's generation config.
    """

    runtime = "ctranslate2"
    torch_allocator = False  # CTranslate2 allocates GPU memory itself: torch's peaks would read 0
    tensor_type = None  # python lists: CTranslate2 takes token strings, not arrays

    def __init__(
        self,
        model_dir: str | Path,
        tokenizer,
        family: str,
        prefix: str = "",
        compute_type: str = "default",
        intra_threads: int | None = None,
        inter_threads: int = 1,
        owns_dir: bool = False,
        options: dict[str, Any] | None = None,
        device: str = "cpu",
    ):
        import ctranslate2

        super().__init__(tokenizer, family, prefix)
        if intra_threads is None:
            import torch

            intra_threads = torch.get_num_threads()
        self.model_dir = str(model_dir)
        self.intra_threads = int(intra_threads)
        self.inter_threads = int(inter_threads)
        self._cleanup = (
            weakref.finalize(self, shutil.rmtree, self.model_dir, ignore_errors=True) if owns_dir else None
        )
        self.device = parse_device(device)
        self._translator_kw = {
            "device": device_type(self.device),
            "device_index": torch_device_index(self.device),
            "compute_type": compute_type,
            "intra_threads": self.intra_threads,
            "inter_threads": self.inter_threads,
        }
        self.translator = ctranslate2.Translator(self.model_dir, **self._translator_kw)
        self.compute_type = self.translator.compute_type  # what CTranslate2 resolved the request to
        self._translator_kw["compute_type"] = self.compute_type  # a re-made translator resolves the same
        self.parked = False
        self.parks = 0  # how many times park() released the translator
        self.options = {"length_penalty": 1.0, **(options or {}), **_FIXED_OPTIONS}
        # token -> id with the converted vocabulary (first occurrence: the T5 converter appends
        # <extra_id_N> fillers up to the embedding size, which may repeat real sentinel tokens)
        vocab = json.loads((Path(self.model_dir) / "shared_vocabulary.json").read_text(encoding="utf-8"))
        self._token_ids: dict[str, int] = {}
        for i, token in enumerate(vocab):
            self._token_ids.setdefault(token, i)
        self._pad_id = tokenizer.pad_token_id

    def _source_tokens(self, texts: list[str], padding: str, max_length: int) -> list[list[str]]:
        enc = self.encode(texts, padding, max_length)  # validates padding; lists, maybe padded
        rows = []
        for ids, mask in zip(enc["input_ids"], enc["attention_mask"], strict=True):
            rows.append(
                self.tokenizer.convert_ids_to_tokens([i for i, m in zip(ids, mask, strict=True) if m])
            )
        return rows

    def generate(
        self,
        texts: list[str],
        max_new_tokens: int = 64,
        num_beams: int = 1,
        padding: str = "dynamic",
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> Generation:
        if self.parked:
            self.unpark()
        if self.translator is None:
            raise RuntimeError("this Ct2Predictor is closed")
        if not texts:
            return Generation([], 0)
        source = self._source_tokens(texts, padding, max_length)
        results = self.translator.translate_batch(
            source, beam_size=num_beams, max_decoding_length=max_new_tokens, **self.options
        )
        unk = self.tokenizer.unk_token_id
        outputs, new_tokens = [], 0
        for result in results:
            ids = [self._token_ids.get(t, unk) for t in result.hypotheses[0]]
            new_tokens += sum(i != self._pad_id for i in ids)
            outputs.append(self.tokenizer.decode(ids, skip_special_tokens=True))
        return Generation(outputs, new_tokens)

    def synchronize(self) -> None:
        """Nothing to wait for: ``translate_batch`` returns once its results are on the host, on a GPU too."""

    def park(self) -> None:
        """On the CPU, end the translator (its worker and OpenMP threads; re-made in ~20 ms by ``unpark``).

        Why: CTranslate2's OpenMP calls bind to the libgomp that PyTorch loaded first (process-global
        symbols), so its threads count among PyTorch's. Once the threads of both exceed the cores, libgomp
        cuts every worker's spin-wait from ~300,000 to 100 iterations, and PyTorch's workers sleep between
        the small ops of generation: measured here (T5 teacher, 2 cores), PyTorch fp32 generation ran
        21-84% slower (medians of five tests) for as long as a used translator lived, so every speed-up against fp32 measured beside
        a CTranslate2 variant came out too high. A GPU translator holds its weights on the device and is
        left alone."""
        if self.translator is not None and self.device == CPU and not self.parked:
            self.translator = None  # the last reference: its destructor joins its threads
            self.parked = True
            self.parks += 1

    def unpark(self) -> None:
        if self.parked:
            import ctranslate2

            self.translator = ctranslate2.Translator(self.model_dir, **self._translator_kw)
            self.parked = False

    def close(self) -> None:
        self.parked = False
        if self.translator is not None:
            self.translator.unload_model()
            self.translator = None
        if self._cleanup is not None:
            self._cleanup()


register_runtime(
    Runtime(
        "ctranslate2", "CTranslate2 Translator on the CPU", generator=Ct2Predictor, libraries=("ctranslate2",)
    )
)
