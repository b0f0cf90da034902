"""The plan a user reads: the recommended deployment in one sentence, the table per variant, quality joined
from a benchmark run (a cost-versus-quality frontier), the autoscaling files, and ``accelbench plan``."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from pathlib import Path

import pandas as pd

from ..analysis.frontier import pareto_mask
from ..analysis.markdown import markdown_table
from ..analysis.recommend import DEFAULT_FRACTION, check_fraction
from ..analysis.style import quality_floor
from ..exceptions import ConfigError
from ..records import append_records, read_current
from .autoscale import autoscaling_files
from .curve_records import require_curves
from .planner import DEFAULT_WAITS_MS, VARIANT_KEYS, PlanOptions, plan
from .prices import load_prices
from .traffic import Traffic, load_traffic

logger = logging.getLogger(__name__)

PLAN_FILE = "plan.jsonl"
PLAN_MARKDOWN = "plan.md"
AUTOSCALING_DIR = "autoscaling"
QUALITY_COLUMNS = ("metric_name", "metric", "metric_ci_low", "metric_ci_high")
TABLE_COLUMNS = {
    "variant": "variant", "machine": "machine", "machines": "machines", "replicas_per_machine": "replicas",
    "threads": "threads", "max_batch_size": "max batch", "max_wait_ms": "wait ms",
    "predicted_p99_ms": "p99 ms", "utilisation": "utilisation", "cost_per_hour": "cost/h",
    "cost_per_million": "cost/million", "metric": "quality",
}  # fmt: skip


def quality_table(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Each variant's quality from a benchmark run's records (one row per task, model and method)."""
    df = read_current(run_dir)
    if df.empty or not {"metric", *VARIANT_KEYS} <= set(df.columns):
        raise ConfigError(
            f"no quality records in {run_dir}", "pass --quality with a run folder of accelbench run"
        )
    df = df[df["metric"].notna()]
    cols = [*VARIANT_KEYS, *(c for c in QUALITY_COLUMNS if c in df.columns)]
    return df[cols].drop_duplicates(subset=list(VARIANT_KEYS), keep="last").reset_index(drop=True)


def join_quality(plan_df: pd.DataFrame, quality: pd.DataFrame) -> pd.DataFrame:
    """The plan with each variant's quality columns (NaN where the run did not measure that variant)."""
    base = plan_df.drop(columns=[c for c in QUALITY_COLUMNS if c in plan_df.columns])
    return base.merge(quality, on=list(VARIANT_KEYS), how="left")


def cost_quality_frontier(plan_df: pd.DataFrame) -> pd.DataFrame:
    """Feasible variants with a quality, cheapest first, ``on_frontier`` True where no other variant is
    both cheaper per million inferences and better."""
    if "metric" not in plan_df.columns:
        raise ConfigError("the plan has no quality to draw a frontier with", "pass --quality results/<run>")
    df = plan_df[plan_df["feasible"].astype(bool) & plan_df["metric"].notna()].copy()
    df["on_frontier"] = pareto_mask(df[["cost_per_million", "metric"]], [False, True])
    return df.sort_values(["cost_per_million", "metric"], ascending=[True, False]).reset_index(drop=True)


def recommended(plan_df: pd.DataFrame, fraction: float = DEFAULT_FRACTION) -> pd.Series:
    """The cheapest feasible variant per million inferences; with quality joined, only among those within
    ``fraction`` of the best fp32 metric. Raises when no variant meets the bound."""
    ok = plan_df[plan_df["feasible"].astype(bool)]
    if ok.empty:
        reasons = "; ".join(f"{r.variant}: {r.reason}" for r in plan_df.itertuples())
        raise ConfigError(
            f"no deployment meets the p99 bound ({reasons})",
            "relax --p99-ms, add larger machine types to the price file, or measure faster variants",
        )
    if "metric" in ok.columns:
        floor = quality_floor(plan_df, check_fraction(fraction))
        if floor is not None:
            good = ok[ok["metric"] >= floor[0]]
            if good.empty:
                logger.warning("no feasible variant keeps %.0f%% of %s's quality", 100 * fraction, floor[1])
            else:
                ok = good
    return ok.sort_values(["cost_per_million", "predicted_p99_ms"]).iloc[0]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def sentence(row: pd.Series, traffic: Traffic) -> str:
    """The one sentence a user acts on."""
    wait = f"{row['max_wait_ms']:g} ms wait" if row["max_wait_ms"] else "no wait"
    hourly = row.get("machines_per_hour")
    machines = _plural(int(row["machines"]), "machine")
    if not traffic.constant and isinstance(hourly, list) and min(hourly) != max(hourly):
        machines = f"{min(hourly)}-{max(hourly)} machines by hour"
    return (
        f"for {traffic.describe()} at p99 <= {row['p99_bound_ms']:g} ms: {row['variant']}, "
        f"{_plural(int(row['replicas_per_machine']), 'replica')} x {_plural(int(row['threads']), 'thread')}, "
        f"batches up to {int(row['max_batch_size'])} with {wait}, {machines} of type {row['machine']}, "
        f"{row['currency']} {row['cost_per_million']:.3f} per million inferences "
        f"(predicted p99 {row['predicted_p99_ms']:.0f} ms at {100 * row['utilisation']:.0f}% utilisation; "
        f"prices {row['price_source'] or 'from the price file'}, {row['price_date'] or 'undated'})"
    )


