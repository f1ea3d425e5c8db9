package proxy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestIdleTransactionTimeout: a client idle inside a transaction longer
// than pool.idle_transaction_timeout is ended with 25P03 and its
// transaction rolled back; one whose query outlasts the timeout, or that
// idles outside a transaction, is not.
func TestIdleTransactionTimeout(t *testing.T) {
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf("pool:\n  mode: %s\n  idle_transaction_timeout: 500ms\n", mode))
			ctx := ctxT(t, 30*time.Second)

			busy := h.ninja(t)
			for _, q := range []string{"begin", "select pg_sleep(1.2)", "select 1", "commit"} {
				if _, err := busy.Exec(ctx, q); err != nil {
					t.Fatalf("%s in a transaction whose query outlasts the timeout: %v", q, err)
				}
			}

			outside := h.ninja(t)
			time.Sleep(1200 * time.Millisecond)
			if _, err := outside.Exec(ctx, "select 1"); err != nil {
				t.Errorf("a client idle outside a transaction: %v", err)
			}

			other := h.ninja(t)
			table := "idle_tx_" + mode
			if _, err := other.Exec(ctx, "create table if not exists "+table+" (x int)"); err != nil {
				t.Fatal(err)
			}
			idle := h.ninja(t)
			for _, q := range []string{"begin", "insert into " + table + " values (1)"} {
				if _, err := idle.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(1200 * time.Millisecond)
			if _, err := idle.Exec(ctx, "select 1"); sqlstate(err) != "25P03" {
				t.Errorf("a client idle in a transaction past the timeout: %v, want 25P03", err)
			}
			var n int
			if err := other.QueryRow(ctx, "select count(*) from "+table).Scan(&n); err != nil || n != 0 {
				t.Errorf("rows the ended transaction inserted: %d (%v), want it rolled back", n, err)
			}
		})
	}
}

// TestClientIdleTimeout: pool.client_idle_timeout (PgBouncer's) ends a
// client idle outside a transaction, one that logged in and said nothing
// included, with PostgreSQL's 57P05 for idle_session_timeout. A query
// that outlasts it, a client idle inside a transaction and the admin
// console are left alone.
func TestClientIdleTimeout(t *testing.T) {
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf("admin_users: [ninja]\npool:\n  mode: %s\n  client_idle_timeout: 500ms\n", mode))
			ctx := ctxT(t, 30*time.Second)
			silent, outside, busy, inTxn := h.ninja(t), h.ninja(t), h.ninja(t), h.ninja(t)
			admin := h.adminConsole(t)
			if _, err := outside.Exec(ctx, "select 1"); err != nil {
				t.Fatal(err)
			}
			if _, err := inTxn.Exec(ctx, "begin"); err != nil {
				t.Fatal(err)
			}
			if _, err := busy.Exec(ctx, "select pg_sleep(1.2)"); err != nil {
				t.Errorf("a query that outlasts the timeout: %v", err)
			}
			time.Sleep(300 * time.Millisecond) // all idle for 1.5 s now
			for name, c := range map[string]*pgx.Conn{"silent since login": silent, "idle outside a transaction": outside} {
				if _, err := c.Exec(ctx, "select 1"); sqlstate(err) != "57P05" {
					t.Errorf("a client %s past the timeout: %v, want 57P05", name, err)
				}
			}
			if _, err := inTxn.Exec(ctx, "commit"); err != nil {
				t.Errorf("a client idle inside a transaction: %v", err)
			}
			if _, err := admin.Exec(ctx, "SHOW VERSION"); err != nil {
				t.Errorf("the admin console after the timeout: %v", err)
			}
		})
	}
}
