"""Environment: the fields every record carries, CPU feature checks and the git commit."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from accelbench import __version__, environment
from accelbench.environment import (
    RECORDED_FLAGS,
    collect_environment,
    cpu_flags,
    cpu_supports,
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
