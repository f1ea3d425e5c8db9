#!/usr/bin/env bash
# bench/callgrind.sh — `make bench-instructions`: what each proxy executes
# per transaction, counted by valgrind's callgrind with its cache
# simulation, for PgBouncer, pgninja and the bare Go relays of bench/pump.
#
# Throughput on a shared two-core machine varies by a fifth from run to
# run; instruction and simulated cache-miss counts move far less (three
# runs of the same load: pgninja's transaction-mode misses within 2.5 %,
# its session-mode misses within 10 %, the clock-driven work below making
# the difference). They tell where a
# proxy's CPU goes and whether a change made it do less, which the TPS
# rows of `make bench` cannot tell apart from noise. They are no
# substitute for those rows: cache misses on the real machine depend on
# what PostgreSQL and pgbench evict, which the simulation does not see.
# And valgrind runs a proxy some fifty times slower while pgbench does
# not, so work driven by the clock (timers re-armed every few tens of
# milliseconds, PgBouncer's per-loop upkeep with fewer events per loop)
# weighs more per transaction here than at full speed.
#
# Each target runs under callgrind; its counters are zeroed after a warm-up
# and dumped after a fixed number of pgbench transactions, so the logins,
# the start and the warm-up are not counted.
#
# Knobs (environment):
#   BENCH_TESTBED_PORT=27432   test bed base port, as bench/run.sh
#   BENCH_CG_XACTS=400         transactions per pgbench client
#   BENCH_CG_ONLY=REGEX        run only scenarios whose id matches (results in
#                              results/quick-instructions.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

BASE_PORT="${BENCH_TESTBED_PORT:-27432}"
XACTS="${BENCH_CG_XACTS:-400}"
ONLY="${BENCH_CG_ONLY:-}"
PROXY_PORT=$((BASE_PORT + 18)) # clear of bench/run.sh's ports
ADMIN_PORT=$((PROXY_PORT + 1))
POOL_SIZE=20
DB=bench
PGBIN=/usr/lib/postgresql/15/bin

# shellcheck source=bench/pgbouncer.sh
. "$ROOT/bench/pgbouncer.sh"

log() { printf '\033[1mbench-instructions:\033[0m %s\n' "$*" >&2; }
die() {
	printf 'bench-instructions: ERROR: %s\n' "$*" >&2
	exit 1
}
[[ "$XACTS" =~ ^[0-9]+$ ]] || die "BENCH_CG_XACTS must be a number"

if ! command -v valgrind >/dev/null; then
	((EUID == 0)) || die "valgrind is missing; install it (apt-get install valgrind) or run as root"
	log "installing valgrind"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
fi

export TESTBED_PORT="$BASE_PORT"
unset TESTBED_DIR PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS || true
export PGPASSWORD=postgres PGSSLMODE=disable PGGSSENCMODE=disable
scripts/testbed.sh up >&2
eval "$(scripts/testbed.sh env)"
PRIMARY_PORT="${PGNINJA_TEST_PRIMARY##*:}"
SOCK_DIR="$PGNINJA_TEST_DIR/run"
WORK="$PGNINJA_TEST_DIR/callgrind"
rm -rf "$WORK"
mkdir -p "$WORK/bin" "$WORK/out"
# pgbouncer refuses root; it and callgrind_control run as postgres then.
AS=()
if ((EUID == 0)); then
	chown postgres: "$WORK" "$WORK/out"
	AS=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi

sql() { "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$SOCK_DIR" -p "$PRIMARY_PORT" -U postgres "$@"; }
if [[ "$(sql -d postgres -c "select 1 from pg_database where datname = '$DB'")" != 1 ]]; then
	sql -d postgres -c "create database $DB"
fi
if ! sql -d "$DB" -c "select 1 from pgbench_branches limit 1" >/dev/null 2>&1; then
	log "pgbench -i -s 10 (database $DB)"
	"$PGBIN/pgbench" -i -s 10 -q -h "$SOCK_DIR" -p "$PRIMARY_PORT" -U postgres "$DB" >/dev/null 2>&1
