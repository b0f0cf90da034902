"""The load generator against real HTTP endpoints on loopback: a no-op one and slow ones with a fixed service
time (subprocesses of accelbench.serving.noop), so queueing is predictable."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from accelbench.exceptions import ConfigError
from accelbench.serving.load_command import (
    add_subcommand,
    find_peak,
    measure_ceiling,
    parse_cores,
    server_health,
)
from accelbench.serving.loadgen import (
    CONNECTION_ERROR,
    OUTCOMES,
    TIMEOUT,
    LoadConfig,
    _outcome,
    bodies_for,
    format_report,
    run_load,
)
from accelbench.serving.noop import NoopServer, pin

TEXTS = ["a wonderful , moving film", "boring and far too long", "a joy to watch"]
SERVICE_MS = 20.0


def quick(url: str, **kw) -> LoadConfig:
    """A short run whose validity does not ask for laptop minimums."""
    kw = {"duration": 1.0, "min_duration_s": 0.0, "min_queries": 0, "early_stopping": False} | kw
    return LoadConfig(url, **kw)


@pytest.fixture(scope="module")
def noop():
    with NoopServer(task="sst2") as s:
        yield s


@pytest.fixture(scope="module")
def serial():
    """One request at a time, SERVICE_MS each: an M/D/1 queue with capacity 1000 / SERVICE_MS per second."""
    with NoopServer(delay_ms=SERVICE_MS, serial=True) as s:
        yield s


@pytest.fixture(scope="module")
def parallel():
    """SERVICE_MS per request, any number at once (an infinite-server queue)."""
    with NoopServer(delay_ms=SERVICE_MS) as s:
        yield s


def test_open_loop_accounts_for_every_request(noop):
    r = run_load(quick(noop.url, rate=150.0), TEXTS)
    c = r["counts"]
    assert c["sent"] == sum(c[k] for k in OUTCOMES) and c["sent"] == c["ok"] > 100
    assert r["achieved_send_rate"] == pytest.approx(150.0, rel=0.35)  # a Poisson count over 1 s
    lat = r["latency_ms"]
    assert 0 < lat["p50"]["value"] <= lat["p90"]["value"] <= lat["p99"]["value"] <= lat["max"]
    assert lat["p50"]["low"] <= lat["p50"]["value"] <= lat["p50"]["high"]
    assert r["generator_cpu_percent"] > 0 and r["generator_cores"]
    json.dumps(r, allow_nan=False)  # strict JSON
    assert "VALID" in format_report(r)


def test_runs_where_an_event_loop_already_runs(noop):
    """A notebook's kernel runs an event loop in its thread; the load gets a thread and a loop of its own."""
    import asyncio

    async def inside_a_loop():
        return run_load(quick(noop.url, rate=100.0, duration=0.3), TEXTS)

    r = asyncio.run(inside_a_loop())
    assert r["counts"]["sent"] == r["counts"]["ok"] > 0


def test_latency_counts_from_the_scheduled_time(serial):
    """One connection and a server at half the offered rate: the generator can only send when the previous
    request answered (as a closed-loop tool would). Latency from the *send* stays ~ the service time; latency
    from the schedule shows the queue that built up, and the lag is reported and warned about."""
    r = run_load(quick(serial.url, rate=100.0, connections=1), TEXTS)
    assert r["counts"]["ok"] == r["counts"]["sent"]
    from_send, from_sched = r["latency_from_send_ms"], r["latency_ms"]
    assert from_send["p50"]["value"] < 3 * SERVICE_MS
    assert from_sched["p99"]["value"] > 300  # ~100 requests x 20 ms, half of them queued behind
    assert from_sched["p50"]["value"] > 5 * from_send["p50"]["value"]
    assert r["send_lag_ms"]["p99"]["value"] > 300
    assert any("lagged" in w for w in r["warnings"])


