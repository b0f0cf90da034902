"""Where data, checkpoints, results and notebooks live, and that the environment overrides each."""

from __future__ import annotations

from accelbench import paths


def test_defaults_in_a_checkout(monkeypatch):
    for var in (paths.DATA_ENV, paths.RESULTS_ENV, paths.NOTEBOOKS_ENV):
        monkeypatch.delenv(var, raising=False)
    assert paths.in_checkout()
    assert paths.data_dir() == paths.CHECKOUT_DIR / "data"
    assert paths.results_dir() == paths.CHECKOUT_DIR / "results"
    assert (paths.notebooks_dir() / "04_pareto.ipynb").is_file()


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "d"))
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "c"))
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path / "r"))
    monkeypatch.setenv(paths.NOTEBOOKS_ENV, str(tmp_path / "n"))
    assert paths.data_dir() == tmp_path / "d" and paths.cache_dir() == tmp_path / "c"
    assert paths.results_dir() == tmp_path / "r" and paths.notebooks_dir() == tmp_path / "n"


def test_outside_a_checkout_the_installed_notebooks_and_the_working_directory(monkeypatch, tmp_path):
    for var in (paths.DATA_ENV, paths.RESULTS_ENV, paths.NOTEBOOKS_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(paths, "in_checkout", lambda: False)
    monkeypatch.chdir(tmp_path)
    assert paths.data_dir() == tmp_path / "data" and paths.results_dir() == tmp_path / "results"
    assert paths.notebooks_dir() == paths.PACKAGE_DIR / "_notebooks"
