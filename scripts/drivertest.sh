#!/usr/bin/env bash
# make drivertest: run pgx's own test suite (the version go.mod pins)
# through pgninja, once per pool mode, and compare the failures with
# scripts/drivertest.expected. Exit 0 only when every failure is expected;
# expected failures that now pass are reported so the list can shrink.
#
# Knobs (environment):
#   DRIVERTEST_MODES="session transaction"  pool modes to run
#   DRIVERTEST_DIRECT=1   also run the suite against PostgreSQL directly
#   DRIVERTEST_PORT=23440 pgninja's listen port (admin HTTP on the next)
#   TESTBED_PORT=23432    the test bed's base port (make passes its own,
#                         so the suite shares make test's bed)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

export TESTBED_PORT=${TESTBED_PORT:-23432}
MODES=${DRIVERTEST_MODES:-session transaction}
PORT=${DRIVERTEST_PORT:-23440}
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

# pgx's tests expect these in their database (its testsetup/postgresql_setup.sql).
scripts/testbed.sh psql -q -v ON_ERROR_STOP=1 <<'SQL'
set client_min_messages = warning;
select 'create database pgx_test' where not exists (select from pg_database where datname = 'pgx_test') \gexec
\c pgx_test
set client_min_messages = warning;
create extension if not exists hstore;
create extension if not exists ltree;
select 'create domain uint64 as numeric(20,0)' where not exists (select from pg_type where typname = 'uint64') \gexec
SQL

# The suite runs from a writable copy of the module go.mod pins.
PGX_VERSION=$(go list -m -f '{{.Version}}' github.com/jackc/pgx/v5)
go mod download github.com/jackc/pgx/v5
PGX_SRC=$(go list -m -f '{{.Dir}}' github.com/jackc/pgx/v5)
cp -r "$PGX_SRC" "$WORK/pgx"
chmod -R u+w "$WORK/pgx"
PACKAGES=(./ ./pgconn/... ./pgtype/... ./stdlib/... ./pgxpool/...)
say "pgx $PGX_VERSION, packages ${PACKAGES[*]}"

# run_suite LABEL DSN: run the suite, leave the failed top-level tests in
# $WORK/LABEL.failed and the output in $WORK/LABEL.log.
run_suite() {
	local label=$1 dsn=$2
	say "$label: running (about two minutes)"
	(cd "$WORK/pgx" && PGX_TEST_DATABASE="$dsn" go test -count=1 "${PACKAGES[@]}") >"$WORK/$label.log" 2>&1 || true
	grep -oE '^--- FAIL: [A-Za-z0-9_]+' "$WORK/$label.log" | awk '{print $3}' | sort -u >"$WORK/$label.failed" || true
	if grep -qE '^(panic:|FAIL\s.*\[build failed\]|FAIL\s.*\[setup failed\])' "$WORK/$label.log"; then
		echo "build failure or panic:" >&2
		grep -E '^(panic:|FAIL)' "$WORK/$label.log" >&2
		return 1
	fi
}

PRIMARY_PORT=${PGNINJA_TEST_PRIMARY##*:}
SUPER=$PGNINJA_TEST_SUPERUSER
SUPERPASS=$PGNINJA_TEST_SUPERPASS
status=0

if [[ "${DRIVERTEST_DIRECT:-0}" == 1 ]]; then
	run_suite direct "postgres://$SUPER:$SUPERPASS@127.0.0.1:$PRIMARY_PORT/pgx_test?sslmode=disable"
	if [[ -s "$WORK/direct.failed" ]]; then
		say "direct: these fail without pgninja too:"
		sed 's/^/  /' "$WORK/direct.failed"
	else
		say "direct: all pass"
	fi
fi

for mode in $MODES; do
	cat >"$WORK/$mode.yaml" <<YAML
listen: 127.0.0.1:$PORT
admin_listen: 127.0.0.1:$((PORT + 1))
log_level: warn
max_client_conn: 1000
tls: {backend_sslmode: disable}
pool: {mode: $mode, max_size: 20}
users:
  - {name: $SUPER, auth: trust, password: $SUPERPASS}
backends:
  - {name: primary, host: 127.0.0.1, port: $PRIMARY_PORT, role: primary}
YAML
	bin/pgninja serve --config "$WORK/$mode.yaml" >"$WORK/$mode.pgninja.log" 2>&1 &
	PGNINJA_PID=$!
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
		sleep 0.1
	done
	run_suite "$mode" "postgres://$SUPER:$SUPERPASS@127.0.0.1:$PORT/pgx_test?sslmode=disable" || status=1
	kill "$PGNINJA_PID"
	wait "$PGNINJA_PID" 2>/dev/null || true
	PGNINJA_PID=

	awk -v m="$mode" '$1 == m {print $2}' "$EXPECTED" | sort -u >"$WORK/$mode.expected"
	awk -v m="$mode" '$1 == m && $3 != "maybe" {print $2}' "$EXPECTED" | sort -u >"$WORK/$mode.certain"
	unexpected=$(comm -23 "$WORK/$mode.failed" "$WORK/$mode.expected")
	fixed=$(comm -13 "$WORK/$mode.failed" "$WORK/$mode.certain")
	say "$mode: $(wc -l <"$WORK/$mode.failed") failing, $(wc -l <"$WORK/$mode.expected") expected"
	if [[ -n "$unexpected" ]]; then
		status=1
		say "$mode: UNEXPECTED failures:"
		for t in $unexpected; do
			echo "  $t"
			grep -A8 -E "^\s*--- FAIL: $t\b" "$WORK/$mode.log" | sed 's/^/    /' | head -12
		done
	fi
	if [[ -n "$fixed" ]]; then
		say "$mode: expected to fail but passed (remove from $(basename "$EXPECTED")):"
		echo "$fixed" | sed 's/^/  /'
	fi
done

if ((status)); then
	say "FAILED"
else
	say "ok: every failure is a known, documented difference"
fi
exit $status
