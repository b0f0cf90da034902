"""A model's units (encoder layers, heads) and the per-unit fp32 fallback of the int8 methods.

A unit is what a mixed-precision search keeps in float32 or not: each block of a transformer stack
(``layer.0`` ... for BERT-family models; ``encoder.0`` ..., ``decoder.0`` ... for T5) and each head outside
the stacks (``pooler``, ``classifier``; ``lm_head``). ``model_units`` finds them from the module tree, not
from sizes, so any BERT-family or T5 checkpoint works, a pruned one with per-layer widths included.

The int8 methods take ``fp32_units`` (a ``UnitList``) and map it onto their runtime:

- eager PyTorch: the names of the Linear modules to quantize (``quantize_linear_names``);
- PT2E: the unit's root module, left without a qconfig (``pt2e_roots``);
- ONNX Runtime: the graph nodes of each unit (``onnx_node_units``), found by their weights (each float
  initializer is matched to the Linear it came from), else by the module scope in the node's name or outputs,
  else, for a fused ``Attention`` without scope, by its place among the fused attentions (the k-th is
  layer k).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigError

logger = logging.getLogger(__name__)

OPTION = "fp32_units"  # the option name, one for every int8 method
ONNX_WEIGHT_OPS = ("MatMul", "Gemm", "Attention", "MultiHeadAttention")  # what ORT's quantizers quantize
ONNX_ATTENTION_OPS = ("Attention", "MultiHeadAttention")
_INDEXED = re.compile(r"^(.*)\.(\d+)$")


def _natural(unit: str) -> tuple:
    """Sort key: ``layer.2`` before ``layer.10``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in unit.split("."))


class UnitList(tuple):
    """The units kept in float32: a sorted tuple without duplicates (hashable, part of a record's key), shown
    compactly in labels (``layer.0-3+pooler``) so that a long list still makes a short file name."""

    def __new__(cls, items: Iterable[str] = ()):
        return super().__new__(cls, sorted(set(items), key=_natural))

    def __str__(self) -> str:
        parts: list[str] = []
        run: list | None = None  # [prefix, first, last] of consecutive indexed units
        for unit in self:
            m = _INDEXED.match(unit)
            if m and run and m.group(1) == run[0] and int(m.group(2)) == run[2] + 1:
                run[2] += 1
                continue
            if run:
                parts.append(_run_text(run))
                run = None
            if m:
                run = [m.group(1), int(m.group(2)), int(m.group(2))]
            else:
                parts.append(unit)
        if run:
            parts.append(_run_text(run))
        return "+".join(parts)


def _run_text(run: list) -> str:
    prefix, first, last = run
    return f"{prefix}.{first}" if first == last else f"{prefix}.{first}-{last}"


def as_units(value: Any) -> UnitList:
    """Validate an ``fp32_units`` option (a list or tuple of unit names, or one name) into a ``UnitList``."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(u, str) and u for u in value):
        raise ConfigError(
            f"option {OPTION} must be a list of unit names, got {value!r}",
            f"write e.g. {OPTION}: [layer.0, classifier] (accelbench.methods.units.units(model) lists them)",
        )
    return UnitList(value)


def normalize_units_field(opts) -> None:
    """For an Options ``__post_init__``: validate ``fp32_units`` and store it as a ``UnitList``."""
    object.__setattr__(opts, OPTION, as_units(getattr(opts, OPTION)))


@dataclass(frozen=True)
class ModelUnits:
    """The units of one model: names in model order, each unit's root module and its Linear modules."""

    names: tuple[str, ...]
    roots: dict[str, str]
    linears: dict[str, tuple[str, ...]]

    def unit_of(self, module_name: str) -> str | None:
        """The unit a module (or parameter) name lies in, or None (embeddings, final norms)."""
        for unit, root in self.roots.items():
            if module_name == root or module_name.startswith(root + "."):
                return unit
        return None


def _stacks(model) -> list[str]:
    """The outermost ModuleLists holding Linear layers: the transformer stacks (``bert.encoder.layer``)."""
    import torch

    stacks: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or any(name.startswith(s + ".") for s in stacks):
            continue
        if any(isinstance(m, torch.nn.Linear) for m in module.modules()):
            stacks.append(name)
    return stacks