fi

log "building pgninja and bench/pump"
CGO_ENABLED=1 go build -o "$WORK/bin/pgninja" ./cmd/pgninja
go build -o "$WORK/bin/pump" ./bench/pump
go build -o "$WORK/bin/cgfuncs" ./bench/cgfuncs
PGNINJA_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- . ':!bench' 2>/dev/null || PGNINJA_COMMIT+=" + working tree changes"

pgninja_config() { # MODE
	cat >"$WORK/pgninja.yaml" <<EOF
listen: 127.0.0.1:$PROXY_PORT
admin_listen: 127.0.0.1:$ADMIN_PORT
log_level: warn
auth:
  type: trust
tls:
  backend_sslmode: disable
pool:
  mode: $1
  max_size: $POOL_SIZE
users:
  - name: postgres
    auth: trust
    password: postgres
backends:
  - {name: primary, host: 127.0.0.1, port: $PRIMARY_PORT, role: primary, weight: 1}
EOF
}

pgbouncer_config() { # MODE
	write_pgbouncer_ini "$WORK" "$PROXY_PORT" "$1" 200
	((EUID == 0)) && chown postgres: "$WORK/userlist.txt" "$WORK/pgbouncer.ini"
	return 0
}

TARGET_PID=""
stop_target() {
	[[ -n "$TARGET_PID" ]] || return 0
	kill "$TARGET_PID" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$TARGET_PID" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$TARGET_PID" 2>/dev/null || true
	wait "$TARGET_PID" 2>/dev/null || true
	TARGET_PID=""
}
trap stop_target EXIT

pgbench() { "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PROXY_PORT" -U postgres "$@" "$DB"; }

# measure ID TARGET MODE PGBENCH-ARGS...: prints "ID TARGET xacts Ir I1mr D1mr D1mw".
measure() {
	local id="$1" target="$2" mode="$3" out="$WORK/out/$1.$2" cmd=() as=() opts=()
	shift 3
	case "$target" in
	pgbouncer)
		pgbouncer_config "$mode"
		cmd=(/usr/sbin/pgbouncer -q "$WORK/pgbouncer.ini")
		as=("${AS[@]}")
		;;
	pgninja)
		pgninja_config "$mode"
		cmd=("$WORK/bin/pgninja" serve --config "$WORK/pgninja.yaml")
		# Costs by instruction address, for its functions (bench/cgfuncs).
		opts=(--dump-instr=yes)
		;;
	pump_*)
		cmd=("$WORK/bin/pump" -mode "${target#pump_}" -listen "127.0.0.1:$PROXY_PORT" -backend "127.0.0.1:$PRIMARY_PORT")
		;;
	esac
	# Go's preemption signals would only add the runtime's signal path.
	(cd / && GODEBUG=asyncpreemptoff=1 exec "${as[@]}" valgrind --tool=callgrind --cache-sim=yes "${opts[@]}" \
		--callgrind-out-file="$out" "${cmd[@]}") >"$out.log" 2>&1 &
	TARGET_PID=$!
	local i
	for ((i = 0; i < 300; i++)); do
		"$PGBIN/psql" -X -q -A -t -h 127.0.0.1 -p "$PROXY_PORT" -U postgres -d "$DB" -c 'select 1' >/dev/null 2>&1 && break
		kill -0 "$TARGET_PID" 2>/dev/null || die "$target exited; see $out.log"
		sleep 0.2
	done
	((i < 300)) || die "$target is not answering under valgrind; see $out.log"
	pgbench "$@" -t 50 >/dev/null 2>&1 || die "$target: the warm-up failed"
	"${as[@]}" callgrind_control -z "$TARGET_PID" >/dev/null 2>&1
	local res xacts
	res="$(pgbench "$@" -t "$XACTS" 2>&1)" || die "$target: pgbench failed: $res"
	xacts="$(awk '/number of transactions actually processed/ {split($NF, a, "/"); print a[1]}' <<<"$res")"
	"${as[@]}" callgrind_control -d "$TARGET_PID" >/dev/null 2>&1
	stop_target
	[[ -s "$out.1" ]] || die "$target: no callgrind dump"
	if [[ "$target" == pgninja ]]; then
		"$WORK/bin/cgfuncs" -binary "${cmd[0]}" -xacts "$xacts" -top 25 "$out.1" >"$WORK/out/$id.functions.md" ||
			die "$target: cgfuncs could not read the dump"
	fi
	# summary: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
	awk -v id="$id" -v t="$target" -v x="$xacts" '/^summary:/ {print id, t, x, $2, $5, $6, $7}' "$out.1"
}

