#!/usr/bin/env bash
# bench/backup.sh — backup throughput: `pgninja backup run` (pg_dump -Fc -Z0 →
# zstd → AES-256-GCM chunks → SHA-256, plus per-table row counts and
# checksums in the same snapshot) against the plain `pg_dump -Fc | zstd >
# file`, on the same data, from the same server, in the same run, rounds
# interleaved. Prints markdown rows in bench/run.sh's table columns; the
# issue's target is pgninja ≥ 0.8 × the plain pipeline.
#
# MB/s is the database's size (pg_database_size) divided by wall time, for
# both, so the ratio is the inverse ratio of the times.
#
# Usage: bench/backup.sh [DSN]
#   DSN (or BENCH_BACKUP_DSN): database to back up, e.g. the demo's
#     postgres://ninja:ninja@127.0.0.1:15432/ai_ninja. Without one, a
#     database bench_backup is made on the test bed (TESTBED_PORT, as
#     `scripts/testbed.sh env` reports it), migrated and filled with
#     `pgninja demo-data --rows $BENCH_BACKUP_ROWS`.
# Knobs: BENCH_BACKUP_ROWS (default 1000000; 100000 with BENCH_QUICK=1),
#   BENCH_ROUNDS (default 2; 1 with BENCH_QUICK=1), BENCH_WORK_DIR,
#   PGNINJA_BIN (default bin/pgninja, built when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

log() { printf 'bench/backup: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

QUICK="${BENCH_QUICK:-0}"
[[ "$QUICK" == 0 || -z "$QUICK" ]] && QUICK=0 || QUICK=1
if ((QUICK)); then
	ROWS="${BENCH_BACKUP_ROWS:-100000}"
	ROUNDS="${BENCH_ROUNDS:-1}"
else
	ROWS="${BENCH_BACKUP_ROWS:-1000000}"
	ROUNDS="${BENCH_ROUNDS:-2}"
fi
WORK="${BENCH_WORK_DIR:-${TMPDIR:-/tmp}/pgninja-bench-backup}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
PGBIN=/usr/lib/postgresql/15/bin
[[ -x "$PGBIN/pg_dump" ]] || PGBIN="$(dirname "$(command -v pg_dump)")"
command -v zstd >/dev/null || die "zstd (the CLI) is needed for the baseline: apt-get install zstd"

PGNINJA="${PGNINJA_BIN:-$ROOT/bin/pgninja}"
if [[ ! -x "$PGNINJA" ]]; then
	log "building $PGNINJA"
	CGO_ENABLED=1 go build -o "$PGNINJA" ./cmd/pgninja
fi

unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS || true
DSN="${1:-${BENCH_BACKUP_DSN:-}}"
if [[ -z "$DSN" ]]; then
	eval "$(scripts/testbed.sh env)"
	[[ -n "${PGNINJA_TEST_PRIMARY:-}" ]] || die "no DSN and no test bed (scripts/testbed.sh up)"
	admin="postgres://$PGNINJA_TEST_SUPERUSER:$PGNINJA_TEST_SUPERPASS@$PGNINJA_TEST_PRIMARY/postgres?sslmode=disable"
	DSN="postgres://$PGNINJA_TEST_SUPERUSER:$PGNINJA_TEST_SUPERPASS@$PGNINJA_TEST_PRIMARY/bench_backup?sslmode=disable"
	if [[ "$("$PGBIN/psql" -X -A -t -d "$admin" -c "SELECT 1 FROM pg_database WHERE datname = 'bench_backup'")" != 1 ]]; then
		"$PGBIN/psql" -X -q -d "$admin" -c "CREATE DATABASE bench_backup"
	fi
	log "preparing bench_backup with $ROWS call records (tops up; reused across runs)"
	"$PGNINJA" migrate up --dsn "$DSN" >&2
	"$PGNINJA" demo-data --rows "$ROWS" --dsn "$DSN" >&2
fi

DB_BYTES="$("$PGBIN/psql" -X -A -t -d "$DSN" -c "SELECT pg_database_size(current_database())")"
CALLS="$("$PGBIN/psql" -X -A -t -d "$DSN" -c "SELECT count(*) FROM call_records" 2>/dev/null || echo "?")"
DB_MB="$(awk -v b="$DB_BYTES" 'BEGIN { printf "%.0f", b / 1e6 }')"

# pgninja reads the same server as the baseline: source_dsn = DSN.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/backup.key"
chmod 600 "$WORK/backup.key"
cat >"$WORK/pgninja.yaml" <<EOF
backends:
  - {name: primary, host: 127.0.0.1, port: 5432, role: primary}
sidecar:
  dsn: "$DSN"
  backup:
    dir: store
    key_file: backup.key
    source_dsn: "$DSN"
    keep_last: 1
    keep_daily: 1
    keep_weekly: 1
EOF

now() { date +%s.%N; }
baseline_s=()
pgninja_s=()
run_baseline() {
	local t0 t1
	t0="$(now)"
	"$PGBIN/pg_dump" -Fc -d "$DSN" | zstd -q -f -o "$WORK/baseline.dump.zst"
	t1="$(now)"
	baseline_s+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
}
run_pgninja() {
	local t0 t1
	t0="$(now)"
	PGNINJA_BACKUP_KEY= "$PGNINJA" backup run --config "$WORK/pgninja.yaml" >"$WORK/pgninja.out" 2>"$WORK/pgninja.err" ||
		die "pgninja backup run failed: $(tail -n 3 "$WORK/pgninja.err")"
	t1="$(now)"
	pgninja_s+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
}

log "database $DB_MB MB, $CALLS call records; $ROUNDS round(s)"
for ((r = 1; r <= ROUNDS; r++)); do
	# Alternate the order so neither side always gets the warmer cache.
	if ((r % 2)); then
		run_baseline
		run_pgninja
	else
		run_pgninja
		run_baseline
	fi
	log "round $r: pg_dump|zstd ${baseline_s[-1]} s, pgninja ${pgninja_s[-1]} s"
done

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mbps() { awk -v b="$DB_BYTES" -v s="$1" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
per_round() {
	local out="" s
	for s in "$@"; do out+="${out:+, }$(mbps "$s")"; done
	echo "$out MB/s"
}
b_med="$(median "${baseline_s[@]}")"
p_med="$(median "${pgninja_s[@]}")"
ratio="$(awk -v b="$b_med" -v p="$p_med" 'BEGIN { printf "%.2f", b / p }')"
met="$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "met" : "NOT met" }')"
b_size="$(stat -c %s "$WORK/baseline.dump.zst")"
p_size="$(find "$WORK/store" -name 'data.dump.zst.enc' -printf '%s\n' | tail -n 1)"

label="backup, $DB_MB MB database ($CALLS call records)"
printf '| %s | pg_dump -Fc \\| zstd > file | %s | %s MB/s | %s s | | | baseline; %s MB file | |\n' \
	"$label" "$(per_round "${baseline_s[@]}")" "$(mbps "$b_med")" "$b_med" "$(awk -v b="$b_size" 'BEGIN { printf "%.0f", b / 1e6 }')"
printf '| %s | pgninja backup run | %s | %s MB/s | %s s | %s | | %s× the baseline, target ≥ 0.8: %s; zstd + AES-256-GCM + SHA-256 + per-table checksums; %s MB file | |\n' \
	"$label" "$(per_round "${pgninja_s[@]}")" "$(mbps "$p_med")" "$p_med" "$ratio" "$ratio" "$met" "$(awk -v b="${p_size:-0}" 'BEGIN { printf "%.0f", b / 1e6 }')"
rm -f "$WORK/baseline.dump.zst"
