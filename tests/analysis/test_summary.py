"""summary.md from a records.jsonl written by hand: tables, recommendations, failures, environment."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from accelbench.analysis import frontier, markdown_table, read_run, recommend, summary_markdown, write_summary
from accelbench.exceptions import ConfigError, DataError
from accelbench.records import append_records

from .samples import make_records_with_intervals

ENV = {
    "env_cpu_model": "Intel(R) Xeon(R) Platinum 8375C",
    "env_cores_logical": 2,
    "env_cpu_flags": ["avx2", "avx512f", "amx_bf16"],
    "env_torch": "2.13.0+cpu",
    "env_git_commit": "abc1234",
}

# variant -> task, metric name, metric, ci, p50, p90, {batch: throughput}, size, rss, delta, agreement
SST2 = {
    "minilm-sst2:fp32": (0.905, (0.885, 0.924), 8.0, 10.0, {32: 100.0}, 90.4, 410.0, 0.0, 1.0),
    "minilm-sst2:bf16": (0.904, (0.884, 0.923), 6.5, 8.0, {32: 150.0}, 45.2, 380.0, -0.001, 0.995),
    "minilm-sst2:dynamic-int8": (0.901, (0.881, 0.920), 4.1, 5.0, {32: 210.0}, 25.1, 300.0, -0.004, 0.982),
    "minilm-sst2:static-int8": (0.880, (0.860, 0.900), 5.0, 6.0, {16: 220.0}, 24.0, 290.0, -0.025, 0.941),
}
MULTI30K = {
    "t5-small:fp32": (35.21, (34.10, 36.33), 80.0, 95.0, {32: 40.0}, 242.0, 900.0, 0.0, 1.0),
    "t5-small:bf16": (35.05, (33.90, 36.20), 60.0, 70.0, {32: 55.0}, 121.0, 800.0, -0.16, 0.97),
}


def _rows(task: str, kind: str, family: str, metric_name: str, table: dict) -> list[dict]:
    rows = []
    for variant, (metric, (low, high), p50, p90, batches, size, rss, delta, agreement) in table.items():
        model, method = variant.split(":")
        base = {
            "run": "run-7",
            "key": f"k-{variant}",
            "status": "ok",
            "error": None,
            "timestamp": "2025-01-01T00:00:00",
            "task": task,
            "task_kind": kind,
            "model": model,
            "model_family": family,
            "method": method,
            "variant": variant,
            "runtime": "pytorch",
            "padding": "dynamic",
            "metric_name": metric_name,
            "metric": metric,
            "metric_ci_low": low,
            "metric_ci_high": high,
            "metric_delta": delta,
            "agreement": agreement,
            "size_mb": size,
            "peak_rss_mb": rss,
            **ENV,
        }
        extra = {"ms_per_token": p90 / 20, "tokens_per_s": 20000 / p90} if kind == "seq2seq" else {}
        rows.append(
            base
            | extra
            | {
                "scenario": "realtime",
                "batch_size": 1,
                "latency_ms_p50": p50,
                "latency_ms_p90": p90,
                "latency_ms_p99": p90 * 1.3,
                "throughput": 1000 / p50,
            }
        )
        for batch, throughput in batches.items():
            rows.append(
                base
                | {
                    "scenario": "batch",
                    "batch_size": batch,
                    "latency_ms_p90": 1000 * batch / throughput,
                    "throughput": throughput,
                }
            )
    return rows


def make_rows() -> list[dict]:
    rows = _rows("sst2", "classification", "bert", "accuracy", SST2)
    rows += _rows("multi30k", "seq2seq", "t5", "bleu", MULTI30K)
    # a first attempt of dynamic-int8 that failed and was rerun successfully: not a failure any more
    rows.insert(0, {"run": "run-7", "key": "k-minilm-sst2:dynamic-int8", "status": "error", "error": "flaky",
                    "task": "sst2", "model": "minilm-sst2", "method": "dynamic-int8",
                    "variant": "minilm-sst2:dynamic-int8", **ENV})  # fmt: skip
    # a stale realtime row with the same key, replaced by the later one
    stale = dict(rows[1], latency_ms_p50=0.1, latency_ms_p90=0.2)
    rows.insert(1, stale)
    rows.append(
        {
            "run": "run-7",
            "key": "k-gptq",
            "status": "error",
            "error": "RuntimeError: no int4 kernel for this CPU\nTraceback (most recent call last): ...",
            "timestamp": "2025-01-01T00:00:00",
            "task": "sst2",
            "model": "minilm-sst2",
            "method": "gptq-int4",
            "variant": "minilm-sst2:gptq-int4",
            **ENV,
        }
    )
    return rows


def write_records(run_dir: Path, rows: list[dict]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "records.jsonl"
    with path.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "results" / "run-7"
    write_records(run, make_rows())
    return run


def test_write_summary(run_dir):
    path = write_summary(run_dir)
    assert path == run_dir / "summary.md"
    text = path.read_text()

    assert text.startswith("# accelbench summary: run-7")
    # per task a quality table, a latency table and a throughput table: named columns with units
    assert (
        "| variant | accuracy [95% CI] | Δ vs own fp32 | agreement with own fp32 | size (MB) |\n"
        "| --- | ---: | ---: | ---: | ---: |\n"
        "| minilm-sst2:fp32 | 0.905 [0.885, 0.924] | – | – | 90.4 |\n"
        "| minilm-sst2:bf16 | 0.904 [0.884, 0.923] | -0.001 | 99.5% | 45.2 |\n"
        "| minilm-sst2:dynamic-int8 | 0.901 [0.881, 0.920] | -0.004 | 98.2% | 25.1 |" in text
    )
    assert (
        "| variant | p50 latency (ms) | p90 latency (ms) | speed-up vs minilm-sst2:fp32 | frontier |" in text
    )
    assert "| minilm-sst2:dynamic-int8 | 4.1 | 5.0 | 2.00x | ✓ |" in text
    assert "| minilm-sst2:static-int8 | 5.0 | 6.0 | 1.67x |  |" in text  # not on the latency frontier
    assert (
        "| variant | throughput @32 (samples/s) | speed-up vs minilm-sst2:fp32 | peak RSS (MB) | frontier |"
        in text
    )
    assert "| minilm-sst2:dynamic-int8 | 210 | 2.10x | 300 | ✓ |" in text
    assert "| minilm-sst2:static-int8 | 220 (batch 16) | 2.20x | 290 | ✓ |" in text  # fallback is visible
    assert "| t5-small:bf16 | 35.05 [33.90, 36.20] | -0.16 | 97.0% | 121.0 |" in text  # BLEU gets 2 decimals
    assert "| variant | p50 latency (ms) | p90 latency (ms) | ms per token |" in text
    assert "0.2 |" not in text  # the stale duplicate row is gone
    for raw in ("metric_ci_low", "latency_ms_p90", "batch_size", "| cost", "0.862385"):
        assert raw not in text
    for table in [block for block in text.split("\n\n") if block.startswith("| variant")]:
        assert table.count("\n") >= 2 and table.splitlines()[0].count("|") <= 8  # at most 7 columns

    # recommendation sentences, one per objective
    assert (
        "- latency: Deploy minilm-sst2:dynamic-int8: 2x faster than minilm-sst2:fp32 "
        "(p90 latency 5.0 ms vs 10.0 ms) with accuracy 0.901 (95% CI 0.881-0.920), 99.6% of the baseline's 0.905."
        in text
    )
    assert (
        "- throughput: Deploy minilm-sst2:dynamic-int8: 2.1x the throughput of minilm-sst2:fp32 at batch 32"
        in text
    )
    assert "- latency: Deploy t5-small:bf16:" in text

    # failures: the unrecovered error with its first line only; the error fixed by a rerun is not listed
    failures = text.split("## Failures", 1)[1].split("## Environment", 1)[0]
    assert (
        "| sst2 | minilm-sst2:gptq-int4 | variant | RuntimeError: no int4 kernel for this CPU |" in failures
    )
    assert "RuntimeError: no int4 kernel for this CPU" in failures
    assert "Traceback" not in failures
    assert "flaky" not in failures

    env = text.split("## Environment", 1)[1]
    assert "- cpu_model: Intel(R) Xeon(R) Platinum 8375C" in env
    assert "- cores_logical: 2" in env
    assert "- cpu_flags: avx2, avx512f, amx_bf16" in env
    assert "- torch: 2.13.0+cpu" in env
    assert "- git_commit: abc1234" in env

    for task in ("sst2", "multi30k"):
        png = run_dir / "figures" / f"{task}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert f"](figures/{task}.png)" in text


def test_write_summary_without_figures_and_failures(tmp_path):
    run = tmp_path / "run"
    write_records(run, [r for r in make_rows() if r["status"] == "ok"])
    text = write_summary(run, figures=False).read_text()
    assert not (run / "figures").exists()
    assert "![" not in text
    assert "None: every configuration ran." in text


def test_summary_fraction_changes_recommendation(run_dir):
    records = read_run(run_dir)
    text = summary_markdown(records, fraction=1.0, objectives=("latency",))
    assert "- latency: Deploy minilm-sst2:fp32 (the baseline): no faster variant reaches 100%" in text
    assert "- throughput:" not in text and "**Throughput**" not in text


def test_summary_without_fp32_still_renders(run_dir):
    records = read_run(run_dir)
    text = summary_markdown(records[records["method"] != "fp32"])
    assert "no recommendation" in text and "fp32" in text
    assert "| minilm-sst2:bf16 |" in text


def test_summary_task_with_only_errors():
    records = pd.DataFrame([r for r in make_rows() if r["status"] == "error" or r["task"] == "multi30k"])
    text = summary_markdown(records)
    assert "## sst2" in text and "No results" in text
    assert "minilm-sst2:gptq-int4" in text


def test_bad_arguments(run_dir):
    with pytest.raises(ConfigError):
        write_summary(run_dir, fraction=1.5)
    with pytest.raises(ConfigError):
        summary_markdown(read_run(run_dir), objectives=("latency", "joules"))
    with pytest.raises(DataError):
        write_summary(run_dir.parent / "missing")


def test_read_run_skips_a_cut_off_last_line(tmp_path):
    run = tmp_path / "run"
    path = write_records(run, make_rows()[:3])
    path.write_text(path.read_text() + '{"run": "run-7", "key": \n')
    records = read_run(run)  # the first error, the stale realtime row and its rerun; the cut line is lost
    assert records["key"].tolist() == ["k-minilm-sst2:dynamic-int8", "k-minilm-sst2:fp32"]
    assert records["latency_ms_p90"].iloc[1] == 10.0  # the stale duplicate is not current


def test_markdown_table_escapes_pipes():
    table = markdown_table(["a", "b"], [["x|y", None], [1.5, "two\nlines"]], right=[False, True])
    assert table.splitlines() == ["| a | b |", "| --- | ---: |", "| x\\|y | – |", "| 1.5 | two lines |"]


def test_missing_run_raises(tmp_path):
    with pytest.raises(DataError, match="records"):
        write_summary(tmp_path / "never-ran")


# ------------------------------------------------------------------------------------------------
# One rule for current records, skipped variants, runs without an objective
# ------------------------------------------------------------------------------------------------


def _variant_rows(
    model_key: str, timestamp: str, method: str, metric: float, p90: float, thr: float
) -> list[dict]:
    base = {"run": "run-8", "key": f"k-{model_key}-{method}", "status": "ok", "error": None, "timestamp": timestamp,
            "task": "sst2", "task_kind": "classification", "model": "m", "model_key": model_key, "method": method,
            "variant": f"m:{method}", "padding": "dynamic", "metric_name": "accuracy", "metric": metric,
            "metric_ci_low": metric - 0.02, "metric_ci_high": metric + 0.02, "size_mb": 90.0}  # fmt: skip
    realtime = {"scenario": "realtime", "batch_size": 1, "latency_ms_p50": p90 * 0.8, "latency_ms_p90": p90}
    batch = {"scenario": "batch", "batch_size": 32, "latency_ms_p90": 32000 / thr, "throughput": thr}
    return [base | realtime, base | batch]


def retrained_rows() -> list[dict]:
    """Model m measured under an old recipe, then retrained (a new model_key) and measured again."""
    rows = _variant_rows("old", "2025-01-01T00:00:00", "fp32", 0.812, 20.0, 50.0)
    rows += _variant_rows("old", "2025-01-01T00:01:00", "dynamic-int8", 0.811, 7.0, 95.0)
    rows += _variant_rows("new", "2025-03-01T00:00:00", "fp32", 0.907, 10.0, 100.0)
    rows += _variant_rows("new", "2025-03-01T00:01:00", "dynamic-int8", 0.903, 4.0, 260.0)
    return rows


def test_summary_frontier_and_recommendation_agree_on_a_retrained_model(tmp_path):
    run = tmp_path / "run-8"
    write_records(run, retrained_rows())
    raw = pd.DataFrame(retrained_rows())
    text = write_summary(run, figures=False).read_text()
    assert summary_markdown(raw, figures={}) == text  # raw or read_run records: the same summary

    table = frontier(raw, "sst2", "latency")
    assert table["metric"].tolist() == [0.903, 0.907] and table["cost"].tolist() == [4.0, 10.0]
    for objective in ("latency", "throughput"):
        assert f"- {objective}: {recommend(raw, 'sst2', objective=objective).text}" in text
    assert "| m:dynamic-int8 | 0.903 [0.883, 0.923] |" in text and "| 260 |" in text
    for stale in ("0.812", "0.811", "20.0", "| 95 |", "7.0 |"):
        assert stale not in text
    assert "4 records: 2 ok variant(s) over 1 task(s), 0 error row(s)." in text


def test_skipped_and_timed_out_variants_are_listed_apart_from_failures(run_dir):
    extra = [
        {"run": "run-7", "key": "k-amx", "status": "skipped", "task": "sst2", "model": "minilm-sst2",
         "method": "amx-int8", "variant": "minilm-sst2:amx-int8", "error": "needs AMX, which this CPU lacks",
         "metric": 0.99, "latency_ms_p90": 0.1},
        {"run": "run-7", "key": "k-slow", "status": "timeout", "task": "sst2", "model": "minilm-sst2",
         "method": "gptq-int4", "variant": "minilm-sst2:slow", "error": "stopped after 600 s"},
        {"run": "run-7", "key": "k-only", "status": "skipped", "task": "cola", "model": "x", "method": "fp32",
         "variant": "x:fp32", "error": "no data for cola here"},
    ]  # fmt: skip
    write_records(run_dir, make_rows() + extra)
    text = write_summary(run_dir, figures=False).read_text()
    failures = text.split("## Failures", 1)[1].split("## Skipped on this machine", 1)[0]
    skipped = text.split("## Skipped on this machine", 1)[1].split("## Environment", 1)[0]
    assert "minilm-sst2:gptq-int4" in failures and "amx" not in failures and "slow" not in failures
    assert "| sst2 | minilm-sst2:amx-int8 | – | skipped | needs AMX, which this CPU lacks |" in skipped
    assert "| sst2 | minilm-sst2:slow | – | timeout | stopped after 600 s |" in skipped
    assert "| cola | x:fp32 | – | skipped | no data for cola here |" in skipped
    tables = text.split("## Failures", 1)[0]
    assert "amx-int8" not in tables and "minilm-sst2:slow" not in tables  # never ranked
    assert "## cola" in tables and "No results:" in tables and "skipped on this machine" in tables
    assert "2 skipped on this machine, 1 timed out." in text
    assert "## Skipped on this machine or timed out" in text
    assert "3 configuration(s) not measured here (2 skipped, 1 timed out at the time limit)" in text


def test_run_without_realtime_scenario(tmp_path):
    """A benchmark with realtime: false has only batch rows: no latency frontier, and no crash."""
    run = tmp_path / "run"
    write_records(run, [r for r in make_rows() if r.get("scenario") != "realtime"])
    text = write_summary(run).read_text()
    assert "- latency: no latency measurements in this run (the real-time (batch 1) scenario" in text
    assert "- throughput: Deploy minilm-sst2:dynamic-int8: 2.1x the throughput" in text
    assert "| minilm-sst2:dynamic-int8 | 0.901 [0.881, 0.920] | -0.004 | 98.2% | 25.1 |" in text
    assert "| minilm-sst2:dynamic-int8 | 210 | 2.10x | 300 | ✓ |" in text and "**Latency**" not in text
    assert (run / "figures" / "sst2.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------------------------------------
# Records of repeated rounds: intervals, paired speed-ups, delta tests, timings
# ------------------------------------------------------------------------------------------------


def _rounds_run(tmp_path: Path) -> Path:
    records = make_records_with_intervals()
    gptq = records["variant"] == "minilm-sst2:gptq-int4"
    records.loc[gptq, ["status", "error", "elapsed_s"]] = ["timeout", "stopped at the 600 s limit", 612.0]
    run = tmp_path / "rounds"
    append_records(run, records.to_dict("records"))  # through JSON, as a real run: NaN -> null
    return run


def test_summary_shows_intervals_paired_speedups_and_significance(tmp_path):
    text = write_summary(_rounds_run(tmp_path), figures=False).read_text()
    # two models: both deltas, each named by what it is against
    assert (
        "| variant | accuracy [95% CI] | Δ vs own fp32 | Δ vs minilm-sst2:fp32 | agreement with own fp32 |"
        in text
    )
    assert (
        "| minilm-sst2:dynamic-int8 | 0.901 [0.881, 0.920] | -0.004 n.s. [-0.014, +0.006] | -0.004 | 99.0% |"
        in text
    )
    assert "| minilm-sst2:static-int8 | 0.880 [0.860, 0.900] | -0.025* [-0.035, -0.015] | -0.025 |" in text
    assert "| tiny-sst2:fp32 | 0.850 [0.828, 0.871] | – | -0.055 | – | 10.0 |" in text  # its own fp32: no Δ
    assert "| minilm-sst2:dynamic-int8 | 4.0 [3.8–4.2] | 5.0 [4.8–5.2] | 2.00x [1.81–2.21]† | ✓ |" in text
    assert "| minilm-sst2:dynamic-int8 | 210 [200–220] | 2.10x [2.05–2.15] | ✓ |" in text
    assert (
        "| tiny-sst2:fp32 | 400 [380–420] | 4.00x [3.62–4.42]† | ✓ |" in text
    )  # another model's fp32: unpaired
    assert "| minilm-sst2:fp32 | 100 [95–105] | 1.00x | ✓ |" in text
    notes = text.split("**Recommendation**", 1)[0].rsplit("|", 1)[1]
    assert "medians over 6 rounds" in notes and "96.9% interval of the median" in notes
    assert "Throughput speed-ups with an interval are paired" in notes
    assert "† not paired: the ratio of two medians" in notes and "teacher" in notes
    assert "* significant at p<0.05, n.s. not significant (paired test: mcnemar-exact)" in notes
    assert "It is distinguishable from the runner-up minilm-sst2:bf16 in p90 latency" in text
    assert "its loss of 0.004 against minilm-sst2:fp32 is not significant (p=0.62, mcnemar-exact)" in text


def test_one_round_and_a_missing_batch_size_are_said_as_they_are(tmp_path):
    """repeats: 1 gives figures without intervals (not a '0.0% interval' of [x-x]); with no batch-32 point
    the throughput table is headed by the batch size its rows were measured at."""
    records = make_records_with_intervals()
    records = records[(records["scenario"] != "batch") | (records["batch_size"] == 8)].copy()
    for column in [c for c in records.columns if c.endswith(("_ci_low", "_ci_high")) and "metric" not in c]:
        records[column] = None  # what median_interval gives for one round
    records["repeats"], records["speed_ci_level"] = 1, 0.0
    run = tmp_path / "one"
    append_records(run, records.to_dict("records"))
    text = write_summary(run, figures=False).read_text()
    assert "**Throughput** at batch 8 (batch scenario)" in text and "throughput @8 (samples/s)" in text
    assert "at batch 32" not in text.split("**Recommendation**", 1)[0]
    notes = text.split("**Recommendation**", 1)[0].rsplit("|", 1)[1]
    assert "medians over 1 round (" in notes and "a figure from 1 round has no interval" in notes
    assert "0.0%" not in text and "interval of the median" not in notes
    assert "–" not in text.split("**Latency**", 1)[1].split("\n\n", 2)[1]  # no [x–y] in the speed cells
    # the notebooks' frontier table names the same size
    from accelbench.analysis.tables import frontier_people_table

    people = frontier_people_table(read_run(run), "sst2", "throughput")
    assert (
        "throughput @8 (samples/s)" in people.columns and "throughput @32 (samples/s)" not in people.columns
    )


def test_summary_says_where_the_time_went_and_lists_timeouts(tmp_path):
    text = write_summary(_rounds_run(tmp_path), figures=False).read_text()
    section = text.split("**Where the time went**", 1)[1].split("## Failures", 1)[0]
    assert "| model | variants | apply s | quality s | speed s | total s | timed out |" in section
    assert "| minilm-sst2 | 5 | 10 | 50 | 150 | 792 | 1 |" in section  # 4 x 45 s + the 612 s time-out
    assert "| tiny-sst2 | 1 | 2.0 | 10 | 30 | 45 | 0 |" in section
    assert "| all | 6 | 12 | 60 | 180 | 837 | 1 |" in section
    skipped = text.split("## Skipped on this machine or timed out", 1)[1]
    assert (
        "| sst2 | minilm-sst2:gptq-int4 | – | timeout | stopped at the 600 s limit (elapsed 612 s) |"
        in skipped
    )
    assert "1 timed out." in text.splitlines()[2]


def test_old_records_have_no_interval_notes_or_time_table(run_dir):
    text = write_summary(run_dir, figures=False).read_text()
    for absent in ("†", "Where the time went", "rounds", "n.s.", "paired", "distinguishable"):
        assert absent not in text


def test_a_speedup_against_fp32_of_an_earlier_session_is_marked_unpaired():
    records = make_records_with_intervals()
    records.loc[records["variant"] == "minilm-sst2:bf16", "speedup_paired"] = False
    text = summary_markdown(records, objectives=("throughput",))
    assert "| 1.50x [1.46–1.54]† |" in text and "| 2.10x [2.05–2.15] |" in text


def test_busy_points_are_flagged_in_the_summary():
    records = make_records_with_intervals()
    busy = (records["variant"] == "minilm-sst2:bf16") & (records["scenario"] == "realtime")
    records["busy"], records["busy_threshold"] = busy, 0.25
    records["busy_other_cpu_share"] = busy * 0.71
    text = summary_markdown(records)
    section = text.split("## sst2", 1)[1].split("**Quality**", 1)[0]
    assert (
        "⚠ 1 of 12 speed points were measured on a busy machine (other processes took over 25% of the CPU, "
        "up to 71%): minilm-sst2:bf16 (realtime)." in section
    )
    assert "| minilm-sst2:bf16 | 6.4 [6.1–6.7] | 8.0 [7.6–8.4] ⚠ |" in text  # the point itself
    assert "| minilm-sst2:bf16 | 150 [142–158] | 1.50x [1.46–1.54] | ✓ |" in text  # its batch point was quiet
    quiet = summary_markdown(make_records_with_intervals())
    assert "⚠" not in quiet and "busy machine" not in quiet
