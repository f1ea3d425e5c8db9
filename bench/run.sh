#!/usr/bin/env bash
# bench/run.sh — `make bench`: pgbench against PostgreSQL directly, through
# PgBouncer, through Pgpool-II and through pgninja, interleaved, plus the
# idle-client memory row and (when bench/backup.sh exists) the backup row.
# See bench/README.md.
#
# Knobs (environment):
#   BENCH_SECONDS=10        length of each pgbench run (-T)
#   BENCH_ROUNDS=2          rounds; the target order alternates every round
#   BENCH_WARMUP=10         seconds of unmeasured pgbench -S against each target
#                           whenever the proxies (re)start; 0 skips it
#   BENCH_QUICK=1           smoke test: 3 s runs, 1 round, results in results/quick.*
#   BENCH_ONLY=REGEX        run only scenarios whose id matches (results/quick.*)
#   BENCH_IDLE_CLIENTS=10000  clients for the memory rows; 0 skips them
#   BENCH_IDLE_TLS=1        also a memory row with TLS clients (self-signed certificate
#                           from openssl); 0 skips it
#   BENCH_TESTBED_PORT=27432  test bed base port (primary; +1 replica, +2 redis, +3 pgbouncer,
#                           +4 pgpool, +5 pgpool's PCP)
#   BENCH_PGPOOL=1          also measure Pgpool-II (installed when missing, as root); 0 skips it
#   BENCH_PUMPS=1           also measure bench/pump's three bare Go relays in the session -S rows
#                           (on the three ports after pgninja's admin port); 0 skips them
#   BENCH_PGNINJA_PORT=27440  pgninja listen port (admin HTTP on the next port)
#   BENCH_ROUTING_MODE=transaction  pool mode of the routing row (session|transaction)
#   BENCH_PGNINJA_REF=REF   build pgninja from this git ref (e.g. HEAD) instead of the working tree
#   BENCH_PROFILE_DIR=DIR   save a CPU profile of pgninja for each of its runs there
#                           (ID.rROUND.pprof, from its admin HTTP /debug/pprof/profile)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

# ------------------------------------------------------------- settings --

QUICK="${BENCH_QUICK:-0}"
[[ "$QUICK" == 0 || -z "$QUICK" ]] && QUICK=0 || QUICK=1
if ((QUICK)); then
	SECONDS_PER_RUN="${BENCH_SECONDS:-3}"
	ROUNDS="${BENCH_ROUNDS:-1}"
else
	SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
	ROUNDS="${BENCH_ROUNDS:-2}"
fi
ONLY="${BENCH_ONLY:-}"
WARMUP="${BENCH_WARMUP:-10}"
((QUICK)) && WARMUP="${BENCH_WARMUP:-1}"
IDLE_CLIENTS="${BENCH_IDLE_CLIENTS:-10000}"
IDLE_TLS="${BENCH_IDLE_TLS:-1}"
BASE_PORT="${BENCH_TESTBED_PORT:-27432}"
PGNINJA_PORT="${BENCH_PGNINJA_PORT:-27440}"
ADMIN_PORT=$((PGNINJA_PORT + 1))
PUMP_NETPOLL_PORT=$((PGNINJA_PORT + 2))
PUMP_EPOLL_PORT=$((PGNINJA_PORT + 3))
PUMP_CORO_PORT=$((PGNINJA_PORT + 4))
PGBOUNCER_PORT=$((BASE_PORT + 3))
PGPOOL_PORT=$((BASE_PORT + 4))
PGPOOL_PCP_PORT=$((BASE_PORT + 5))
WITH_PGPOOL="${BENCH_PGPOOL:-1}"
WITH_PUMPS="${BENCH_PUMPS:-1}"
# The relays neither pool nor route, so they run only the session rows a
# bare relay can stand in for: what any Go proxy pays before its own work.
PUMP_SCENARIOS=" session_select_simple session_select_extended "
ROUTING_MODE="${BENCH_ROUTING_MODE:-transaction}"
[[ "$ROUTING_MODE" == session || "$ROUTING_MODE" == transaction ]] || {
	echo "bench: BENCH_ROUTING_MODE must be session or transaction" >&2
	exit 2
}
POOL_SIZE=20
DB=bench
SCALE=10
PROFILE_DIR="${BENCH_PROFILE_DIR:-}"
[[ -z "$PROFILE_DIR" ]] || mkdir -p "$PROFILE_DIR"
for v in SECONDS_PER_RUN ROUNDS WARMUP IDLE_CLIENTS BASE_PORT PGNINJA_PORT; do
	[[ "${!v}" =~ ^[0-9]+$ ]] || {
		echo "bench: $v must be a number, got '${!v}'" >&2
		exit 2
	}
done

# Full runs (the committed numbers) go to results/latest.*; smoke tests and
# partial runs to results/quick.* (gitignored).
# Profiling costs pgninja CPU, so profiled runs are partial runs too.
if ((QUICK)) || [[ -n "$ONLY" || -n "$PROFILE_DIR" ]]; then OUT_NAME=quick; else OUT_NAME=latest; fi

# shellcheck source=bench/pgbouncer.sh
. "$ROOT/bench/pgbouncer.sh"

log() { printf '\033[1mbench:\033[0m %s\n' "$*" >&2; }
die() {
	printf 'bench: ERROR: %s\n' "$*" >&2
	exit 1
}

