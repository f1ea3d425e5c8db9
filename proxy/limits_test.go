package proxy_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/proxy"
)

// TestMaxDBConnectionsAcrossUsers: pool.max_db_connections caps the
// server connections of every user's pool of a database together. Two
// users' clients hold the two allowed; a third user's request waits and
// gets 53300 after the wait timeout; once one of the holders commits, its
// connection is closed to make room rather than kept idle, and the third
// user's next request runs. The server never sees more than two.
func TestMaxDBConnectionsAcrossUsers(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 5, "400ms")+"  max_db_connections: 2\n")
	ctx := ctxT(t, 30*time.Second)
	direct := h.direct(t)
	serverConns := func() int {
		var n int
		if err := direct.QueryRow(ctx, `select count(*) from pg_stat_activity
			where datname = 'ai_ninja' and backend_type = 'client backend' and application_name <> 'pgninja-health'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	holders := [2]string{"ninja", h.env.SuperUser}
	pass := map[string]string{"ninja": "ninja", h.env.SuperUser: h.env.SuperPass}
	var commit []func()
	for _, user := range holders {
		c := h.connect(t, user, pass[user], "ai_ninja")
		tx := holdServer(t, ctx, c)
		commit = append(commit, func() {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	// md5user logs in to the server as ninja: a third client of
	// ninja's pool, which the cap keeps from opening a third connection.
	third := h.connect(t, "md5user", "ninja", "ai_ninja")
	if _, err := third.Exec(ctx, "select 1"); sqlstate(err) != "53300" {
		t.Fatalf("a third connection to ai_ninja with max_db_connections 2: %v, want 53300", err)
	}
	if n := serverConns(); n > 2 {
		t.Fatalf("the server has %d connections to ai_ninja, cap 2", n)
	}
	// The superuser's transaction ends; its pool's connection makes room.
	commit[1]()
	var two int
	if err := third.QueryRow(ctx, "select 2").Scan(&two); err != nil || two != 2 {
		t.Fatalf("after a holder committed: %v, %v", two, err)
	}
	if n := serverConns(); n > 2 {
		t.Fatalf("the server has %d connections to ai_ninja, cap 2", n)
	}
	commit[0]()
}

// TestCapOverridesPerDatabaseAndUser: a databases entry's
// max_db_connections and a user's max_user_connections override the
// pool section's, SHOW DATABASES and SHOW USERS report the caps and what
// counts against them, and RELOAD changes them for pools already open.
func TestCapOverridesPerDatabaseAndUser(t *testing.T) {
	env := testbed.Require(t)
	common := backendsOf(t, env) + "admin_users: [ninja]\npool:\n  mode: transaction\n  max_size: 5\n  acquire_timeout: 400ms\n  max_db_connections: 4\n"
	next := new(atomic.Pointer[string])
	h := startServer(t, env, common+"databases:\n  ai_ninja: {max_db_connections: 1}\n", nil, serverHooks{reload: func(srv *proxy.Server) error {
		cfg, err := config.Parse([]byte(*next.Load()), nil, nil)
		if err != nil {
			return err
		}
		return srv.Reload(cfg)
	}})
	ctx := ctxT(t, 30*time.Second)
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	show := func(what, name, col, want string) {
		t.Helper()
		rows := rowsWhere(consoleRows(t, admin, "SHOW "+what), "name", name)
		if len(rows) != 1 || rows[0][col] != want {
			t.Fatalf("SHOW %s, %s: %v; want %s %s", what, name, rows, col, want)
		}
	}
	// A login needs a server connection the first time its pool is
	// used, so the second user logs in before the first holds the one.
	super := h.connect(t, h.env.SuperUser, h.env.SuperPass, "ai_ninja")
	holder := h.ninja(t)
	tx := holdServer(t, ctx, holder)
	show("DATABASES", "ai_ninja", "max_connections", "1")
	show("DATABASES", "ai_ninja", "current_connections", "1")
	_, err = super.Exec(ctx, "select 1")
	if sqlstate(err) != "53300" || !strings.Contains(err.Error(), "max_db_connections") {
		t.Fatalf("a second user's request with the database's cap 1 held: %v, want 53300 naming max_db_connections", err)
	}

	// The database's cap goes up; ninja gets a cap of its own, which
	// trusty shares (it logs in to the server as ninja).
	reloaded := common + fmt.Sprintf("databases:\n  ai_ninja: {max_db_connections: 3}\nusers:\n"+
		"  - {name: ninja, password: ninja, max_user_connections: 1}\n  - {name: %s, password: %s}\n"+
		"  - {name: trusty, auth: trust, server_user: ninja, server_password: ninja}\n",
		h.env.SuperUser, h.env.SuperPass)
	next.Store(&reloaded)
	if _, err := admin.Exec(ctx, "RELOAD"); err != nil {
		t.Fatalf("RELOAD: %v", err)
	}
	show("DATABASES", "ai_ninja", "max_connections", "3")
	show("USERS", "ninja", "max_user_connections", "1")
	show("USERS", "trusty", "max_user_connections", "1")
	show("USERS", "ninja", "current_connections", "1")
	var two int
	if err := super.QueryRow(ctx, "select 2").Scan(&two); err != nil || two != 2 {
		t.Fatalf("the second user's request under the raised cap: %v, %v", two, err)
	}
	trusty := h.connect(t, "trusty", "", "ai_ninja")
	_, err = trusty.Exec(ctx, "select 1")
	if sqlstate(err) != "53300" || !strings.Contains(err.Error(), "max_user_connections") {
		t.Fatalf("a second client of server user ninja, capped at 1: %v, want 53300 naming max_user_connections", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := trusty.QueryRow(ctx, "select 2").Scan(&two); err != nil || two != 2 {
		t.Fatalf("after the holder committed: %v, %v", two, err)
	}
}
