"""The capability table of summary.md's Environment: what each machine of a run's records could do (AMX,
AVX-512-BF16, VNNI, each runtime's precisions, a C++ compiler, the GPU of GPU runs), one column per machine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..environment import CAPABILITY_FIELDS, CPU_HAS_PREFIX


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, as pandas fills a field an older record lacks
    except TypeError:  # pd.NA
        return True


def _yes_no(value: object) -> str:
    return "?" if _missing(value) else ("yes" if bool(value) else "no")


def _flags_text(caps: Mapping[str, Any], flags: tuple[str, ...]) -> str:
    return " / ".join(_yes_no(caps.get(CPU_HAS_PREFIX + f)) for f in flags)


def _listed(value: object) -> list[str] | None:
    return None if _missing(value) else [v for v in str(value).split(",") if v]


def _ct2_text(caps: Mapping[str, Any]) -> str:
    types, version = _listed(caps.get("env_ct2_compute_types")), caps.get("env_ctranslate2")
    if types is None:
        return "not installed" if _missing(version) else f"{version}: fails to load here"
    head = f"{version}: " if not _missing(version) else ""
    has = ", ".join(f"{t} {'yes' if t in types else 'no'}" for t in ("int8", "int16", "bfloat16"))
    return f"{head}{has} (all: {', '.join(types) or 'none'})"


def _ort_text(caps: Mapping[str, Any]) -> str:
    providers = _listed(caps.get("env_ort_providers"))
    if providers is None:
        return "not installed"
    version = caps.get("env_onnxruntime")
    head = f"{version}: " if not _missing(version) else ""
    return f"{head}{', '.join(providers)}"


def _torch_text(caps: Mapping[str, Any]) -> str:
    level, engines = caps.get("env_torch_cpu_capability"), _listed(caps.get("env_torch_quantized_engines"))
    if _missing(level) and engines is None:
        return "not installed"
    version = caps.get("env_torch")
    head = f"{version}: " if not _missing(version) else ""
    kernels = "?" if _missing(level) else level
    return f"{head}kernels {kernels}; int8 engines {', '.join(engines or []) or 'none'}"


GPU_FIELDS = (
    "gpu_name",
    "gpu_capability",
    "gpu_memory_gb",
    "gpu_driver",
    "cuda_version",
    "cudnn_version",
    "gpu_clock_max_sm_mhz",
)  # fmt: skip  (devices.gpu_environment: records of GPU runs)


def _gpu_text(caps: Mapping[str, Any]) -> str:
    if _missing(caps.get("gpu_name")):
        return "none used"
    parts = [str(caps["gpu_name"])]
    for field, fmt in (("gpu_capability", "sm {}"), ("gpu_memory_gb", "{} GB"), ("cuda_version", "CUDA {}"),
                       ("cudnn_version", "cuDNN {}"), ("gpu_driver", "driver {}"),
                       ("gpu_clock_max_sm_mhz", "max SM clock {:.0f} MHz")):  # fmt: skip
        if not _missing(caps.get(field)):
            parts.append(fmt.format(caps[field]))
    return "; ".join(parts)


def _capability_rows(caps: Mapping[str, Any], gpu: bool = False) -> list[tuple[str, str]]:
    """(capability, value) rows of one machine, for the summary's table (a GPU row where a run used one)."""
    compiler = caps.get("env_cxx_compiler")
    return [
        *([("GPU", _gpu_text(caps))] if gpu else []),
        ("AMX tile / int8 / bf16", _flags_text(caps, ("amx_tile", "amx_int8", "amx_bf16"))),
        ("AVX2 / AVX-512F / AVX-512-BF16", _flags_text(caps, ("avx2", "avx512f", "avx512_bf16"))),
        ("VNNI: AVX-512 / AVX", _flags_text(caps, ("avx512_vnni", "avx_vnni"))),
        (
            "native bf16 / int8 dot products",
            f"{_yes_no(caps.get('env_bf16_native'))} / {_yes_no(caps.get('env_int8_vnni'))}",
        ),
        ("PyTorch", _torch_text(caps)),
        ("CTranslate2", _ct2_text(caps)),
        ("ONNX Runtime", _ort_text(caps)),
        ("C++ compiler (pt2e)", "none" if _missing(compiler) else str(compiler)),
    ]


def capabilities_markdown(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Markdown lines: a small table of what this CPU and each runtime can do, for summary.md's Environment.

    One column per distinct set of capabilities among ``records`` (rows of records, as dicts); nothing
    when no record carries the capability fields (runs recorded before they existed).
    """
    shown = (
        *CAPABILITY_FIELDS,
        "env_cpu_model",
        "env_torch",
        "env_ctranslate2",
        "env_onnxruntime",
        *GPU_FIELDS,
    )
    machines: list[dict[str, Any]] = []
    for record in records:
        if all(_missing(record.get(f)) for f in CAPABILITY_FIELDS):
            continue
        caps = {f: record.get(f) for f in shown}
        if caps not in machines:
            machines.append(caps)
    if not machines:
        return []
    if len(machines) == 1:
        headers = ["capability", "this run's machine"]
    else:
        headers = ["capability"] + [
            f"{i}: {'?' if _missing(m['env_cpu_model']) else m['env_cpu_model']}"
            for i, m in enumerate(machines, 1)
        ]
    lines = [
        "Capabilities that decide which methods run here and which pay off:",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    gpu = any(not _missing(m.get("gpu_name")) for m in machines)
    columns = [_capability_rows(m, gpu) for m in machines]
    for i, (name, _) in enumerate(columns[0]):
        lines.append("| " + " | ".join([name] + [rows[i][1] for rows in columns]) + " |")
    return lines + [""]
