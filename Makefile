# Entry points: `make quickstart` (set up + short DeCUR pretraining), `make test`
# (set up + test suite), `make lint` (ruff + mypy), `make docs` (HTML documentation
# in docs/_build/html). The virtual environment lives in .venv and is (re)built when
# pyproject.toml or the constraints change.

SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# First Python 3.12 found: $PYTHON, python3.12 on PATH, or a pyenv installation.
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo $$p; break; }; done)

.PHONY: venv quickstart test lint docs format clean

$(BIN)/.installed: pyproject.toml requirements/constraints.txt
	@test -n "$(PYTHON)" || { echo 'Python 3.12 not found: run make PYTHON=/path/to/python3.12 ...'; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[tests,lint,docs]'
	touch $@

venv: $(BIN)/.installed

quickstart: venv
	$(BIN)/torchgeo fit --config conf/quickstart.yaml

# Two or more pytest workers (pytest-xdist): many tests start the torchgeo /
# torchgeo-decur command line in a subprocess, which is import-bound and single-threaded.
# Work stealing: an idle worker takes queued tests from a busy one, so a few long
# tests (two-process DDP checks, CLI fits) do not leave the other worker idle at the end.
test: venv
	$(BIN)/python -m pytest -n auto --dist worksteal

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy torchgeo_decur torchgeo_decur_cli tests benchmarks

# Warnings are errors: a broken cross-reference or docstring fails the build.
docs: venv
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) docs/_build output lightning_logs .pytest_cache .mypy_cache .ruff_cache