def model_units(model) -> ModelUnits:
    """The units of a BERT-family or T5 model, read from its module tree."""
    import torch

    base = getattr(model, "base_model_prefix", "") or ""
    if not base or not isinstance(getattr(model, base, None), torch.nn.Module):
        base = ""

    def relative(name: str) -> str:
        return name[len(base) + 1 :] if base and name.startswith(base + ".") else name

    stacks = _stacks(model)
    roots: dict[str, str] = {}
    for stack in stacks:
        rel = relative(stack).split(".")
        # one stack: ``layer.i`` (BERT); several: by the part that tells them apart (``encoder.i``, ``decoder.i``)
        label = "layer" if len(stacks) == 1 else (".".join(rel[:-1]) or rel[-1])
        for i in range(len(model.get_submodule(stack))):
            roots[f"{label}.{i}"] = f"{stack}.{i}"
    linears: dict[str, list[str]] = {u: [] for u in roots}
    blocks = ModelUnits(tuple(roots), dict(roots), {})
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        unit = blocks.unit_of(name)
        if unit is None:  # a head: the first part of its name below the base model (pooler, classifier)
            unit = relative(name).split(".")[0]
            prefix = f"{base}." if base and name.startswith(base + ".") else ""
            roots.setdefault(unit, prefix + unit)
            linears.setdefault(unit, [])
        linears[unit].append(name)
    names = tuple(u for u in roots if linears[u])
    return ModelUnits(names, {u: roots[u] for u in names}, {u: tuple(linears[u]) for u in names})


def units(model) -> list[str]:
    """The unit names of a model, in model order: what ``fp32_units`` may name."""
    return list(model_units(model).names)


def check_units(requested: Iterable[str], model) -> ModelUnits:
    """Refuse units the model does not have (before any work); returns the model's units."""
    mu = model_units(model)
    unknown = [u for u in requested if u not in mu.roots]
    if unknown:
        raise ConfigError(
            f"{OPTION}: the model has no unit(s) {', '.join(unknown)}; its units are {', '.join(mu.names)}",
            f"name units from that list in {OPTION}",
        )
    return mu


def quantize_linear_names(mu: ModelUnits, fp32_units: Iterable[str]) -> set[str]:
    """The Linear modules to quantize: every unit's Linear layers except those of the kept units."""
    kept = set(fp32_units)
    return {name for unit in mu.names if unit not in kept for name in mu.linears[unit]}


def _module_path(node) -> str:
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    return stack[-1][0] if stack else ""


def _linear_unit(path: str, mu: ModelUnits) -> str | None:
    """The unit of an exported graph's module path (``inner.bert.encoder.layer.0.attention.self.query``)."""
    for unit in mu.names:
        if any(path == lin or path.endswith("." + lin) for lin in mu.linears[unit]):
            return unit
    return None


def pt2e_roots(mu: ModelUnits, fp32_units: Iterable[str], exported) -> list[str]:
    """The kept units' root modules as the exported graph's ``nn_module_stack`` spells them: an exported
    wrapper adds a prefix (``inner.``), read from where the model's first Linear appears."""
    prefix = ""
    first = mu.linears[mu.names[0]][0] if mu.names else None
    for node in exported.graph.nodes:
        path = _module_path(node)
        if first and (path == first or path.endswith("." + first)):
            prefix = path[: len(path) - len(first)]
            break
    return [f"{prefix}{mu.roots[u]}" for u in fp32_units]


def pt2e_linear_units(converted, mu: ModelUnits) -> dict[str, dict[str, int]]:
    """Per unit, the linear ops of a converted PT2E graph with int8 weights and with float weights."""
    out: dict[str, dict[str, int]] = {}
    for node in converted.graph.nodes:
        if node.op != "call_function" or "linear" not in str(node.target):
            continue
        unit = _linear_unit(_module_path(node), mu) or "(other)"
        kind = "int8" if "dequantize" in str(getattr(node.args[1], "target", "")) else "fp32"
        out.setdefault(unit, {"int8": 0, "fp32": 0})[kind] += 1
    return out


def _digest(array) -> str:
    import numpy as np

    a = np.ascontiguousarray(array, dtype=np.float32)
    return hashlib.sha1(str(a.shape).encode() + a.tobytes()).hexdigest()


