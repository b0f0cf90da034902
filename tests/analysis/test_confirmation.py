"""Choose on eval, confirm on test: the targets, the side-by-side table, the summary section, frontiers untouched."""

from __future__ import annotations

import pandas as pd
import pytest

from accelbench.analysis import frontier, read_run, recommend, summary_markdown, write_summary
from accelbench.analysis.confirmation import (
    CONFIRMATION_FILE,
    HEADING,
    HOLDS,
    confirmation_section,
    confirmation_table,
    confirmation_targets,
    read_confirmations,
)
from accelbench.records import append_records

INT8, FP32 = "minilm-sst2:dynamic-int8", "minilm-sst2:fp32"


def _test_row(variant: str, metric: float, delta: float = 0.0, p: float | None = None, **extra) -> dict:
    model, method = variant.split(":")
    row = {"run": "unit", "key": f"t-{variant}", "timestamp": "2025-01-02T00:00:00", "task": "sst2",
           "task_kind": "classification", "model": model, "method": method, "variant": variant, "split": "test",
           "split_name": "test", "status": "ok", "error": None, "metric_name": "accuracy", "metric": metric,
           "metric_ci_low": metric - 0.02, "metric_ci_high": metric + 0.02, "metric_delta": delta,
           "n_eval": 500}  # fmt: skip
    if p is not None:
        row |= {
            "metric_delta_p": p,
            "metric_delta_significant": p < 0.05,
            "metric_delta_test": "mcnemar-exact",
        }
    return row | extra


def _confirmations(int8: float = 0.895, fp32: float = 0.900, **int8_extra) -> pd.DataFrame:
    return pd.DataFrame([_test_row(FP32, fp32), _test_row(INT8, int8, int8 - fp32, 0.4, **int8_extra)])


def test_targets_are_the_recommended_variant_and_its_baseline(records):
    assert confirmation_targets(records, "sst2") == [INT8, FP32]
    # only the baseline keeps 100% of itself: it is chosen, and confirmed once
    assert confirmation_targets(records, "sst2", fraction=1.0) == [FP32]
    # no fp32 baseline, no recommendation: nothing to confirm
    assert confirmation_targets(records[records["method"] != "fp32"], "sst2") == []


def test_table_sets_eval_beside_test_and_says_whether_the_choice_holds(records):
    table = confirmation_table(records, _confirmations(), "sst2").set_index("variant")
    assert list(table.index) == [INT8, FP32]
    int8 = table.loc[INT8]
    assert int8["chosen for"] == "latency, throughput"
    assert int8["accuracy on eval"].startswith("0.901 [0.881, 0.920]")
    assert int8["accuracy on test"].startswith("0.895 [0.875, 0.915]")
    assert int8["Δ vs own fp32 on test"].startswith("-0.005 n.s.")
    assert int8["% of baseline on eval"] == "99.6%" and int8["% of baseline on test"] == "99.4%"
    assert int8[HOLDS] == "yes (99.4% ≥ 99%)"
    assert table.loc[FP32, HOLDS] == "(baseline)" and table.loc[FP32, "chosen for"] == "baseline"
    # on test the int8 variant falls to 98.3% of fp32: the choice does not hold
    worse = confirmation_table(records, _confirmations(int8=0.885), "sst2").set_index("variant")
    assert worse.loc[INT8, HOLDS] == "no (98.3% < 99%)"
    # a looser rule keeps it
    loose = confirmation_table(records, _confirmations(int8=0.885), "sst2", fraction=0.98).set_index(
        "variant"
    )
    assert loose.loc[INT8, HOLDS].startswith("yes")


def test_missing_failed_and_stale_test_rows_are_said_so(records):
    only_fp32 = _confirmations().iloc[:1]
    assert confirmation_table(records, only_fp32, "sst2").iloc[0][HOLDS] == "not evaluated on the test split"
    failed = _confirmations(status="error", error="RuntimeError: no kernel\nTraceback ...")
    row = confirmation_table(records, failed, "sst2").iloc[0]
    assert row[HOLDS] == "error: RuntimeError: no kernel" and row["accuracy on test"] == "–"
    # test rows of older weights (a model retrained since) do not confirm the current variant
    with_keys = records.assign(model_key="new")
    stale = _confirmations(model_key="old")
    assert confirmation_table(with_keys, stale, "sst2").iloc[0][HOLDS] == "not evaluated on the test split"


def test_summary_section_and_nothing_else_changes(records):
    before = summary_markdown(records)
    after = summary_markdown(records, confirmations=_confirmations())
    assert HEADING not in before and HEADING in after
    section = after.split(HEADING, 1)[1].split("## Failures", 1)[0]
    assert "**sst2** (test split `test`)" in section
    assert "| minilm-sst2:dynamic-int8 | latency, throughput |" in section and "yes (99.4% ≥ 99%)" in section
    assert after.replace(HEADING + section, "") == before  # every other line as before
    assert confirmation_section(records, pd.DataFrame()) == [] and confirmation_section(records, None) == []


def test_run_folder_test_rows_never_reach_frontiers_or_recommendations(records, tmp_path):
    run_dir = tmp_path / "run"
    append_records(run_dir, records.to_dict("records"))
    table_before = frontier(read_run(run_dir), "sst2", "throughput")
    rec_before = recommend(read_run(run_dir), "sst2", objective="throughput")
    # test rows that, were they frontier rows, would win everything
    append_records(run_dir / CONFIRMATION_FILE, _confirmations(int8=0.999, fp32=0.5).to_dict("records"))
    assert "split" not in read_run(run_dir).columns  # records.jsonl holds no test row
    pd.testing.assert_frame_equal(frontier(read_run(run_dir), "sst2", "throughput"), table_before)
    assert recommend(read_run(run_dir), "sst2", objective="throughput") == rec_before
    assert list(read_confirmations(run_dir)["split"]) == ["test", "test"]
    text = write_summary(run_dir, figures=False).read_text()
    assert HEADING in text and "yes (199.8% ≥ 99%)" in text


@pytest.mark.parametrize("fraction", [0, 1.5])
def test_bad_fraction(records, fraction):
    from accelbench.exceptions import ConfigError

    with pytest.raises(ConfigError):
        confirmation_table(records, _confirmations(), "sst2", fraction=fraction)
