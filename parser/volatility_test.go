package parser

import (
	"context"
	"errors"
	"github.com/ai-ninja/pgninja/internal/testbed"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestLoadVolatility(t *testing.T) {
	rows := [][]string{
		{"pg_catalog", "now", "s"},
		{"public", "calc", "i"},
		{"public", "touch", "v"},
		{"app", "calc", "v"}, // same name elsewhere: the unqualified name turns volatile
		{"app", "over", "i"},
		{"app", "over", "s"}, // overloads: the most volatile wins
		{"pg_catalog", "txid_current", "s"},
	}
	var gotSQL string
	m, err := LoadVolatility(context.Background(), func(_ context.Context, sql string) ([][]string, error) {
		gotSQL = sql
		return rows, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if gotSQL != volatilityQuery {
		t.Errorf("query = %q", gotSQL)
	}
	want := map[string]Volatility{
		"now": Stable, "pg_catalog.now": Stable,
		"public.calc": Immutable, "app.calc": Volatile, "calc": Volatile,
		"touch": Volatile, "public.touch": Volatile,
		"over": Stable, "app.over": Stable,
		"txid_current": Stable, "pg_catalog.txid_current": Stable,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("map has %d entries, want %d: %v", len(m), len(want), m)
	}

	f := VolatilityLookup(m)
	for name, want := range map[string]Volatility{
		"public.calc": Immutable, "calc": Volatile, "lower": Immutable, "random": Volatile, "nope": VolatilityUnknown,
		"txid_current": Volatile, // stable per pg_proc, but assigns an xid: fails on a standby
	} {
		if got := f(name); got != want {
			t.Errorf("lookup(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestLoadVolatilityErrors(t *testing.T) {
	boom := errors.New("boom")
	if _, err := LoadVolatility(context.Background(), func(context.Context, string) ([][]string, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v, want wrapping boom", err)
	}
	if _, err := LoadVolatility(context.Background(), func(context.Context, string) ([][]string, error) {
		return [][]string{{"x"}}, nil
	}); err == nil {
		t.Error("short row accepted")
	}
}

func TestBuiltinVolatility(t *testing.T) {
	cases := map[string]Volatility{
		"now": Stable, "pg_catalog.now": Stable, "count": Immutable, "lower": Immutable,
		"coalesce": Immutable, "random": Volatile, "nextval": Volatile, "setval": Volatile,
		"pg_advisory_lock": Volatile, "txid_current": Volatile, "clock_timestamp": Volatile,
		"pg_sleep": Volatile, "gen_random_uuid": Volatile, "my_fn": VolatilityUnknown,
		"public.lower": VolatilityUnknown, // a user's function, not the built-in
	}
	for name, want := range cases {
		if got := BuiltinVolatility(name); got != want {
			t.Errorf("BuiltinVolatility(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestLoadVolatilityFromServer reads pg_proc on the test bed's primary
// (it fails under CI when the test bed is missing).
func TestLoadVolatilityFromServer(t *testing.T) {
	ctx, conn, _ := serverConn(t)
	m, err := LoadVolatility(ctx, PgConnRows(conn))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Volatility{
		"now": Stable, "pg_catalog.now": Stable, "lower": Immutable, "random": Volatile,
		"nextval": Volatile, "pg_advisory_lock": Volatile, "count": Immutable,
	} {
		if got := m[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// The built-in table must never call safe what the server calls
	// volatile: that would send side effects to a replica.
	for name, v := range m {
		if b := BuiltinVolatility(name); b != VolatilityUnknown && b != v && !primaryOnly(name) {
			t.Errorf("built-in table says %s is %v, server says %v", name, b, v)
		}
	}
}

// serverConn connects to the test bed's primary as its superuser, until
// the test ends (it fails under CI when the test bed is missing).
func serverConn(t *testing.T) (context.Context, *pgconn.PgConn, *testbed.Env) {
	t.Helper()
	env := testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	conn, err := pgconn.Connect(ctx, env.SuperDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return ctx, conn, env
}