def _weight_digests(model, mu: ModelUnits) -> dict[str, str]:
    """digest -> unit of every Linear weight, as it is (Gemm) and transposed (a MatMul's constant is W^T)."""
    out: dict[str, str] = {}
    for unit in mu.names:
        for name in mu.linears[unit]:
            w = model.get_submodule(name).weight.detach().float().cpu().numpy()
            out[_digest(w)] = unit
            out[_digest(w.T)] = unit
    return out


def _scope_unit(text: str, mu: ModelUnits) -> str | None:
    """The unit whose root module path appears in an ONNX name's scope (``/bert/encoder/layer.0/...``)."""
    tokens = [t for t in re.split(r"[/.]", text) if t]
    for unit in mu.names:
        root = mu.roots[unit].split(".")
        if any(tokens[i : i + len(root)] == root for i in range(len(tokens) - len(root) + 1)):
            return unit
    return None


def onnx_node_units(path, model, mu: ModelUnits | None = None) -> dict[str, str]:
    """node name -> unit of the weight-bearing nodes (MatMul, Gemm, fused attention) of an ONNX graph."""
    import onnx
    from onnx import numpy_helper

    mu = mu or model_units(model)
    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    digests = _weight_digests(model, mu)
    found: dict[str, str] = {}
    unplaced: list[str] = []
    for node in graph.node:
        if node.op_type not in ONNX_WEIGHT_OPS or not node.name:
            continue
        unit = next((u for i in node.input if i in inits
                     and (u := digests.get(_digest(numpy_helper.to_array(inits[i]))))), None)  # fmt: skip
        unit = unit or next((u for t in (node.name, *node.output) if (u := _scope_unit(t, mu))), None)
        if unit:
            found[node.name] = unit
            if (
                node.op_type == "Gemm"
            ):  # the dynamic quantizer first rewrites a Gemm into <name>_MatMul (+ Add)
                found[node.name + "_MatMul"] = unit
        elif node.op_type in ONNX_ATTENTION_OPS:
            unplaced.append(node.name)
    # a fused attention without scope: the k-th of them (topological order) is the k-th free stack block
    attention = {n.name for n in graph.node if n.op_type in ONNX_ATTENTION_OPS}
    taken = {u for n, u in found.items() if n in attention}
    free = [u for u in mu.names if _INDEXED.match(u) and u not in taken]
    if unplaced and len(unplaced) == len(free):
        found.update(zip(unplaced, free, strict=True))
    return found


def onnx_exclusions(node_units: dict[str, str], fp32_units: Iterable[str]) -> list[str]:
    """The nodes (of ``onnx_node_units``' answer) that the quantizer must leave float: the kept units'."""
    kept = set(fp32_units)
    return sorted(n for n, u in node_units.items() if u in kept)


def onnx_float_weight_nodes(path) -> list[str]:
    """The weight-bearing nodes still float in a (quantized) graph: MatMul/Gemm/Attention reading a float
    initializer. What shows which units stayed fp32."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    return [n.name for n in graph.node if n.op_type in ONNX_WEIGHT_OPS and any(i in floats for i in n.input)]


def fallback_details(kept: Iterable[str], excluded: list[str], found: set[str]) -> dict[str, Any]:
    """What an ONNX variant's details say about its float units; ``found``: the units whose nodes were
    excluded (a kept unit without any is named, and logged: nothing of it was quantized anyway)."""
    missing = [u for u in kept if u not in found]
    if missing:
        logger.warning("fp32_units %s: no quantizable node of the graph belongs to them", missing)
    return {"fp32_units": list(kept), "excluded_node_names": len(excluded),
            **({"fp32_units_without_nodes": missing} if missing else {})}  # fmt: skip


class FallbackUnits:
    """Mixin for the int8 methods that take ``fp32_units`` (listed before ``Method`` among the bases).

    ``options`` leaves ``fp32_units`` out while it is empty: the keys of records made before the option
    existed stay valid, and the option enters the key (and label) once it is set.
    """

    opts: Any

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in super().options.items() if not (k == OPTION and not v)}  # type: ignore[misc]

    def fallback_units(self, loaded) -> tuple[ModelUnits, UnitList]:
        """Check ``fp32_units`` against the loaded model, before any work: its units and the kept ones."""
        kept = getattr(self.opts, OPTION)
        return check_units(kept, loaded.model), kept
