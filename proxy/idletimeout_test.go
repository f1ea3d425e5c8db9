package proxy_test

import (
	"fmt"
	"testing"
	"time"
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
