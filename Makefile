# safety-monitor: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install install-test demo test check lint typecheck contracts pytest services bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is needed, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

## install: create .venv and install the project into it
install: $(VENV)/.installed

## demo: replay the bundled synthetic trial end to end on embedded defaults (SQLite, mail as .eml files)
demo: install
	$(BIN)/safety-monitor demo

## services: start what the tests need (PostgreSQL on 127.0.0.1:5432 with database `test`)
services:
	bash scripts/ensure-postgres.sh

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

contracts: $(VENV)/.installed-test
	$(BIN)/lint-imports

pytest: $(VENV)/.installed-test services
	SAFETY_MONITOR_TEST_POSTGRES_URL=$(PG_URL) $(BIN)/pytest

## test: install test dependencies, start services, then lint, type-check, layer contracts and the whole suite
test: $(VENV)/.installed-test services lint typecheck contracts pytest

## bench: replay N synthetic messages (default 100,000) through the embedded runtime (events/s, peak memory),
## then grade 1,000,000 generated SDTM lab records with grade-labs (records/s)
N ?= 100000
bench: install
	$(BIN)/python bench/bench_replay.py --messages $(N)
	$(BIN)/python bench/bench_grade_labs.py --runs 3

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
