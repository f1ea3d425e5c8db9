package proxy_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestConsoleSetChangesTheRunningConfig: SET on the console changes one
// setting, by pgninja's key or PgBouncer's name (seconds for PgBouncer's
// timeouts), and new logins follow it; what it cannot take is refused with
// PostgreSQL's SQLSTATE for it, and the running config stays.
func TestConsoleSetChangesTheRunningConfig(t *testing.T) {
	h := startProxy(t, consoleUsers)
	ctx := ctxT(t, 30*time.Second)
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	config := func() map[string]string {
		cfg := map[string]string{}
		for _, r := range consoleRows(t, admin, "SHOW CONFIG") {
			cfg[r["key"]] = r["value"]
		}
		return cfg
	}
	for _, tt := range []struct{ set, key, want string }{
		{"SET default_pool_size = 3", "pool.max_size", "3"},
		{"set pool.min_size=1", "pool.min_size", "1"},
		{"SET query_wait_timeout = 1.5", "pool.acquire_timeout", "1.5s"},
		{"SET pool.idle_timeout TO '90s'", "pool.idle_timeout", "1m30s"},
		{"SET server_reset_query = 'DISCARD ALL; SELECT 1'", "pool.reset_query", "DISCARD ALL; SELECT 1"},
		{"SET server_reset_query = 'DISCARD ALL'", "pool.reset_query", "DISCARD ALL"},
		{"SET log_stats = false", "log_stats", "false"},
	} {
		if _, err := admin.Exec(ctx, tt.set); err != nil {
			t.Errorf("%s: %v", tt.set, err)
			continue
		}
		if got := config()[tt.key]; got != tt.want {
			t.Errorf("after %s, SHOW CONFIG %s = %q, want %q", tt.set, tt.key, got, tt.want)
		}
	}

	stats, err := h.console(t, "trusty", "", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	wantSQLStates(t, ctx, admin, [][2]string{
		{"SET listen = '127.0.0.1:1'", "55P02"},
		{"SET sidecar.backup.enabled = true", "55P02"},
		{"SET nonsense = 1", "42704"},
		{"SET backends[0].port = 1", "42704"},
		{"SET pool.max_size = 0", "22023"},
		{"SET pool.mode = sometimes", "22023"},
		{"SET pool.max_size", "42601"},
	})
	wantSQLStates(t, ctx, stats, [][2]string{{"SET pool.max_size = 9", "42501"}})
	if got := config()["pool.max_size"]; got != "3" {
		t.Errorf("refused SETs changed pool.max_size to %q", got)
	}

	// New logins follow: the console and one client fill a max_client_conn
	// of 2, and the next login is refused until it is raised again.
	app := h.ninja(t)
	if _, err := app.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SET max_client_conn = 2"); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, h.dsn("ninja", "ninja", "ai_ninja"))
	if err == nil {
		c.Close(context.Background())
	}
	if sqlstate(err) != "53300" {
		t.Errorf("login past max_client_conn 2: %v, want 53300", err)
	}
	if _, err := admin.Exec(ctx, "SET max_client_conn = 100"); err != nil {
		t.Fatal(err)
	}
	h.ninja(t)
}

// TestConsoleSetResizesPoolsInUse: a pool size raised on the console
// serves the client already queued for a full pool at once, not only
// clients yet to log in; lowered, the pool closes what it holds over the
// new size as the connections come back.
func TestConsoleSetResizesPoolsInUse(t *testing.T) {
	h := startProxy(t, "admin_users: [ninja]\npool:\n  mode: transaction\n  max_size: 1\n  acquire_timeout: 20s\n")
	ctx := ctxT(t, 30*time.Second)
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	pools := func() map[string]string {
		rows := rowsWhere(consoleRows(t, admin, "SHOW POOLS"), "database", "ai_ninja")
		if len(rows) != 1 {
			t.Fatalf("SHOW POOLS: %v, want one ai_ninja pool", rows)
		}
		return rows[0]
	}
	a, b := h.ninja(t), h.ninja(t)
	tx := holdServer(t, ctx, a) // the pool's only connection
	done := make(chan error, 1)
	go func() {
		_, err := b.Exec(ctx, "select 1")
		done <- err
	}()
	waitFor(t, 10*time.Second, "the second client to queue", func() bool { return pools()["cl_waiting"] == "1" })
	if _, err := admin.Exec(ctx, "SET default_pool_size = 2"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the queued client: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the queued client still waits after the pool grew")
	}

	if _, err := admin.Exec(ctx, "SET default_pool_size = 1"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the pool to shrink to one connection", func() bool {
		p := pools()
		return p["sv_active"] == "0" && atoi(p["sv_idle"])+atoi(p["sv_used"]) == 1
	})
}

// TestConsoleSetResizesPoolsNobodyUses: a pool whose clients have all
// left is sized again too; lowered, it closes the idle server
// connections over its new size and minimum instead of holding them.
func TestConsoleSetResizesPoolsNobodyUses(t *testing.T) {
	h := startProxy(t, "admin_users: [ninja]\npool:\n  mode: transaction\n  max_size: 3\n  min_size: 3\n")
	ctx := ctxT(t, 30*time.Second)
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	servers := func() int {
		rows := rowsWhere(consoleRows(t, admin, "SHOW POOLS"), "database", "ai_ninja")
		if len(rows) != 1 {
			t.Fatalf("SHOW POOLS: %v, want one ai_ninja pool", rows)
		}
		return atoi(rows[0]["sv_active"]) + atoi(rows[0]["sv_idle"]) + atoi(rows[0]["sv_used"])
	}
	c := h.ninja(t)
	if _, err := c.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "min_size connections", func() bool { return servers() == 3 })
	for _, set := range []string{"SET min_pool_size = 1", "SET default_pool_size = 1"} {
		if _, err := admin.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the pool nobody uses to shrink to one connection", func() bool { return servers() == 1 })
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
