"""The machine and software a measurement ran on, recorded with every run.

Speed numbers mean little without the CPU (and its bf16/int8 instructions), the thread count and the library
versions behind them; these flat ``env_*`` fields go into every record so that runs from different machines
can be told apart and compared fairly. ``capabilities`` adds what decides which methods run here and which
pay off (one ``env_cpu_has_<flag>`` boolean per flag, native bf16, CTranslate2's compute types, ONNX Runtime's
providers, a C++ compiler), and ``analysis.capabilities`` shows them as a table in summary.md.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import platform
import shutil
import socket
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .version import __version__

logger = logging.getLogger(__name__)

PROC_CPUINFO = Path("/proc/cpuinfo")
# The instructions that decide how fast bf16 and int8 inference can be on a CPU.
RECORDED_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "avx_vnni",
    "fma",
)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# Distributions whose versions change results; looked up by metadata, never imported.
VERSIONED_PACKAGES = {
    "env_torch": "torch",
    "env_transformers": "transformers",
    "env_datasets": "datasets",
    "env_numpy": "numpy",
    "env_onnxruntime": "onnxruntime",
    "env_ctranslate2": "ctranslate2",
}
# py-cpuinfo's CPUID names that differ from the kernel's /proc/cpuinfo names.
FLAG_ALIASES = {"avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16", "avxvnni": "avx_vnni"}
# One boolean field per recorded flag (``env_cpu_has_amx_int8``), so a DataFrame filters on it directly.
CPU_HAS_PREFIX = "env_cpu_has_"
# What each runtime can do on this CPU: the facts that decide which methods run here and which pay off.
RUNTIME_CAPABILITY_FIELDS = (
    "env_bf16_native",  # supports_bf16(): AVX512-BF16 or AMX-BF16, so bf16 is not emulated
    "env_int8_vnni",  # supports_int8_vnni(): int8 dot-product instructions
    "env_torch_cpu_capability",  # the ATen kernels torch dispatches to: DEFAULT, AVX2, AVX512, ...
    "env_torch_quantized_engines",  # torch's int8 backends (x86, fbgemm, onednn, qnnpack)
    "env_ct2_compute_types",  # CTranslate2's compute types on this CPU (int8, int16, float32, ...)
    "env_ort_providers",  # ONNX Runtime's execution providers
    "env_cxx_compiler",  # the C++ compiler TorchInductor (pt2e) calls; None: pt2e cannot run
)
CAPABILITY_FIELDS = tuple(CPU_HAS_PREFIX + f for f in RECORDED_FLAGS) + RUNTIME_CAPABILITY_FIELDS
CXX_CANDIDATES = ("g++", "c++", "clang++")
GIT_TIMEOUT_S = 5.0
PACKAGE_ROOT = Path(__file__).resolve().parent
X86_MACHINES = {"x86_64", "amd64", "i386", "i686", "x86"}


def _proc_cpuinfo_field(names: tuple[str, ...]) -> str | None:
    """The first value of one of ``names`` in /proc/cpuinfo (Linux); None elsewhere."""
    try:
        with PROC_CPUINFO.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() in names:
                    return value.strip()
    except OSError:
        return None
    return None


@functools.lru_cache(maxsize=1)
def _py_cpuinfo() -> dict[str, Any]:
    """py-cpuinfo's view of the CPU; slow (about a second, it probes in a subprocess), so asked once."""
    try:
        import cpuinfo

        return dict(cpuinfo.get_cpu_info())
    except Exception as exc:  # py-cpuinfo can fail in odd sandboxes; the fields then stay None
        logger.debug("py-cpuinfo failed: %s", exc)
        return {}


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    text = _proc_cpuinfo_field(("flags", "Features"))  # x86 names it "flags", ARM "Features"
    if text:
        flags = text.split()
    else:
        flags = [str(f) for f in _py_cpuinfo().get("flags", [])]
    return frozenset(FLAG_ALIASES.get(f.lower(), f.lower()) for f in flags)


def cpu_flags() -> set[str]:
    """All instruction-set flags of this CPU, in the kernel's names (``avx512_bf16``); empty when unknown."""
    return set(_cpu_flags())


def cpu_supports(flag: str) -> bool:
    """Whether the CPU has ``flag`` (kernel naming, case-insensitive)."""
    flag = flag.lower()
    return FLAG_ALIASES.get(flag, flag) in _cpu_flags()


def _is_x86() -> bool:
    return platform.machine().lower() in X86_MACHINES


def supports_bf16() -> bool:
    """Whether bf16 runs natively, so a bf16 variant can be faster than fp32 rather than merely smaller.

    On x86 that takes AVX512-BF16 or AMX-BF16 (without them PyTorch emulates bf16, usually slower than fp32).
    Elsewhere (ARM) the kernel flags do not map one to one, so torch's own oneDNN check decides when torch
    offers it, and the ``bf16`` feature flag otherwise.
    """
    if _is_x86():
        return any(cpu_supports(f) for f in BF16_FLAGS)
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # no torch, or a build without this private check
        return cpu_supports("bf16")


def supports_int8_vnni() -> bool:
    """Whether the CPU has int8 dot-product instructions (VNNI or AMX-INT8), which make int8 GEMMs pay off.

    x86 only: on other CPUs this is False even where an equivalent (ARM ``asimddp``) exists.
    """
    return any(cpu_supports(f) for f in INT8_VNNI_FLAGS)


