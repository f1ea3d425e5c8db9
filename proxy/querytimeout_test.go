package proxy_test

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
				return runningOnServer(t, ctx, direct, marker) == 0
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

// slowRows is COPY text data whose reader hands over one row at a time,
// every pause.
type slowRows struct {
	left  int
	pause time.Duration
}

func (r *slowRows) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.pause)
	r.left--
	return copy(p, strconv.Itoa(r.left)+"\n"), nil
}

// TestQueryTimeoutSparesASlowCopyIn: during COPY FROM STDIN the server
// waits for the client, so a client sending its rows for longer than
// query_timeout keeps its COPY.
func TestQueryTimeoutSparesASlowCopyIn(t *testing.T) {
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf("pool:\n  mode: %s\n  query_timeout: 800ms\n", mode))
			ctx := ctxT(t, 30*time.Second)
			c := h.ninja(t)
			table := "slow_copy_" + mode
			if _, err := c.Exec(ctx, "drop table if exists "+table+"; create table "+table+" (v int)"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = h.direct(t).Exec(context.Background(), "drop table if exists "+table) })
			tag, err := c.PgConn().CopyFrom(ctx, &slowRows{left: 5, pause: 500 * time.Millisecond}, "copy "+table+" from stdin")
			if err != nil || tag.RowsAffected() != 5 {
				t.Fatalf("a COPY sent over 2.5 s under query_timeout 800ms: %v, %v; want 5 rows", tag, err)
			}
		})
	}
}

// TestQueryTimeoutEndsAHungServer: what query_timeout is for. A server
// process that stops (SIGSTOP) keeps its socket open and answers nothing;
// the client waiting on it is ended with 57014 instead of waiting for good,
// and the next client is served.
func TestQueryTimeoutEndsAHungServer(t *testing.T) {
	h := startProxy(t, "pool:\n  mode: session\n  query_timeout: 800ms\n")
	ctx := ctxT(t, 30*time.Second)
	c := h.ninja(t)
	var pid int
	if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("stopping the server process %d: %v", pid, err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	start := time.Now()
	_, err := c.Exec(ctx, "select 1")
	if got := sqlstate(err); got != "57014" {
		t.Fatalf("a query on a stopped server: %v (SQLSTATE %q), want 57014", err, got)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the client waited %v; query_timeout is 800ms, swept every second", took)
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)
	if _, err := h.ninja(t).Exec(ctx, "select 1"); err != nil {
		t.Errorf("a new client after the hung server: %v", err)
	}
}

// TestClientLeavingMidQueryCancelsIt: a client that dies while its query
// runs leaves nothing running on the server. PostgreSQL notices the closed
// socket only when it next writes, so without a cancel the statement (and
// its locks) would outlive the client by its full run. The client is a
// psql killed with SIGKILL: pgx, on losing its connection, sends a cancel
// itself, which a crashed process does not.
func TestClientLeavingMidQueryCancelsIt(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql not installed: the test bed installs postgresql-client")
	}
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf("pool:\n  mode: %s\n", mode))
			ctx := ctxT(t, 30*time.Second)
			marker := "departed_" + mode
			direct := h.direct(t)
			running := func() int { return runningOnServer(t, ctx, direct, marker) }

			cmd := exec.Command(psql, "-X", "-h", "127.0.0.1", "-p", strconv.Itoa(h.port()), "-U", "ninja", "-d", "ai_ninja",
				"-c", "select pg_sleep(30) /* "+marker+" */")
			cmd.Env = append(cmd.Environ(), "PGPASSWORD=ninja", "PGSSLMODE=disable")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the query running on the server", func() bool { return running() == 1 })
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			waitFor(t, 5*time.Second, "the departed client's query gone from the server", func() bool { return running() == 0 })

			if _, err := h.ninja(t).Exec(ctx, "select 1"); err != nil {
				t.Errorf("a new client after one left mid-query: %v", err)
			}
		})
	}
}

// runningOnServer counts the server processes running a statement that
// ends with the comment /* marker */.
func runningOnServer(t *testing.T, ctx context.Context, direct *pgx.Conn, marker string) int {
	t.Helper()
	var n int
	if err := direct.QueryRow(ctx, "select count(*) from pg_stat_activity where state = 'active' and query like '%"+marker+" */' and pid <> pg_backend_pid()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
