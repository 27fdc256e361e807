#!/usr/bin/env bash
# Kept for scripts that still call it: starts the tests' private PostgreSQL cluster (scripts/test-postgres.sh, in
# var/test-postgres on a free 127.0.0.1 port) and prints the line to export. `make test` starts and stops that
# cluster itself around pytest; `make postgres-down` (or scripts/test-postgres.sh stop) stops this one. The
# machine's own PostgreSQL and its pg_hba.conf are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
line=$(bash scripts/test-postgres.sh start "${TEST_POSTGRES_DIR:-var/test-postgres}" | tail -n 1)
echo "export $line"
