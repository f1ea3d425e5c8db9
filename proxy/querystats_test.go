package proxy_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/parser"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestQueryStatsCountEachStatementShape: with query_stats on, SHOW
// QUERIES has a row per statement shape (literals as $n), in session and
// transaction mode alike: calls of a statement prepared once and bound
// many times, of one text with changing literals, failures and slow
// calls, and the slow ones on /metrics too. Off, it keeps nothing.
func TestQueryStatsCountEachStatementShape(t *testing.T) {
	for _, tt := range []struct {
		name, config string
		on           bool
	}{
		{"session mode", "admin_users: [ninja]\nquery_stats: {enabled: true, slow_threshold: 50ms}\n", true},
		{"transaction mode", consoleUsers + "query_stats: {enabled: true, slow_threshold: 50ms}\n", true},
		{"off", consoleUsers, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startProxy(t, tt.config)
			ctx := ctxT(t, 30*time.Second)
			app := h.ninja(t)
			// pgx prepares this once (Parse) and then only binds it.
			for i := range 4 {
				var n int
				if err := app.QueryRow(ctx, "select $1::int * 2", i).Scan(&n); err != nil || n != 2*i {
					t.Fatalf("select %d * 2: %d, %v", i, n, err)
				}
			}
			for _, lit := range []string{"7", "8", "9"} {
				if _, err := app.Exec(ctx, "select "+lit+" + 1", pgx.QueryExecModeSimpleProtocol); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if _, err := app.Exec(ctx, "select 1/0", pgx.QueryExecModeSimpleProtocol); sqlstate(err) != "22012" {
					t.Fatalf("select 1/0: %v, want 22012", err)
				}
			}
			if _, err := app.Exec(ctx, "select pg_sleep(0.06)", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}

			con, err := h.console(t, "ninja", "ninja", "pgninja")
			if err != nil {
				t.Fatal(err)
			}
			byQuery := map[string]map[string]string{}
			for _, r := range consoleRows(t, con, "SHOW QUERIES") {
				if r["database"] != "ai_ninja" || r["user"] != "ninja" {
					t.Errorf("SHOW QUERIES row of another client: %v", r)
				}
				byQuery[r["query"]] = r
			}
			if !tt.on {
				if len(byQuery) != 0 {
					t.Errorf("query_stats off, SHOW QUERIES: %v", byQuery)
				}
				return
			}
			for _, want := range []struct {
				sql                       string
				calls, rows, errors, slow int
			}{
				{"select $1::int * 2", 4, 4, 0, 0},
				{"select 7 + 1", 3, 3, 0, 0},
				{"select 1/0", 2, 0, 2, 0},
				{"select pg_sleep(0.06)", 1, 1, 0, 1},
			} {
				norm := parser.Normalize(want.sql)
				r, ok := byQuery[norm]
				if !ok {
					t.Errorf("SHOW QUERIES has no %q; it has %v", norm, byQuery)
					continue
				}
				if r["calls"] != strconv.Itoa(want.calls) || r["rows"] != strconv.Itoa(want.rows) ||
					r["errors"] != strconv.Itoa(want.errors) || r["slow"] != strconv.Itoa(want.slow) {
					t.Errorf("SHOW QUERIES %q: %v, want %d calls, %d rows, %d errors, %d slow",
						norm, r, want.calls, want.rows, want.errors, want.slow)
				}
			}
			if r := byQuery[parser.Normalize("select pg_sleep(0.06)")]; r != nil {
				if us, _ := strconv.Atoi(r["max_time"]); us < 60000 {
					t.Errorf("pg_sleep(0.06) max_time %d µs, want at least 60,000", us)
				}
			}
			if got := counterValue(t, h.reg, "pgninja_slow_queries_total"); got != 1 {
				t.Errorf("pgninja_slow_queries_total = %v, want 1", got)
			}
			// The admin HTTP surface has the same table as JSON.
			if rows, ok := h.srv.Show("queries"); !ok || len(rows) != len(byQuery) {
				t.Errorf("Show(queries) = %d rows, %v; want SHOW QUERIES' %d", len(rows), ok, len(byQuery))
			}
		})
	}
}

