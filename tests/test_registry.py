"""The one registry shape: duplicates, unknown names and listings behave alike for every extension point."""

from __future__ import annotations

import pytest

from accelbench.exceptions import ConfigError, UnknownNameError
from accelbench.registry import Registry


def test_register_get_names_and_duplicates():
    reg: Registry[int] = Registry("widget", fix="use a known widget")
    reg.register("a", 1)
    reg.register("b", 2)
    assert reg.get("a") == 1 and reg.names() == ["a", "b"] and "b" in reg and len(reg) == 2
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a", 3)
    reg.register("a", 3, overwrite=True)
    assert reg.get("a") == 3
    with pytest.raises(UnknownNameError) as e:
        reg.get("c")
    assert e.value.known == ["a", "b"] and e.value.fix == "use a known widget" and "widget" in str(e.value)
    with pytest.raises(ConfigError):
        reg.register("", 4)


def test_every_extension_point_uses_the_registry():
    from accelbench.analysis.objectives import OBJECTIVES
    from accelbench.methods.base import METHODS
    from accelbench.models import MODELS
    from accelbench.recipes import RECIPES
    from accelbench.runtimes import RUNTIMES
    from accelbench.tasks import TASKS

    for reg, name in ((TASKS, "sst2"), (MODELS, "minilm-sst2"), (RECIPES, "distill-t5"), (METHODS, "fp32"),
                      (RUNTIMES, "onnxruntime"), (OBJECTIVES, "latency")):  # fmt: skip
        assert isinstance(reg, Registry) and name in reg
        with pytest.raises(UnknownNameError):
            reg.get("no-such-" + name)
