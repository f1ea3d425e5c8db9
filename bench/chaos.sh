#!/usr/bin/env bash
# bench/chaos.sh — `make chaos`: faults injected under load. For each pool
# mode it starts pgninja on the test bed, runs bench/chaos (clients that
# check every answer, read back their own writes, and have every commit
# checked afterwards) while it terminates a server backend every 300 ms,
# restarts the replica (down 5 s), freezes it (SIGSTOP, 6 s), reloads
# pgninja with a smaller pool (SIGHUP), restarts the primary (down 2 s)
# and freezes the primary (3 s). A mode
# fails on a wrong answer, a write missing from its client's next read, a
# lost commit, or an error without a SQLSTATE. See bench/README.md.
#
# Knobs (environment):
#   CHAOS_SECONDS=48                      length of each mode's run
#   CHAOS_CLIENTS=40                      concurrent clients
#   CHAOS_MODES="session transaction routing"
#   CHAOS_TESTBED_PORT=28432              test bed base port (primary; +1 replica, +2 redis)
#   CHAOS_PGNINJA_PORT=28440              pgninja listen port (admin HTTP on the next port)
#   CHAOS_BACKEND_TLS=0                   1: pgninja reaches the servers over TLS, verify-full
#                                         against the test bed's CA
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECS="${CHAOS_SECONDS:-48}"
CLIENTS="${CHAOS_CLIENTS:-40}"
MODES="${CHAOS_MODES:-session transaction routing}"
PORT="${CHAOS_PGNINJA_PORT:-28440}"
export TESTBED_PORT="${CHAOS_TESTBED_PORT:-28432}"

log() { printf '\033[1mchaos:\033[0m %s\n' "$*" >&2; }

scripts/testbed.sh up
eval "$(scripts/testbed.sh env)"
WORK="$PGNINJA_TEST_DIR/chaos"
mkdir -p "$WORK"
CGO_ENABLED=1 go build -o "$WORK/pgninja" ./cmd/pgninja
go build -o "$WORK/chaos" ./bench/chaos
scripts/testbed.sh psql -qc "create database chaos" 2>/dev/null || true

PRIMARY_PORT="${PGNINJA_TEST_PRIMARY##*:}"
REPLICA_PORT="${PGNINJA_TEST_REPLICA##*:}"
USER_PASS="user=$PGNINJA_TEST_SUPERUSER password=$PGNINJA_TEST_SUPERPASS dbname=chaos sslmode=disable"

BACKEND_TLS="{backend_sslmode: disable}"
if [[ "${CHAOS_BACKEND_TLS:-0}" == 1 ]]; then
	BACKEND_TLS="{backend_sslmode: verify-full, backend_ca_file: $PGNINJA_TEST_CA}"
fi

NINJA_PID=
FAULTS_PID=
cleanup() {
	[[ -n "$FAULTS_PID" ]] && kill "$FAULTS_PID" 2>/dev/null || true
	[[ -n "$NINJA_PID" ]] && kill "$NINJA_PID" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT

# config writes a mode's pgninja.yaml. Session mode gets a server
# connection per client, so that no client waits its whole deadline in
# the queue for one.
config() {
	local pool_mode="$1" routing="$2" size=20
	[[ "$pool_mode" == session ]] && size=$((CLIENTS + 10))
	cat <<EOF
listen: 127.0.0.1:$PORT
admin_listen: 127.0.0.1:$((PORT + 1))
log_level: warn
auth: {type: trust}
tls: $BACKEND_TLS
pool: {mode: $pool_mode, max_size: $size}
users:
  - {name: $PGNINJA_TEST_SUPERUSER, auth: trust, password: $PGNINJA_TEST_SUPERPASS}
backends:
  - {name: primary, host: 127.0.0.1, port: $PRIMARY_PORT, role: primary, weight: 1}
EOF
	if ((routing)); then
		cat <<EOF
  - {name: replica, host: 127.0.0.1, port: $REPLICA_PORT, role: replica, weight: 3}
routing:
  enabled: true
  health_check_interval: 500ms
  health_check_user: $PGNINJA_TEST_SUPERUSER
  health_check_password: $PGNINJA_TEST_SUPERPASS
EOF
	fi
}

# faults MODE runs in the background during a mode's load. The freeze is
# shorter than the clients' 15 s deadline: reads caught on the frozen
# replica wait it out, and the health checks take the replica out of
# rotation meanwhile. The reload shrinks the pool under the clients' feet
# (session mode's stays larger than the number of clients).
faults() {
	local mode="$1" step=$((SECS / 8)) size
	sleep "$step"
	log "restarting the replica (down 5 s)"
	scripts/testbed.sh restart replica 5 2>/dev/null
	sleep "$step"
	log "freezing the replica (6 s)"
	scripts/testbed.sh freeze replica 6 2>/dev/null
	sleep "$step"
	size="$(sed -n 's/.*max_size: \([0-9]*\).*/\1/p' "$WORK/$mode.yaml")"
	log "reloading pgninja with pool max_size $((size - 5)) (SIGHUP)"
	sed -i "s/max_size: $size/max_size: $((size - 5))/" "$WORK/$mode.yaml"
	kill -HUP "$NINJA_PID"
	sleep "$step"
	log "restarting the primary (down 2 s)"
	scripts/testbed.sh restart primary 2 2>/dev/null
	sleep "$step"
	# A hung primary: requests wait for it, none may fail or be lost.
	log "freezing the primary (3 s)"
	scripts/testbed.sh freeze primary 3 2>/dev/null
}

failed=()
for mode in $MODES; do
	case "$mode" in
	session | transaction) config "$mode" 0 >"$WORK/$mode.yaml" ;;
	routing) config transaction 1 >"$WORK/$mode.yaml" ;;
	*)
		log "unknown mode $mode"
		exit 2
		;;
	esac
	"$WORK/pgninja" serve --config "$WORK/$mode.yaml" >"$WORK/$mode.log" 2>&1 &
	NINJA_PID=$!
	for _ in $(seq 50); do
		"$PGNINJA_TEST_PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
		sleep 0.1
	done
	log "$mode: ${SECS}s of load with faults"
	faults "$mode" &
	FAULTS_PID=$!
	status=0
	"$WORK/chaos" -duration "${SECS}s" -clients "$CLIENTS" \
		-proxy "host=127.0.0.1 port=$PORT $USER_PASS" \
		-direct "host=127.0.0.1 port=$PRIMARY_PORT $USER_PASS" | tee "$WORK/$mode.out" || status=$?
	wait "$FAULTS_PID" || true
	FAULTS_PID=
	if ! kill -0 "$NINJA_PID" 2>/dev/null; then
		log "$mode: pgninja is gone (see $WORK/$mode.log)"
		status=1
	fi
	if grep -q "config reload rejected" "$WORK/$mode.log"; then
		log "$mode: pgninja refused the reload (see $WORK/$mode.log)"
		status=1
	fi
	kill "$NINJA_PID" 2>/dev/null || true
	wait "$NINJA_PID" 2>/dev/null || true
	NINJA_PID=
	if ((status != 0)); then
		failed+=("$mode")
	fi
done

if ((${#failed[@]})); then
	log "FAILED: ${failed[*]}"
	exit 1
fi
log "ok: every mode kept its answers right through the faults"
