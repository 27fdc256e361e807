#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests: initdb into DIR, pg_ctl on a free 127.0.0.1 port, database `test`,
# trust authentication for this cluster only (its own pg_hba.conf, in DIR). The machine's PostgreSQL, if any, is
# neither used nor changed.
#   scripts/test-postgres.sh start [DIR]   fresh cluster, waits until ready; last line SAFETY_MONITOR_TEST_POSTGRES_URL=...
#   scripts/test-postgres.sh stop [DIR]    fast shutdown, then the cluster's files are removed
#   scripts/test-postgres.sh env [DIR]     print SAFETY_MONITOR_TEST_POSTGRES_URL=... of the running cluster
# DIR defaults to var/test-postgres. The server binaries come from PATH, /usr/lib/postgresql/*/bin or, when they are
# missing, Debian's `postgresql` package (installed as root). As root, the server runs as the `postgres` user.
set -euo pipefail
cd "$(dirname "$0")/.."
ACTION=${1:-}
DIR=${2:-${TEST_POSTGRES_DIR:-var/test-postgres}}
DIR=$(realpath -m "$DIR")

find_bin() {
  local dir
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  return 1
}

binaries() {
  if BIN=$(find_bin); then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "test-postgres: initdb and pg_ctl not found; install PostgreSQL (Debian: apt-get install postgresql)" >&2
    exit 1
  fi
  echo "test-postgres: PostgreSQL binaries missing; installing Debian's postgresql package" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # policy-rc.d 101: the package must not start (or create a running) system cluster; only its binaries are used
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    postgresql >/dev/null || { rm -f /usr/sbin/policy-rc.d; exit 1; }
  rm -f /usr/sbin/policy-rc.d
  BIN=$(find_bin) || { echo "test-postgres: no initdb after installing postgresql" >&2; exit 1; }
}

as_server() {  # PostgreSQL refuses to run as root: as root, run its tools as the unprivileged `postgres` user
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$ACTION" in
  start)
    binaries
    if [ -f "$DIR/port" ]; then "$0" stop "$DIR" >/dev/null 2>&1 || true; fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    DATA="$DIR/data"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres: "$DIR"
      # The server runs as `postgres`, which may not reach DIR (a checkout under /root, a private tmp dir): then
      # the cluster lives in a directory of its own under /tmp, and DIR/datadir says where.
      if ! runuser -u postgres -- test -w "$DIR"; then DATA=$(mktemp -d /tmp/safety-monitor-test-pg.XXXXXX)/data; fi
      mkdir -p "$DATA" && chown -R postgres: "$(dirname "$DATA")"
    fi
    echo "$DATA" >"$DIR/datadir"
    as_server "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$DIR/initdb.log" 2>&1 || {
      cat "$DIR/initdb.log" >&2; exit 1; }
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Loopback only, sockets in DIR (not /var/run), and settings for throwaway test data (no fsync).
    as_server "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      >/dev/null || { cat "$DATA/server.log" >&2; exit 1; }
    as_server "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "create database test" >/dev/null
    echo "$PORT" >"$DIR/port"
    echo "test-postgres: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') ready on 127.0.0.1:$PORT (data $DIR)" >&2
    echo "SAFETY_MONITOR_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PORT/test"
    ;;
  stop)
    DATA=$(cat "$DIR/datadir" 2>/dev/null || echo "$DIR/data")
    if [ -d "$DATA" ]; then
      BIN=$(find_bin) || true
      if [ -n "${BIN:-}" ]; then as_server "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null 2>&1 || true; fi
      case "$DATA" in /tmp/safety-monitor-test-pg.*) rm -rf "$(dirname "$DATA")" ;; esac
    fi
    rm -rf "$DIR"
    echo "test-postgres: stopped and removed ($DIR)" >&2
    ;;
  env)
    echo "SAFETY_MONITOR_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$(cat "$DIR/port")/test"
    ;;
  *)
    echo "usage: $0 start|stop|env [DIR]" >&2
    exit 2
    ;;
esac
