"""The planner's validation as a report: predicted and measured p99 side by side (Markdown), kept as JSON
beside it, and read back as flat rows for notebook 05's plot. ``validate`` produces the results."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..analysis.markdown import markdown_table

TOLERANCE = 0.25  # the target: predicted p99 within 25% of measured


def _error(r: dict) -> float | None:
    m = r.get("measured_p99_ms")
    return (r["predicted_p99_ms"] - m) / m if m else None


def markdown(result: dict) -> str:
    """The prediction and the measurement side by side, as a Markdown section."""
    head = ["variant", "load", "rate /s", "p99 ms, model only", "predicted p99 ms [10-90% of runs]",
            "measured p99 ms, median run", "each run's p99 ms", "each run's batch time / curves", "error",
            "within 25%"]  # fmt: skip
    rows = []
    for r, alone in zip(result["levels"], result["model_only"]["levels"], strict=True):
        m, err = r.get("measured_p99_ms"), _error(r)
        each = ", ".join(f"{x:.0f}" if x is not None else "-" for x in r.get("run_p99_ms", [m]))
        ratios = ", ".join(f"{x:.2f}" if x else "-" for x in r.get("run_batch_vs_curves") or []) or "-"
        spread = (f" [{r['predicted_p99_low_ms']:.0f}-{r['predicted_p99_high_ms']:.0f}]"
                  if r.get("predicted_p99_low_ms") is not None else "")  # fmt: skip
        rows.append([result["variant"], f"{r['level']:.0%}", f"{r['rate']:.1f}", f"{alone['predicted_p99_ms']:.1f}",
                     f"{r['predicted_p99_ms']:.1f}{spread}", f"{m:.1f}" if m else "-", each, ratios,
                     f"{err:+.0%}" if err is not None else "-",
                     "yes" if err is not None and abs(err) <= TOLERANCE else "no"])  # fmt: skip
    c, cal = result["config"], result["calibration"]
    title = (f"### Planner validation: {result['variant']}, {c['replicas']} replica(s) x {c['threads']} thread(s), "
             f"batches up to {c['max_batch_size']}, wait {c['max_wait_ms']:g} ms")  # fmt: skip
    rates = " and ".join(f"{r:.1f}" for r in cal["rates"])
    peak = (f"Predicted peak at p99 <= {c['p99_ms']:g} ms: {result['predicted_peak_rate']:.1f} req/s with the serving "
            f"overheads measured at {rates} req/s ({cal['front_ms']:.2f} ms of CPU per request in the front, "
            f"{cal.get('generator_ms', 0.0):.2f} ms in the load generator on the same cores, "
            f"{cal.get('base_cores', 0.0):.3f} cores busy at rate 0, {cal['dispatch_ms']:.2f} ms per batch "
            f"and {cal.get('wake_ms', 0.0):.2f} ms on average to wake an idle replica), "
            f"{result['model_only']['predicted_peak_rate']:.1f} req/s for the model alone. The load levels are "
            f"shares of the first; each was load-tested {c['repeats']} time(s) for {c['duration_s']:g} s (rounds "
            "of one run per level, the order rotated each round), and the run with the median p99 stands for it. "
            f"The prediction is the median p99 of {result.get('windows', 20)} simulated runs of that length.")  # fmt: skip
    ref = [x for x in cal.get("batch_vs_curves") or [] if x]
    note = (f"Batch time / curves: each run's mean batch time at the server (to the replica and back) over the "
            f"curves' at its mean batch size; {' and '.join(f'{x:.2f}' for x in ref)} in the calibration runs. "
            "A run far above that ran on a slower machine than the curves were measured on.") if ref else ""  # fmt: skip
    table = markdown_table(head, rows, [False] + [True] * (len(head) - 1))
    return "\n".join([title, "", peak, "", table, ""] + ([note, ""] if note else []))


def write_validation(out_dir: str | os.PathLike[str], result: dict) -> Path:
    """``<out_dir>/plan_validation_<method>_<R>x<T>_b<B>.json`` and ``.md``; returns the JSON's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c = result["config"]
    name = f"plan_validation_{result['method']}_{c['replicas']}x{c['threads']}_b{c['max_batch_size']}"
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out / f"{name}.md").write_text(markdown(result))
    return out / f"{name}.json"


def read_validations(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every validation kept in ``out_dir`` as flat rows (one per variant and level), for the plot."""
    rows = []
    for path in sorted(Path(out_dir).glob("plan_validation_*.json")):
        result = json.loads(path.read_text())
        for r in result["levels"]:
            err = _error(r)
            rows.append({"variant": result["variant"], "level": r["level"], "rate": r["rate"],
                         "predicted_p99_ms": r["predicted_p99_ms"], "measured_p99_ms": r.get("measured_p99_ms"),
                         "predicted_p99_low_ms": r.get("predicted_p99_low_ms"),
                         "predicted_p99_high_ms": r.get("predicted_p99_high_ms"),
                         "error": err, "within": err is not None and abs(err) <= TOLERANCE,
                         "replicas": result["config"]["replicas"], "threads": result["config"]["threads"]})  # fmt: skip
    return pd.DataFrame(rows)
