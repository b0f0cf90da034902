"""The planner on synthetic service curves: the cheapest deployment that meets the bound, refusals, daily
profiles, quality, autoscaling settings that parse, and price-file errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from accelbench.exceptions import ConfigError
from accelbench.records import append_records
from accelbench.serving import autoscale
from accelbench.serving.curve_records import CURVES_FILE
from accelbench.serving.plan_report import (
    add_subcommand,
    cost_quality_frontier,
    join_quality,
    quality_table,
    recommended,
    sentence,
)
from accelbench.serving.planner import PlanOptions, plan, service_model
from accelbench.serving.prices import Machine, load_prices, parse_machines
from accelbench.serving.simulate import simulate
from accelbench.serving.traffic import Traffic, load_traffic

PRICES = str(Path(__file__).resolve().parents[2] / "configs" / "prices.yaml")
SMALL = Machine("small", cores=2, memory_gb=4, price_per_hour=0.10, source="test", date="2026")
BIG = Machine("big", cores=8, memory_gb=16, price_per_hour=0.35, source="test", date="2026")
FAST = {"search_requests": 1_500, "final_requests": 4_000, "waits_ms": (0.0, 5.0)}


def curves(method="fp32", base_ms=20.0, per_item_ms=2.0, sizes=(1, 2, 4, 8, 16, 32), spread=0.05, seed=0):
    """Synthetic curves: a batch takes base + per_item x b ms (lognormal spread), the same co-located."""
    rng = np.random.default_rng(seed)
    rows = []
    for colocated in (1, 2):
        for b in sizes:
            s = (base_ms + per_item_ms * b) * np.exp(rng.normal(0, spread, 40))
            rows.append({"task": "sst2", "model": "m", "method": method, "variant": f"m:{method}", "batch_size": b,
                         "threads": 1, "colocated": colocated, "service_ms_p50": float(np.median(s)),
                         "service_ms_p90": float(np.quantile(s, 0.9)), "service_ms_samples": s.tolist(),
                         "env_cores_available": 2, "replica_rss_mb": 400.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_front_cpu_slows_replicas_that_fill_the_cores():
    """The front's CPU per request costs nothing where a core is idle and throughput where replicas fill
    every core: the same curves sustain less on a machine they fill."""
    df = curves()
    wide = Machine(
        "wide", cores=3, memory_gb=1, price_per_hour=0.1, source="test", date="2026"
    )  # 2 replicas fit
    opts = {"p99_ms": 100, "batch_sizes": [8], "min_machines": 1, **FAST}
    rates = {}
    for name, machine in (("spare", wide), ("full", SMALL)):
        for front in (0.0, 0.5):
            row = plan(df, Traffic((50.0,)), [machine], PlanOptions(front_ms=front, **opts)).iloc[0]
            assert row["feasible"] and row["replicas_per_machine"] == 2 and row["threads"] == 1
            rates[name, front] = row["sustainable_rate_per_machine"]
    # 2 replicas on 3 cores: the front's ~0.2 cores fit on the idle one (its FIFO stage costs little).
    assert rates["spare", 0.5] == pytest.approx(rates["spare", 0.0], rel=0.04)
    # 2 replicas on 2 cores: the front's work is taken from them (~10% of each at these rates).
    assert rates["full", 0.5] < 0.95 * rates["full", 0.0]


def test_picks_the_cheapest_deployment_that_meets_the_bound():
    df = curves()
    traffic = Traffic((2000.0,))
    out = plan(df, traffic, [SMALL, BIG], PlanOptions(p99_ms=100, **FAST))
    row = out.iloc[0]
    assert row["feasible"] and row["machine"] == "big" and row["machines"] == 1  # 0.35/h
    assert row["replicas_per_machine"] == 8 and row["threads"] == 1 and row["extrapolated_colocation"]
    assert row["cost_per_hour"] == pytest.approx(0.35)
    assert row["cost_per_million"] == pytest.approx(0.35 / (2000 * 3600) * 1e6)
    assert {o["machine"]: o["cost_per_hour"] for o in row["options"]}["small"] >= 0.40 - 1e-9
    assert row["predicted_p99_ms"] <= 100
    # brute force: 3 small machines (0.30/h) fail the bound with every batching policy tried
    svc = service_model(df[df["colocated"] == 2])
    for b in (1, 2, 4, 8, 16, 32):
        for w in FAST["waits_ms"]:
            sim = simulate(
                svc, 2000 / 3, replicas=2, max_batch=b, max_wait_s=w / 1e3, n_requests=4_000, seed=9
            )
            assert not (sim.stable and sim.latency_ms_p99 <= 100), (b, w)
    # an independent simulation of the recommended setting (another seed) meets the bound
    check = simulate(svc, 2000.0, replicas=8, max_batch=int(row["max_batch_size"]),
                     max_wait_s=row["max_wait_ms"] / 1e3, n_requests=8_000, seed=99)  # fmt: skip
    assert check.stable and check.latency_ms_p99 <= 100


def test_refuses_when_no_deployment_can_meet_the_bound():
    out = plan(curves(), Traffic((50.0,)), [SMALL, BIG], PlanOptions(p99_ms=15, **FAST))  # 1 alone: 22 ms
    assert not out.iloc[0]["feasible"] and "alone takes" in out.iloc[0]["reason"]
    with pytest.raises(ConfigError, match="no deployment meets"):
        recommended(out)


def test_missing_batch_sizes_are_refused():
    with pytest.raises(ConfigError, match=r"miss batch size\(s\) \[64\]") as e:
        plan(curves(), Traffic((50.0,)), [SMALL], PlanOptions(p99_ms=100, batch_sizes=[8, 64], **FAST))
    assert "accelbench curves" in e.value.fix
    with pytest.raises(ConfigError, match=r"\[1\]"):
        plan(curves(sizes=(2, 4)), Traffic((50.0,)), [SMALL], PlanOptions(p99_ms=100, **FAST))


def test_bad_traffic_and_bound():
    with pytest.raises(ConfigError, match="traffic must be positive"):
        Traffic((0.0,))
    with pytest.raises(ConfigError, match="traffic must be positive"):
        load_traffic(-5)
    with pytest.raises(ConfigError, match="p99 bound must be positive"):
        PlanOptions(p99_ms=0)


def test_daily_profile_sizes_the_peak_and_scales_by_hour(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text("shape: [0.1, 0.1, 0.5, 1.0, 0.5]\n")
    traffic = load_traffic(1600, path)
    assert traffic.peak == 1600 and traffic.rates[0] == pytest.approx(160)
    row = plan(curves(), traffic, [SMALL], PlanOptions(p99_ms=100, **FAST)).iloc[0]
    hourly = row["machines_per_hour"]
    assert hourly[3] == row["machines"] == max(hourly) and hourly[0] < hourly[3]
    assert row["replicas_per_hour"] == [h * row["replicas_per_machine"] for h in hourly]
    assert row["cost_per_million"] < row["cost_per_million_peak_sized"]
    assert "peaking at 1600 req/s" in sentence(row, traffic)


def test_quality_join_frontier_and_floor(tmp_path):
    methods = {"fp32": (20, 2), "int8": (12, 1), "bad": (5, 0.5), "slow": (25, 2.5)}
    df = pd.concat([curves(m, *ms) for m, ms in methods.items()])
    append_records(tmp_path / "q", [
        {"task": "sst2", "model": "m", "method": "fp32", "variant": "m:fp32", "metric_name": "accuracy",
         "metric": 0.90, "status": "ok", "key": "a", "batch_size": 1},
        {"task": "sst2", "model": "m", "method": "int8", "variant": "m:int8", "metric_name": "accuracy",
         "metric": 0.895, "status": "ok", "key": "b", "batch_size": 1},
        {"task": "sst2", "model": "m", "method": "bad", "variant": "m:bad", "metric_name": "accuracy",
         "metric": 0.60, "status": "ok", "key": "c", "batch_size": 1},
        {"task": "sst2", "model": "m", "method": "slow", "variant": "m:slow", "metric_name": "accuracy",
         "metric": 0.85, "status": "ok", "key": "d", "batch_size": 1},
    ])  # fmt: skip
    out = join_quality(
        plan(df, Traffic((2000.0,)), [SMALL], PlanOptions(p99_ms=100, **FAST)), quality_table(tmp_path / "q")
    )
    cost = dict(zip(out["method"], out["cost_per_million"], strict=True))
    assert cost["bad"] < cost["int8"] < cost["fp32"] < cost["slow"]
    front = cost_quality_frontier(out)
    assert set(front.loc[front["on_frontier"], "method"]) == {"bad", "int8", "fp32"}  # slow: dearer and worse
    assert recommended(out, 0.99)["method"] == "int8"  # 'bad' is cheaper but loses a third of the accuracy
    assert recommended(out.drop(columns="metric"))["method"] == "bad"


def test_autoscaling_settings_parse_and_carry_the_plan():
    traffic = Traffic((300.0, 900.0, 1500.0))
    row = plan(curves(), traffic, [SMALL], PlanOptions(p99_ms=100, **FAST)).iloc[0].to_dict()
    files = autoscale.autoscaling_files(row)
    sm = json.loads(files["sagemaker_scaling.json"])
    cfg = sm["put_scaling_policy"]["TargetTrackingScalingPolicyConfiguration"]
    assert (
        cfg["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    assert cfg["TargetValue"] == pytest.approx(row["sustainable_rate_per_machine"] * 0.5 * 60, rel=1e-3)
    target = sm["register_scalable_target"]
    assert target["MinCapacity"] == min(row["machines_per_hour"]) and target["MaxCapacity"] == row["machines"]
    serve = yaml.safe_load(files["ray_serve_config.yaml"])
    dep = serve["applications"][0]["deployments"][0]
    auto = dep["autoscaling_config"]
    assert (
        auto["min_replicas"]
        == min(row["replicas_per_hour"])
        < auto["max_replicas"]
        == max(row["replicas_per_hour"])
    )
    assert auto["target_ongoing_requests"] >= 1 and dep["max_ongoing_requests"] >= row["max_batch_size"]
    assert dep["ray_actor_options"]["num_cpus"] == row["threads"]
    manifest = yaml.safe_load(files["rayservice.yaml"])
    assert manifest["kind"] == "RayService" and manifest["apiVersion"] == "ray.io/v1"
    assert yaml.safe_load(manifest["spec"]["serveConfigV2"]) == serve
    head = manifest["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "2"
    assert head["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "2"
    workers = manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert workers["maxReplicas"] == row["machines"] - 1


def test_price_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_prices(tmp_path / "none.yaml")
    good = {"name": "a", "cores": 2, "memory_gb": 4, "price_per_hour": 0.1, "source": "s", "date": "2025"}
    with pytest.raises(ConfigError, match=r"machine #2 \(b\) is missing price_per_hour"):
        parse_machines({"machines": [good, {**good, "name": "b", "price_per_hour": None}]})
    with pytest.raises(ConfigError, match="cores must be a positive whole number"):
        parse_machines([{**good, "cores": 0}])
    with pytest.raises(ConfigError, match="appears twice"):
        parse_machines([good, good])
    with pytest.raises(ConfigError, match="lists no machines"):
        parse_machines({"machines": []})
    shipped = load_prices(PRICES)
    assert len(shipped) >= 4 and all(m.source and "ILLUSTRATIVE" in m.source and m.date for m in shipped)


def _args(argv):
    parser = argparse.ArgumentParser()
    add_subcommand(parser.add_subparsers())
    return parser.parse_args(argv)


def test_plan_command_writes_the_plan_and_autoscaling_files(tmp_path, capsys):
    run = tmp_path / "serving"
    append_records(run / CURVES_FILE, curves().to_dict("records"))
    args = _args(["plan", "--curves", str(run), "--traffic", "500", "--p99-ms", "100", "--prices",
                  PRICES, "--batch-sizes", "1", "8", "32", "--waits-ms", "0", "5"])  # fmt: skip
    assert args.fn(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("for 500 req/s at p99 <= 100 ms: m:fp32,") and "per million" in out
    assert "Recommendation" in (run / "plan.md").read_text()
    assert {p.name for p in (run / "autoscaling").iterdir()} == {
        "sagemaker_scaling.json", "ray_serve_config.yaml", "rayservice.yaml"}  # fmt: skip
    empty = _args(["plan", "--curves", str(tmp_path / "none"), "--traffic", "5", "--p99-ms", "100"])
    with pytest.raises(ConfigError, match="no service curves") as e:
        empty.fn(empty)
    assert "accelbench curves" in e.value.fix
    with pytest.raises(ConfigError, match="positive"):
        _args(["plan", "--traffic", "0", "--p99-ms", "100"])


def test_plots_draw_one_panel_each():
    from accelbench.serving import plots
    from accelbench.serving.simulate import load_curve

    df = pd.concat([curves("fp32"), curves("int8", 12, 1)])
    out = plan(df, Traffic((800.0,)), [SMALL], PlanOptions(p99_ms=100, **FAST))
    out["metric"], out["metric_name"] = [0.9, 0.89], "accuracy"
    svc = service_model(df[(df["method"] == "fp32") & (df["colocated"] == 1)])
    rows = [
        r | {"policy": f"B={b}"}
        for b in (1, 16)
        for r in load_curve(svc, [20, 40], max_batch=b, n_requests=500)
    ]
    validation = pd.DataFrame({"variant": ["m:fp32"] * 2, "rate": [10, 20], "predicted_p99_ms": [30, 40],
                               "measured_p99_ms": [33, 45]})  # fmt: skip
    figures = [
        plots.service_curves_plot(df),
        plots.latency_vs_load_plot(pd.DataFrame(rows), p99_ms=100),
        plots.cost_quality_plot(cost_quality_frontier(out)),
        plots.predicted_vs_measured_plot(validation, p99_ms=100),
    ]
    for fig in figures:
        assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()
