package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Names of the environment variables written by `scripts/testbed.sh env`.
const (
	EnvPrimary       = "PGNINJA_TEST_PRIMARY"
	EnvReplica       = "PGNINJA_TEST_REPLICA"
	EnvRedis         = "PGNINJA_TEST_REDIS"
	EnvPgBouncerPort = "PGNINJA_TEST_PGBOUNCER_PORT"
	EnvDir           = "PGNINJA_TEST_DIR"
	EnvSuperUser     = "PGNINJA_TEST_SUPERUSER"
	EnvSuperPass     = "PGNINJA_TEST_SUPERPASS"
	EnvPGBin         = "PGNINJA_TEST_PGBIN"
	EnvCA            = "PGNINJA_TEST_CA"
)

// The application role and database that scripts/testbed.sh creates.
const (
	AppUser = "ninja"
	AppPass = "ninja"
	AppDB   = "ai_ninja"
)

// DefaultPGBin is where Debian's postgresql-15 package puts the server binaries.
const DefaultPGBin = "/usr/lib/postgresql/15/bin"

// Env describes a running test bed. Addresses are "host:port".
type Env struct {
	Primary, Replica, Redis string
	SuperUser, SuperPass    string
	Dir                     string
	PGBin                   string
	PgBouncerPort           int
	// CA is the file of the CA that signed the servers' TLS certificate
	// (for 127.0.0.1).
	CA string
}

// FromEnv reads the PGNINJA_TEST_* variables without contacting any server.
// Most tests want Require instead.
func FromEnv() (*Env, error) {
	e := &Env{
		Primary:   os.Getenv(EnvPrimary),
		Replica:   os.Getenv(EnvReplica),
		Redis:     os.Getenv(EnvRedis),
		SuperUser: os.Getenv(EnvSuperUser),
		SuperPass: os.Getenv(EnvSuperPass),
		Dir:       os.Getenv(EnvDir),
		PGBin:     os.Getenv(EnvPGBin),
		CA:        os.Getenv(EnvCA),
	}
	var missing []string
	for _, v := range []struct{ name, val string }{
		{EnvPrimary, e.Primary}, {EnvReplica, e.Replica}, {EnvRedis, e.Redis},
	} {
		if v.val == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not set", strings.Join(missing, ", "))
	}
	for _, v := range []struct{ name, val string }{
		{EnvPrimary, e.Primary}, {EnvReplica, e.Replica}, {EnvRedis, e.Redis},
	} {
		if _, _, err := net.SplitHostPort(v.val); err != nil {
			return nil, fmt.Errorf("%s=%q is not host:port: %v", v.name, v.val, err)
		}
	}
	if e.SuperUser == "" {
		e.SuperUser = "postgres"
	}
	if e.SuperPass == "" {
		e.SuperPass = "postgres"
	}
	if e.PGBin == "" {
		e.PGBin = DefaultPGBin
	}
	if s := os.Getenv(EnvPgBouncerPort); s != "" {
		p, err := strconv.Atoi(s)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("%s=%q is not a port", EnvPgBouncerPort, s)
		}
		e.PgBouncerPort = p
	}
	return e, nil
}

// Require returns the test bed, or stops the test when there is none: it
// skips locally but fails under CI (see unavailable).
func Require(tb testing.TB) *Env {
	tb.Helper()
	e, err := FromEnv()
	if err != nil {
		unavailable(tb, "test bed not configured: %v", err)
		return nil // not reached: unavailable always stops the test
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.SuperDSN("postgres"))
	if err == nil {
		err = conn.Ping(ctx)
		_ = conn.Close(context.Background())
	}
	if err != nil {
		unavailable(tb, "primary %s is unreachable: %v", e.Primary, err)
		return nil
	}
	return e
}

// RequireCA returns the file of the CA that signed the servers' TLS
// certificate, or stops the test as Require does when the test bed names
// none (one started by an older testbed.sh).
func (e *Env) RequireCA(tb testing.TB) string {
	tb.Helper()
	if e.CA == "" {
		unavailable(tb, "%s not set", EnvCA)
	}
	if _, err := os.Stat(e.CA); err != nil {
		unavailable(tb, "the servers' CA: %v", err)
	}
	return e.CA
}

// unavailable is the ONLY place where integration tests are skipped, and it
// never skips when the CI environment variable is set: under CI a missing or
// unreachable test bed is a test failure, so a broken .ci/run cannot go green
// by skipping every integration test.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		tb.Fatalf("testbed: %s\n(CI is set, so this integration test fails instead of skipping; "+
			"`make test` must start scripts/testbed.sh and export its PGNINJA_TEST_* variables)", msg)
		return
	}
	tb.Skipf("testbed: %s — run `make test`, or `scripts/testbed.sh up && eval \"$(scripts/testbed.sh env)\"` before go test", msg)
}

func dsn(hostport, db, user, pass string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, pass),
		Host:     hostport,
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// PrimaryDSN is a postgres:// URL for db on the primary as user/pass.
func (e *Env) PrimaryDSN(db, user, pass string) string { return dsn(e.Primary, db, user, pass) }

