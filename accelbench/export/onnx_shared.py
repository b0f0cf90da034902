"""One ONNX export per loaded classifier, shared by its ONNX Runtime variants.

``ort-fp32``, ``ort-dynamic-int8`` and ``ort-static-int8`` of a model all start from the same two graphs: the
checked export (``onnx_classifier.export_classifier``) and ONNX Runtime's optimized graph
(``onnx_graph.optimize_graph``). They are made once, in a temporary folder that every variant built on them
holds (``Workdirs``) and that goes once the last holder does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .onnx_classifier import export_classifier
from .onnx_graph import optimize_graph


class Workdirs:
    """A variant's own temporary folder and the shared one its graph came from: ``cleanup`` removes its own
    and lets go of the shared one (removed once no variant and no ``shared_graphs`` entry holds it)."""

    def __init__(self, own, shared) -> None:
        self.own, self.shared = own, shared
        self.name = own.name

    def cleanup(self) -> None:
        self.own.cleanup()
        self.shared = None


# "entry": the last model's {"model": weakref to it, "key": its spec key, "value": (folder, export, optimizer)}
_SHARED: dict[str, Any] = {}


def shared_graphs(loaded) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The model's checked ONNX export and ONNX Runtime's optimized graph, made once per loaded model: the
    ort methods of one experiment (fp32, dynamic and static int8) all start from the same two graphs, so
    the second and third skip the export and the optimizer (about 3 s each for MiniLM on 2 cores). Kept
    for the last model only, and recognized by the very model object (a model changed in place is another
    load in every accelbench path), so a new load exports again."""
    import weakref

    entry = _SHARED.get("entry")
    if entry and entry["model"]() is loaded.model and entry["key"] == loaded.spec.key:
        shared, export, opt = entry["value"]
        return shared, dict(export), dict(opt)
    shared = tempfile.TemporaryDirectory(prefix="accelbench-onnx-export-")
    try:
        root = Path(shared.name)
        export = export_classifier(loaded.model, loaded.tokenizer, root / "exported" / "model.onnx")
        opt = optimize_graph(root / "exported" / "model.onnx", root / "optimized" / "model.onnx",
                             loaded.model.config)  # fmt: skip
    except BaseException:
        shared.cleanup()
        raise
    value = (shared, export, opt)
    _SHARED["entry"] = {"model": weakref.ref(loaded.model), "key": loaded.spec.key, "value": value}
    return shared, dict(export), dict(opt)


__all__ = ["Workdirs", "shared_graphs"]
