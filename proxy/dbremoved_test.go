package proxy_test

import (
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/jackc/pgx/v5"
)

// TestReloadEndsClientsOfAMovedDatabase: a reload that removes a database
// entry ends its clients, the idle at once and one in a transaction once
// it commits, with 57P01; a new login gets 3D000, and the pool of the
// server database nothing leads to any more closes its connections.
// Pointing the entry at another server database ends its clients too,
// and their next login reaches the new one. Other databases' clients
// carry on.
func TestReloadEndsClientsOfAMovedDatabase(t *testing.T) {
	env := testbed.Require(t)
	base := backendsOf(t, env) + "pool: {mode: transaction}\n"
	h := startWith(t, env, base+"databases: {ai_ninja: {}, other: {dbname: postgres}}\n")
	ctx := ctxT(t, 60*time.Second)
	reload := func(databases string) {
		t.Helper()
		cfg, err := config.Parse([]byte("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n"+
			"users:\n  - {name: ninja, password: ninja}\n"+base+databases), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.srv.Reload(cfg); err != nil {
			t.Fatal(err)
		}
	}
	direct := h.direct(t)
	serverConnsTo := func(db string) (n int) {
		t.Helper()
		if err := direct.QueryRow(ctx, "select count(*) from pg_stat_activity where datname = $1 and usename = 'ninja'", db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	currentDB := func(c *pgx.Conn) (db string, err error) {
		err = c.QueryRow(ctx, "select current_database()").Scan(&db)
		return db, err
	}

	idle := h.connect(t, "ninja", "ninja", "other")
	inTxn := h.connect(t, "ninja", "ninja", "other")
	bystander := h.ninja(t)
	for _, c := range []*pgx.Conn{idle, inTxn, bystander} {
		if _, err := currentDB(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := inTxn.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	if db, err := currentDB(inTxn); err != nil || db != "postgres" {
		t.Fatalf("other reached %q (%v), want postgres", db, err)
	}

	reload("databases: {ai_ninja: {}}\n")
	if db, err := currentDB(inTxn); err != nil || db != "postgres" {
		t.Fatalf("the open transaction after the reload: %q, %v; want it to finish on postgres", db, err)
	}
	if _, err := inTxn.Exec(ctx, "commit"); err != nil {
		t.Fatalf("COMMIT of the transaction open across the reload: %v", err)
	}
	for name, c := range map[string]*pgx.Conn{"idle": idle, "committed": inTxn} {
		if _, err := currentDB(c); sqlstate(err) != "57P01" {
			t.Errorf("the %s client of the removed database: %v, want 57P01", name, err)
		}
	}
	if _, err := pgx.Connect(ctx, h.dsn("ninja", "ninja", "other")); sqlstate(err) != "3D000" {
		t.Errorf("a login to the removed database: %v, want 3D000", err)
	}
	if db, err := currentDB(bystander); err != nil || db != "ai_ninja" {
		t.Errorf("a client of a database that stayed: %q, %v", db, err)
	}
	waitFor(t, 10*time.Second, "the removed database's server connections to close", func() bool {
		return serverConnsTo("postgres") == 0
	})

	// other comes back leading to ai_ninja, then moves to postgres.
	reload("databases: {ai_ninja: {}, other: {dbname: ai_ninja}}\n")
	moved := h.connect(t, "ninja", "ninja", "other")
	if db, err := currentDB(moved); err != nil || db != "ai_ninja" {
		t.Fatalf("other after it came back: %q, %v; want ai_ninja", db, err)
	}
	reload("databases: {ai_ninja: {}, other: {dbname: postgres}}\n")
	if _, err := currentDB(moved); sqlstate(err) != "57P01" {
		t.Errorf("a client of a database pointed elsewhere: %v, want 57P01", err)
	}
	again := h.connect(t, "ninja", "ninja", "other")
	if db, err := currentDB(again); err != nil || db != "postgres" {
		t.Errorf("other's next login: %q, %v; want postgres", db, err)
	}
	if db, err := currentDB(bystander); err != nil || db != "ai_ninja" {
		t.Errorf("a client of ai_ninja, whose server database stayed served: %q, %v", db, err)
	}
}
