# safety-monitor: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TEST_PG_DIR ?= var/test-postgres

.PHONY: install install-test demo test check lint typecheck contracts pytest walkthrough chromium bench bench-web \
	bench-ingest clean kafka-up kafka-down postgres-up postgres-down bench-kafka

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

## postgres-up / postgres-down: a private PostgreSQL cluster (initdb into var/test-postgres, a free 127.0.0.1 port,
## database `test`); last line SAFETY_MONITOR_TEST_POSTGRES_URL=... The machine's own PostgreSQL is left alone.
postgres-up:
	@bash scripts/test-postgres.sh start $(TEST_PG_DIR)

postgres-down:
	@bash scripts/test-postgres.sh stop $(TEST_PG_DIR)

## chromium: Debian's chromium and chromium-driver for the review workspace's real-browser tests
chromium:
	bash scripts/ensure-chromium.sh

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

# pytest runs with a private PostgreSQL cluster and a fresh Apache Kafka broker, both stopped afterwards even when
# tests fail (the trap), both exported to the tests
pytest: $(VENV)/.installed-test chromium
	@set -o pipefail; \
	trap 'bash scripts/kafka-broker.sh stop var/kafka-test; bash scripts/test-postgres.sh stop $(TEST_PG_DIR)' EXIT; \
	postgres=$$(bash scripts/test-postgres.sh start $(TEST_PG_DIR) | tail -n 1) || exit 1; \
	bootstrap=$$(bash scripts/kafka-broker.sh start var/kafka-test | tail -n 1) || exit 1; \
	echo "$$postgres $$bootstrap"; \
	env "$$postgres" "$$bootstrap" $(BIN)/pytest

## walkthrough: a new user's path through README.md: in a copy of the repository `make demo`, then every ```sh
## block of README.md in order in one shell (a block after `<!-- walkthrough: skip (REASON) -->` is left out)
walkthrough: $(VENV)/.installed-test
	$(BIN)/python scripts/readme_walkthrough.py

## test: install test dependencies, then lint, type-check, layer contracts, the whole suite (with its own PostgreSQL
## and brokers) and the README walk-through
test: $(VENV)/.installed-test lint typecheck contracts pytest walkthrough

## bench: replay N synthetic messages (default 100,000) through the embedded runtime (events/s, peak memory),
## with the walking skeleton's three rules, then with the trial's whole catalogue and routing; grade 1,000,000
## generated SDTM lab records with grade-labs (records/s); the DSMB report of 1,000 subjects and ~200,000 messages
## (seconds, target < 5 s); the review workspace's p50/p95 of /alerts, /api/v1/alerts and /subjects/{id} over N
## messages and 10,000 alerts (bench-web); site ingestion (bench-ingest); then the Kafka path (bench-kafka)
N ?= 100000
bench: $(VENV)/.installed-test
	$(BIN)/python bench/bench_replay.py --messages $(N) --rules tests/data/skeleton_rules
	$(BIN)/python bench/bench_replay.py --messages $(N)
	$(BIN)/python bench/bench_hostile.py --messages 20000 --rules tests/data/skeleton_rules
	$(BIN)/python bench/bench_grade_labs.py --runs 3
	$(BIN)/python bench/bench_report.py
	$(BIN)/python bench/bench_workspace.py --messages $(N)
	$(BIN)/python bench/bench_ingest.py --messages $(INGEST_N)
	$(BENCH_KAFKA)

## bench-web: the review workspace alone (N messages, 10,000 alerts; p95 target 200 ms)
bench-web: $(VENV)/.installed-test
	$(BIN)/python bench/bench_workspace.py --messages $(N)

## bench-ingest: INGEST_N messages (default 20,000) through POST /api/v1/messages of a real `safety-monitor web`
## in batches of 100 and 1,000, beside `replay` of the same messages in the same batch sizes (messages/s)
INGEST_N ?= 20000
bench-ingest: $(VENV)/.installed-test
	$(BIN)/python bench/bench_ingest.py --messages $(INGEST_N)

## bench-kafka: on one Apache Kafka broker and a private PostgreSQL (started here, stopped after): raw aiokafka
## consume, Faust's own ceiling (a take_events agent doing nothing), a naive Faust Table agent, one worker end to
## end, with the ratios; then SAE published -> alert committed -> email accepted by SMTP (aiosmtpd), p50/p99 at
## 1,000 msg/s
KAFKA_N ?= 30000
BENCH_KAFKA = @set -o pipefail; \
	trap 'bash scripts/kafka-broker.sh stop var/kafka-bench; bash scripts/test-postgres.sh stop var/postgres-bench' EXIT; \
	pg=$$(bash scripts/test-postgres.sh start var/postgres-bench | tail -n 1) || exit 1; \
	bootstrap=$$(bash scripts/kafka-broker.sh start var/kafka-bench | tail -n 1) || exit 1; \
	env "$$bootstrap" $(BIN)/python bench/bench_kafka.py --messages $(KAFKA_N) --database "$${pg\#*=}"
bench-kafka: $(VENV)/.installed-test
	$(BENCH_KAFKA)


## bench-scale: whole `replay` processes of 50k, 200k and 400k messages (many abnormal values, 1,000 subjects),
## each into a fresh SQLite file, delivery included: rate, peak RSS, database size (SCALE_ARGS=--million adds 1M;
## SCALE_ARGS='--database-url URL' runs on PostgreSQL, e.g. the URL `make postgres-up` prints); then one delivery
## pass with 10,000 open alerts
.PHONY: bench-scale
SCALE_ARGS ?=
bench-scale: $(VENV)/.installed-test
	$(BIN)/python bench/bench_scale.py $(SCALE_ARGS)
	$(BIN)/python bench/bench_delivery.py

## bench-floors: at the same sizes, decoding alone and writing a replay's rows alone (SQLite), against the goal
## of 15,000 msg/s at 400k
.PHONY: bench-floors
bench-floors: $(VENV)/.installed-test
	$(BIN)/python bench/bench_floors.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
