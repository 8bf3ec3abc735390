# Bare `make` lists the targets. The quick start is `make run` and `make test`.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FUGONG_DATA_DIR ?= var

.PHONY: help run serve demo test test-fast lint fmt bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/.runtime: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(BIN)/.dev: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@ $(BIN)/.runtime

run: $(BIN)/.runtime ## install, load the demo district on SQLite and serve it (prints URL and logins)
	FUGONG_DEMO=1 $(BIN)/fugong demo --serve

test: $(BIN)/.dev ## install the dev dependencies and run the whole test suite (SQLite + PostgreSQL + browser)
	$(BIN)/python -m pytest

test-fast: $(BIN)/.dev ## the suite without browser and Spark tests
	$(BIN)/python -m pytest -m "not ui and not spark"

lint: $(BIN)/.dev ## ruff, mypy and the import-layer contracts
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(BIN)/.dev ## format the code
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(BIN)/.dev ## run the benchmarks (each prints ours vs the named alternative)
	$(BIN)/python bench/web.py

clean: ## remove the virtual environment and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
