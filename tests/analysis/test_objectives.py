"""The objectives registry: the built-in objectives, lookups, and refusing a silent replacement."""

from __future__ import annotations

import dataclasses
import math

import pytest

from accelbench.analysis import OBJECTIVES, Objective, frontier, get_objective, register_objective
from accelbench.analysis import objectives as objectives_module
from accelbench.exceptions import ConfigError, UnknownNameError
from accelbench.registry import Registry

from .samples import make_records_with_intervals


@pytest.fixture
def scratch_registry(monkeypatch) -> Registry:
    """A copy of the registry for tests that register, so no test leaves an objective behind."""
    copy: Registry[Objective] = Registry("objective")
    for name, objective in OBJECTIVES.items():
        copy.register(name, objective)
    monkeypatch.setattr(objectives_module, "OBJECTIVES", copy)
    return copy


def test_objectives_registry():
    assert isinstance(OBJECTIVES, Registry)
    assert {"latency", "throughput", "size"} <= set(OBJECTIVES)
    assert OBJECTIVES.get("throughput").axis_label(32) == "throughput at batch 32 (samples/s)"
    assert get_objective("latency") is OBJECTIVES.get("latency")
    assert get_objective(OBJECTIVES.get("size")) is OBJECTIVES.get("size")


def test_unknown_objective_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as info:
        get_objective("energy")
    assert {"latency", "throughput", "size"} <= set(info.value.known)


def test_register_refuses_a_taken_name_unless_overwrite(scratch_registry):
    latency = get_objective("latency")
    with pytest.raises(ConfigError, match="already registered"):
        register_objective(latency)
    assert get_objective("latency") is latency
    replaced = register_objective(dataclasses.replace(latency, label="p90 (ms)"), overwrite=True)
    assert get_objective("latency") is replaced and scratch_registry.get("latency") is replaced


def test_a_new_objective_is_accepted_everywhere(records, scratch_registry):
    p99 = Objective(
        name="p99",
        column="latency_ms_p99",
        higher_is_better=False,
        label="p99 latency (ms)",
        select=lambda rows, batch: rows[rows["scenario"] == "realtime"],
        phrase="{ratio}x faster",
        phrase_worse="{ratio}x slower",
    )
    register_objective(p99)
    table = frontier(records, "sst2", "p99")
    assert table["variant"].iloc[0] == "tiny-sst2:fp32" and table["cost"].iloc[0] == pytest.approx(2.4)


def test_speedup_direction():
    assert get_objective("latency").speedup(10.0, 5.0) == 2.0
    assert get_objective("throughput").speedup(100.0, 210.0) == pytest.approx(2.1)
    assert math.isnan(get_objective("size").speedup(1.0, 0.0))  # a zero cost has no ratio


def test_each_objective_knows_its_interval_columns():
    latency, throughput, size = (get_objective(n) for n in ("latency", "throughput", "size"))
    assert latency.ci_columns == ("latency_ms_p90_ci_low", "latency_ms_p90_ci_high")
    assert throughput.ci_columns == ("throughput_ci_low", "throughput_ci_high")
    assert size.ci_columns == ()
    row = {"throughput": 210.0, "throughput_ci_low": 200.0, "throughput_ci_high": 221.0}
    assert throughput.interval(row) == (200.0, 221.0)
    assert throughput.interval({"throughput": 210.0}) is None  # older records
    assert throughput.interval({"throughput_ci_low": math.nan, "throughput_ci_high": 221.0}) is None
    assert size.interval({"size_mb": 25.0}) is None
    assert throughput.speedup_columns[0] == "speedup_vs_fp32" and latency.speedup_columns == ()
    assert throughput.describe(32) == "throughput at batch 32" and latency.describe(1) == "p90 latency"


def test_unpaired_speedup_interval_is_conservative():
    latency, throughput = get_objective("latency"), get_objective("throughput")
    assert latency.speedup_interval((9.0, 11.0), (4.0, 5.0)) == pytest.approx((9 / 5, 11 / 4))
    assert throughput.speedup_interval((90.0, 110.0), (200.0, 220.0)) == pytest.approx((200 / 110, 220 / 90))
    assert latency.speedup_interval(None, (4.0, 5.0)) is None


def test_frontier_carries_the_cost_interval(records):
    old = frontier(records, "sst2", "throughput")
    assert old["cost_ci_low"].isna().all() and "speedup_vs_fp32" not in old.columns
    new = frontier(make_records_with_intervals(), "sst2", "throughput").set_index("variant")
    assert new.at["minilm-sst2:dynamic-int8", "cost_ci_low"] == pytest.approx(199.5)
    assert new.at["minilm-sst2:dynamic-int8", "speedup_vs_fp32"] == pytest.approx(2.1)
    assert new.at["minilm-sst2:dynamic-int8", "metric_delta_p"] == 0.62
    assert new["cost_ci_low"].notna().all() and (new["repeats"] == 6).all()
