"""Environment: the fields every record carries, CPU feature checks, runtime capabilities and the git commit."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from accelbench import __version__, environment
from accelbench.analysis.capabilities import capabilities_markdown
from accelbench.environment import (
    CAPABILITY_FIELDS,
    RECORDED_FLAGS,
    capabilities,
    collect_environment,
    cpu_flags,
    cpu_supports,
    ct2_compute_types,
    git_commit,
    supports_bf16,
    supports_int8_vnni,
)

EXPECTED_KEYS = {
    "env_cpu_model",
    "env_cores_physical",
    "env_cores_logical",
    "env_cpu_flags",
    "env_memory_gb",
    "env_os",
    "env_python",
    "env_torch",
    "env_transformers",
    "env_datasets",
    "env_numpy",
    "env_onnxruntime",
    "env_ctranslate2",
    "env_accelbench",
    "env_torch_threads",
    "env_git_commit",
    "env_hostname",
    *CAPABILITY_FIELDS,
}


def test_collect_environment_has_the_keys() -> None:
    env = collect_environment()
    assert EXPECTED_KEYS <= set(env)
    assert all(k.startswith("env_") for k in env)
    assert env["env_cores_logical"] >= 1
    assert env["env_memory_gb"] > 0
    assert env["env_accelbench"] == __version__
    assert env["env_os"] and env["env_python"].count(".") == 2
    # flat: every value is a scalar that JSON and a DataFrame column take as is
    assert all(v is None or isinstance(v, (str, int, float, bool)) for v in env.values())


def test_collect_environment_returns_a_copy() -> None:
    env = collect_environment()
    env["env_hostname"] = "changed"
    assert collect_environment()["env_hostname"] != "changed"


def test_versions_match_the_imported_packages() -> None:
    torch = pytest.importorskip("torch")
    import numpy

    env = collect_environment()
    assert env["env_torch"] == torch.__version__
    assert env["env_numpy"] == numpy.__version__
    assert env["env_torch_threads"] == torch.get_num_threads()


def test_torch_threads_read_at_each_call() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert collect_environment()["env_torch_threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_missing_package_version_is_none() -> None:
    assert environment._version("surely-not-an-installed-distribution-xyz") is None


def test_cpu_flags_well_formed() -> None:
    flags = cpu_flags()
    assert isinstance(flags, set)
    assert all(f == f.lower() and re.fullmatch(r"[a-z0-9_.\-]+", f) for f in flags)
    recorded = collect_environment()["env_cpu_flags"]
    listed = set(recorded.split(",")) if recorded else set()
    assert listed <= set(RECORDED_FLAGS)
    assert listed == {f for f in RECORDED_FLAGS if f in flags}
    assert recorded == ",".join(f for f in RECORDED_FLAGS if f in listed)  # stable order
    for f in RECORDED_FLAGS:
        assert cpu_supports(f) == (f in flags)
        assert cpu_supports(f.upper()) == (f in flags)
    assert not cpu_supports("no_such_flag")


def test_supports_checks_are_consistent_with_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    if environment._is_x86():
        assert supports_bf16() == bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    assert supports_int8_vnni() == bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())

    # The same logic on made-up CPUs, so both outcomes are exercised whatever this machine has.
    monkeypatch.setattr(environment, "_is_x86", lambda: True)
    monkeypatch.setattr(environment, "_cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert not supports_bf16() and not supports_int8_vnni()
    monkeypatch.setattr(environment, "_cpu_flags", lambda: frozenset({"avx512f", "amx_bf16", "avx_vnni"}))
    assert supports_bf16() and supports_int8_vnni()


def test_flags_fall_back_to_py_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment._cpu_flags.cache_clear()
    monkeypatch.setattr(environment, "PROC_CPUINFO", tmp_path / "absent")
    monkeypatch.setattr(environment, "_py_cpuinfo", lambda: {"flags": ["avx2", "AVX512VNNI"]})
    try:
        assert cpu_flags() == {"avx2", "avx512_vnni"}
    finally:
        environment._cpu_flags.cache_clear()


def test_proc_cpuinfo_parsing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Test CPU @ 1GHz\nflags\t\t: fpu avx2 amx_bf16 fma\n")
    monkeypatch.setattr(environment, "PROC_CPUINFO", fake)
    environment._cpu_flags.cache_clear()
    try:
        assert environment._proc_cpuinfo_field(("model name",)) == "Test CPU @ 1GHz"
        assert cpu_flags() == {"fpu", "avx2", "amx_bf16", "fma"}
    finally:
        environment._cpu_flags.cache_clear()


def test_git_commit_none_outside_a_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    pkg = tmp_path / "accelbench"
    pkg.mkdir()
    assert git_commit(pkg) is None


def test_git_commit_none_when_git_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_git(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert git_commit() is None


def test_git_commit_none_when_git_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_git(*args: object, **kwargs: object) -> None:
        raise subprocess.TimeoutExpired("git", 5)

    monkeypatch.setattr(subprocess, "run", slow_git)
    assert git_commit() is None


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run([*cmd, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_git_commit_in_a_repo_and_dirty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    pkg = repo / "accelbench"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    _git(repo, "init", "-q")
    assert git_commit(pkg) is None  # a repo with no commit yet
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "init")
    sha = _git(repo, "rev-parse", "--short", "HEAD")
    assert git_commit(pkg) == sha
    (pkg / "__init__.py").write_text("x = 1\n")
    assert git_commit(pkg) == f"{sha}-dirty"


def test_git_commit_none_when_package_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # e.g. installed into .venv/lib/.../site-packages inside some other project's repository
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "other"
    pkg = repo / ".venv" / "site-packages" / "accelbench"
    pkg.mkdir(parents=True)
    (repo / ".gitignore").write_text(".venv/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".gitignore")
    _git(repo, "commit", "-q", "-m", "init")
    assert git_commit(pkg) is None


def _fake_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: str) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n")
    monkeypatch.setattr(environment, "PROC_CPUINFO", fake)
    monkeypatch.setattr(environment, "_is_x86", lambda: True)
    environment._cpu_flags.cache_clear()


def test_capability_booleans_follow_the_cpu_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    try:
        _fake_cpu(monkeypatch, tmp_path, "fpu avx2 fma")
        caps = capabilities()
        assert caps["env_cpu_has_avx2"] is True and caps["env_cpu_has_fma"] is True
        assert not any(
            caps[f"env_cpu_has_{f}"] for f in ("avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")
        )
        assert caps["env_bf16_native"] is False and caps["env_int8_vnni"] is False

        _fake_cpu(monkeypatch, tmp_path, "avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16")
        caps = capabilities()
        assert all(caps[f"env_cpu_has_{f}"] for f in ("avx512f", "avx512_bf16", "avx512_vnni", "amx_int8"))
        assert caps["env_cpu_has_avx_vnni"] is False
        assert caps["env_bf16_native"] is True and caps["env_int8_vnni"] is True
    finally:
        environment._cpu_flags.cache_clear()


def test_collected_capabilities_match_this_machine() -> None:
    env = collect_environment()
    assert set(CAPABILITY_FIELDS) <= set(env)
    for flag in RECORDED_FLAGS:
        assert env[f"env_cpu_has_{flag}"] is cpu_supports(flag)
    assert env["env_bf16_native"] is supports_bf16()
    assert env["env_int8_vnni"] is supports_int8_vnni()
    types = ct2_compute_types()
    if types is None:
        assert env["env_ct2_compute_types"] is None
    else:
        assert "float32" in types and set(env["env_ct2_compute_types"].split(",")) == types


def test_ct2_compute_types_are_ctranslate2s() -> None:
    ct2 = pytest.importorskip("ctranslate2")
    assert ct2_compute_types() == set(ct2.get_supported_compute_types("cpu"))


def test_missing_libraries_are_reported_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("ctranslate2", "onnxruntime"):
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "")
    caps = capabilities()
    assert ct2_compute_types() is None and environment.ort_providers() is None
    assert caps["env_ct2_compute_types"] is None and caps["env_ort_providers"] is None
    assert caps["env_cxx_compiler"] is None
    table = "\n".join(capabilities_markdown([caps]))
    assert "| CTranslate2 | not installed |" in table
    assert "| ONNX Runtime | not installed |" in table
    assert "| C++ compiler (pt2e) | none |" in table


def test_cxx_compiler_honours_cxx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compiler = tmp_path / "my-c++"
    compiler.write_text("#!/bin/sh\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("CXX", str(compiler))
    assert environment.cxx_compiler() == str(compiler)
    monkeypatch.setenv("CXX", str(tmp_path / "absent"))
    assert environment.cxx_compiler() is None


AMX_MACHINE = {
    "env_cpu_model": "Intel Xeon",
    **{f"env_cpu_has_{f}": True for f in RECORDED_FLAGS},
    "env_cpu_has_avx_vnni": False,
    "env_bf16_native": True,
    "env_int8_vnni": True,
    "env_torch": "2.13.0+cpu",
    "env_torch_cpu_capability": "AVX512",
    "env_torch_quantized_engines": "onednn,x86",
    "env_ctranslate2": "4.8.5",
    "env_ct2_compute_types": "bfloat16,float32,int16,int8",
    "env_onnxruntime": "1.32.0",
    "env_ort_providers": "CPUExecutionProvider",
    "env_cxx_compiler": "/usr/bin/g++",
}


def _table(lines: list[str]) -> dict[str, list[str]]:
    rows = [line.strip("|").split(" | ") for line in lines if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def test_capabilities_markdown_one_machine() -> None:
    lines = capabilities_markdown([AMX_MACHINE, dict(AMX_MACHINE)])  # the same machine twice: one column
    table = _table(lines)
    assert table["capability"] == ["this run's machine"]
    assert table["AMX tile / int8 / bf16"] == ["yes / yes / yes"]
    assert table["VNNI: AVX-512 / AVX"] == ["yes / no"]
    assert table["native bf16 / int8 dot products"] == ["yes / yes"]
    assert table["CTranslate2"] == [
        "4.8.5: int8 yes, int16 yes, bfloat16 yes (all: bfloat16, float32, int16, int8)"
    ]
    assert table["ONNX Runtime"] == ["1.32.0: CPUExecutionProvider"]
    assert table["PyTorch"] == ["2.13.0+cpu: kernels AVX512; int8 engines onednn, x86"]
    assert table["C++ compiler (pt2e)"] == ["/usr/bin/g++"]


def test_capabilities_markdown_two_machines_and_old_records() -> None:
    amd = AMX_MACHINE | {
        "env_cpu_model": "AMD EPYC",
        "env_cpu_has_amx_tile": False,
        "env_cpu_has_amx_int8": False,
        "env_cpu_has_amx_bf16": math.nan,  # as pandas fills a field one record lacks
        "env_ct2_compute_types": "float32,int8,int8_float32",
    }
    old = {"env_cpu_model": "Old", "env_torch": "2.4.0"}  # recorded before capabilities existed
    table = _table(capabilities_markdown([AMX_MACHINE, old, amd]))
    assert table["capability"] == ["1: Intel Xeon", "2: AMD EPYC"]
    assert table["AMX tile / int8 / bf16"] == ["yes / yes / yes", "no / no / ?"]
    assert table["CTranslate2"][1].startswith("4.8.5: int8 yes, int16 no, bfloat16 no")
    assert capabilities_markdown([old]) == []
    assert capabilities_markdown([]) == []