# The bench has its own test bed, so it never disturbs `make test` (25432)
# or `make demo`. Nothing from the caller's environment may redirect it.
export TESTBED_PORT="$BASE_PORT"
if [[ -n "${BENCH_TESTBED_DIR:-}" ]]; then export TESTBED_DIR="$BENCH_TESTBED_DIR"; else unset TESTBED_DIR; fi
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSFILE PGSERVICE PGSERVICEFILE \
	PGOPTIONS PGSSLMODE PGTARGETSESSIONATTRS PGAPPNAME PGCONNECT_TIMEOUT || true
export PGPASSWORD=postgres PGSSLMODE=disable PGGSSENCMODE=disable
PGBIN=/usr/lib/postgresql/15/bin

# 10,000 idle clients need more than the usual 1024 descriptors, in the
# client program and in both proxies (they inherit this shell's limit).
hard="$(ulimit -Hn)"
want=65536
[[ "$hard" != unlimited ]] && ((hard < want)) && want="$hard"
ulimit -n "$want" 2>/dev/null || true

# -------------------------------------------------------------- cleanup --

PGNINJA_PID=""
LAST_RC=0
CHILD_PID="" # the pgbench or idleclients process running now
PGB_PIDFILE=""
PGB_INI=""
PGPOOL_CONF=""

# alive PID: running and not a zombie (a child that died stays a zombie
# until waited for, and kill -0 still succeeds on it).
alive() {
	local st
	[[ -n "$1" ]] || return 1
	st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	st="${st##*) }"
	[[ "${st%% *}" != [ZX] ]]
}

stop_pid() { # stop_pid PID [SIGNAL]: signal, wait up to 10 s, then SIGKILL
	local pid="$1" sig="${2:-TERM}" i
	[[ -n "$pid" ]] || return 0
	if ! alive "$pid"; then
		wait "$pid" 2>/dev/null || true # reap our own child
		return 0
	fi
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_pgninja() {
	stop_pid "$PGNINJA_PID"
	PGNINJA_PID=""
}

PUMP_PIDS=()
stop_pumps() {
	local pid
	for pid in "${PUMP_PIDS[@]}"; do stop_pid "$pid"; done
	PUMP_PIDS=()
}

stop_pgbouncer() {
	local pid cmd
	[[ -n "$PGB_PIDFILE" && -f "$PGB_PIDFILE" ]] || return 0
	pid="$(tr -dc 0-9 <"$PGB_PIDFILE")"
	cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
	if [[ -n "$pid" && "$cmd" == *pgbouncer*"$PGB_INI"* ]]; then
		stop_pid "$pid" TERM # SIGTERM: immediate shutdown
	fi
	rm -f "$PGB_PIDFILE"
}

# stop_pgpool: SIGINT is Pgpool-II's fast shutdown (SIGTERM waits for
# its clients to leave).
stop_pgpool() {
	local pid cmd f="$WORK/pgpool/pgpool.pid"
	[[ -n "$PGPOOL_CONF" && -f "$f" ]] || return 0
	pid="$(tr -dc 0-9 <"$f")"
	cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
	if [[ -n "$pid" && "$cmd" == *pgpool*"$PGPOOL_CONF"* ]]; then
		stop_pid "$pid" INT
	fi
	rm -f "$f"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$CHILD_PID" INT
	stop_pgninja
	stop_pgbouncer
	stop_pgpool
	stop_pumps
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------- test bed --

log "starting the test bed (TESTBED_PORT=$BASE_PORT)"
# The test bed installs Pgpool-II with its other packages when asked to.
if [[ "$WITH_PGPOOL" != 0 ]]; then export TESTBED_PGPOOL=1; fi
scripts/testbed.sh up
if [[ "$WITH_PGPOOL" != 0 && ! -x /usr/sbin/pgpool ]]; then
	log "no /usr/sbin/pgpool: the Pgpool-II rows are left out"
	WITH_PGPOOL=0
fi
eval "$(scripts/testbed.sh env)"
TB_DIR="$PGNINJA_TEST_DIR"
PRIMARY_PORT="${PGNINJA_TEST_PRIMARY##*:}"
REPLICA_PORT="${PGNINJA_TEST_REPLICA##*:}"
SOCK_DIR="$TB_DIR/run"

WORK="$TB_DIR/bench"
rm -rf "$WORK/raw" "$WORK/routing" "$WORK/mem" "$WORK/backup" "$WORK/logs"
mkdir -p "$WORK/bin" "$WORK/raw" "$WORK/routing" "$WORK/mem" "$WORK/backup" "$WORK/logs" "$WORK/pgbouncer" "$WORK/pgpool"
# pgbouncer and Pgpool-II run as the postgres OS user (pgbouncer refuses
# root) and write here.
if ((EUID == 0)); then chown -R postgres: "$WORK/pgbouncer" "$WORK/pgpool"; fi

# psql as superuser over the unix socket (trust), like testbed.sh does.
sql() {
	local port="$1"
	shift
	"$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$SOCK_DIR" -p "$port" -U postgres "$@"
}

# ---------------------------------------------------------------- build --

PGNINJA_REF="${BENCH_PGNINJA_REF:-}"
if [[ -n "$PGNINJA_REF" ]]; then
	# A committed tree, e.g. to benchmark HEAD while the working tree is
	# half-way through an edit. Built outside the repository.
	PGNINJA_COMMIT="$(git rev-parse --short "$PGNINJA_REF^{commit}")" || die "BENCH_PGNINJA_REF=$PGNINJA_REF is not a commit"
	log "building pgninja from $PGNINJA_REF ($PGNINJA_COMMIT) and the bench helpers"
	rm -rf "$WORK/src"
	mkdir -p "$WORK/src"
	git archive "$PGNINJA_COMMIT" | tar -x -C "$WORK/src"
	(cd "$WORK/src" && CGO_ENABLED=1 go build -o "$WORK/bin/pgninja" ./cmd/pgninja)
	PGNINJA_BIN="$WORK/bin/pgninja"
	PGNINJA_SRC="$WORK/src"
else
	PGNINJA_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	git diff --quiet HEAD -- . ':!bench' 2>/dev/null && [[ -z "$(git ls-files --others --exclude-standard -- . ':!bench')" ]] ||
		PGNINJA_COMMIT+=" + working tree changes"
	log "building bin/pgninja (working tree) and the bench helpers"
	mkdir -p bin
	CGO_ENABLED=1 go build -o bin/pgninja ./cmd/pgninja
	PGNINJA_BIN="$ROOT/bin/pgninja"
	PGNINJA_SRC="$ROOT"
fi
# Routing is switched on by a `routing:` section; with a pgninja whose config
# has none (it rejects unknown keys) the routing row runs without it.
if grep -q 'yaml:"routing"' "$PGNINJA_SRC/config/config.go" 2>/dev/null; then ROUTING_SECTION=1; else ROUTING_SECTION=0; fi
go build -o "$WORK/bin/idleclients" ./bench/idleclients
go build -o "$WORK/bin/report" ./bench/report
[[ "$WITH_PUMPS" != 0 ]] && go build -o "$WORK/bin/pump" ./bench/pump

# --------------------------------------------------------------- pgbench --

init_pgbench() {
	if [[ "$(sql "$PRIMARY_PORT" -d postgres -c "select 1 from pg_database where datname = '$DB'")" != 1 ]]; then
		sql "$PRIMARY_PORT" -d postgres -c "create database $DB"
	fi
	local branches
	branches="$(sql "$PRIMARY_PORT" -d "$DB" -c "select count(*) from pgbench_branches" 2>/dev/null || echo 0)"
	if [[ "$branches" != "$SCALE" || -n "${BENCH_REINIT:-}" ]]; then
		log "pgbench -i -s $SCALE (database $DB)"
		"$PGBIN/pgbench" -i -s "$SCALE" -q -h "$SOCK_DIR" -p "$PRIMARY_PORT" -U postgres "$DB" >"$WORK/logs/pgbench-init.log" 2>&1 ||
			{
				tail -n 20 "$WORK/logs/pgbench-init.log" >&2
				die "pgbench -i failed"
			}
	else
		log "pgbench tables at scale $SCALE exist; vacuum analyze"
		sql "$PRIMARY_PORT" -d "$DB" -c "truncate pgbench_history" -c "vacuum analyze pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"
	fi
	sql "$PRIMARY_PORT" -d postgres -c checkpoint
	# The routing row reads from the replica: wait until it has replayed all of it.
	local lsn i
	lsn="$(sql "$PRIMARY_PORT" -d postgres -c "select pg_current_wal_lsn()")"
	for ((i = 0; i < 600; i++)); do
		[[ "$(sql "$REPLICA_PORT" -d postgres -c "select pg_last_wal_replay_lsn() >= '$lsn'")" == t ]] && return 0
		sleep 0.2
	done
	die "the replica did not catch up with the primary after pgbench -i"
}

# ---------------------------------------------------------------- proxies --

# pool_mode GROUP: the pool mode both proxies use for a group of scenarios
# (session | transaction | routing | idle).
pool_mode() {
	case "$1" in
	session) echo session ;;
	routing) echo "$ROUTING_MODE" ;;
	*) echo transaction ;;
	esac
}

