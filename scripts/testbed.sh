#!/usr/bin/env bash
# scripts/testbed.sh — local integration test bed for pgninja.
#
# Starts, on 127.0.0.1 only:
#   - a PostgreSQL 15 primary            (port TESTBED_PORT,     default 25432)
#   - a streaming hot-standby replica    (port TESTBED_PORT + 1)
#   - a Redis server                     (port TESTBED_PORT + 2)
#   - (ports TESTBED_PORT + 3 to + 5 are reserved for pgbouncer and Pgpool-II,
#     started by the bench harness)
#
# Usage: scripts/testbed.sh up|down [--purge]|status|env|psql [psql args]
#
# Everything lives in TESTBED_DIR (default ${TMPDIR:-/tmp}/pgninja-testbed-$TESTBED_PORT),
# never inside the repository: CI clones the repo into folders the `postgres`
# OS user may not be able to traverse. When run as root the servers run as the
# `postgres` OS user (PostgreSQL refuses to run as root); otherwise as the
# current user. Missing packages are apt-get installed when running as root.
#
# All subcommands are idempotent: `up` on a running bed only re-checks it,
# `down` on a stopped bed succeeds. `down` keeps the data so the next `up` is
# fast; `down --purge` deletes TESTBED_DIR.
set -euo pipefail

# Variables from the caller's environment must not redirect our own psql /
# pg_ctl calls to some other server or data directory.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE \
	PGSERVICE PGSERVICEFILE PGOPTIONS PGSSLMODE PGDATA PGTARGETSESSIONATTRS || true
export PATH="${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin"

PGBIN=/usr/lib/postgresql/15/bin
SUPERUSER=postgres
SUPERPASS=postgres
REPL_USER=replicator
REPL_PASS=replicator
APP_USER=ninja
APP_PASS=ninja
APP_DB=ai_ninja

