#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 with a database `test` (trust auth), starting or installing
# it when this machine lacks it. The PostgreSQL tests fail, never skip, when it is not there.
set -euo pipefail
HOST=127.0.0.1 PORT=5432 USER_NAME=${PGUSER:-postgres}

ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "PostgreSQL is not installed; installing it from the distribution's packages" >&2
  if [ "$(id -u)" -ne 0 ]; then echo "need root to install PostgreSQL (or start one on $HOST:$PORT)" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  sed -i 's/^\(local\|host\)\(.*\)\(peer\|scram-sha-256\|md5\)$/\1\2trust/' "/etc/postgresql/$version/main/pg_hba.conf"
fi

if ! ready; then
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  echo "starting PostgreSQL $version" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
ready || { echo "PostgreSQL does not answer on $HOST:$PORT" >&2; exit 1; }

if ! psql -h "$HOST" -p "$PORT" -U "$USER_NAME" -d postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1; then
  psql -h "$HOST" -p "$PORT" -U "$USER_NAME" -d postgres -qc "create database test"
fi
echo "PostgreSQL ready on $HOST:$PORT (database test)"