write_pgninja_config() {
	local group="$1" mode f="$WORK/pgninja.yaml" certs=""
	mode="$(pool_mode "$group")"
	[[ "$group" == idle_tls ]] && certs="$(printf '\n  cert_file: %s\n  key_file: %s' "$WORK/tls/cert.pem" "$WORK/tls/key.pem")"
	{
		cat <<EOF
# Written by bench/run.sh for the "$group" scenarios.
listen: 127.0.0.1:$PGNINJA_PORT
admin_listen: 127.0.0.1:$ADMIN_PORT
log_level: info
max_client_conn: $((IDLE_CLIENTS + 100))
shutdown_timeout: 5s
auth:
  type: trust
tls:
  backend_sslmode: disable$certs
pool:
  mode: $mode
  max_size: $POOL_SIZE
users:
  - name: postgres
    auth: trust
    password: postgres
EOF
		if [[ "$group" == routing ]]; then
			if ((ROUTING_SECTION)); then
				cat <<EOF
routing:
  enabled: true
  health_check_user: postgres
  health_check_password: postgres
EOF
			fi
			cat <<EOF
backends:
  - {name: primary, host: 127.0.0.1, port: $PRIMARY_PORT, role: primary, weight: 0}
  - {name: replica, host: 127.0.0.1, port: $REPLICA_PORT, role: replica, weight: 1}
EOF
		else
			cat <<EOF
backends:
  - {name: primary, host: 127.0.0.1, port: $PRIMARY_PORT, role: primary, weight: 1}
EOF
		fi
	} >"$f"
	echo "$f"
}

