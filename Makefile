# Set-up and entry points. `make demo` and `make test` each install everything they need into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NO_ALBUMENTATIONS_UPDATE := 1
# dvc.yaml's stage commands call `curate`: the venv's bin comes first on PATH for every recipe.
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONHASHSEED := 0

.PHONY: install demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml requirements/constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev,demo]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/dvc repro
	$(BIN)/curate show

test: install
	$(BIN)/ruff check curation augment tests benchmarks
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/pipeline_times.py

clean:
	rm -rf $(VENV)
