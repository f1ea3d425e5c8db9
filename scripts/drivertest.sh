#!/usr/bin/env bash
# make drivertest: run drivers' own test suites through pgninja, once per
# pool mode, and compare the failures with scripts/drivertest.expected.
# Exit 0 only when every failure is expected; expected failures that now
# pass are reported so the list can shrink. The suites:
#   pgx - jackc/pgx, the version go.mod pins
#   pq  - lib/pq at PQ_VERSION, database/sql's long-standing driver
#   py  - our checks of psycopg 3, psycopg2 and asyncpg (Debian's
#         packages, which ship no test suites): scripts/drivercheck
#   js  - our checks of node-postgres (with pg-cursor, pg-query-stream,
#         pg-copy-streams) and postgres.js, whose npm packages ship no
#         test suites either: scripts/drivercheck
#   jdbc - our checks of pgjdbc (Debian's package; its own suite needs
#         its Gradle build): scripts/drivercheck
#
# Knobs (environment):
#   DRIVERTEST_SUITES="pgx pq py js jdbc"  suites to run
#   DRIVERTEST_MODES="session transaction routing tls"  modes to run; routing
#                         is transaction mode with reads sent to the replica;
#                         tls is session mode with TLS on both sides, the
#                         client verifying pgninja and pgninja the server
#                         (verify-full, the test bed's CA)
#   DRIVERTEST_TLS_SUITES="pgx"  the suites that run in mode tls
#   DRIVERTEST_DIRECT=1   also run the suites against PostgreSQL directly
#   DRIVERTEST_PORT=23440 pgninja's listen port (admin HTTP on the next)
#   TESTBED_PORT=23432    the test bed's base port (make passes its own,
#                         so the suites share make test's bed)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

export TESTBED_PORT=${TESTBED_PORT:-23432}
SUITES=${DRIVERTEST_SUITES:-pgx pq py js jdbc}
MODES=${DRIVERTEST_MODES:-session transaction routing tls}
TLS_SUITES=${DRIVERTEST_TLS_SUITES:-pgx}
PORT=${DRIVERTEST_PORT:-23440}
PQ_VERSION=v1.12.3
EXPECTED=$ROOT/scripts/drivertest.expected
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgninja-drivertest.XXXXXX")
PGNINJA_PID=