// TestQueryStatsCountABatchSentInParts: a batch whose Sync comes apart
// from its Execute (after a Flush, or after a pause in session mode,
// where the server sees each part as it comes) is counted once, under
// the statement it executed.
func TestQueryStatsCountABatchSentInParts(t *testing.T) {
	for _, tt := range []struct {
		name, mode string
		flush      bool
	}{
		{"session mode, a pause", "session", false},
		{"transaction mode, a Flush", "transaction", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startProxy(t, "admin_users: [ninja]\nquery_stats: {enabled: true}\npool:\n  mode: "+tt.mode+"\n")
			c, fe := rawLogin(t, h, 10*time.Second)
			defer c.Close()
			fe.Send(&pgproto3.Parse{Query: "select 41 + 1"})
			fe.Send(&pgproto3.Bind{})
			fe.Send(&pgproto3.Execute{})
			if tt.flush {
				fe.Send(&pgproto3.Flush{})
			}
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			if tt.flush {
				receiveUntil[*pgproto3.CommandComplete](t, fe, "the Execute's answer after Flush")
			} else {
				time.Sleep(100 * time.Millisecond)
			}
			fe.Send(&pgproto3.Sync{})
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			receiveUntil[*pgproto3.ReadyForQuery](t, fe, "ReadyForQuery after the Sync")

			con, err := h.console(t, "ninja", "ninja", "pgninja")
			if err != nil {
				t.Fatal(err)
			}
			rows := rowsWhere(consoleRows(t, con, "SHOW QUERIES"), "query", parser.Normalize("select 41 + 1"))
			if len(rows) != 1 || rows[0]["calls"] != "1" {
				t.Errorf("SHOW QUERIES for the batch: %v, want one call", rows)
			}
		})
	}
}

// TestResetQueriesCountsAfresh: RESET QUERIES on the console (and the
// admin port's reset, which calls Server.Reset) empties SHOW QUERIES, and
// calls after it count from zero; stats_users may not reset, and RESET
// of anything else is refused.
func TestResetQueriesCountsAfresh(t *testing.T) {
	h := startProxy(t, consoleUsers+"query_stats: {enabled: true}\n")
	ctx := ctxT(t, 30*time.Second)
	app := h.ninja(t)
	run := func(n int) {
		t.Helper()
		for range n {
			if _, err := app.Exec(ctx, "select 41 + 1", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	stats, err := h.console(t, "trusty", "", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	calls := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, r := range consoleRows(t, admin, "SHOW QUERIES") {
			out[r["query"]] = r["calls"]
		}
		return out
	}
	norm := parser.Normalize("select 41 + 1")

	run(3)
	if got := calls(); got[norm] != "3" {
		t.Fatalf("before the reset SHOW QUERIES: %v, want 3 calls of %q", got, norm)
	}
	for _, tt := range []struct {
		name, q, want string
		c             *pgx.Conn
	}{
		{"stats user", "RESET QUERIES", "42501", stats},
		{"no word", "RESET", "42601", admin},
		{"a setting", "RESET pool_mode", "42601", admin},
		{"two words", "RESET QUERIES now", "42601", admin},
	} {
		if _, err := tt.c.Exec(ctx, tt.q); sqlstate(err) != tt.want {
			t.Errorf("%s: %s: %v, want %s", tt.name, tt.q, err, tt.want)
		}
	}
	if got := calls(); got[norm] != "3" {
		t.Fatalf("a refused RESET changed SHOW QUERIES: %v", got)
	}
	if tag, err := admin.Exec(ctx, "reset queries"); err != nil || tag.String() != "RESET" {
		t.Fatalf("reset queries: %q, %v", tag, err)
	}
	if got := calls(); len(got) != 0 {
		t.Fatalf("after RESET QUERIES, SHOW QUERIES: %v, want nothing", got)
	}
	run(1)
	if got := calls(); got[norm] != "1" {
		t.Fatalf("after the reset SHOW QUERIES: %v, want 1 call of %q", got, norm)
	}
	if n, ok := h.srv.Reset("queries"); !ok || n != 1 {
		t.Errorf("Reset(queries) dropped %d entries, ok %v; want 1, true", n, ok)
	}
	if _, ok := h.srv.Reset("pools"); ok {
		t.Error("Reset(pools) reported something reset")
	}
	if got := calls(); len(got) != 0 {
		t.Errorf("after Reset(queries), SHOW QUERIES: %v, want nothing", got)
	}
}