// ReplicaDSN is a postgres:// URL for db on the replica as user/pass.
func (e *Env) ReplicaDSN(db, user, pass string) string { return dsn(e.Replica, db, user, pass) }

// SuperDSN is a postgres:// URL for db on the primary as the superuser.
func (e *Env) SuperDSN(db string) string { return dsn(e.Primary, db, e.SuperUser, e.SuperPass) }

// SuperReplicaDSN is a postgres:// URL for db on the replica as the superuser.
func (e *Env) SuperReplicaDSN(db string) string { return dsn(e.Replica, db, e.SuperUser, e.SuperPass) }

// AppDSN is a postgres:// URL for db on the primary as the "ninja" role.
func (e *Env) AppDSN(db string) string { return dsn(e.Primary, db, AppUser, AppPass) }

// Connect opens a pgx connection to dsn (failing the test on error) and
// closes it when the test ends. Call it from the test's goroutine.
func (e *Env) Connect(tb testing.TB, dsn string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("testbed: connect %s: %v", redact(dsn), err)
	}
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// redact hides the password of a URL DSN in messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// CreateDB creates a fresh, uniquely named database on the primary, owned by
// the "ninja" role, and drops it (WITH (FORCE)) when the test ends. name is a
// readable prefix; the returned string is the actual database name.
func (e *Env) CreateDB(tb testing.TB, name string) string {
	tb.Helper()
	db := uniqueDBName(name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.SuperDSN("postgres"))
	if err != nil {
		tb.Fatalf("testbed: CreateDB: connect: %v", err)
	}
	defer conn.Close(context.Background())
	stmt := "CREATE DATABASE " + pgx.Identifier{db}.Sanitize() + " OWNER " + pgx.Identifier{AppUser}.Sanitize()
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, stmt)
		// 55006 object_in_use: template1 is briefly busy with a concurrent CREATE DATABASE.
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || attempt >= 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("testbed: %s: %v", stmt, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, e.SuperDSN("postgres"))
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
			_ = conn.Close(context.Background())
		}
		if err != nil {
			// Not a failure of the test itself (it may have stopped the
			// primary on purpose); `scripts/testbed.sh down --purge` cleans up.
			tb.Logf("testbed: could not drop database %s: %v", db, err)
		}
	})
	return db
}

// uniqueDBName turns name into a safe lower-case identifier with a random
// suffix, at most 63 bytes (PostgreSQL's NAMEDATALEN-1).
func uniqueDBName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	base := strings.Trim(b.String(), "_")
	if base == "" {
		base = "test"
	}
	if base[0] >= '0' && base[0] <= '9' {
		base = "t_" + base
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		panic(err)
	}
	suffix := "_" + hex.EncodeToString(rnd[:])
	if len(base) > 63-len(suffix) {
		base = base[:63-len(suffix)]
	}
	return base + suffix
}

// WaitReplicaCaughtUp blocks until the replica has replayed everything
// inserted into the primary's WAL before it was called, failing the test
// if ctx ends first. Without a ctx deadline it waits at most 30s. Call it
// from the test's goroutine.
func (e *Env) WaitReplicaCaughtUp(tb testing.TB, ctx context.Context) {
	tb.Helper()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	if err := e.waitReplica(ctx); err != nil {
		tb.Fatalf("testbed: WaitReplicaCaughtUp: %v", err)
	}
}

func (e *Env) waitReplica(ctx context.Context) error {
	p, err := pgx.Connect(ctx, e.SuperDSN("postgres"))
	if err != nil {
		return fmt.Errorf("connect primary: %w", err)
	}
	// Other sessions' open transactions may leave WAL in a partly filled
	// page that nothing flushes until a commit: pg_current_wal_lsn stops
	// short of it, yet the proxy waits for it, as it reads the insert
	// position after a client's commit. A commit that wrote WAL flushes
	// all of it (one that only took an xid, as txid_current, does not).
	var target string
	_, err = p.Exec(ctx, "select pg_catalog.pg_logical_emit_message(true, 'pgninja-testbed', '')")
	if err == nil {
		err = p.QueryRow(ctx, "select pg_current_wal_lsn()::text").Scan(&target)
	}
	_ = p.Close(context.Background())
	if err != nil {
		return fmt.Errorf("primary LSN: %w", err)
	}
	r, err := pgx.Connect(ctx, e.SuperReplicaDSN("postgres"))
	if err != nil {
		return fmt.Errorf("connect replica: %w", err)
	}
	defer r.Close(context.Background())
	var replayed string
	for {
		var done bool
		err := r.QueryRow(ctx,
			"select coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false), coalesce(pg_last_wal_replay_lsn()::text, '')",
			target).Scan(&done, &replayed)
		if err != nil {
			return fmt.Errorf("replica LSN (waiting for %s): %w", target, err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica replayed %s, primary was at %s: %w", replayed, target, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