cleanup() {
	if [[ -n "$PGNINJA_PID" ]]; then
		kill "$PGNINJA_PID" 2>/dev/null || true
		wait "$PGNINJA_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '\033[1mdrivertest:\033[0m %s\n' "$*"; }

scripts/testbed.sh up
eval "$(scripts/testbed.sh env)"
make --no-print-directory build

PRIMARY_PORT=${PGNINJA_TEST_PRIMARY##*:}
REPLICA_PORT=${PGNINJA_TEST_REPLICA##*:}
SUPER=$PGNINJA_TEST_SUPERUSER
SUPERPASS=$PGNINJA_TEST_SUPERPASS
# The test bed's CA signed its servers' certificate for 127.0.0.1, which
# pgninja also presents to clients in mode tls.
CA=$PGNINJA_TEST_CA
TLS_DIR=$(dirname "$CA")

# copy_module MODULE@VERSION DIR: a writable copy of a module's source.
copy_module() {
	local src
	src=$(go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[[ -n "$src" ]] || { echo "drivertest: cannot download $1" >&2; exit 1; }
	cp -r "$src" "$2"
	chmod -R u+w "$2"
}

# setup_pgx: the objects pgx's tests expect in their database (its
# testsetup/postgresql_setup.sql), and its source.
setup_pgx() {
	scripts/testbed.sh psql -q -v ON_ERROR_STOP=1 <<'SQL'
set client_min_messages = warning;
select 'create database pgx_test' where not exists (select from pg_database where datname = 'pgx_test') \gexec
\c pgx_test
set client_min_messages = warning;
create extension if not exists hstore;
create extension if not exists ltree;
select 'create domain uint64 as numeric(20,0)' where not exists (select from pg_type where typname = 'uint64') \gexec
SQL
	local version
	version=$(go list -m -f '{{.Version}}' github.com/jackc/pgx/v5)
	copy_module "github.com/jackc/pgx/v5@$version" "$WORK/pgx"
	say "pgx $version: packages ./ ./pgconn/... ./pgtype/... ./stdlib/... ./pgxpool/..."
}

# setup_pq: lib/pq's test roles and database (its testdata/postgres), and
# its source. Its listener tests give a (re)connection event 100 ms and
# then panic, which ends the whole run; on a shared two-core machine that
# happens without the proxy too, so the copy gives 2 s. Nothing else in
# the suite is changed.
setup_pq() {
	scripts/testbed.sh psql -q -v ON_ERROR_STOP=1 <<'SQL'
set client_min_messages = warning;
select 'create role pqgo login superuser password ''pqgo''' where not exists (select from pg_roles where rolname = 'pqgo') \gexec
select 'create database pqgo owner pqgo' where not exists (select from pg_database where datname = 'pqgo') \gexec
select format('create role %I login password ''wordpass''', r)
  from unnest(array['pqgoscram', 'pqgomd5', 'pqgopassword']) r
 where not exists (select from pg_roles where rolname = r) \gexec
SQL
	copy_module "github.com/lib/pq@$PQ_VERSION" "$WORK/pq"
	perl -0pi -e 's/(func wantEvent\(.*?time\.After\()100 \* time\.Millisecond/${1}2 * time.Second/s' "$WORK/pq/notify_test.go"
	grep -q 'time.After(2 \* time.Second)' "$WORK/pq/notify_test.go" ||
		{ echo "drivertest: cannot lengthen lib/pq's wantEvent timeout" >&2; exit 1; }
	say "lib/pq $PQ_VERSION: packages ./ ./hstore"
}

# setup_py: Debian's psycopg 3, psycopg2 and asyncpg for the system's
# Python (installed when missing and root), and a database for the checks.
PY=/usr/bin/python3
setup_py() {
	if ! "$PY" -c 'import asyncpg, psycopg, psycopg2' 2>/dev/null; then
		if [[ $(id -u) -ne 0 ]]; then
			echo "drivertest: the py suite needs python3-asyncpg, python3-psycopg and python3-psycopg2;" \
				"run as root to install them, or set DRIVERTEST_SUITES" >&2
			exit 1
		fi
		apt-get install -y -q python3-asyncpg python3-psycopg python3-psycopg2 >/dev/null ||
			{ apt-get update -q >/dev/null && apt-get install -y -q python3-asyncpg python3-psycopg python3-psycopg2 >/dev/null; }
	fi
	scripts/testbed.sh psql -q -v ON_ERROR_STOP=1 <<'SQL'
select 'create database pydrivers' where not exists (select from pg_database where datname = 'pydrivers') \gexec
SQL
	say "py: $("$PY" -c 'import asyncpg, psycopg, psycopg2; print("asyncpg", asyncpg.__version__, "psycopg", psycopg.__version__, "psycopg2", psycopg2.__version__.split()[0])')"
}

# setup_js: the npm packages scripts/drivercheck/package-lock.json pins,
# from the npm registry, and a database for the checks.
setup_js() {
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		echo "drivertest: the js suite needs Node.js and npm; install them, or set DRIVERTEST_SUITES" >&2
		exit 1
	fi
	mkdir -p "$WORK/js"
	cp scripts/drivercheck/package.json scripts/drivercheck/package-lock.json scripts/drivercheck/jsdrivers.mjs "$WORK/js/"
	(cd "$WORK/js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
		{ echo "drivertest: npm ci failed in $WORK/js" >&2; exit 1; }
	scripts/testbed.sh psql -q -v ON_ERROR_STOP=1 <<'SQL'
select 'create database jsdrivers' where not exists (select from pg_database where datname = 'jsdrivers') \gexec
SQL
	say "js: node $(node --version), $(cd "$WORK/js" && node -e 'const l = require("./package-lock.json").packages; console.log(["pg", "pg-cursor", "pg-query-stream", "pg-copy-streams", "postgres"].map(p => p + " " + l["node_modules/" + p].version).join(", "))')"
}

# setup_jdbc: Debian's pgjdbc and a Java runtime (installed when missing
# and root), and a database for the checks.
JDBC_JAR=/usr/share/java/postgresql.jar
setup_jdbc() {
	if ! command -v java >/dev/null || [[ ! -f $JDBC_JAR ]]; then
		if [[ $(id -u) -ne 0 ]]; then
			echo "drivertest: the jdbc suite needs Java 11 or later and libpostgresql-jdbc-java;" \
				"run as root to install them, or set DRIVERTEST_SUITES" >&2
			exit 1
		fi
		apt-get install -y -q default-jre-headless libpostgresql-jdbc-java >/dev/null ||
			{ apt-get update -q >/dev/null && apt-get install -y -q default-jre-headless libpostgresql-jdbc-java >/dev/null; }
	fi
	scripts/testbed.sh psql -q -v ON_ERROR_STOP=1 <<'SQL'
select 'create database jdbcdrivers' where not exists (select from pg_database where datname = 'jdbcdrivers') \gexec
SQL
	say "jdbc: $(java -version 2>&1 | head -1), $JDBC_JAR"
}

# users_yaml SUITE: the pgninja users a suite logs in as. Its main user
# logs in to pgninja with trust, since the suites time their connections
# (the pool's server connections still use the password); lib/pq's auth
# tests need its md5 and SCRAM users as they are.
users_yaml() {
	case $1 in
	pgx | py | js | jdbc) echo "  - {name: $SUPER, auth: trust, password: $SUPERPASS}" ;;
	pq)
		echo "  - {name: pqgo, auth: trust, password: pqgo}"
		echo "  - {name: pqgomd5, auth: md5, password: wordpass}"
		echo "  - {name: pqgoscram, auth: scram-sha-256, password: wordpass}"
		echo "  - {name: pqgopassword, auth: scram-sha-256, password: wordpass}"
		;;
	esac
}

# run_suite SUITE LABEL PORT: run SUITE against 127.0.0.1:PORT; leave the
# failed top-level tests in $WORK/LABEL.failed and the output in
# $WORK/LABEL.log.
run_suite() {
	local suite=$1 label=$2 port=$3 ssl=sslmode=disable
	[[ $label == *.tls ]] && ssl="sslmode=verify-full&sslrootcert=$CA"
	say "$label: running"
	case $suite in
	pgx)
		(cd "$WORK/pgx" && PGX_TEST_DATABASE="postgres://$SUPER:$SUPERPASS@127.0.0.1:$port/pgx_test?$ssl" \
			go test -count=1 ./ ./pgconn/... ./pgtype/... ./stdlib/... ./pgxpool/...) >"$WORK/$label.log" 2>&1 || true
		;;
	pq)
		# Through pgninja pqgo needs no password; some of lib/pq's config
		# tests see every PG* variable, so none is set that need not be.
		local pass=
		[[ $label == *.direct ]] && pass=pqgo
		(cd "$WORK/pq" && env PGHOST=127.0.0.1 PGPORT="$port" PGUSER=pqgo PGDATABASE=pqgo ${pass:+PGPASSWORD=$pass} \
			go test -count=1 ./ ./hstore) >"$WORK/$label.log" 2>&1 || true
		;;
	py)
		timeout 600 "$PY" scripts/drivercheck/pydrivers.py \
			"postgresql://$SUPER:$SUPERPASS@127.0.0.1:$port/pydrivers?sslmode=disable" >"$WORK/$label.log" 2>&1 || true
		;;
	js)
		(cd "$WORK/js" && timeout 600 node jsdrivers.mjs \
			"postgresql://$SUPER:$SUPERPASS@127.0.0.1:$port/jsdrivers?sslmode=disable") >"$WORK/$label.log" 2>&1 || true
		;;
	jdbc)
		timeout 600 java -cp "$JDBC_JAR" scripts/drivercheck/JdbcDrivers.java \
			"postgresql://$SUPER:$SUPERPASS@127.0.0.1:$port/jdbcdrivers" >"$WORK/$label.log" 2>&1 || true
		;;
	esac
	# Our checks end with PASS or FAIL; without it they hung or crashed.
	if [[ $suite == py || $suite == js || $suite == jdbc ]] && ! tail -1 "$WORK/$label.log" | grep -qE '^(PASS|FAIL)$'; then
		echo "drivertest: the $suite checks did not finish:" >&2
		tail -20 "$WORK/$label.log" >&2
		return 1
	fi
	grep -oE '^--- FAIL: [A-Za-z0-9_]+' "$WORK/$label.log" | awk '{print $3}' | sort -u >"$WORK/$label.failed" || true
	if grep -qE '^(panic:|FAIL\s.*\[build failed\]|FAIL\s.*\[setup failed\])' "$WORK/$label.log"; then
		echo "build failure or panic:" >&2
		grep -E '^(panic:|FAIL)' "$WORK/$label.log" >&2
		return 1
	fi
}

