#!/usr/bin/env bash
# make demo: start a local primary + streaming replica + Redis, apply the
# AI Answer Ninja schema with sample data, and serve pgninja in the
# foreground on 127.0.0.1:6432 (admin HTTP on 127.0.0.1:9432). Ctrl-C stops
# pgninja and the servers it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export TESTBED_PORT=${TESTBED_PORT:-15432}
LISTEN=${DEMO_LISTEN:-127.0.0.1:6432}
ADMIN=${DEMO_ADMIN:-127.0.0.1:9432}
ROWS=${DEMO_ROWS:-1000000}
BIN=bin/pgninja

# The demo's config goes where every pgninja subcommand looks when given no
# --config, so `bin/pgninja backup run` in a second terminal uses it.
CONFIG=${PGNINJA_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/pgninja/pgninja.yaml}
CONFIG_DIR=$(dirname "$CONFIG")
DATA_DIR=${DEMO_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/pgninja}

port_busy() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$LISTEN" "$ADMIN"; do
  if port_busy "$addr"; then
    echo "demo: $addr is already in use; stop what holds it (or set DEMO_LISTEN/DEMO_ADMIN)" >&2
    exit 1
  fi
done

[ -x "$BIN" ] || make build

stop_all() {
  trap - INT TERM EXIT
  if [ -n "${PGNINJA_PID:-}" ] && kill -0 "$PGNINJA_PID" 2>/dev/null; then
    kill -TERM "$PGNINJA_PID" 2>/dev/null || true
    wait "$PGNINJA_PID" 2>/dev/null || true
  fi
  echo "demo: stopping the test bed"
  scripts/testbed.sh down || true
}
trap stop_all INT TERM EXIT

scripts/testbed.sh up
eval "$(scripts/testbed.sh env)"
PRIMARY_PORT=${PGNINJA_TEST_PRIMARY##*:}
REPLICA_PORT=${PGNINJA_TEST_REPLICA##*:}

mkdir -p "$CONFIG_DIR" "$DATA_DIR/backups"
chmod 700 "$CONFIG_DIR"
KEY_FILE="$CONFIG_DIR/backup.key"
if [ ! -s "$KEY_FILE" ]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$KEY_FILE")
fi

(umask 077 && cat > "$CONFIG" <<YAML
# Written by scripts/demo.sh; every pgninja subcommand reads it by default.
listen: $LISTEN
admin_listen: $ADMIN
log_level: info
admin_users: [ninja]
query_stats:
  enabled: true
pool:
  mode: transaction
  max_size: 20
routing:
  enabled: true
  consistency: read_your_writes
backends:
  - name: primary
    host: 127.0.0.1
    port: $PRIMARY_PORT
    role: primary
  - name: replica1
    host: 127.0.0.1
    port: $REPLICA_PORT
    role: replica
    weight: 1
databases:
  ai_ninja: {}
users:
  - name: ninja
    password: ninja
sidecar:
  database: ai_ninja
  partitions:
    enabled: true
    schedule: "@hourly"
    tables:
      - table: public.call_records
        interval: month
        premake: 4
      - table: public.conversations
        interval: month
        premake: 4
  backup:
    enabled: true
    schedule: "0 2 * * *"
    dir: $DATA_DIR/backups
    key_file: $KEY_FILE
    keep_last: 7
    keep_daily: 7
    keep_weekly: 4
YAML
)
echo "demo: config written to $CONFIG"

"$BIN" migrate up
"$BIN" demo-data --rows "$ROWS"

"$BIN" serve &
PGNINJA_PID=$!
for _ in $(seq 1 50); do
  port_busy "$LISTEN" && break
  kill -0 "$PGNINJA_PID" 2>/dev/null || { echo "demo: pgninja failed to start" >&2; exit 1; }
  sleep 0.1
done
cat <<MSG

  pgninja is serving the AI Answer Ninja database.
    DSN:    postgres://ninja:ninja@$LISTEN/ai_ninja
    psql:   psql "postgres://ninja:ninja@$LISTEN/ai_ninja" -c 'select 1'
    admin:  http://$ADMIN/metrics   http://$ADMIN/pools
    console: psql "postgres://ninja:ninja@$LISTEN/pgninja" -c 'show pools'   (SHOW HELP lists the rest)
    try:    $BIN partitions status    $BIN backup run    $BIN backup list
  Ctrl-C stops pgninja and the local servers.

MSG
wait "$PGNINJA_PID"