# write_pgbouncer_config GROUP: the same pool mode and size as pgninja's.
write_pgbouncer_config() {
	local group="$1" mode d="$WORK/pgbouncer"
	mode="$(pool_mode "$group")"
	write_pgbouncer_ini "$d" "$PGBOUNCER_PORT" "$mode" "$((IDLE_CLIENTS + 100))"
	if [[ "$group" == idle_tls ]]; then
		printf 'client_tls_sslmode = allow\nclient_tls_cert_file = %s\nclient_tls_key_file = %s\n' \
			"$WORK/tls/cert.pem" "$WORK/tls/key.pem" >>"$d/pgbouncer.ini"
	fi
	if ((EUID == 0)); then chown postgres: "$d/userlist.txt" "$d/pgbouncer.ini"; fi
	PGB_INI="$d/pgbouncer.ini"
	PGB_PIDFILE="$d/pgbouncer.pid"
}

# write_pgpool_config GROUP: Pgpool-II in front of the same servers.
# Pgpool-II has no transaction pooling: a child process serves one client
# for as long as it stays connected, over a server connection of its own
# (connection_cache keeps it for the child's next client). So it gets a
# child per client of the group's scenarios, and load balancing (reads
# to the replica) in the routing group.
write_pgpool_config() {
	local group="$1" d="$WORK/pgpool" children=24
	[[ "$group" == transaction ]] && children=72
	printf 'host all all 127.0.0.1/32 trust\nlocal all all trust\n' >"$d/pool_hba.conf"
	printf 'postgres:TEXTpostgres\n' >"$d/pool_passwd"
	: >"$d/pcp.conf"
	{
		cat <<EOF
# Written by bench/run.sh for the "$group" scenarios.
backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = $PGPOOL_PORT
socket_dir = '$d'
pcp_listen_addresses = ''
pcp_port = $PGPOOL_PCP_PORT
pcp_socket_dir = '$d'
enable_pool_hba = on
pool_passwd = '$d/pool_passwd'
num_init_children = $children
max_pool = 1
connection_cache = on
reset_query_list = 'ABORT; DISCARD ALL'
sr_check_period = 0
# The user it finds the primary with (pg_is_in_recovery), at start.
sr_check_user = 'postgres'
health_check_period = 0
failover_on_backend_error = off
use_watchdog = off
log_destination = 'stderr'
logdir = '$d'
pid_file_name = '$d/pgpool.pid'
backend_hostname0 = '127.0.0.1'
backend_port0 = $PRIMARY_PORT
backend_flag0 = 'DISALLOW_TO_FAILOVER'
EOF
		if [[ "$group" == routing ]]; then
			cat <<EOF
backend_weight0 = 0
backend_hostname1 = '127.0.0.1'
backend_port1 = $REPLICA_PORT
backend_weight1 = 1
backend_flag1 = 'DISALLOW_TO_FAILOVER'
load_balance_mode = on
EOF
		else
			cat <<EOF
backend_weight0 = 1
load_balance_mode = off
EOF
		fi
	} >"$d/pgpool.conf"
	if ((EUID == 0)); then chown postgres: "$d"/*; fi
	chmod 600 "$d/pool_passwd"
	PGPOOL_CONF="$d/pgpool.conf"
}

# wait_ready PORT NAME PID: until `select 1` works through it.
wait_ready() {
	local port="$1" name="$2" pid="$3" i
	for ((i = 0; i < 150; i++)); do
		if timeout 10 "$PGBIN/psql" -X -q -A -t -h 127.0.0.1 -p "$port" -U postgres -d "$DB" -c 'select 1' >/dev/null 2>&1; then
			return 0
		fi
		if [[ -n "$pid" ]] && ! alive "$pid"; then break; fi
		sleep 0.2
	done
	timeout 10 "$PGBIN/psql" -X -q -A -t -h 127.0.0.1 -p "$port" -U postgres -d "$DB" -c 'select 1' >&2 || true
	return 1
}

start_pgninja() {
	local group="$1" cfg envclean=() v
	cfg="$(write_pgninja_config "$group")"
	# PGNINJA_* variables override the config file; the bench's must not.
	for v in $(compgen -e); do [[ "$v" == PGNINJA_* ]] && envclean+=(-u "$v"); done
	# Its own session, as pgbouncer -d and a service manager give theirs:
	# with the kernel's autogroup scheduling a session shares one CPU
	# share, and pgninja must not share pgbench's while pgbouncer has its
	# own. (setsid does not fork here: a background job of a script is no
	# process-group leader, so $! stays pgninja's pid.)
	setsid env "${envclean[@]}" "$PGNINJA_BIN" serve --config "$cfg" >>"$WORK/logs/pgninja-$group.log" 2>&1 </dev/null &
	PGNINJA_PID=$!
	if ! wait_ready "$PGNINJA_PORT" pgninja "$PGNINJA_PID"; then
		tail -n 20 "$WORK/logs/pgninja-$group.log" >&2
		log "pgninja ($group) is not answering; its runs will fail"
		return 1
	fi
}

start_pgbouncer() {
	local group="$1" pid
	write_pgbouncer_config "$group"
	rm -f "$PGB_PIDFILE"
	# setpriv rather than runuser: runuser's PAM session resets the fd
	# limit to 1024, too few for the idle-client row.
	local as=()
	((EUID == 0)) && as=(setpriv --reuid=postgres --regid=postgres --init-groups)
	(cd / && "${as[@]}" /usr/sbin/pgbouncer -d -q "$PGB_INI") || true
	for ((i = 0; i < 50; i++)); do
		[[ -s "$PGB_PIDFILE" ]] && break
		sleep 0.1
	done
	pid="$(tr -dc 0-9 <"$PGB_PIDFILE" 2>/dev/null || true)"
	if [[ -z "$pid" ]] || ! wait_ready "$PGBOUNCER_PORT" pgbouncer "$pid"; then
		tail -n 20 "$WORK/pgbouncer/pgbouncer.log" >&2 || true
		log "pgbouncer ($group) is not answering; its runs will fail"
		return 1
	fi
}

# start_pgpool GROUP. -D: node states from the last group's run (a
# backend it did not have, say) are not restored.
start_pgpool() {
	local group="$1" d="$WORK/pgpool" pid i
	write_pgpool_config "$group"
	rm -f "$d/pgpool.pid"
	local as=()
	((EUID == 0)) && as=(setpriv --reuid=postgres --regid=postgres --init-groups)
	(cd / && setsid "${as[@]}" /usr/sbin/pgpool -n -D -f "$PGPOOL_CONF" -a "$d/pool_hba.conf" -F "$d/pcp.conf" \
		>>"$WORK/logs/pgpool-$group.log" 2>&1 </dev/null &)
	for ((i = 0; i < 50; i++)); do
		[[ -s "$d/pgpool.pid" ]] && break
		sleep 0.1
	done
	pid="$(tr -dc 0-9 <"$d/pgpool.pid" 2>/dev/null || true)"
	if [[ -z "$pid" ]] || ! wait_ready "$PGPOOL_PORT" pgpool "$pid"; then
		tail -n 20 "$WORK/logs/pgpool-$group.log" >&2 || true
		log "pgpool ($group) is not answering; its runs will fail"
		return 1
	fi
}

# start_pumps: the bare relays, each in a session of its own as
# pgninja is (see start_pgninja).
start_pumps() {
	local mode port
	for mode in netpoll epoll coro; do
		port="$(target_port "pump_$mode")"
		setsid "$WORK/bin/pump" -mode "$mode" -listen "127.0.0.1:$port" -backend "127.0.0.1:$PRIMARY_PORT" \
			>>"$WORK/logs/pump-$mode.log" 2>&1 </dev/null &
		PUMP_PIDS+=($!)
		wait_ready "$port" "pump_$mode" "$!" || log "pump_$mode is not answering; its runs will fail"
	done
}

start_proxies() {
	log "starting the proxies ($1 scenarios, pool size $POOL_SIZE)"
	start_pgbouncer "$1" || true
	if [[ "$WITH_PGPOOL" != 0 ]]; then start_pgpool "$1" || true; fi
	start_pgninja "$1" || true
	if [[ "$WITH_PUMPS" != 0 && "$1" == session ]]; then start_pumps; fi
}

stop_proxies() {
	stop_pgninja
	stop_pgbouncer
	stop_pgpool
	stop_pumps
}

# runs_in TARGET SCENARIO: whether TARGET takes part in SCENARIO.
runs_in() {
	[[ "$1" != pump_* ]] || [[ "$PUMP_SCENARIOS" == *" $2 "* ]]
}

# note_crash LOG: "pgninja exited: <last panic> at <file:line>" from a log
# whose pgninja process is gone; bench/report adds it to that run's errors.
note_crash() {
	local panic at
	panic="$(grep -E '^(panic|fatal error): ' "$1" | tail -n 1 || true)"
	if [[ -z "$panic" ]]; then
		echo "pgninja exited (no panic in its log; see logs/$(basename "$1"))"
		return
	fi
	at="$(awk -v p="$panic" '$0 == p {found = 1; next} found && /\.go:[0-9]+/ {print $1; exit}' "$1")"
	at="${at#"$ROOT/"}"
	at="${at#"$WORK/src/"}"
	echo "pgninja crashed: $panic${at:+ at $at}"
}

# restart_after_failure TARGET GROUP SCENARIO ROUND: a proxy whose run failed is
# restarted, so that one failure (say, stuck server connections) does not
# spill into the next scenario. A pgninja that made pgbench time out first
# gets SIGQUIT, which writes every goroutine's stack to its log.
restart_after_failure() {
	local target="$1" group="$2" id="$3" round="$4"
	case "$target" in
	pgninja)
		if [[ -n "$PGNINJA_PID" ]] && ! alive "$PGNINJA_PID"; then
			note_crash "$WORK/logs/pgninja-$group.log" >"$WORK/raw/$id.pgninja.r$round.proxy"
		fi
		if ((LAST_RC == 124 || LAST_RC == 137)) && [[ -n "$PGNINJA_PID" ]] && alive "$PGNINJA_PID"; then
			log "pgninja hung in $id (round $round): goroutine dump in $WORK/logs/pgninja-$group.log"
			printf '\n==== bench: pgbench timed out in %s; SIGQUIT for a goroutine dump ====\n' "$id (round $round)" >>"$WORK/logs/pgninja-$group.log"
			stop_pid "$PGNINJA_PID" QUIT
		fi
		stop_pgninja
		start_pgninja "$group" || true
		;;
	pgbouncer)
		stop_pgbouncer
		start_pgbouncer "$group" || true
		;;
	pgpool)
		stop_pgpool
		start_pgpool "$group" || true
		;;
	pump_*)
		stop_pumps
		start_pumps
		;;
	esac
}

target_port() {
	case "$1" in
	direct) echo "$PRIMARY_PORT" ;;
	pgbouncer) echo "$PGBOUNCER_PORT" ;;
	pgpool) echo "$PGPOOL_PORT" ;;
	pgninja) echo "$PGNINJA_PORT" ;;
	pump_netpoll) echo "$PUMP_NETPOLL_PORT" ;;
	pump_epoll) echo "$PUMP_EPOLL_PORT" ;;
	pump_coro) echo "$PUMP_CORO_PORT" ;;
	esac
}

# xacts PORT: committed + rolled back transactions in the bench database.
xacts() { sql "$1" -d postgres -c "select xact_commit + xact_rollback from pg_stat_database where datname = '$DB'"; }

# tree_ticks PID: CPU clock ticks of process PID and its children, with
# those of the children it has reaped (PostgreSQL's backends and
# Pgpool-II's children are the postmaster's and pgpool's children): user
# and system together, then user alone. Fields after the command name:
# ppid is the 2nd, utime, stime, cutime, cstime the 12th to 15th. A
# process that ends while the files are read is skipped.
tree_ticks() {
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v p="$1" '{
		pid = $1
		sub(/^.*\) /, "")
		if (pid == p || $2 == p) { t += $12 + $13 + $14 + $15; u += $12 + $14 }
	} END { print t + 0, u + 0 }'
}

# listener_pid PORT: the process listening on 127.0.0.1:PORT; of several
# (Pgpool-II's children share the socket), the one whose parent is not
# among them.
listener_pid() {
	local pids pid ppid
	pids=" $(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | tr '\n' ' ')"
	for pid in $pids; do
		ppid="$(awk '{ sub(/^.*\) /, ""); print $2 }' "/proc/$pid/stat" 2>/dev/null)"
		[[ "$pids" == *" $ppid "* ]] || { echo "$pid"; return; }
	done
}

postmaster_pid() { head -n1 "$1/postmaster.pid" 2>/dev/null; }

# cpu_ticks TARGET: the target proxy's ticks and its user ticks ("- -" for
# direct, or when its process is not found), and PostgreSQL's, primary and
# replica together.
cpu_ticks() {
	local proxy="- -" pid
	if [[ "$1" != direct ]]; then
		pid="$(listener_pid "$(target_port "$1")")"
		[[ -n "$pid" ]] && proxy="$(tree_ticks "$pid")"
	fi
	local server=0 pm total _
	for pm in "$(postmaster_pid "$TB_DIR/primary")" "$(postmaster_pid "$TB_DIR/replica")"; do
		[[ -n "$pm" ]] || continue
		read -r total _ < <(tree_ticks "$pm")
		server=$((server + total))
	done
	echo "$proxy $server"
}

# run_pgbench SCENARIO TARGET ROUND ARGS...: one pgbench run; its stdout,
# stderr and exit status go to raw/, where bench/report reads them, with
# the CPU the proxy and PostgreSQL spent meanwhile (.cpu).
run_pgbench() {
	local id="$1" target="$2" round="$3"
	shift 3
	local port base rc=0
	port="$(target_port "$target")"
	base="$WORK/raw/$id.$target.r$round"
	printf '%s\n' "pgbench -n -h 127.0.0.1 -p $port -U postgres -T $SECONDS_PER_RUN -j 2 $* $DB" >"$base.cmd"
	local p0=0 r0=0
	if [[ "$id" == routing_* ]]; then p0="$(xacts "$PRIMARY_PORT")" r0="$(xacts "$REPLICA_PORT")"; fi
	printf '  %-20s %-10s round %s ... ' "$id" "$target" "$round" >&2
	local profiler=""
	if [[ -n "$PROFILE_DIR" && "$target" == pgninja ]]; then
		curl -sf -o "$PROFILE_DIR/$id.r$round.pprof" \
			"http://127.0.0.1:$ADMIN_PORT/debug/pprof/profile?seconds=$SECONDS_PER_RUN" &
		profiler=$!
	fi
	local proxy0 user0 server0 proxy1 user1 server1
	read -r proxy0 user0 server0 < <(cpu_ticks "$target")
	# In the background, so that Ctrl-C reaches the trap at once; the
	# timeout catches a proxy that hangs.
	timeout -k 5 $((SECONDS_PER_RUN + 30)) "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres \
		-T "$SECONDS_PER_RUN" -j 2 "$@" "$DB" >"$base.out" 2>"$base.err" &
	CHILD_PID=$!
	wait "$CHILD_PID" || rc=$?
	CHILD_PID=""
	read -r proxy1 user1 server1 < <(cpu_ticks "$target")
	{
		printf 'hz\t%s\n' "$(getconf CLK_TCK)"
		printf 'server\t%s\n' $((server1 - server0))
		if [[ "$proxy0" != - && "$proxy1" != - ]]; then
			printf 'proxy\t%s\nproxy_user\t%s\n' $((proxy1 - proxy0)) $((user1 - user0))
		fi
	} >"$base.cpu"
	LAST_RC=$rc
	echo "$rc" >"$base.rc"
	if [[ "$id" == routing_* ]]; then
		printf 'primary\t%s\nreplica\t%s\n' $(($(xacts "$PRIMARY_PORT") - p0)) $(($(xacts "$REPLICA_PORT") - r0)) >"$WORK/routing/$id.$target.r$round"
	fi
	local tps
	tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$base.out" | head -n1)"
	if ((rc == 0)); then
		printf '%s tps\n' "${tps%.*}" >&2
	else
		printf 'exit %s: %s\n' "$rc" "$(grep -m1 -i 'error' "$base.err" | cut -c1-120)" >&2
	fi
	if [[ -n "$profiler" ]] && ! wait "$profiler"; then
		log "no CPU profile of pgninja for $id round $round"
	fi
}

# warm_up: freshly started proxies open fresh server connections, and a
# new PostgreSQL backend (and the machine) takes tens of seconds to reach
# its steady rate; measured, PgBouncer and pgninja both climbed from about
# 40% to full speed over the first 30 s. Every target gets the same
# unmeasured run, so the first scenario after a start measures the steady
# state, like the rest.
warm_up() {
	((WARMUP > 0)) || return 0
	local target port
	for target in "$@"; do
		port="$(target_port "$target")"
		timeout -k 5 $((WARMUP + 30)) "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres \
			-T "$WARMUP" -j 2 -S -M simple -c 16 "$DB" >/dev/null 2>&1 &
		CHILD_PID=$!
		wait "$CHILD_PID" || true
		CHILD_PID=""
	done
}

# Scenarios: GROUP|ID|LABEL|PGBENCH ARGS. GROUP picks the proxies' pool mode
# (routing: transaction mode, pgninja with the replica as its read backend).
SCENARIOS=(
	"session|session_select_simple|session: -S -M simple -c 16|-S -M simple -c 16"
	"session|session_select_extended|session: -S -M extended -c 16|-S -M extended -c 16"
	"session|session_select_prepared|session: -S -M prepared -c 16|-S -M prepared -c 16"
	"session|session_tpcb_simple|session: tpcb-like -M simple -c 16|-M simple -c 16"
	"session|session_connect_select|session: -C -S -M simple -c 16 (connect per transaction)|-C -S -M simple -c 16"
	"transaction|tx_select_simple|transaction: -S -M simple -c 64|-S -M simple -c 64"
	"transaction|tx_select_extended|transaction: -S -M extended -c 64|-S -M extended -c 64"
	"transaction|tx_select_prepared|transaction: -S -M prepared -c 64|-S -M prepared -c 64"
	"routing|routing_select_simple|routing on, reads to the replica ($ROUTING_MODE mode): -S -M simple -c 16|-S -M simple -c 16"
)
GROUPS_IN_ORDER=(session transaction routing)

# plan.tsv tells bench/report the scenarios, their order and labels.
: >"$WORK/plan.tsv"
for s in "${SCENARIOS[@]}"; do
	IFS='|' read -r group id label args <<<"$s"
	[[ -z "$ONLY" || "$id" =~ $ONLY ]] || continue
	printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$group" "$label" "$args" "$(pool_mode "$group")" >>"$WORK/plan.tsv"
done

cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
{
	printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf 'commit\t%s\n' "$PGNINJA_COMMIT"
	printf 'cpu\t%s\n' "${cpu_model:-unknown}"
	printf 'cores\t%s\n' "$(nproc)"
	printf 'postgresql\t%s\n' "$("$PGBIN/postgres" --version | sed 's/^postgres (PostgreSQL) //')"
	printf 'pgbouncer\t%s\n' "$(/usr/sbin/pgbouncer --version | head -n1 | sed 's/^PgBouncer //')"
	if [[ "$WITH_PGPOOL" != 0 ]]; then
		printf 'pgpool\t%s\n' "$(/usr/sbin/pgpool --version 2>&1 | sed -n 's/^pgpool-II version \([^ ]*\).*/\1/p')"
	fi
	printf 'go\t%s\n' "$(go env GOVERSION)"
	printf 'seconds\t%s\n' "$SECONDS_PER_RUN"
	printf 'warmup\t%s\n' "$WARMUP"
	printf 'rounds\t%s\n' "$ROUNDS"
	printf 'pool_size\t%s\n' "$POOL_SIZE"
	printf 'scale\t%s\n' "$SCALE"
	printf 'idle_clients\t%s\n' "$IDLE_CLIENTS"
	printf 'quick\t%s\n' "$QUICK"
} >"$WORK/meta.tsv"