# backends_yaml MODE: the primary alone, or for routing the primary
# (taking no reads of its own) and the replica. The suites read through
# pools (database/sql, pgxpool) on other connections than they wrote on,
# which read_your_writes does not cover (it follows each connection's
# own writes); table consistency does, as for any such application.
backends_yaml() {
	if [[ $1 == routing ]]; then
		cat <<YAML
routing:
  enabled: true
  consistency: table
  health_check_user: $SUPER
  health_check_password: $SUPERPASS
backends:
  - {name: primary, host: 127.0.0.1, port: $PRIMARY_PORT, role: primary, weight: 0}
  - {name: replica, host: 127.0.0.1, port: $REPLICA_PORT, role: replica, weight: 1}
YAML
	else
		echo "backends:"
		echo "  - {name: primary, host: 127.0.0.1, port: $PRIMARY_PORT, role: primary}"
	fi
}

# serve SUITE MODE LABEL: start pgninja for SUITE's users in MODE.
serve() {
	local pool_mode=$2 tls="{backend_sslmode: disable}"
	[[ $2 == routing ]] && pool_mode=transaction
	if [[ $2 == tls ]]; then
		pool_mode=session
		tls="{cert_file: $TLS_DIR/server.crt, key_file: $TLS_DIR/server.key, backend_sslmode: verify-full, backend_ca_file: $CA}"
	fi
	cat >"$WORK/$3.yaml" <<YAML
listen: 127.0.0.1:$PORT
admin_listen: 127.0.0.1:$((PORT + 1))
log_level: warn
max_client_conn: 1000
tls: $tls
pool: {mode: $pool_mode, max_size: 20}
users:
$(users_yaml "$1")
$(backends_yaml "$2")
YAML
	if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
		# Another server there would take the suites' connections.
		echo "drivertest: 127.0.0.1:$PORT is in use; set DRIVERTEST_PORT" >&2
		exit 1
	fi
	bin/pgninja serve --config "$WORK/$3.yaml" >"$WORK/$3.pgninja.log" 2>&1 &
	PGNINJA_PID=$!
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
		sleep 0.1
	done
	if ! kill -0 "$PGNINJA_PID" 2>/dev/null; then
		echo "drivertest: pgninja did not start:" >&2
		cat "$WORK/$3.pgninja.log" >&2
		exit 1
	fi
}