def _cpu_model() -> str | None:
    model = _py_cpuinfo().get("brand_raw") or _proc_cpuinfo_field(("model name",)) or platform.processor()
    return str(model) if model else None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
    )


def git_commit(path: Path = PACKAGE_ROOT) -> str | None:
    """Short commit of the repository holding ``path`` (+ ``-dirty`` with uncommitted changes), else None.

    None too when ``path`` is git-ignored there (a package installed into a venv inside another repository):
    that repository's commit says nothing about the code that ran.
    """
    path = Path(path)
    try:
        head = _git(["rev-parse", "--short", "HEAD"], cwd=path.parent)
        if head.returncode != 0 or not head.stdout.strip():
            return None
        if _git(["check-ignore", "-q", str(path)], cwd=path.parent).returncode == 0:
            return None
        status = _git(["status", "--porcelain"], cwd=path.parent)
    except (OSError, subprocess.SubprocessError) as exc:  # git missing, cwd gone, timeout
        logger.debug("no git commit for %s: %s", path, exc)
        return None
    dirty = "-dirty" if status.returncode == 0 and status.stdout.strip() else ""
    return head.stdout.strip() + dirty


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return int(torch.get_num_threads())


def _cores() -> tuple[int | None, int | None]:
    try:
        import psutil

        return psutil.cpu_count(logical=False), psutil.cpu_count(logical=True) or os.cpu_count()
    except ImportError:
        return None, os.cpu_count()


def _memory_gb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 1024**3, 1)
    except ImportError:
        return None


def cores_available() -> int | None:
    """Cores this process may run on (taskset, cgroup cpusets), which can be fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def cxx_compiler() -> str | None:
    """The C++ compiler TorchInductor will call (``$CXX`` or the first of g++, c++, clang++ on PATH), or None."""
    env = os.environ.get("CXX")
    if env:
        return shutil.which(env) or (env if os.path.exists(env) else None)
    return next((shutil.which(c) for c in CXX_CANDIDATES if shutil.which(c)), None)


def _joined(values: Iterable[object] | None, sort: bool = True) -> str | None:
    if values is None:
        return None
    texts = [str(v) for v in values]
    return ",".join(sorted(texts) if sort else texts)


def _torch_capabilities() -> tuple[str | None, str | None]:
    """ATen's CPU kernel level and torch's quantized engines; (None, None) without torch."""
    try:
        import torch
    except Exception:
        return None, None
    try:
        level = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # older torch without this query
        level = None
    try:
        engines = _joined(e for e in torch.backends.quantized.supported_engines if e != "none")
    except Exception:
        engines = None
    return level, engines


def ct2_compute_types() -> set[str] | None:
    """CTranslate2's compute types on this CPU (``int8``, ``int16``, ...); None when ctranslate2 is absent."""
    try:
        import ctranslate2

        return set(ctranslate2.get_supported_compute_types("cpu"))
    except Exception as exc:  # not installed, or a build that fails to load here
        logger.debug("no ctranslate2: %s", exc)
        return None


def ort_providers() -> list[str] | None:
    """ONNX Runtime's available execution providers; None when onnxruntime is absent."""
    try:
        import onnxruntime

        return list(onnxruntime.get_available_providers())
    except Exception as exc:
        logger.debug("no onnxruntime: %s", exc)
        return None


def capabilities() -> dict[str, Any]:
    """The capability fields (``CAPABILITY_FIELDS``): one boolean per recorded CPU flag, then each runtime's.

    A library that is missing gives None for its fields, never an error.
    """
    flags = _cpu_flags()
    caps: dict[str, Any] = {CPU_HAS_PREFIX + f: f in flags for f in RECORDED_FLAGS}
    level, engines = _torch_capabilities()
    caps.update(
        {
            "env_bf16_native": supports_bf16(),
            "env_int8_vnni": supports_int8_vnni(),
            "env_torch_cpu_capability": level,
            "env_torch_quantized_engines": engines,
            "env_ct2_compute_types": _joined(ct2_compute_types()),
            "env_ort_providers": _joined(ort_providers(), sort=False),  # in ONNX Runtime's priority order
            "env_cxx_compiler": cxx_compiler(),
        }
    )
    return caps


@functools.lru_cache(maxsize=1)
def _collect() -> dict[str, Any]:
    physical, logical = _cores()
    flags = _cpu_flags()
    env: dict[str, Any] = {
        "env_cpu_model": _cpu_model(),
        "env_cores_physical": physical,
        "env_cores_logical": logical,
        "env_cores_available": cores_available(),
        "env_cpu_flags": ",".join(f for f in RECORDED_FLAGS if f in flags),
        **capabilities(),
        "env_memory_gb": _memory_gb(),
        "env_os": platform.platform(),
        "env_python": platform.python_version(),
    }
    env.update({key: _version(dist) for key, dist in VERSIONED_PACKAGES.items()})
    env.update(
        {
            "env_accelbench": __version__,
            "env_torch_threads": None,  # read at each call: a benchmark may change it
            "env_git_commit": git_commit(),
            "env_hostname": socket.gethostname(),
        }
    )
    return env


def collect_environment() -> dict[str, Any]:
    """Flat ``env_*`` fields describing this machine and its software, to merge into every record.

    Collected once per process (py-cpuinfo and git take a moment) and returned as a fresh copy, except
    ``env_torch_threads``, which is read at each call because a benchmark may change it between runs.
    """
    env = dict(_collect())
    env["env_torch_threads"] = _torch_threads()
    return env
