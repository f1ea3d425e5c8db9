package proxy_test

import (
	"fmt"
	"testing"
	"time"
)

// TestQueryTimeout: a query that outlives pool.query_timeout (PgBouncer's)
// ends its client with 57014 and is cancelled on the server, not left
// running there; a shorter query, a client idle inside a transaction for
// longer, and the clients that come after are not touched.
func TestQueryTimeout(t *testing.T) {
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf("pool:\n  mode: %s\n  query_timeout: 800ms\n", mode))
			ctx := ctxT(t, 30*time.Second)
			marker := "query_timeout_" + mode

			slow := h.ninja(t)
			start := time.Now()
			_, err := slow.Exec(ctx, "select pg_sleep(20) /* "+marker+" */")
			if got := sqlstate(err); got != "57014" {
				t.Fatalf("a query past query_timeout: %v (SQLSTATE %q), want 57014", err, got)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the query was ended after %v; query_timeout is 800ms, swept every second", took)
			}
			direct := h.direct(t)
			waitFor(t, 5*time.Second, "the timed-out query gone from the server", func() bool {
				var n int
				if err := direct.QueryRow(ctx, "select count(*) from pg_stat_activity where query like '%"+marker+" */' and pid <> pg_backend_pid()").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n == 0
			})

			other := h.ninja(t)
			for _, q := range []string{"select pg_sleep(0.3)", "begin", "select 1"} {
				if _, err := other.Exec(ctx, q); err != nil {
					t.Fatalf("%s under query_timeout: %v", q, err)
				}
			}
			time.Sleep(2 * time.Second) // idle inside the transaction, past the timeout
			for _, q := range []string{"select 1", "commit"} {
				if _, err := other.Exec(ctx, q); err != nil {
					t.Errorf("%s after idling in a transaction past query_timeout: %v", q, err)
				}
			}
			if _, err := h.ninja(t).Exec(ctx, "select 1"); err != nil {
				t.Errorf("a new client after the timeout: %v", err)
			}
		})
	}
}
