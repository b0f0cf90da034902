"""The method registry and method settings: lookup, applicability, Options -> options and label."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from accelbench.exceptions import ConfigError, MethodNotApplicableError, UnknownNameError
from accelbench.methods import (
    METHODS,
    Method,
    NoOptions,
    get_method,
    list_methods,
    option_names,
    register_method,
)
from accelbench.methods.units import UnitList
from accelbench.runtimes import RUNTIMES

# a value other than the default for every setting of every registered method: a new setting must be added
# here, so that the tests below check that it reaches ``options`` and ``label``
OTHER_VALUES = {
    "require_fusion": True,
    "intra_op_num_threads": 2,
    "check_fusion": False,
    "per_channel": True,
    "reduce_range": True,
    "calibration": "entropy",
    "samples": 16,
    "task": "sst2",
    "group_size": 32,
    "fp32_units": UnitList(["layer.0"]),
    "compile": True,
    "compile_mode": "max-autotune",
}


@pytest.fixture
def scratch_registry(monkeypatch):
    """Methods registered inside a test are gone after it."""
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))


def test_registry_names():
    assert {"fp32", "bf16", "dynamic-int8", "ort-fp32", "ct2-int8", "pt2e-int8"} <= set(list_methods())
    assert list_methods() == METHODS.names()
    assert all(isinstance(METHODS.get(n), type) and issubclass(METHODS.get(n), Method) for n in METHODS)
    with pytest.raises(UnknownNameError) as e:
        get_method("int3")
    assert "dynamic-int8" in str(e.value)


def test_every_method_runs_on_a_registered_runtime():
    for name in list_methods():
        assert get_method(name).runtime in RUNTIMES, name


def test_duplicate_name_is_refused(scratch_registry):
    class Again(Method):
        name = "fp32"

        def apply(self, loaded):
            raise AssertionError

    with pytest.raises(ConfigError, match="already registered"):
        register_method(Again)


def test_method_refused_for_other_family(scratch_registry):
    @register_method
    class BertOnly(Method):
        name = "bert-only-test"
        families = ("bert",)

        def apply(self, loaded):
            raise AssertionError("never reached")

    with pytest.raises(MethodNotApplicableError) as e:
        get_method("bert-only-test").check("t5")
    assert "t5-family" in str(e.value) and "dynamic-int8" in e.value.fix


@pytest.mark.parametrize("name", list_methods())
def test_every_setting_is_in_options_and_label(name):
    cls = METHODS.get(name)
    # the constructor takes settings only as Options fields: none can bypass options and the record key
    assert list(inspect.signature(cls.__init__).parameters) == ["self", "options"], name
    assert dataclasses.is_dataclass(cls.Options) and cls.Options.__dataclass_params__.frozen
    default = get_method(name)
    # fp32_units and the quiet options (compile) stay out of ``options`` (the record key) at their defaults:
    # records from before them keep their keys
    quiet = {"fp32_units", *cls.quiet_options}
    assert list(default.options) == [n for n in option_names(cls) if n not in quiet] and default.label == name
    for field in dataclasses.fields(cls.Options):
        assert field.name in OTHER_VALUES, f"{name}: add a non-default value for {field.name!r} above"
        value = OTHER_VALUES[field.name]
        m = get_method({"name": name, field.name: value})
        assert m.options[field.name] == value and getattr(m.opts, field.name) == value
        assert m.options != default.options and m.label == f"{name}[{field.name}={value}]"


def test_two_settings_give_two_labels_and_two_option_sets():
    a = get_method({"name": "ort-fp32", "require_fusion": True})
    b = get_method({"name": "ort-fp32", "intra_op_num_threads": 4})
    assert a.label == "ort-fp32[require_fusion=True]" and b.label == "ort-fp32[intra_op_num_threads=4]"
    assert a.options != b.options
    c = get_method({"name": "ort-static-int8", "samples": 32, "calibration": "percentile"})
    assert c.label == "ort-static-int8[calibration=percentile,samples=32]"  # sorted, as records have it
    assert get_method({"name": "ort-static-int8", "samples": 128}).label == "ort-static-int8"  # the default


def test_unknown_option_names_the_known_ones():
    with pytest.raises(ConfigError, match="colour") as e:
        get_method({"name": "ort-static-int8", "colour": "red"})
    for known in ("calibration", "samples", "per_channel", "task", "reduce_range", "require_fusion"):
        assert known in e.value.fix
    with pytest.raises(ConfigError, match="its options are: none"):
        get_method({"name": "ct2-fp32", "samples": 4})


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"name": "ort-fp32", "require_fusion": "yes"}, "require_fusion must be true or false"),
        ({"name": "ort-fp32", "intra_op_num_threads": 0}, "intra_op_num_threads must be a positive integer"),
        ({"name": "ort-dynamic-int8", "reduce_range": 1}, "reduce_range must be true, false or null"),
        ({"name": "ort-static-int8", "task": 3}, "task must be a task name"),
        ({"name": "pt2e-int8", "samples": 0}, "samples must be a positive integer"),
    ],
)
def test_bad_values_say_how_to_fix_them(spec, match):
    with pytest.raises(ConfigError, match=match) as e:
        get_method(spec)
    assert e.value.fix


def test_a_method_with_its_own_options(scratch_registry):
    @dataclasses.dataclass(frozen=True)
    class ScaleOptions:
        calibration: str = "minmax"
        samples: int = 128

    @register_method
    class WithOptions(Method):
        name = "with-options-test"
        Options = ScaleOptions

        def apply(self, loaded):
            raise AssertionError

    assert get_method("with-options-test").label == "with-options-test"
    m = get_method({"name": "with-options-test", "calibration": "entropy"})
    assert m.label == "with-options-test[calibration=entropy]" and m.options["samples"] == 128
    with pytest.raises(ConfigError, match="its options are: calibration, samples"):
        get_method({"name": "with-options-test", "colour": "red"})
    with pytest.raises(ConfigError, match="has no `name`"):
        get_method({"calibration": "entropy"})


def test_options_must_be_a_frozen_dataclass(scratch_registry):
    class Loose(Method):
        name = "loose-test"
        Options = dict

        def apply(self, loaded):
            raise AssertionError

    with pytest.raises(ConfigError, match="frozen dataclass"):
        register_method(Loose)
    assert Method.Options is NoOptions and get_method("fp32").options == {}


def test_methods_read_settings_only_from_opts():
    import accelbench.methods as package

    for module in (package.torch, package.onnx, package.ctranslate2, package.torchao, package.pt2e):
        source = inspect.getsource(module)
        assert "self.options[" not in source and "self.options =" not in source, module.__name__