def plan_markdown(plan_df: pd.DataFrame, rec: pd.Series, traffic: Traffic) -> str:
    """plan.md: the sentence, the table per variant, and the assumptions."""
    cols = [c for c in TABLE_COLUMNS if c in plan_df.columns]
    table = plan_df[plan_df["feasible"].astype(bool)][cols]
    rows = [[f"{v:.3g}" if isinstance(v, float) else v for v in r] for r in table.itertuples(index=False)]
    numeric = [c not in ("variant", "machine") for c in cols]
    lines = [
        f"# Deployment plan for {traffic.describe()}",
        "",
        f"**Recommendation:** {sentence(rec, traffic)}",
        "",
    ]
    lines += [
        markdown_table([TABLE_COLUMNS[c] for c in cols], rows, numeric) if rows else "(no feasible variant)",
        "",
    ]
    for r in plan_df[~plan_df["feasible"].astype(bool)].itertuples():
        lines.append(f"- {r.variant}: no deployment meets the bound ({r.reason})")
    if bool(plan_df.get("extrapolated_colocation", pd.Series(dtype=bool)).fillna(False).any()):
        lines.append("- Some deployments place more replicas per machine than were measured side by side: "
                     "their interference is assumed equal to the most co-located measurement.")  # fmt: skip
    if float(rec.get("front_ms") or 0) or float(rec.get("dispatch_ms") or 0):
        lines.append(f"- Serving overheads modelled: {rec['front_ms']:g} ms of CPU per request in the HTTP front "
                     "(taken from the replicas where they fill every core), "
                     f"{rec['dispatch_ms']:g} ms per batch handed to a replica.")  # fmt: skip
    else:
        lines.append("- Serving overheads (HTTP front, hand-off to replicas) are not modelled: pass --front-ms and "
                     "--dispatch-ms (measured by benchmarks/plan_validate.py) when requests are short.")  # fmt: skip
    lines.append("- A machine type's cores are assumed as fast as those the service curves were measured on; "
                 "prices are the price file's (check them). Validate with benchmarks/plan_validate.py.")  # fmt: skip
    return "\n".join(lines) + "\n"


def write_plan(
    out_dir: str | os.PathLike[str], plan_df: pd.DataFrame, rec: pd.Series, traffic: Traffic
) -> Path:
    """plan.jsonl (one record per variant, appended), plan.md and the recommended deployment's autoscaling
    files under ``autoscaling/``."""
    out = Path(out_dir)
    records = [{k: v for k, v in row.items() if k != "options"} | {"options": json.dumps(row.get("options"))}
               for row in plan_df.to_dict("records")]  # fmt: skip
    append_records(out / PLAN_FILE, records)
    (out / PLAN_MARKDOWN).write_text(plan_markdown(plan_df, rec, traffic), encoding="utf-8")
    auto = out / AUTOSCALING_DIR
    auto.mkdir(parents=True, exist_ok=True)
    for name, text in autoscaling_files(rec.to_dict()).items():
        (auto / name).write_text(text, encoding="utf-8")
    return out


def cmd_plan(args: argparse.Namespace) -> int:
    traffic = load_traffic(args.traffic, args.profile)
    opts = PlanOptions(
        p99_ms=args.p99_ms, batch_sizes=args.batch_sizes, waits_ms=args.waits_ms, seed=args.seed
    )
    machines = load_prices(args.prices)
    curves = require_curves(args.curves, args.task)
    df = plan(curves, traffic, machines, opts)
    if args.quality:
        df = join_quality(df, quality_table(args.quality))
    rec = recommended(df, args.fraction)
    out = write_plan(args.out or args.curves, df, rec, traffic)
    print(sentence(rec, traffic))
    print(f"plan: {out / PLAN_MARKDOWN}; autoscaling settings: {out / AUTOSCALING_DIR}/")
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or not math.isfinite(value):
        raise ConfigError(f"expected a positive number, got {text!r}", "pass e.g. --traffic 150 --p99-ms 100")
    return value


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    """``accelbench plan``: the cheapest deployment per variant for a traffic and a p99 bound."""
    p = sub.add_parser("plan", help="capacity and cost plan from measured service curves")
    p.add_argument("--curves", default="results/serving", help="folder with service_curves.jsonl")
    p.add_argument("--traffic", type=_positive, help="requests per second (the peak with --profile)")
    p.add_argument("--profile", help="YAML with hourly `rates:` or a `shape:` scaled to --traffic")
    p.add_argument("--p99-ms", type=_positive, required=True, help="latency bound at the 99th percentile")
    p.add_argument("--prices", default="configs/prices.yaml", help="machine types and prices (YAML)")
    p.add_argument("--quality", help="a benchmark run folder whose records give each variant's quality")
    p.add_argument("--fraction", type=float, default=DEFAULT_FRACTION, help="quality kept vs fp32 (0-1]")
    p.add_argument("--task", help="only this task's curves")
    p.add_argument(
        "--batch-sizes", type=int, nargs="+", help="largest batch sizes to try (default: measured)"
    )
    p.add_argument("--waits-ms", type=float, nargs="+", default=list(DEFAULT_WAITS_MS), help="waits to try")
    p.add_argument("--front-ms", type=float, default=0.0,
                   help="the HTTP front's CPU time per request; it also slows replicas that fill every core "
                        "(benchmarks/plan_validate.py measures it)")  # fmt: skip
    p.add_argument("--dispatch-ms", type=float, default=0.0, help="overhead per batch sent to a replica")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="where plan.md and autoscaling/ go (default: the curves folder)")
    p.set_defaults(fn=cmd_plan)