SCENARIOS=(
	"session_simple session -S -M simple -c 16 -j 2"
	"session_extended session -S -M extended -c 16 -j 2"
	"transaction_simple transaction -S -M simple -c 64 -j 2"
	"transaction_extended transaction -S -M extended -c 64 -j 2"
)
RESULTS="$WORK/results.txt"
: >"$RESULTS"
for s in "${SCENARIOS[@]}"; do
	read -r id mode args <<<"$s"
	[[ -z "$ONLY" || "$id" =~ $ONLY ]] || continue
	targets=(pgbouncer pgninja)
	[[ "$mode" == session ]] && targets+=(pump_netpoll pump_epoll)
	for t in "${targets[@]}"; do
		log "$id: $t under callgrind"
		# shellcheck disable=SC2086 # args are words
		measure "$id" "$t" "$mode" $args >>"$RESULTS"
	done
done

# A partial run does not replace the committed table.
OUT=bench/results/instructions.md
[[ -z "$ONLY" ]] || OUT=bench/results/quick-instructions.md
mkdir -p bench/results
{
	echo "# What each proxy executes per transaction (callgrind)"
	echo
	echo "pgninja $PGNINJA_COMMIT, $(date -u +%Y-%m-%d), \`make bench-instructions\`; $XACTS transactions per client after a warm-up, counted under valgrind's callgrind with its simulated caches (the host's L1 sizes)."
	echo "Per transaction: instructions, L1 instruction-cache misses, L1 data-cache misses (reads + writes); ÷ PgBouncer in brackets."
	echo
	echo "| scenario | target | instructions | L1i misses | L1d misses |"
	echo "|---|---|---:|---:|---:|"
	awk '
	function ratio(v, base) { return base > 0 ? sprintf(" (%.1f×)", v / base) : "" }
	{
		ir = $4 / $3; i1 = $5 / $3; d1 = ($6 + $7) / $3
		if ($2 == "pgbouncer") { bir[$1] = ir; bi1[$1] = i1; bd1[$1] = d1; printf "| %s | %s | %.0f | %.1f | %.0f |\n", $1, $2, ir, i1, d1; next }
		printf "| %s | %s | %.0f%s | %.1f%s | %.0f%s |\n", $1, $2, ir, ratio(ir, bir[$1]), i1, ratio(i1, bi1[$1]), d1, ratio(d1, bd1[$1])
	}' "$RESULTS"
	echo
	echo "## Where pgninja's instructions go"
	echo
	echo "Instructions per transaction by function (self cost, the top 25), from the same runs: callgrind's own per-function figures"
	echo 'are wrong for Go, whose goroutine switches leave its shadow call stack pointing elsewhere, so `bench/cgfuncs` maps each'
	echo "instruction address to the function whose symbol covers it."
	for f in "$WORK"/out/*.functions.md; do
		[[ -e "$f" ]] || continue
		echo
		echo "### $(basename "$f" .functions.md)"
		echo
		cat "$f"
	done
} >"$OUT"
cat "$OUT"