stop() {
	kill "$PGNINJA_PID"
	wait "$PGNINJA_PID" 2>/dev/null || true
	PGNINJA_PID=
}

# compare SUITE MODE LABEL: judge LABEL's failures by the expected list.
compare() {
	local suite=$1 mode=$2 label=$3 unexpected fixed
	awk -v s="$suite" -v m="$mode" '$1 == s && $2 == m {print $3}' "$EXPECTED" | sort -u >"$WORK/$label.expected"
	awk -v s="$suite" -v m="$mode" '$1 == s && $2 == m && $4 != "maybe" {print $3}' "$EXPECTED" | sort -u >"$WORK/$label.certain"
	unexpected=$(comm -23 "$WORK/$label.failed" "$WORK/$label.expected")
	fixed=$(comm -13 "$WORK/$label.failed" "$WORK/$label.certain")
	say "$suite $mode: $(wc -l <"$WORK/$label.failed") failing, $(wc -l <"$WORK/$label.expected") expected"
	if [[ -n "$unexpected" ]]; then
		status=1
		say "$suite $mode: UNEXPECTED failures:"
		for t in $unexpected; do
			echo "  $t"
			grep -A8 -E "^\s*--- FAIL: $t\b" "$WORK/$label.log" | sed 's/^/    /' | head -12
		done
	fi
	if [[ -n "$fixed" ]]; then
		say "$suite $mode: expected to fail but passed (remove from $(basename "$EXPECTED")):"
		echo "$fixed" | sed 's/^/  /'
	fi
}

status=0
for suite in $SUITES; do
	"setup_$suite"
	if [[ "${DRIVERTEST_DIRECT:-0}" == 1 ]]; then
		run_suite "$suite" "$suite.direct" "$PRIMARY_PORT" || true
		if [[ -s "$WORK/$suite.direct.failed" ]]; then
			say "$suite direct: these fail without pgninja too:"
			sed 's/^/  /' "$WORK/$suite.direct.failed"
		else
			say "$suite direct: all pass"
		fi
	fi
	for mode in $MODES; do
		[[ $mode == tls && " $TLS_SUITES " != *" $suite "* ]] && continue
		serve "$suite" "$mode" "$suite.$mode"
		run_suite "$suite" "$suite.$mode" "$PORT" || status=1
		if [[ $mode == routing ]]; then
			# Proof that the replica took part, from the proxy's counters.
			say "$suite routing: $(curl -s "127.0.0.1:$((PORT + 1))/metrics" |
				awk '/^pgninja_route_decisions_total/ {n += $2; if ($1 ~ /target="replica"/) r += $2}
				     END {printf "%d of %d routed requests ran on the replica", r, n}')"
		fi
		stop
		compare "$suite" "$mode" "$suite.$mode"
	done
done

if ((status)); then
	say "FAILED"
else
	say "ok: every failure is a known, documented difference"
fi
exit $status
