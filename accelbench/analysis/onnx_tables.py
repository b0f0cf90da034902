"""ONNX Runtime tables for notebook 02: calibration choices of static int8, graph fusions and their check."""

from __future__ import annotations

import json

import pandas as pd

from .formatting import MISSING, display_metric_name, row_float
from .markdown import (
    fmt,
    fmt_metric_ci,
    fmt_ms,
    fmt_speedup,
)
from .tables import (
    VARIANT,
    metric_name,
    ok_rows,
    people_frame,
)

ORT_STATIC_INT8 = "ort-static-int8"
FUSED_NOTHING = "nothing fused"


def calibration_table(records: pd.DataFrame, method: str = ORT_STATIC_INT8) -> pd.DataFrame:
    """The metric (with its 95% interval) of every calibration setting of ``method``: a row per calibration
    method, a column per calibration sample count ('128 samples')."""
    df = ok_rows(records)
    if "method_name" not in df.columns or "method_options" not in df.columns:
        return pd.DataFrame()
    df = df[df["method_name"] == method].drop_duplicates(VARIANT, keep="last")
    if df.empty:
        return pd.DataFrame()
    opts = df["method_options"].map(lambda o: json.loads(o) if isinstance(o, str) else {})
    table = pd.DataFrame({
        "calibration": opts.map(lambda o: o.get("calibration", "minmax")).to_numpy(),
        "samples": opts.map(lambda o: int(o.get("samples", 128))).to_numpy(),
        "cell": [fmt_metric_ci(row) for _, row in df.iterrows()],
    })  # fmt: skip
    wide = table.pivot_table(index="calibration", columns="samples", values="cell", aggfunc="last")
    wide = wide.reindex(columns=sorted(wide.columns)).fillna(MISSING)
    wide.columns = [f"{n} samples" for n in wide.columns]
    wide.columns.name = f"{display_metric_name(metric_name(df))} [95% CI]"
    return wide


def _details(row: pd.Series) -> dict:
    raw = row.get("variant_details")
    return json.loads(raw) if isinstance(raw, str) else raw if isinstance(raw, dict) else {}


def _onnx_rows(records: pd.DataFrame) -> pd.DataFrame:
    df = ok_rows(records)
    if "variant_details" not in df.columns or "runtime" not in df.columns:
        return df.iloc[0:0]
    return df[df["runtime"] == "onnxruntime"].drop_duplicates(VARIANT, keep="last")


def fusion_counts_table(records: pd.DataFrame) -> pd.DataFrame:
    """What ONNX Runtime's transformer optimizer fused: a row per fused operator, a column per variant
    ('none' for a variant where nothing was fused; ``fusion_notes`` says why)."""
    counts: dict[str, dict[str, object]] = {}
    variants = []
    for _, row in _onnx_rows(records).iterrows():
        variants.append(row[VARIANT])
        fusions = (_details(row).get("optimizer") or {}).get("fusions") or {}
        for kind, count in fusions.items():
            if count:
                counts.setdefault(kind, {})[row[VARIANT]] = str(int(count))
    if not variants:
        return pd.DataFrame()
    table = pd.DataFrame.from_dict(counts, orient="index").reindex(columns=variants)
    fused_nothing = [v for v in variants if table.empty or table[v].isna().all()]
    table = table.astype(object).where(table.notna(), MISSING)
    if fused_nothing:
        table.loc[FUSED_NOTHING] = ["none" if v in fused_nothing else MISSING for v in variants]
    table.index.name = "fused operator"
    return table


def fusion_notes(records: pd.DataFrame) -> str:
    """Why nothing was fused, per variant where the optimizer said so (one line per reason); '' otherwise."""
    reasons: dict[str, list[str]] = {}
    for _, row in _onnx_rows(records).iterrows():
        optimizer = _details(row).get("optimizer") or {}
        if optimizer.get("note") and not any((optimizer.get("fusions") or {}).values()):
            reasons.setdefault(str(optimizer["note"]), []).append(str(row[VARIANT]))
    return "\n\n".join(f"{', '.join(names)}: {note}" for note, names in reasons.items())


def fusion_table(records: pd.DataFrame) -> pd.DataFrame:
    """ONNX Runtime graph fusions per variant, and the fused-vs-unfused timing check where it was run, as data
    (numbers, for checks); notebooks show ``fusion_counts_table`` and ``fusion_check_table``."""
    rows = []
    for _, r in _onnx_rows(records).iterrows():
        d = _details(r)
        opt = d.get("optimizer") or {}
        fusions = opt.get("fusions") or {}
        check = d.get("fusion_check") or {}
        rows.append({VARIANT: r[VARIANT],
                     "fusions": ", ".join(f"{k} {v}" for k, v in fusions.items() if v)
                                or ("none: " + opt["note"] if opt.get("note") else "none"),
                     "unfused ms": check.get("unfused_ms"), "fused ms": check.get("fused_ms"),
                     "fused speed-up": check.get("speedup"), "fused not slower": check.get("fused_not_slower"),
                     "max |diff|": check.get("max_abs_diff")})  # fmt: skip
    return pd.DataFrame(rows)


def fusion_check_table(records: pd.DataFrame) -> pd.DataFrame:
    """ort-fp32's check that the fused graph is not slower than the plain export, where it was run."""
    cells = []
    for _, row in _onnx_rows(records).iterrows():
        check = _details(row).get("fusion_check") or {}
        if not check:
            continue
        slower = check.get("fused_not_slower")
        cells.append({
            VARIANT: row[VARIANT], "unfused (ms)": fmt_ms(check.get("unfused_ms")),
            "fused (ms)": fmt_ms(check.get("fused_ms")), "fused speed-up": fmt_speedup(row_float(check, "speedup")),
            "fused not slower": MISSING if slower is None else ("yes" if slower else "no"),
            "largest output difference": fmt(check.get("max_abs_diff"), "{:.1e}"),
        })  # fmt: skip
    return people_frame(cells)
