# accelbench: `make demo` and `make test` do all the set-up on a fresh machine (venv, dependencies, data).
# `make help` lists the targets. Variables can be overridden: `make test PYTEST_ARGS="-k records"`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

VENV ?= .venv
PYTHON ?= python3
# Installed before the project: the CPU build of this release lies on this machine's disk, and with it in
# place pip keeps it, where an unpinned torch requirement would pull a multi-GB CUDA build.
# Elsewhere, e.g.: make install TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
EXTRAS ?= dev,lab,torchao,ray
CONFIG ?= configs/default.yaml
QUICK_CONFIG ?= configs/quick.yaml
RUN_ARGS ?=
PYTEST_ARGS ?=
LINT_PATHS ?= accelbench tests data benchmarks
NOTEBOOKS := $(wildcard notebooks/*.ipynb)

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# prepare.py needs only the standard library: any python will do before the venv exists.
DATA_PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))

.PHONY: help install data test test-fast demo quick lab lint format clean strip-notebooks

help: ## list the targets
	@echo "usage: make TARGET [VAR=value ...]"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-16s %s\n", $$1, $$2}'
	@echo "variables: VENV=$(VENV) PYTHON=$(PYTHON) TORCH_SPEC=$(TORCH_SPEC) CONFIG=$(CONFIG) PYTEST_ARGS=..."

install: $(STAMP) ## create the venv if needed and install the project (torch CPU build first)

# Redone only when pyproject.toml is newer than the stamp; an existing venv is reused.
$(STAMP): pyproject.toml
	@if [ ! -x "$(BIN)/python" ]; then \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
			|| { echo "error: $(PYTHON) is older than 3.10; run make PYTHON=python3.11 ..." >&2; exit 1; }; \
		echo "creating $(VENV) with $$($(PYTHON) --version)"; \
		$(PYTHON) -m venv "$(VENV)"; \
	fi
	$(BIN)/python -m pip install --upgrade pip || echo "warning: could not upgrade pip; going on with $$($(BIN)/python -m pip --version)"
	$(if $(strip $(TORCH_SPEC)),$(BIN)/python -m pip install $(TORCH_PIP_ARGS) '$(TORCH_SPEC)')
	$(BIN)/python -m pip install -e '.[$(EXTRAS)]'
	@touch "$@"

data: ## copy the data sets from ../shared/data into data/ (skips files already there)
	$(DATA_PYTHON) data/prepare.py

test: $(STAMP) data ## run the whole test suite, as CI does (PYTEST_ARGS=... to pass options)
	$(BIN)/python -m pytest -q --durations=20 $(PYTEST_ARGS)

test-fast: $(STAMP) data ## unit tests only (no notebooks, no training runs): the edit-test loop, ~2.5 min on 2 cores
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP) data ## run the default sweep (CONFIG=configs/default.yaml)
	$(BIN)/accelbench run --config $(CONFIG) $(RUN_ARGS)

quick: $(STAMP) data ## run the small sweep (QUICK_CONFIG=configs/quick.yaml)
	$(BIN)/accelbench run --config $(QUICK_CONFIG) $(RUN_ARGS)

# The kernel "python3" comes with ipykernel in $(VENV)/share/jupyter/kernels; jupyter runs it with its own
# interpreter, the venv's. JUPYTER_PREFER_ENV_PATH=1 lets it win over a python3 kernel in the user's home.
# JupyterLab listens on loopback only (LAB_IP); as root (containers, cloud machines) it needs --allow-root,
# added only when the effective user id (LAB_UID) is 0. Reach a remote machine's lab through an SSH tunnel:
# ssh -L 8888:127.0.0.1:8888 host. More options: make lab LAB_ARGS="--port=8890 --no-browser".
LAB_IP ?= 127.0.0.1
LAB_UID ?= $(shell id -u)
LAB_ARGS ?=
lab: $(STAMP) data ## open JupyterLab on notebooks/ (loopback only) with the venv's python as kernel
	JUPYTER_PREFER_ENV_PATH=1 $(BIN)/jupyter lab --notebook-dir=notebooks --ip=$(LAB_IP) $(if $(filter 0,$(LAB_UID)),--allow-root) $(LAB_ARGS)

lint: $(STAMP) ## ruff check, ruff format --check, and the package's layers (import-linter)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/lint-imports

format: $(STAMP) ## sort imports and format with ruff
	$(BIN)/ruff check --select I --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

clean: ## remove caches and build leftovers (keeps results/, data/ and the venv)
	find accelbench tests data notebooks -depth \( -name __pycache__ -o -name .ipynb_checkpoints \) \
		-type d -exec rm -rf {} + 2>/dev/null || true
	rm -rf .pytest_cache .ruff_cache .ipynb_checkpoints build dist *.egg-info

strip-notebooks: $(STAMP) ## clear the outputs of notebooks/*.ipynb before committing them
	$(if $(NOTEBOOKS),$(BIN)/jupyter nbconvert --clear-output --inplace $(NOTEBOOKS),@echo "no notebooks in notebooks/")