def test_open_loop_sees_server_queueing_when_sends_are_on_time(serial):
    r = run_load(quick(serial.url, rate=100.0, duration=0.6), TEXTS)  # twice the capacity
    assert r["send_lag_ms"]["p50"]["value"] < 20  # sends left on time ...
    assert r["latency_ms"]["max"] > 150  # ... and the server's queue shows in the latencies
    assert r["completed_rate"] < 60  # capacity 50/s


@pytest.mark.parametrize("workers", [1, 4])
def test_closed_loop_throughput_is_workers_over_service_time(parallel, workers):
    r = run_load(quick(parallel.url, concurrency=workers), TEXTS)
    expected = workers * 1000.0 / SERVICE_MS
    assert 0.6 * expected < r["completed_rate"] <= 1.05 * expected
    assert r["latency_ms"]["p50"]["value"] >= SERVICE_MS
    assert r["mode"] == "closed" and r["counts"]["sent"] == r["counts"]["ok"]


def test_unanswered_requests_are_timeouts_and_nothing_is_lost(serial):
    # 60 requests at 200/s into a 50/s server, replies waited for at most 0.3 s: most never come back
    r = run_load(quick(serial.url, rate=200.0, duration=0.3, grace_s=0.3), TEXTS)
    c = r["counts"]
    assert c["timeout"] > 0 and c["ok"] > 0
    assert (
        c["sent"]
        == c["ok"]
        + c["timeout"]
        + c["rejected"]
        + c["client_error"]
        + c["server_error"]
        + c["connection_error"]
    )
    assert not r["valid"] and any("failed" in reason for reason in r["validity"]["reasons"])


def test_outcome_classes():
    status = np.array([200, 204, 400, 413, 422, 503, 500, 502, TIMEOUT, CONNECTION_ERROR])
    got = {k: int(v.sum()) for k, v in _outcome(status).items()}
    assert got == {
        "ok": 2,
        "client_error": 3,
        "rejected": 1,
        "server_error": 2,
        "timeout": 1,
        "connection_error": 1,
    }


def test_connection_errors_are_counted():
    # nothing listens on port 9 of loopback (the discard port is closed on test machines)
    r = run_load(quick("http://127.0.0.1:9", rate=50.0, duration=0.3), TEXTS)
    assert r["counts"]["connection_error"] == r["counts"]["sent"] > 0 and not r["valid"]


def test_bodies_cycle_texts_k_per_request():
    bodies = [json.loads(b)["inputs"] for b in bodies_for(TEXTS, 2)]
    assert bodies == [TEXTS[0:2], [TEXTS[2], TEXTS[0]], TEXTS[1:3]]
    assert len(bodies_for(TEXTS * 2, 3)) == 2


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"rate": 0}, "rate"),
        ({"rate": -3}, "rate"),
        ({"rate": 5, "duration": 0}, "duration"),
        ({"concurrency": 0}, "concurrency"),
        ({}, "no load"),
        ({"rate": 5, "concurrency": 2}, "both"),
        ({"rate": 5, "p99_ms": 0}, "p99"),
        ({"rate": 5, "texts_per_request": 0}, "texts per request"),
    ],
)
def test_bad_input_raises_config_error_with_fix(kw, match):
    with pytest.raises(ConfigError, match=match) as e:
        LoadConfig("http://127.0.0.1:1", **kw)
    assert e.value.fix


def test_find_peak_needs_a_bound(noop):
    with pytest.raises(ConfigError, match="bound"):
        find_peak(quick(noop.url, rate=10.0), TEXTS)


def test_no_server_says_how_to_start_one():
    with pytest.raises(ConfigError, match="no server answers") as e:
        server_health("http://127.0.0.1:9", timeout=0.3)
    assert "accelbench serve" in e.value.fix


