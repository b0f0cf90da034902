"""A sequence classifier made exportable: input names, a logits-only module, reference logits, torch.export.

Shared by every exporter of a bert-family classifier: ONNX (``export.onnx_classifier``) and PT2E
(``methods.pt2e``). ``torch`` is imported lazily.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import logging
import warnings

import numpy as np

from ..exceptions import ModelError
from ..runtimes.base import DEFAULT_MAX_LENGTH

logger = logging.getLogger(__name__)

EXPORT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# traced with a batch of two texts of different lengths, so that padding is part of the traced graph
SAMPLE_TEXTS = ("a short text", "a longer text, which pads the first one in this batch of two")
# checked on batch sizes and lengths other than the traced ones: the exported axes must really be dynamic
CHECK_BATCHES = (
    ["one"],
    ["a good film", "bad", "a much longer sentence than the texts that the graph was traced with , by far"],
)


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


def eager_copy(model):
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


def max_positions(model) -> int:
    """The longest sequence the model's position embeddings allow (512 when the config does not say)."""
    return int(getattr(model.config, "max_position_embeddings", 512) or 512)


def torch_logits(model, tokenizer, texts: list[str]) -> np.ndarray:
    """The PyTorch model's float32 logits for ``texts``: the reference exported graphs are checked with."""
    import torch

    enc = tokenizer(
        texts, padding="longest", truncation=True, max_length=DEFAULT_MAX_LENGTH, return_tensors="pt"
    )
    with torch.inference_mode():
        return model(**enc).logits.float().numpy()


def first_line(e: BaseException) -> str:
    """The first line of an error's message, at most 200 characters."""
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else ""


def torch_export_classifier(model, tokenizer, name: str = "the model"):
    """``torch.export`` of the logits-only classifier with dynamic batch and sequence axes.

    Returns the exported ``GraphModule`` and its input names; a model ``torch.export`` cannot capture raises
    ``ModelError``. ``loaded.model`` is not changed: a copy in eval mode is exported.
    """
    import torch

    names = export_input_names(model, tokenizer)
    wrapper = logits_module(copy.deepcopy(model).eval(), names)
    enc = tokenizer(list(SAMPLE_TEXTS), padding="longest", return_tensors="pt")
    batch = torch.export.Dim("batch", min=1, max=4096)
    seq = torch.export.Dim("sequence", min=2, max=max_positions(model))
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        torch.inference_mode(False),
    ):
        warnings.simplefilter("ignore")
        try:
            exported = torch.export.export(
                wrapper, tuple(enc[n] for n in names),
                dynamic_shapes={n: {0: batch, 1: seq} for n in names}, strict=False,
            ).module()  # fmt: skip
        except Exception as e:
            raise ModelError(
                f"torch.export cannot capture {name!r} ({type(e).__name__}: {first_line(e)})",
                "use the ONNX Runtime or eager PyTorch int8 methods for this model",
            ) from e
    return exported, names
