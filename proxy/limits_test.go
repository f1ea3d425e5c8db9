package proxy_test

import (
	"fmt"
	"testing"
	"time"
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
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
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
