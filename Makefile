# safety-monitor: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install install-test demo test check lint typecheck contracts pytest services bench clean kafka-up kafka-down bench-kafka

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

## install-test: the same plus the test and lint tools (pytest, hypothesis, ruff, mypy, import-linter, brokers)
install-test: $(VENV)/.installed-test

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

## kafka-up / kafka-down: Apache Kafka (kafka-broker/pom.xml, from Maven Central; KRaft broker+controller) on
## 127.0.0.1, free port, fresh log directory; last line KAFKA_BOOTSTRAP_SERVERS=...
KAFKA_DIR ?= var/kafka-broker
kafka-up:
	@bash scripts/kafka-broker.sh start $(KAFKA_DIR)

kafka-down:
	@bash scripts/kafka-broker.sh stop $(KAFKA_DIR)

# pytest runs with a fresh Apache Kafka broker, stopped afterwards even when tests fail (the trap), exported to the
# tests
pytest: $(VENV)/.installed-test services
	@set -o pipefail; \
	trap 'bash scripts/kafka-broker.sh stop var/kafka-test' EXIT; \
	bootstrap=$$(bash scripts/kafka-broker.sh start var/kafka-test | tail -n 1) || exit 1; \
	echo "$$bootstrap"; \
	env "$$bootstrap" SAFETY_MONITOR_TEST_POSTGRES_URL=$(PG_URL) $(BIN)/pytest

## test: install test dependencies, start services, then lint, type-check, layer contracts and the whole suite
test: $(VENV)/.installed-test services lint typecheck contracts pytest

## bench: replay N synthetic messages (default 100,000) through the embedded runtime (events/s, peak memory),
## with the walking skeleton's three rules, then with the trial's whole catalogue and routing; grade 1,000,000
## generated SDTM lab records with grade-labs (records/s); then the Kafka path (bench-kafka, in the same run)
N ?= 100000
bench: $(VENV)/.installed-test services
	$(BIN)/python bench/bench_replay.py --messages $(N) --rules tests/data/skeleton_rules
	$(BIN)/python bench/bench_replay.py --messages $(N)
	$(BIN)/python bench/bench_grade_labs.py --runs 3
	$(BENCH_KAFKA)

## bench-kafka: on one Apache Kafka broker (started here, stopped after): raw aiokafka consume, Faust's own ceiling
## (a take_events agent doing nothing), a naive Faust Table agent, one worker end to end, with the ratios; then SAE
## published -> alert committed -> email accepted by SMTP (aiosmtpd), p50/p99 at 1,000 msg/s
KAFKA_N ?= 30000
BENCH_KAFKA = @set -o pipefail; \
	trap 'bash scripts/kafka-broker.sh stop var/kafka-bench' EXIT; \
	bootstrap=$$(bash scripts/kafka-broker.sh start var/kafka-bench | tail -n 1) || exit 1; \
	env "$$bootstrap" $(BIN)/python bench/bench_kafka.py --messages $(KAFKA_N) --database $(PG_URL)
bench-kafka: $(VENV)/.installed-test services
	$(BENCH_KAFKA)

## bench-scale: whole `replay` processes of 50k, 200k and 400k messages (many abnormal values, 1,000 subjects),
## each into a fresh SQLite file, delivery included: rate, peak RSS, database size (SCALE_ARGS=--million adds 1M;
## SCALE_ARGS='--database-url $(PG_URL)' runs on PostgreSQL); then one delivery pass with 10,000 open alerts
.PHONY: bench-scale
SCALE_ARGS ?=
bench-scale: $(VENV)/.installed-test
	$(BIN)/python bench/bench_scale.py $(SCALE_ARGS)
	$(BIN)/python bench/bench_delivery.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