log() { printf 'testbed: %s\n' "$*" >&2; }
die() {
	printf 'testbed: ERROR: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------- settings --

TESTBED_PORT="${TESTBED_PORT:-25432}"
[[ "$TESTBED_PORT" =~ ^[0-9]+$ ]] || die "TESTBED_PORT must be a number, got '$TESTBED_PORT'"
PRIMARY_PORT=$((10#$TESTBED_PORT))
REPLICA_PORT=$((PRIMARY_PORT + 1))
REDIS_PORT=$((PRIMARY_PORT + 2))
PGBOUNCER_PORT=$((PRIMARY_PORT + 3))
((PRIMARY_PORT >= 1024 && PGBOUNCER_PORT < 32768)) ||
	die "TESTBED_PORT=$TESTBED_PORT: ports $PRIMARY_PORT..$PGBOUNCER_PORT must lie in 1024..32767 (below the ephemeral range)"
for p in "$PRIMARY_PORT" "$REPLICA_PORT" "$REDIS_PORT" "$PGBOUNCER_PORT"; do
	case "$p" in 5432 | 6379 | 6432) die "TESTBED_PORT=$TESTBED_PORT would use port $p, which is reserved for system services" ;; esac
done

if [[ $EUID -eq 0 ]]; then
	IS_ROOT=1
	SVC_USER=postgres # created by the postgresql-common package
else
	IS_ROOT=0
	SVC_USER="$(id -un)"
fi

if [[ -n "${TESTBED_DIR:-}" ]]; then
	TESTBED_DIR_EXPLICIT=1
else
	TESTBED_DIR_EXPLICIT=0
	TESTBED_DIR="${TMPDIR:-/tmp}/pgninja-testbed-$PRIMARY_PORT"
fi
case "$TESTBED_DIR" in
/*) ;;
*) TESTBED_DIR="$PWD/$TESTBED_DIR" ;;
esac
TESTBED_DIR="${TESTBED_DIR%/}"

set_paths() {
	PRIMARY_DIR="$TESTBED_DIR/primary"
	REPLICA_DIR="$TESTBED_DIR/replica"
	RUN_DIR="$TESTBED_DIR/run" # unix sockets
	PGPASS_FILE="$TESTBED_DIR/.pgpass"
	PRIMARY_LOG="$TESTBED_DIR/primary.log"
	REPLICA_LOG="$TESTBED_DIR/replica.log"
	REDIS_PID="$TESTBED_DIR/redis.pid"
	REDIS_LOG="$TESTBED_DIR/redis.log"
	PRIMARY_MARKER="$TESTBED_DIR/primary.initialized"
	TLS_DIR="$TESTBED_DIR/tls" # the servers' certificate and the CA that signed it
}
set_paths

# --------------------------------------------------------------- helpers --

# run_as CMD...: run a command as the OS user that owns the servers. Always
# from / so that a cwd the postgres user cannot read (e.g. a CI clone under
# /root) does not break initdb/pg_ctl. The lock fds (8, 9) are closed so that
# daemons (postmaster, redis) never inherit — and forever hold — our locks.
run_as() {
	if ((IS_ROOT)); then
		(cd / && runuser -u "$SVC_USER" -- env HOME="$TESTBED_DIR" "$@") 8>&- 9>&-
	else
		(cd / && "$@") 8>&- 9>&-
	fi
}

# can_traverse DIR: can the service user reach DIR (or create it)?
can_traverse() {
	local d="$1"
	while [[ ! -e "$d" ]]; do d="$(dirname "$d")"; done
	if ((IS_ROOT)) && id -u "$SVC_USER" >/dev/null 2>&1; then
		(cd / && runuser -u "$SVC_USER" -- test -x "$d")
	else
		test -x "$d"
	fi
}

# sql PORT [psql args]: run psql as superuser over the unix socket.
sql() {
	local port="$1"
	shift
	"$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$RUN_DIR" -p "$port" -U "$SUPERUSER" -d postgres "$@"
}

redis_ping() {
	local reply
	# Raw RESP over bash's /dev/tcp (in a subshell, so a refused connection
	# cannot abort us): works even when redis-cli is not installed.
	reply="$(
		exec 2>/dev/null
		exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || exit 1
		printf 'PING\r\n' >&3
		IFS= read -r -t 2 line <&3 || true
		printf '%s' "${line:-}"
	)" || true
	[[ "$reply" == "+PONG"* ]]
}

# pid_is_postgres PID: is PID a live (not zombie) postgres process? Unlike
# `pg_ctl status` this treats a zombie as dead: in containers a postmaster
# killed with -9 may linger unreaped (PID 1 does not always reap orphans).
pid_is_postgres() {
	local st
	[[ -n "$1" ]] || return 1
	st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	[[ "$st" == *"(postgres) "* || "$st" == *"(postmaster) "* ]] || return 1
	st="${st##*) }"
	[[ "${st%% *}" != [ZX] ]]
}

lockfile_pid() { head -n1 "$1" 2>/dev/null | tr -dc '0-9' || true; }

# pg_running DATADIR: is the postmaster named in postmaster.pid alive?
pg_running() { pid_is_postgres "$(lockfile_pid "$1/postmaster.pid")"; }

# clear_stale_locks DATADIR PORT: drop postmaster.pid and the socket lock file
# when the PID in them is gone (or a zombie, or recycled). postgres refuses to
# start while kill(pid, 0) succeeds, which it does for zombies and for
# unrelated processes.
clear_stale_locks() {
	local f
	for f in "$1/postmaster.pid" "$RUN_DIR/.s.PGSQL.$2.lock"; do
		if [[ -f "$f" ]] && ! pid_is_postgres "$(lockfile_pid "$f")"; then
			log "removing stale $f"
			rm -f "$f"
			[[ "$f" == *.lock ]] && rm -f "${f%.lock}"
		fi
	done
	return 0
}

pg_ready() { "$PGBIN/pg_isready" -q -h "$RUN_DIR" -p "$1" -U "$SUPERUSER" -d postgres -t 2 >/dev/null 2>&1; }

log_tail() {
	local f="$1"
	[[ -f "$f" ]] || return 0
	printf -- '----- last lines of %s -----\n' "$f" >&2
	tail -n 30 "$f" >&2 || true
	printf -- '-----\n' >&2
}

# ---------------------------------------------------------- installation --

APT_UPDATED=0
apt_install() {
	local env=(env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a)
	local opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	if ((!APT_UPDATED)); then
		log "apt-get update"
		"${env[@]}" apt-get "${opts[@]}" -q update </dev/null >&2 8>&- 9>&-
		APT_UPDATED=1
	fi
	log "apt-get install -y $*"
	"${env[@]}" apt-get "${opts[@]}" -q install -y --no-install-recommends "$@" </dev/null >&2 8>&- 9>&-
}

have() {
	local p
	p="$(command -v "$1" 2>/dev/null)" && [[ -x "$p" ]]
}

missing_packages() {
	local m=()
	[[ -x "$PGBIN/postgres" && -x "$PGBIN/initdb" && -x "$PGBIN/pg_ctl" && -x "$PGBIN/pgbench" ]] || m+=(postgresql-15)
	[[ -x "$PGBIN/psql" && -x "$PGBIN/pg_basebackup" && -x "$PGBIN/pg_isready" ]] || m+=(postgresql-client-15)
	{ have redis-server && have redis-cli; } || m+=(redis-server)
	{ [[ -x /usr/sbin/pgbouncer ]] || have pgbouncer; } || m+=(pgbouncer)
	have openssl || m+=(openssl)
	# Only the bench measures Pgpool-II; it asks for it.
	[[ "${TESTBED_PGPOOL:-0}" == 0 || -x /usr/sbin/pgpool ]] || m+=(pgpool2)
	echo "${m[*]}"
}

ensure_packages() {
	local missing
	missing="$(missing_packages)"
	[[ -z "$missing" ]] && return 0
	if ((!IS_ROOT)); then
		die "missing packages: $missing
  Install them first (as root):  apt-get update && apt-get install -y $missing
  or run this script as root, which installs them automatically."
	fi
	command -v apt-get >/dev/null || die "missing packages ($missing) and no apt-get to install them"
	# Serialize installs between concurrent test beds (other ports/checkouts).
	local lock="${TMPDIR:-/tmp}/pgninja-testbed-apt.lock"
	exec 8>"$lock"
	if ! flock -n 8; then
		log "waiting for another testbed.sh to finish installing packages"
		flock -w 900 8 || die "timed out waiting for $lock"
	fi
	missing="$(missing_packages)" # someone else may have installed meanwhile
	if [[ -n "$missing" ]]; then
		# Keep the packages' own init scripts (default cluster, redis on 6379,
		# pgbouncer on 6432) from starting: we only want the binaries.
		local policy=/usr/sbin/policy-rc.d made_policy=0
		if [[ ! -e "$policy" ]]; then
			printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
		fi
		local rc=0
		# shellcheck disable=SC2086 # word splitting of the package list is intended
		apt_install $missing || rc=$?
		((made_policy)) && rm -f "$policy"
		((rc == 0)) || die "apt-get install $missing failed (exit $rc)"
		missing="$(missing_packages)"
		[[ -z "$missing" ]] || die "still missing after install: $missing"
	fi
	flock -u 8
	exec 8>&-
}

# -------------------------------------------------------------- layout --

prepare_dir() {
	if ((IS_ROOT)); then
		id -u "$SVC_USER" >/dev/null 2>&1 || die "OS user '$SVC_USER' does not exist (is postgresql-15 installed?)"
	fi
	resolve_dir
	can_traverse "$(dirname "$TESTBED_DIR")" ||
		die "TESTBED_DIR=$TESTBED_DIR is not reachable by OS user '$SVC_USER'; pick a directory it can traverse (e.g. under /tmp)"
	mkdir -p "$TESTBED_DIR" "$RUN_DIR"
	if ((IS_ROOT)); then
		if [[ "$(stat -c %U "$TESTBED_DIR")" != "$SVC_USER" || "$(stat -c %U "$RUN_DIR")" != "$SVC_USER" ]]; then
			chown -R "$SVC_USER:" "$TESTBED_DIR"
		fi
	fi
	chmod 755 "$TESTBED_DIR" "$RUN_DIR"
}

# Password file for pg_basebackup and the replica's walreceiver.
write_pgpass() {
	local tmp="$TESTBED_DIR/.pgpass.tmp"
	{
		printf '127.0.0.1:*:replication:%s:%s\n' "$REPL_USER" "$REPL_PASS"
		printf '127.0.0.1:*:*:%s:%s\n' "$SUPERUSER" "$SUPERPASS"
		printf '127.0.0.1:*:*:%s:%s\n' "$APP_USER" "$APP_PASS"
	} >"$tmp"
	chmod 600 "$tmp"
	if ((IS_ROOT)); then chown "$SVC_USER:" "$tmp"; fi
	mv -f "$tmp" "$PGPASS_FILE"
}

# write_conf DATADIR PORT: our settings live in testbed.conf, included from
# postgresql.conf (copied to the replica by pg_basebackup, then rewritten).
write_conf() {
	local dd="$1" port="$2"
	cat >"$dd/testbed.conf" <<EOF
# Written by scripts/testbed.sh — regenerated on every 'up'.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$RUN_DIR'
max_connections = 400
shared_buffers = 128MB
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 512MB
hot_standby = on
# A long read on the replica (a backup's snapshot) holds back the
# primary's cleanup instead of being cancelled by a replay conflict.
hot_standby_feedback = on
password_encryption = scram-sha-256
fsync = on
full_page_writes = on
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = -1
ssl = on
ssl_cert_file = '$TLS_DIR/server.crt'
ssl_key_file = '$TLS_DIR/server.key'
EOF
	grep -q "^include 'testbed.conf'" "$dd/postgresql.conf" ||
		printf "\ninclude 'testbed.conf'\n" >>"$dd/postgresql.conf"
	cat >"$dd/pg_hba.conf" <<EOF
# Written by scripts/testbed.sh
# TYPE  DATABASE     USER        ADDRESS        METHOD
local   all          all                        trust
host    all          all         127.0.0.1/32   scram-sha-256
host    replication  $REPL_USER  127.0.0.1/32   scram-sha-256
EOF
	if ((IS_ROOT)); then chown "$SVC_USER:" "$dd/testbed.conf" "$dd/postgresql.conf" "$dd/pg_hba.conf"; fi
}

# conf_current DATADIR PORT NAME: a server left running by an older
# testbed.sh gets today's settings (TLS, say), and one running when
# make_tls made new certificate files takes them, by a reload.
conf_current() {
	local before
	before="$(cat "$1/testbed.conf" 2>/dev/null || true)"
	write_conf "$1" "$2"
	[[ "$(cat "$1/testbed.conf")" == "$before" ]] && ((!TLS_MADE)) && return 0
	log "reloading the $3's settings"
	run_as "$PGBIN/pg_ctl" -D "$1" reload >/dev/null
}

pg_start() {
	local dd="$1" logf="$2" name="$3" port="$4" i size
	clear_stale_locks "$dd" "$port"
	for i in 1 2 3 4 5 6; do
		size="$(stat -c %s "$logf" 2>/dev/null || echo 0)"
		if run_as "$PGBIN/pg_ctl" -D "$dd" -l "$logf" -w -t 90 start >/dev/null 2>&1; then
			return 0
		fi
		# Retry only what a recent kill -9 leaves behind for a moment:
		# orphaned children still attached to the old shared memory, a lock
		# file of a dying postmaster, its port not yet released.
		if ! tail -c +"$((size + 1))" "$logf" 2>/dev/null |
			grep -Eq 'shared memory block|lock file .* already exists|could not bind|Address already in use'; then
			break
		fi
		log "$name did not start (attempt $i), retrying"
		sleep 2
		clear_stale_locks "$dd" "$port"
	done
	log_tail "$logf"
	return 1
}

pg_stop() {
	local dd="$1" name="$2"
	[[ -f "$dd/postmaster.pid" ]] || return 0
	if pg_running "$dd"; then
		log "stopping $name"
		run_as "$PGBIN/pg_ctl" -D "$dd" -m fast -w -t 60 stop >/dev/null ||
			run_as "$PGBIN/pg_ctl" -D "$dd" -m immediate -w -t 30 stop >/dev/null || true
	fi
}

# --------------------------------------------------------------------- TLS --

# make_tls: a CA of the test bed's own and a certificate it signed for
# 127.0.0.1, made once. The servers take TLS as PostgreSQL in production
# often must, so that pgninja's TLS towards them (tls.backend_sslmode,
# backend_ca_file) is tested against the real thing; pg_hba's host lines
# take both, so clients that disable TLS are served as before.
TLS_MADE=0
make_tls() {
	[[ -s "$TLS_DIR/server.crt" && -s "$TLS_DIR/server.key" && -s "$TLS_DIR/ca.crt" ]] && return 0
	log "making the servers' TLS certificate in $TLS_DIR"
	TLS_MADE=1
	rm -rf "$TLS_DIR"
	mkdir -p "$TLS_DIR"
	local ext="$TLS_DIR/server.ext"
	printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n' >"$ext"
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
			-subj "/CN=pgninja test bed CA" -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" &&
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
				-subj "/CN=127.0.0.1" -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" &&
			openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
				-CAcreateserial -days 3650 -extfile "$ext" -out "$TLS_DIR/server.crt"
	} >"$TESTBED_DIR/tls.log" 2>&1 || {
		log_tail "$TESTBED_DIR/tls.log"
		die "openssl could not make the test bed's certificate"
	}
	rm -f "$TLS_DIR/server.csr" "$ext"
	chmod 600 "$TLS_DIR/server.key" "$TLS_DIR/ca.key"
	chmod 755 "$TLS_DIR"
	if ((IS_ROOT)); then chown -R "$SVC_USER:" "$TLS_DIR"; fi
}

# ----------------------------------------------------------------- primary --

init_primary() {
	log "initializing primary in $PRIMARY_DIR"
	rm -rf "$PRIMARY_DIR" "$PRIMARY_MARKER"
	local pwfile="$TESTBED_DIR/.pwfile"
	printf '%s\n' "$SUPERPASS" >"$pwfile"
	chmod 600 "$pwfile"
	if ((IS_ROOT)); then chown "$SVC_USER:" "$pwfile"; fi
	run_as "$PGBIN/initdb" -D "$PRIMARY_DIR" -U "$SUPERUSER" --pwfile="$pwfile" \
		--auth-local=trust --auth-host=scram-sha-256 \
		--encoding=UTF8 --locale=C.UTF-8 >"$TESTBED_DIR/initdb.log" 2>&1 ||
		{
			rm -f "$pwfile"
			log_tail "$TESTBED_DIR/initdb.log"
			die "initdb failed"
		}
	rm -f "$pwfile"
}

bootstrap_primary() {
	sql "$PRIMARY_PORT" >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$REPL_USER') THEN
    CREATE ROLE $REPL_USER;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_USER') THEN
    CREATE ROLE $APP_USER;
  END IF;
END
\$\$;
ALTER ROLE $REPL_USER WITH REPLICATION LOGIN PASSWORD '$REPL_PASS';
ALTER ROLE $APP_USER WITH LOGIN CREATEDB PASSWORD '$APP_PASS';
ALTER ROLE $SUPERUSER WITH PASSWORD '$SUPERPASS';
SELECT 'CREATE DATABASE $APP_DB OWNER $APP_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$APP_DB')\gexec
ALTER DATABASE $APP_DB OWNER TO $APP_USER;
SQL
}

primary_up() {
	if [[ ! -f "$PRIMARY_MARKER" || ! -f "$PRIMARY_DIR/PG_VERSION" ]]; then
		pg_stop "$PRIMARY_DIR" primary
		init_primary
		write_conf "$PRIMARY_DIR" "$PRIMARY_PORT"
		rm -rf "$REPLICA_DIR" # a replica of an older primary is useless
	fi
	if ! pg_running "$PRIMARY_DIR"; then
		write_conf "$PRIMARY_DIR" "$PRIMARY_PORT"
		log "starting primary on 127.0.0.1:$PRIMARY_PORT"
		pg_start "$PRIMARY_DIR" "$PRIMARY_LOG" primary "$PRIMARY_PORT" || die "primary failed to start (log: $PRIMARY_LOG)"
	else
		conf_current "$PRIMARY_DIR" "$PRIMARY_PORT" primary
	fi
	local i
	for ((i = 0; i < 120; i++)); do # crash recovery after a kill can take a while
		pg_ready "$PRIMARY_PORT" && break
		sleep 0.5
	done
	pg_ready "$PRIMARY_PORT" || {
		log_tail "$PRIMARY_LOG"
		die "primary on port $PRIMARY_PORT is not accepting connections"
	}
	bootstrap_primary || die "bootstrapping roles/database on the primary failed"
	touch "$PRIMARY_MARKER"
}

# ----------------------------------------------------------------- replica --

sysid() { run_as "$PGBIN/pg_controldata" -D "$1" 2>/dev/null | awk -F: '/Database system identifier/ {gsub(/ /, "", $2); print $2}'; }

build_replica() {
	log "building replica in $REPLICA_DIR (pg_basebackup from 127.0.0.1:$PRIMARY_PORT)"
	if [[ -f "$REPLICA_DIR/postmaster.pid" ]]; then
		run_as "$PGBIN/pg_ctl" -D "$REPLICA_DIR" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
	rm -rf "$REPLICA_DIR"
	run_as env PGPASSFILE="$PGPASS_FILE" "$PGBIN/pg_basebackup" \
		-h 127.0.0.1 -p "$PRIMARY_PORT" -U "$REPL_USER" -w \
		-D "$REPLICA_DIR" -R -X stream -c fast >"$TESTBED_DIR/basebackup.log" 2>&1 || {
		log_tail "$TESTBED_DIR/basebackup.log"
		die "pg_basebackup failed"
	}
	chmod 700 "$REPLICA_DIR"
	write_conf "$REPLICA_DIR" "$REPLICA_PORT"
}

replica_start() {
	write_conf "$REPLICA_DIR" "$REPLICA_PORT"
	log "starting replica on 127.0.0.1:$REPLICA_PORT"
	pg_start "$REPLICA_DIR" "$REPLICA_LOG" replica "$REPLICA_PORT"
}

# Is the replica in recovery and is the primary streaming to it?
replica_streaming() {
	local rec n
	rec="$(sql "$REPLICA_PORT" -c 'select pg_is_in_recovery()' 2>/dev/null)" || return 1
	[[ "$rec" == t ]] || return 1
	n="$(sql "$PRIMARY_PORT" -c "select count(*) from pg_stat_replication where state = 'streaming'" 2>/dev/null)" || return 1
	((n >= 1))
}

wait_streaming() {
	local secs="$1" i
	for ((i = 0; i < secs * 2; i++)); do
		replica_streaming && return 0
		sleep 0.5
	done
	return 1
}

replica_up() {
	local rebuilt=0
	if [[ ! -f "$REPLICA_DIR/PG_VERSION" || ! -f "$REPLICA_DIR/standby.signal" ||
		"$(sysid "$REPLICA_DIR")" != "$(sysid "$PRIMARY_DIR")" ]]; then
		build_replica
		rebuilt=1
	fi
	if pg_running "$REPLICA_DIR"; then
		conf_current "$REPLICA_DIR" "$REPLICA_PORT" replica
	else
		if ! replica_start; then
			((rebuilt)) && die "replica failed to start (log: $REPLICA_LOG)"
			log "replica failed to start; rebuilding it from scratch"
			build_replica
			rebuilt=1
			replica_start || die "replica failed to start (log: $REPLICA_LOG)"
		fi
	fi
	if ! wait_streaming 30; then
		((rebuilt)) && {
			log_tail "$REPLICA_LOG"
			die "replica is not streaming from the primary"
		}
		log "replica is not streaming; rebuilding it from scratch"
		build_replica
		replica_start || die "replica failed to start (log: $REPLICA_LOG)"
		wait_streaming 60 || {
			log_tail "$REPLICA_LOG"
			die "replica is not streaming from the primary"
		}
	fi
}

# ------------------------------------------------------------------- redis --

redis_up() {
	redis_ping && return 0
	log "starting redis on 127.0.0.1:$REDIS_PORT"
	rm -f "$REDIS_PID"
	run_as redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --protected-mode yes \
		--daemonize yes --dir "$TESTBED_DIR" --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" \
		--save "" --appendonly no >/dev/null
	local i
	for ((i = 0; i < 40; i++)); do
		redis_ping && return 0
		sleep 0.25
	done
	log_tail "$REDIS_LOG"
	die "redis did not answer PING on port $REDIS_PORT"
}

# kill_pidfile FILE: stop the process named in a pidfile — only if it still
# looks like ours (its command line names the pidfile's program or this dir),
# so a stale pidfile never kills a recycled, unrelated PID.
kill_pidfile() {
	local f="$1" pid stem cmd i
	pid="$(head -n1 "$f" 2>/dev/null | tr -dc '0-9')"
	stem="$(basename "$f" .pid)"
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
		if [[ "$cmd" == *"$stem"* || "$cmd" == *"$TESTBED_DIR"* ]]; then
			log "stopping $stem (pid $pid)"
			kill -TERM "$pid" 2>/dev/null || true
			for ((i = 0; i < 40; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.25
			done
			if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
		fi
	fi
	rm -f "$f"
}

redis_down() {
	if redis_ping; then
		log "stopping redis"
		if have redis-cli; then
			redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 9>&- || true
		fi
		local i
		for ((i = 0; i < 20; i++)); do
			redis_ping || break
			sleep 0.25
		done
	fi
	[[ -f "$REDIS_PID" ]] && kill_pidfile "$REDIS_PID"
	return 0
}

# ---------------------------------------------------------------- commands --

lock_dir() {
	exec 9>"$TESTBED_DIR/.testbed.lock"
	if ! flock -n 9; then
		log "waiting for another testbed.sh working on $TESTBED_DIR"
		flock -w 300 9 || die "another testbed.sh has been busy with $TESTBED_DIR for 5 minutes; giving up"
	fi
}

cmd_up() {
	ensure_packages
	prepare_dir
	lock_dir
	write_pgpass
	make_tls
	primary_up
	replica_up
	redis_up
	log "up: primary 127.0.0.1:$PRIMARY_PORT, replica 127.0.0.1:$REPLICA_PORT (streaming), redis 127.0.0.1:$REDIS_PORT, dir $TESTBED_DIR"
}

cmd_down() {
	local purge=0
	case "${1:-}" in
	"") ;;
	--purge) purge=1 ;;
	*) die "usage: $0 down [--purge]" ;;
	esac
	if [[ -d "$TESTBED_DIR" ]]; then
		lock_dir
		# Anything started with a pidfile here (e.g. pgbouncer from the bench
		# harness) first, then the replica before its primary.
		local f
		while IFS= read -r -d '' f; do
			[[ "$f" == "$REDIS_PID" ]] || kill_pidfile "$f"
		done < <(find "$TESTBED_DIR" -maxdepth 2 -name '*.pid' ! -name postmaster.pid -print0 2>/dev/null)
		redis_down
		if [[ -x "$PGBIN/pg_ctl" ]]; then
			pg_stop "$REPLICA_DIR" replica
			pg_stop "$PRIMARY_DIR" primary
		fi
	fi
	if ((purge)); then
		[[ -n "$TESTBED_DIR" && "$TESTBED_DIR" != / ]] || die "refusing to purge '$TESTBED_DIR'"
		log "purging $TESTBED_DIR"
		rm -rf "$TESTBED_DIR"
	fi
	log "down"
}

# cmd_restart stops one server, leaves it down for a while, and starts it
# again: a fault to inject under load (bench/chaos.sh).
cmd_restart() {
	local pause="${2:-0}"
	lock_dir
	case "${1:-}" in
	primary)
		pg_stop "$PRIMARY_DIR" primary
		sleep "$pause"
		pg_start "$PRIMARY_DIR" "$PRIMARY_LOG" primary "$PRIMARY_PORT"
		;;
	replica)
		pg_stop "$REPLICA_DIR" replica
		sleep "$pause"
		pg_start "$REPLICA_DIR" "$REPLICA_LOG" replica "$REPLICA_PORT"
		;;
	*) die "usage: $0 restart primary|replica [SECONDS]" ;;
	esac
	local dd="$PRIMARY_DIR"
	[[ "$1" == replica ]] && dd="$REPLICA_DIR"
	pg_running "$dd" || die "$1 did not start again"
	log "$1 restarted"
}

# cmd_freeze primary|replica SECONDS: stop one server's processes
# (SIGSTOP), as a hung machine or a stalled disk would, then let them go
# on. Its sockets stay open and answer nothing meanwhile.
cmd_freeze() {
	local dd pause="${2:-5}" pid pids
	case "${1:-}" in
	primary) dd="$PRIMARY_DIR" ;;
	replica) dd="$REPLICA_DIR" ;;
	*) die "usage: $0 freeze primary|replica [SECONDS]" ;;
	esac
	pid="$(head -n1 "$dd/postmaster.pid" 2>/dev/null)" || die "$1 is not running"
	[[ "$pid" =~ ^[0-9]+$ ]] || die "$1 is not running"
	pids="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
	# shellcheck disable=SC2086 # a list of pids
	kill -STOP $pids
	sleep "$pause"
	# shellcheck disable=SC2086
	kill -CONT $pids
	log "$1 ran again after ${pause}s frozen"
}

cmd_status() {
	local ok=0 state
	if [[ -x "$PGBIN/pg_isready" ]] && pg_ready "$PRIMARY_PORT"; then
		state=up
	else
		state=down
		ok=1
	fi
	printf '%-10s 127.0.0.1:%-6s %s\n' primary "$PRIMARY_PORT" "$state"
	if [[ -x "$PGBIN/pg_isready" ]] && pg_ready "$REPLICA_PORT"; then
		if replica_streaming; then
			state="up (in recovery, streaming)"
		else
			state="up but NOT streaming"
			ok=1
		fi
	else
		state=down
		ok=1
	fi
	printf '%-10s 127.0.0.1:%-6s %s\n' replica "$REPLICA_PORT" "$state"
	if redis_ping; then state=up; else
		state=down
		ok=1
	fi
	printf '%-10s 127.0.0.1:%-6s %s\n' redis "$REDIS_PORT" "$state"
	if (exec 3<>"/dev/tcp/127.0.0.1/$PGBOUNCER_PORT") 2>/dev/null; then state="listening (bench harness)"; else state="not running (reserved for the bench harness; not required)"; fi
	printf '%-10s 127.0.0.1:%-6s %s\n' pgbouncer "$PGBOUNCER_PORT" "$state"
	printf '%-10s %s\n' dir "$TESTBED_DIR"
	return "$ok"
}

cmd_env() {
	printf 'export PGNINJA_TEST_PRIMARY=%q\n' "127.0.0.1:$PRIMARY_PORT"
	printf 'export PGNINJA_TEST_REPLICA=%q\n' "127.0.0.1:$REPLICA_PORT"
	printf 'export PGNINJA_TEST_REDIS=%q\n' "127.0.0.1:$REDIS_PORT"
	printf 'export PGNINJA_TEST_PGBOUNCER_PORT=%q\n' "$PGBOUNCER_PORT"
	printf 'export PGNINJA_TEST_DIR=%q\n' "$TESTBED_DIR"
	printf 'export PGNINJA_TEST_SUPERUSER=%q\n' "$SUPERUSER"
	printf 'export PGNINJA_TEST_SUPERPASS=%q\n' "$SUPERPASS"
	printf 'export PGNINJA_TEST_PGBIN=%q\n' "$PGBIN"
	printf 'export PGNINJA_TEST_CA=%q\n' "$TLS_DIR/ca.crt"
}

cmd_psql() {
	[[ -x "$PGBIN/psql" ]] || die "psql not found in $PGBIN (run '$0 up' first)"
	PGHOST="$RUN_DIR" PGPORT="$PRIMARY_PORT" PGUSER="$SUPERUSER" PGDATABASE=postgres \
		exec "$PGBIN/psql" -X "$@"
}

usage() {
	cat <<EOF
usage: $0 up|down [--purge]|status|env|psql [psql args]

  up        install what is missing (as root), start primary, replica, redis
  down      stop everything started in TESTBED_DIR (keeps data; --purge deletes it)
  status    show each service; exit 0 only if all are up
  env       print 'export PGNINJA_TEST_*=...' lines for the Go integration tests
  psql      run psql on the primary as the superuser
  restart primary|replica [SECONDS]
            stop one server, wait SECONDS, start it again
  freeze primary|replica [SECONDS]
            stop one server's processes (SIGSTOP) for SECONDS, then continue them

environment: TESTBED_PORT (base port, default 25432; uses base..base+3)
             TESTBED_DIR  (default \${TMPDIR:-/tmp}/pgninja-testbed-\$TESTBED_PORT)
EOF
}

# When TESTBED_DIR is not set and TMPDIR points somewhere the service user
# cannot traverse, fall back to /tmp. Deterministic, so env/status/down agree
# with what `up` chose.
resolve_dir() {
	if ((!TESTBED_DIR_EXPLICIT)) && [[ "$TESTBED_DIR" != "/tmp/pgninja-testbed-$PRIMARY_PORT" ]] &&
		! can_traverse "$(dirname "$TESTBED_DIR")"; then
		TESTBED_DIR="/tmp/pgninja-testbed-$PRIMARY_PORT"
		set_paths
	fi
}

main() {
	local cmd="${1:-}"
	[[ $# -gt 0 ]] && shift
	case "$cmd" in
	up | down | status | env | psql | restart | freeze) resolve_dir ;;
	esac
	case "$cmd" in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	status) cmd_status ;;
	env) cmd_env ;;
	psql) cmd_psql "$@" ;;
	restart) cmd_restart "$@" ;;
	freeze) cmd_freeze "$@" ;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