def test_find_peak_converges_near_the_capacity(serial):
    """Capacity 50/s; with a 100 ms p99 bound over 1 s runs the knee lies a little below it (2x the service
    time at 40/s is normal queueing; at 60/s the backlog alone passes the bound). Starting at 10/s the search
    brackets by doubling, then bisects."""
    cfg = quick(serial.url, rate=10.0, p99_ms=100.0, duration=1.0)
    steps = []
    peak = find_peak(cfg, TEXTS, max_steps=6, precision=0.1, progress=steps.append)
    assert len(peak["steps"]) == len(steps) <= 6
    assert 20 <= peak["peak_rate"] <= 52
    lo, hi = peak["bracket"]
    assert lo == peak["peak_rate"] and lo < hi <= 80


def test_ceiling_against_the_noop_endpoint():
    c = measure_ceiling(rates=(100.0, 200.0), duration=0.5, lag_ms=1000.0)
    assert [s["rate"] for s in c["steps"]] == [100.0, 200.0] and c["ceiling_rate"] == 200.0
    assert c["floor_p99_lag_ms"] == c["steps"][0]["p99_lag_ms"] > 0
    strict = measure_ceiling(rates=(100.0,), duration=0.3, lag_ms=0.0, lag_factor=0.0)  # no sender lags 0 ms
    assert strict["ceiling_rate"] is None and not strict["steps"][0]["sustained"]


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_subcommand(p.add_subparsers(dest="command"))
    return p.parse_args(["load", *argv])


def test_cli_runs_asks_the_task_from_health_and_writes_json(noop, tmp_path, capsys):
    out = tmp_path / "load.json"
    args = _args(
        "--url", noop.url, "--rate", "80", "--duration", "1", "--min-duration", "1", "--out", str(out)
    )
    args.fn(args)  # the tiny sst2 split has 40 texts; INVALID (early stopping) or not, it reports
    report = json.loads(out.read_text())
    assert report["task"] == "sst2" and report["load"]["counts"]["sent"] > 0
    assert "latency ms" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--rate", "0"], "rate"),
        (["--rate", "5", "--find-peak"], "bound"),
        (["--concurrency", "0"], "concurrency"),
        (["--rate", "5", "--texts-per-request", "0"], "texts per request"),
        (["--rate", "5", "--cpu", "x"], "cores"),
    ],
)
def test_cli_bad_input(argv, match):
    args = _args("--url", "http://127.0.0.1:9", *argv)
    with pytest.raises(ConfigError, match=match):
        args.fn(args)


def test_pinning_and_cores():
    assert parse_cores("0") == [0] and parse_cores("0-2,5") == [0, 1, 2, 5] and parse_cores(None) is None
    import os

    if hasattr(os, "sched_getaffinity"):
        before = os.sched_getaffinity(0)
        try:
            assert pin([min(before)]) is None and os.sched_getaffinity(0) == {min(before)}
        finally:
            os.sched_setaffinity(0, before)
        assert "could not pin" in pin([100_000])


def test_warmup_is_sent_but_not_counted(noop):
    r = run_load(quick(noop.url, rate=100.0, duration=0.5, warmup_s=0.5), TEXTS)
    assert r["warmup_sent"] > 20 and r["counts"]["sent"] < 100  # ~50 each


def test_cli_reports_the_ceiling_and_warns_near_it(noop, monkeypatch, tmp_path, capsys):
    from accelbench.serving import load_command

    monkeypatch.setattr(load_command, "measure_ceiling", lambda **kw: {"ceiling_rate": 100.0, "lag_ms": 5.0})
    out = tmp_path / "r.json"
    argv = [
        "--url",
        noop.url,
        "--rate",
        "50",
        "--duration",
        "0.5",
        "--ceiling",
        "--task",
        "sst2",
        "--out",
        str(out),
    ]
    args = _args(*argv)
    args.fn(args)
    load = json.loads(out.read_text())["load"]
    assert load["generator_ceiling"] == 100.0 and any("fifth" in w for w in load["warnings"])
    assert "ceiling 100/s" in capsys.readouterr().out