init_pgbench

# ----------------------------------------------------------------- rounds --

TARGETS=(direct pgbouncer)
[[ "$WITH_PGPOOL" != 0 ]] && TARGETS+=(pgpool)
TARGETS+=(pgninja)
[[ "$WITH_PUMPS" != 0 ]] && TARGETS+=(pump_netpoll pump_epoll pump_coro)
for ((round = 1; round <= ROUNDS; round++)); do
	# Alternate the order of the targets every round.
	order=()
	if ((round % 2)); then
		order=("${TARGETS[@]}")
	else
		for ((i = ${#TARGETS[@]} - 1; i >= 0; i--)); do order+=("${TARGETS[i]}"); done
	fi
	log "round $round of $ROUNDS (${SECONDS_PER_RUN}s runs; order: ${order[*]})"
	for group in "${GROUPS_IN_ORDER[@]}"; do
		grep -q "	$group	" "$WORK/plan.tsv" || continue
		start_proxies "$group"
		present=()
		for target in "${order[@]}"; do
			[[ "$target" != pump_* || ("$group" == session && ${#PUMP_PIDS[@]} -gt 0) ]] && present+=("$target")
		done
		warm_up "${present[@]}"
		while IFS=$'\t' read -r -u 3 id g _ args _; do
			[[ "$g" == "$group" ]] || continue
			for target in "${present[@]}"; do
				runs_in "$target" "$id" || continue
				# shellcheck disable=SC2086 # args are words
				run_pgbench "$id" "$target" "$round" $args
				((LAST_RC != 0)) && restart_after_failure "$target" "$group" "$id" "$round"
			done
		done 3<"$WORK/plan.tsv"
		stop_proxies
	done
done

# ------------------------------------------------------- idle-client memory --

# make_tls_files: a self-signed certificate for 127.0.0.1 in $WORK/tls,
# readable by pgbouncer (the postgres OS user when root).
make_tls_files() {
	if ! command -v openssl >/dev/null; then
		log "no openssl: the TLS memory row is skipped"
		return 1
	fi
	mkdir -p "$WORK/tls"
	if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=127.0.0.1 -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" >"$WORK/logs/openssl.log" 2>&1; then
		log "openssl could not make a certificate (logs/openssl.log): the TLS memory row is skipped"
		return 1
	fi
	if ((EUID == 0)); then chown -R postgres: "$WORK/tls"; fi
	chmod 600 "$WORK/tls/key.pem"
}

rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null; }

# idle_row TARGET PID PORT [SSLMODE]: RSS of the proxy before and after
# IDLE_CLIENTS idle, authenticated clients (over TLS with SSLMODE
# require). Results in mem/TARGET as key<TAB>value lines.
idle_row() {
	local target="$1" pid="$2" port="$3" sslmode="${4:-disable}" f="$WORK/mem/$1" before after out="$WORK/logs/idleclients-$1.log" i rc=0
	: >"$f"
	if [[ -z "$pid" ]] || ! alive "$pid"; then
		printf 'error\t%s did not start\n' "$target" >>"$f"
		return 0
	fi
	printf 'fd_limit\t%s\n' "$(awk '/Max open files/ {print $4}' "/proc/$pid/limits")" >>"$f"
	sleep 1
	before="$(rss_kb "$pid")"
	printf 'before_kb\t%s\n' "$before" >>"$f"
	log "$target: opening $IDLE_CLIENTS idle clients (RSS before: $((before / 1024)) MB)"
	"$WORK/bin/idleclients" -n "$IDLE_CLIENTS" \
		-dsn "host=127.0.0.1 port=$port user=postgres dbname=$DB sslmode=$sslmode" >"$out" 2>&1 &
	CHILD_PID=$!
	for ((i = 0; i < 2400; i++)); do
		grep -q '^ready' "$out" && break
		alive "$CHILD_PID" || break
		sleep 0.1
	done
	if grep -q '^ready' "$out"; then
		printf 'connect_seconds\t%s\n' "$(awk '/^ready/ {sub(/s$/, "", $3); print $3}' "$out")" >>"$f"
		# Let the proxies settle: idle memory is what they hold once the
		# connection storm is over (pgninja parks quiet clients after one
		# to two seconds and then gives their memory back).
		sleep 10
		if alive "$pid"; then
			after="$(rss_kb "$pid")"
			printf 'after_kb\t%s\nclients\t%s\n' "$after" "$IDLE_CLIENTS" >>"$f"
			log "$target: RSS after: $((after / 1024)) MB (+$(((after - before) / 1024)) MB)"
		else
			printf 'error\t%s exited while holding the clients\n' "$target" >>"$f"
		fi
	else
		stop_pid "$CHILD_PID" KILL
		local msg
		msg="$(grep -m1 . "$out" || true)"
		printf 'error\t%s\n' "${msg:-idleclients did not get ready within 4 minutes}" >>"$f"
		log "$target: ${msg:-idleclients did not get ready}"
	fi
	if alive "$CHILD_PID"; then stop_pid "$CHILD_PID" TERM; else wait "$CHILD_PID" 2>/dev/null || rc=$?; fi
	CHILD_PID=""
	alive "$pid" || printf 'error\t%s is not running after the clients left\n' "$target" >>"$f"
	return 0
}

if ((IDLE_CLIENTS > 0)) && [[ -z "$ONLY" || "idle_clients" =~ $ONLY ]]; then
	log "memory: $IDLE_CLIENTS idle clients, transaction mode (fd limit $(ulimit -n))"
	# One proxy at a time, each freshly started.
	start_pgbouncer idle || true
	idle_row pgbouncer "$(tr -dc 0-9 <"$PGB_PIDFILE" 2>/dev/null || true)" "$PGBOUNCER_PORT"
	stop_pgbouncer
	start_pgninja idle || true
	idle_row pgninja "$PGNINJA_PID" "$PGNINJA_PORT"
	stop_pgninja
	if ((IDLE_TLS)) && make_tls_files; then
		log "memory: $IDLE_CLIENTS idle TLS clients, transaction mode"
		start_pgbouncer idle_tls || true
		idle_row pgbouncer_tls "$(tr -dc 0-9 <"$PGB_PIDFILE" 2>/dev/null || true)" "$PGBOUNCER_PORT" require
		stop_pgbouncer
		start_pgninja idle_tls || true
		idle_row pgninja_tls "$PGNINJA_PID" "$PGNINJA_PORT" require
		stop_pgninja
	fi
fi

# ----------------------------------------------------------------- backup --

# bench/backup.sh belongs to the backup feature; it prints its own markdown
# row(s) in this table's columns. Run it when it exists.
if [[ -f bench/backup.sh ]] && [[ -z "$ONLY" || "backup" =~ $ONLY ]]; then
	log "running bench/backup.sh"
	rc=0
	BENCH_SECONDS="$SECONDS_PER_RUN" BENCH_QUICK="$QUICK" BENCH_ROUNDS="$ROUNDS" \
		BENCH_WORK_DIR="$WORK/backup" PGNINJA_BIN="$PGNINJA_BIN" \
		timeout -k 10 1800 bash bench/backup.sh >"$WORK/backup/out" 2>"$WORK/backup/err" || rc=$?
	echo "$rc" >"$WORK/backup/rc"
	((rc == 0)) || log "bench/backup.sh exited $rc: $(tail -n 3 "$WORK/backup/err")"
fi

# ----------------------------------------------------------------- report --

mkdir -p bench/results
"$WORK/bin/report" -dir "$WORK" -md "bench/results/$OUT_NAME.md" -json "bench/results/$OUT_NAME.json"
log "wrote bench/results/$OUT_NAME.md and bench/results/$OUT_NAME.json (raw pgbench output: $WORK/raw)"
