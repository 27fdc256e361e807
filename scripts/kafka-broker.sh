#!/usr/bin/env bash
# A Kafka-protocol broker for tests and local runs, without Docker or a JVM: noida-db 0.2.3 (PyPI) on 127.0.0.1.
#   scripts/kafka-broker.sh start [DIR]   fresh data dir, free port, waits until ready; last line KAFKA_BOOTSTRAP_SERVERS=...
#   scripts/kafka-broker.sh stop [DIR]    clean stop (falls back to SIGKILL of the broker's own pid)
#   scripts/kafka-broker.sh wait [DIR]    wait until the broker answers a Kafka ApiVersions request
#   scripts/kafka-broker.sh env [DIR]     print KAFKA_BOOTSTRAP_SERVERS=... of the running broker
# DIR defaults to var/kafka-broker. Known noida-db defects: see README "Kafka deployment"; tests that add or remove
# group members under load use the second broker, scripts/tansu-broker.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_BIN=${VENV_BIN:-.venv/bin}
NOIDA="$VENV_BIN/noida-db"
ACTION=${1:-}
DIR=${2:-${KAFKA_BROKER_DIR:-var/kafka-broker}}

ready() {  # ApiVersions v0 over the wire (scripts/kafka-ready.py): the broker answers with our correlation id
  "$VENV_BIN/python" scripts/kafka-ready.py "$1"
}

wait_ready() {
  local address=$1
  for _ in $(seq 1 100); do
    if ready "$address"; then return 0; fi
    sleep 0.1
  done
  echo "kafka-broker: no ApiVersions answer from $address after 10 s; log: $DIR/noida.log" >&2
  return 1
}

case "$ACTION" in
  start)
    if [ ! -x "$NOIDA" ]; then
      echo "kafka-broker: $NOIDA missing; run: $VENV_BIN/pip install noida-db==0.2.3 (make install-test does)" >&2
      exit 1
    fi
    if [ -f "$DIR/bootstrap" ]; then "$0" stop "$DIR" >/dev/null 2>&1 || true; fi
    rm -rf "$DIR"  # always a fresh, empty broker: noida-db snapshots all state as one JSON file
    mkdir -p "$DIR"
    PORT=$("$VENV_BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$NOIDA" up --only kafka --host 127.0.0.1 --kafka-port "$PORT" --data-dir "$DIR" >"$DIR/up.log" 2>&1 || {
      cat "$DIR/up.log" >&2; exit 1; }
    echo "127.0.0.1:$PORT" >"$DIR/bootstrap"
    wait_ready "127.0.0.1:$PORT"
    echo "kafka-broker: noida-db ready on 127.0.0.1:$PORT (data $DIR)" >&2
    echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$PORT"
    ;;
  stop)
    [ -d "$DIR" ] || exit 0
    PID=$("$VENV_BIN/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$DIR/noida.control.json" 2>/dev/null || true)
    timeout 15 "$NOIDA" down --data-dir "$DIR" >/dev/null 2>&1 || true
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
      sleep 1
      kill -KILL "$PID" 2>/dev/null || true
    fi
    rm -f "$DIR/bootstrap"
    echo "kafka-broker: stopped ($DIR)" >&2
    ;;
  wait)
    wait_ready "$(cat "$DIR/bootstrap")"
    ;;
  env)
    echo "KAFKA_BOOTSTRAP_SERVERS=$(cat "$DIR/bootstrap")"
    ;;
  *)
    echo "usage: $0 start|stop|wait|env [DIR]" >&2
    exit 2
    ;;
esac
