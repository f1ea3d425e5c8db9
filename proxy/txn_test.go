package proxy_test

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"
)

const txnMode = "pool:\n  mode: transaction\n  max_size: %d\n  acquire_timeout: %s\n"

func TestTxnPreparedStatementsShared(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 5, "60s"))
	ctx := ctxT(t, 120*time.Second)
	const clients = 100
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// pgx's default mode caches a named prepared statement per SQL.
			c, err := pgx.Connect(ctx, h.dsn("ninja", "ninja", "ai_ninja"))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(ctx)
			for j := 0; j < 30; j++ {
				var a, b int
				var s string
				q := "select $1::int * 2, $2::int + 1"
				if j%2 == 1 {
					q = "select $1::int * 2, $2::int + 1, 'other'" // a second statement
					err = c.QueryRow(ctx, q, i, j).Scan(&a, &b, &s)
				} else {
					err = c.QueryRow(ctx, q, i, j).Scan(&a, &b)
				}
				if err != nil {
					errs <- fmt.Errorf("client %d query %d: %w", i, j, err)
					return
				}
				if a != 2*i || b != j+1 {
					errs <- fmt.Errorf("client %d got %d,%d", i, a, b)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var conns int
	h.pools.Each(func(_ poolKey, p poolT) { conns += p.Stats().Total })
	if conns > 5 {
		t.Fatalf("%d server connections for a pool of 5", conns)
	}
}

func TestTxnSearchPathFollowsClient(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 2, "30s"))
	ctx := ctxT(t, 60*time.Second)
	admin := h.ninja(t)
	const clients = 6
	for i := 0; i < clients; i++ {
		if _, err := admin.Exec(ctx, fmt.Sprintf(
			"drop schema if exists txn_s%[1]d cascade; create schema txn_s%[1]d; create table txn_s%[1]d.who(n int); insert into txn_s%[1]d.who values (%[1]d)", i)); err != nil {
			t.Fatal(err)
		}
	}
	conns := make([]*pgx.Conn, clients)
	for i := range conns {
		conns[i] = h.ninja(t)
		if _, err := conns[i].Exec(ctx, fmt.Sprintf("set search_path = txn_s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Interleave transactions so server connections change hands.
	for round := 0; round < 10; round++ {
		for i, c := range conns {
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := tx.QueryRow(ctx, "select n from who").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != i {
				t.Fatalf("round %d: client %d saw schema of client %d", round, i, n)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			var path string
			if err := c.QueryRow(ctx, "show search_path").Scan(&path); err != nil || path != fmt.Sprintf("txn_s%d", i) {
				t.Fatalf("client %d search_path %q %v", i, path, err)
			}
		}
	}
	// A SET rolled back with its transaction does not stick.
	c := conns[0]
	tx, _ := c.Begin(ctx)
	if _, err := tx.Exec(ctx, "set search_path = txn_s1"); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	for k := 0; k < 4; k++ {
		var n int
		if err := c.QueryRow(ctx, "select n from who").Scan(&n); err != nil || n != 0 {
			t.Fatalf("after rollback: %d %v", n, err)
		}
	}
}

func TestTxnListenPins(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 3, "30s"))
	ctx := ctxT(t, 20*time.Second)
	listener := h.ninja(t)
	if _, err := listener.Exec(ctx, "listen txn_events"); err != nil {
		t.Fatal(err)
	}
	sender := h.ninja(t)
	for i := 0; i < 5; i++ { // the sender's transactions use other connections
		if _, err := sender.Exec(ctx, "select pg_notify('txn_events', $1)", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		n, err := listener.WaitForNotification(ctx)
		if err != nil || n.Payload != fmt.Sprint(i) {
			t.Fatalf("notification %d: %+v %v", i, n, err)
		}
	}
}

// TestTxnReleasingStatementsUnpin: a client pinned to its server
// connection goes back to sharing one when a statement ends all of the
// state it was pinned for, and only then: not for a partial release, not
// for one rolled back with its transaction.
func TestTxnReleasingStatementsUnpin(t *testing.T) {
	for _, tc := range []struct {
		name, pin, release string
		unpins             bool
	}{
		{"UNLISTEN *", "listen unpin_events", "unlisten *", true},
		{"UNLISTEN of one channel", "listen unpin_events; listen unpin_other", "unlisten unpin_events", false},
		{"UNLISTEN * rolled back", "listen unpin_events", "begin; unlisten *; rollback", false},
		{"pg_advisory_unlock_all", "select pg_advisory_lock(7)", "select pg_advisory_unlock_all()", true},
		{"pg_advisory_unlock of one lock", "select pg_advisory_lock(7)", "select pg_advisory_unlock(7)", false},
		{"DISCARD TEMP", "create temp table unpin_scratch (x int)", "discard temp", true},
		{"CLOSE ALL", "declare unpin_cur cursor with hold for select 1", "close all", true},
		// psycopg closes its named cursors one by one.
		{"CLOSE of the only held cursor", "declare unpin_cur cursor with hold for select 1", "close unpin_cur", true},
		{"CLOSE of one of two held cursors", "declare unpin_cur cursor with hold for select 1; declare unpin_two cursor with hold for select 2",
			"close unpin_cur", false},
		{"CLOSE of both held cursors", "declare unpin_cur cursor with hold for select 1; declare unpin_two cursor with hold for select 2",
			"close unpin_cur; close unpin_two", true},
		// Applications that switch roles per request.
		{"RESET ROLE", "set role ninja", "reset role", true},
		{"SET ROLE NONE", "set role ninja", "set role none", true},
		{"RESET ROLE rolled back", "set role ninja", "begin; reset role; rollback", false},
		{"SET ROLE again after RESET ROLE", "set role ninja", "reset role; set role ninja", false},
		{"two kinds, one released", "listen unpin_events; select pg_advisory_lock(7)", "unlisten *", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf(txnMode, 1, "300ms"))
			ctx := ctxT(t, 20*time.Second)
			simple := pgx.QueryExecModeSimpleProtocol
			pinned, other := h.ninja(t), h.ninja(t)
			if _, err := pinned.Exec(ctx, tc.pin, simple); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Exec(ctx, "select 1", simple); sqlstate(err) != "53300" {
				t.Fatalf("while the only server connection is pinned: %v, want 53300", err)
			}
			if _, err := pinned.Exec(ctx, tc.release, simple); err != nil {
				t.Fatal(err)
			}
			_, err := other.Exec(ctx, "select 1", simple)
			if tc.unpins && err != nil {
				t.Fatalf("after %q: %v, want the connection free", tc.release, err)
			}
			if !tc.unpins && sqlstate(err) != "53300" {
				t.Fatalf("after %q: %v, want the client still pinned (53300)", tc.release, err)
			}
			// Unpinned or not, the client itself carries on.
			if _, err := pinned.Exec(ctx, "select 1", simple); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTxnExecutePinsAsItsStatement: an EXECUTE of a SQL prepared
// statement that makes session state pins the client as the statement
// itself would have; without it the server connection went back to the
// pool holding the client's advisory lock, and the next client to get it
// took the same lock at once.
func TestTxnExecutePinsAsItsStatement(t *testing.T) {
	modes := map[string]pgx.QueryExecMode{"simple": pgx.QueryExecModeSimpleProtocol,
		"unnamed Parse": pgx.QueryExecModeExec, "named Parse": pgx.QueryExecModeCacheStatement}
	for _, tc := range []struct {
		name, prepare string
		pins          bool
	}{
		{"session advisory lock", "prepare pin_stmt as select pg_advisory_lock(7)", true},
		{"session set_config", "prepare pin_stmt as select set_config('application_name', 'pinned', false)", true},
		{"plain read", "prepare pin_stmt as select 1", false},
	} {
		for mname, mode := range modes {
			t.Run(tc.name+"/"+mname, func(t *testing.T) {
				h := startProxy(t, fmt.Sprintf(txnMode, 1, "300ms"))
				ctx := ctxT(t, 20*time.Second)
				a, b := h.ninja(t), h.ninja(t)
				// Query, since pgx's Exec without arguments always
				// sends a simple query.
				run := func(c *pgx.Conn, sql string) error {
					rows, err := c.Query(ctx, sql, mode)
					if err != nil {
						return err
					}
					rows.Close()
					return rows.Err()
				}
				for _, sql := range []string{tc.prepare, "execute pin_stmt"} {
					if err := run(a, sql); err != nil {
						t.Fatal(err)
					}
				}
				err := run(b, "select 1")
				if tc.pins && sqlstate(err) != "53300" {
					t.Fatalf("after the EXECUTE: %v, want the client pinned (53300)", err)
				}
				if !tc.pins && err != nil {
					t.Fatalf("after the EXECUTE: %v, want the connection free", err)
				}
				if err := run(a, "execute pin_stmt"); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestTxnDisconnectMidTransaction(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "30s"))
	ctx := ctxT(t, 20*time.Second)
	a := h.ninja(t)
	if _, err := a.Exec(ctx, "create table if not exists txn_dirty(x int)"); err != nil {
		t.Fatal(err)
	}
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into txn_dirty values (1); set local statement_timeout = '1ms'"); err != nil {
		t.Fatal(err)
	}
	a.Close(ctx) // gone mid-transaction
	b := h.ninja(t)
	var n int
	var timeout string
	if err := b.QueryRow(ctx, "select count(*), current_setting('statement_timeout') from txn_dirty").Scan(&n, &timeout); err != nil {
		t.Fatal(err)
	}
	if n != 0 || timeout == "1ms" {
		t.Fatalf("inherited the dead client's transaction: rows %d, statement_timeout %s", n, timeout)
	}
	var inTx bool
	// With the simple protocol a lone statement's transaction starts with
	// it; an inherited open transaction would have started earlier.
	if err := b.QueryRow(ctx, "select now() <> statement_timestamp()", pgx.QueryExecModeSimpleProtocol).Scan(&inTx); err != nil || inTx {
		t.Fatalf("open transaction inherited: %v %v", inTx, err)
	}
}

func TestTxnPoolExhaustion(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "300ms"))
	ctx := ctxT(t, 20*time.Second)
	holder := h.ninja(t)
	tx := holdServer(t, ctx, holder)
	waiter := h.ninja(t)
	start := time.Now()
	_, err := waiter.Exec(ctx, "select 1")
	if sqlstate(err) != "53300" || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("want 53300 after the wait timeout, got %v after %v", err, time.Since(start))
	}
	if _, err := tx.Exec(ctx, "select 2"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waiter.QueryRow(ctx, "select 3").Scan(new(int)); err != nil {
		t.Fatalf("waiter after the holder committed: %v", err)
	}
}

// TestCancelEndsWaitForServer: a client whose statement waits for a
// server connection (the pool full) and is cancelled gets 57014 at once,
// and the statement never runs, in both pool modes that queue.
func TestCancelEndsWaitForServer(t *testing.T) {
	for _, mode := range []string{"transaction", "session"} {
		t.Run(mode, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf("pool:\n  mode: %s\n  max_size: 1\n  acquire_timeout: 30s\n", mode))
			ctx := ctxT(t, 20*time.Second)
			table := "cancel_wait_" + mode
			holder := h.ninja(t)
			if _, err := holder.Exec(ctx, "drop table if exists "+table+"; create table "+table+" (v int)"); err != nil {
				t.Fatal(err)
			}
			tx := holdServer(t, ctx, holder)
			waiter := h.ninja(t)
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := waiter.Exec(ctx, "insert into "+table+" values (1)", pgx.QueryExecModeSimpleProtocol)
				done <- err
			}()
			waitFor(t, 10*time.Second, "the waiter to queue", func() bool { return poolWaiting(h) == 1 })
			if err := waiter.PgConn().CancelRequest(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; sqlstate(err) != "57014" || time.Since(start) > 10*time.Second {
				t.Fatalf("cancelled waiter: %v after %v", err, time.Since(start))
			}
			if n := poolWaiting(h); n != 0 {
				t.Fatalf("%d still queued after the cancel", n)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if mode == "session" {
				// The holder keeps its server connection until it leaves.
				if err := holder.Close(ctx); err != nil {
					t.Fatal(err)
				}
			}
			var n int
			if err := waiter.QueryRow(ctx, "select count(*) from "+table).Scan(&n); err != nil || n != 0 {
				t.Fatalf("after the cancel: %d rows, %v (the cancelled insert must not run)", n, err)
			}
			var timeouts uint64
			h.pools.Each(func(_ pool.Key, p *pool.Pool) { timeouts += p.Stats().Timeouts })
			if timeouts != 0 {
				t.Fatalf("a cancelled wait counted as %d acquire timeouts", timeouts)
			}
		})
	}
}

// allIdle: every server connection of the proxy's pools is back in them.
func allIdle(h *harness) bool {
	idle := true
	h.pools.Each(func(_ pool.Key, p *pool.Pool) {
		s := p.Stats()
		idle = idle && s.Idle == s.Total
	})
	return idle
}

// poolWaiting is how many clients wait for a server connection.
func poolWaiting(h *harness) (n int) {
	h.pools.Each(func(_ pool.Key, p *pool.Pool) { n += p.Stats().Waiting })
	return n
}

func TestTxnCancelReachesTheRightBackend(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 4, "30s"))
	ctx := ctxT(t, 30*time.Second)
	victim, bystander := h.ninja(t), h.ninja(t)
	done := make(chan error, 1)
	go func() {
		// The bystander runs a short sleep on another server connection
		// and must not be cancelled.
		_, err := bystander.Exec(ctx, "select pg_sleep(1.5)")
		done <- err
	}()
	direct := h.direct(t)
	go func() {
		// A cancel that reaches the server before the query does is
		// ignored there, with or without a proxy; wait until it runs.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			var n int
			_ = direct.QueryRow(ctx, "select count(*) from pg_stat_activity where query = 'select pg_sleep(10)' and state = 'active'").Scan(&n)
			if n == 1 {
				break
			}
		}
		_ = victim.PgConn().CancelRequest(context.Background())
	}()
	start := time.Now()
	_, err := victim.Exec(ctx, "select pg_sleep(10)")
	if sqlstate(err) != "57014" || time.Since(start) > 8*time.Second {
		t.Fatalf("victim: %v after %v", err, time.Since(start))
	}
	if err := <-done; err != nil {
		t.Fatalf("bystander was cancelled: %v", err)
	}
	// A cancel while the client is idle reaches nobody.
	_ = victim.PgConn().CancelRequest(ctx)
	if _, err := bystander.Exec(ctx, "select pg_sleep(0.3)"); err != nil {
		t.Fatalf("idle cancel hit another client: %v", err)
	}
}

func TestTxnSQLPrepareAcrossConnections(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 3, "30s"))
	ctx := ctxT(t, 30*time.Second)
	a, b := h.ninja(t), h.ninja(t)
	simple := pgx.QueryExecModeSimpleProtocol
	if _, err := a.Exec(ctx, "prepare twice(int) as select $1 * 2", simple); err != nil {
		t.Fatal(err)
	}
	// b uses the same name for something else; neither sees the other's.
	if _, err := b.Exec(ctx, "prepare twice(int) as select $1 * 3", simple); err != nil {
		t.Fatal(err)
	}
	// Hold connections in transactions so the next ones land elsewhere.
	hold := h.ninja(t)
	tx, _ := hold.Begin(ctx)
	_, _ = tx.Exec(ctx, "select 1")
	for i := 0; i < 6; i++ {
		var got int
		if err := a.QueryRow(ctx, "execute twice(21)", simple).Scan(&got); err != nil || got != 42 {
			t.Fatalf("a: %d %v", got, err)
		}
		if err := b.QueryRow(ctx, "execute twice(21)", simple).Scan(&got); err != nil || got != 63 {
			t.Fatalf("b: %d %v", got, err)
		}
	}
	_ = tx.Rollback(ctx)
	if _, err := a.Exec(ctx, "deallocate twice", simple); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "execute twice(1)", simple); sqlstate(err) != "26000" {
		t.Fatalf("after deallocate: %v", err)
	}
}

func TestStatementModeRefusesTransactions(t *testing.T) {
	h := startProxy(t, "pool:\n  mode: statement\n  max_size: 2\n")
	ctx := ctxT(t, 10*time.Second)
	c := h.ninja(t)
	var n int
	if err := c.QueryRow(ctx, "select 7").Scan(&n); err != nil || n != 7 {
		t.Fatal(err)
	}
	_, _ = c.Exec(ctx, "begin")
	if _, err := c.Exec(ctx, "select 1"); err == nil {
		t.Fatal("statement mode kept a transaction open")
	}
	// Nothing leaked: a new client gets a clean connection.
	d := h.ninja(t)
	if err := d.QueryRow(ctx, "select 8").Scan(&n); err != nil || n != 8 || d.PgConn().TxStatus() != 'I' {
		t.Fatalf("after the refused transaction: %v", err)
	}
}

// TestTxnOneConnectionManyClients is a regression test: a server's answer
// can arrive before the request's Flush returns, and handing the
// connection to the next client then made two writers share one buffer,
// so a request ran twice and answers shifted between clients.
func TestTxnOneConnectionManyClients(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "10s"))
	ctx := ctxT(t, 60*time.Second)
	h.clientsAtOnce(t, ctx, 8, nil, func(i int, c *pgx.Conn) error {
		for j := 0; j < 50; j++ {
			var a, b int
			if err := c.QueryRow(ctx, "select $1::int * 2, $2::int + 1", i, j).Scan(&a, &b); err != nil {
				return fmt.Errorf("query %d: %w", j, err)
			}
			if a != 2*i || b != j+1 {
				return fmt.Errorf("query %d got another answer: %d,%d", j, a, b)
			}
		}
		return nil
	})
}

// An idle transaction-mode client gives its read buffer back after a
// second; its next query must arrive intact, whichever way it is split.
func TestTxnIdleClientParksAndWakes(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 2, "10s"))
	ctx := ctxT(t, 20*time.Second)
	c := h.ninja(t)
	for i := 0; i < 2; i++ {
		time.Sleep(1300 * time.Millisecond)
		var got int
		if err := c.QueryRow(ctx, "select $1::int", i).Scan(&got); err != nil || got != i {
			t.Fatalf("after idling: %d %v", got, err)
		}
	}
	big := strings.Repeat("y", 100000) // larger than a pooled buffer
	time.Sleep(1300 * time.Millisecond)
	var n int
	if err := c.QueryRow(ctx, "select length($1::text)", big).Scan(&n); err != nil || n != len(big) {
		t.Fatalf("large message after idling: %d %v", n, err)
	}
}

// In transaction mode a request's answer is relayed on the session's own
// goroutine, which must hand over when the client has to speak before
// the lease ends: for COPY data, and inside a transaction. Two clients
// share one server connection so that a lease kept too long shows as a
// stall, and a lease ended too early as the other client's rows.
func TestTxnCopyAndOpenTransactionsOnSharedConnection(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "20s"))
	ctx := ctxT(t, 60*time.Second)
	table := fmt.Sprintf("txn_copy_%d", time.Now().UnixNano())
	a, b := h.ninja(t), h.ninja(t)
	if _, err := a.Exec(ctx, "create table "+table+" (id int, who text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = h.ninja(t).Exec(context.Background(), "drop table if exists "+table) })

	for round := 0; round < 3; round++ {
		for i, c := range []*pgx.Conn{a, b} {
			who := fmt.Sprintf("client%d", i)
			var in strings.Builder
			for id := 0; id < 500; id++ {
				fmt.Fprintf(&in, "%d\t%s\n", id, who)
			}
			tag, err := c.PgConn().CopyFrom(ctx, strings.NewReader(in.String()), "copy "+table+" from stdin")
			if err != nil || tag.RowsAffected() != 500 {
				t.Fatalf("round %d %s copy: %v %v", round, who, tag, err)
			}
			// A failed COPY ends its lease too.
			if _, err := c.PgConn().CopyFrom(ctx, strings.NewReader("x\ty\n"), "copy "+table+" from stdin"); err == nil {
				t.Fatalf("round %d %s: bad copy data accepted", round, who)
			}
		}
		// a opens a transaction and keeps the only server connection;
		// b's query waits for it and then sees only committed rows.
		tx, err := a.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "insert into "+table+" values (-1, 'uncommitted')"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var n int
		go func() {
			done <- b.QueryRow(ctx, "select count(*) from "+table+" where who = 'uncommitted'").Scan(&n)
		}()
		time.Sleep(100 * time.Millisecond)
		var inTx int
		if err := tx.QueryRow(ctx, "select count(*) from "+table+" where who = 'uncommitted'").Scan(&inTx); err != nil || inTx != 1 {
			t.Fatalf("round %d: inside the transaction: %d %v", round, inTx, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil || n != 0 {
			t.Fatalf("round %d: the waiting client: %d %v", round, n, err)
		}
	}
	var total int
	if err := b.QueryRow(ctx, "select count(*) from "+table).Scan(&total); err != nil || total != 3*2*500 {
		t.Fatalf("rows = %d %v, want %d", total, err, 3*2*500)
	}
}

// A server connection that dies while its answer is being relayed (on
// the session goroutine, in transaction mode) fails that client with a
// connection error, promptly, and the proxy goes on serving others.
func TestTxnServerTerminatedMidQuery(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 2, "10s"))
	ctx := ctxT(t, 30*time.Second)
	victim := h.ninja(t)
	errc := make(chan error, 1)
	go func() {
		var pid int
		errc <- victim.QueryRow(ctx, "select pg_backend_pid() from (select pg_sleep(20)) s").Scan(&pid)
	}()
	admin := h.direct(t)
	pid := 0
	for deadline := time.Now().Add(10 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_ = admin.QueryRow(ctx, "select pid from pg_stat_activity where query like 'select pg_backend_pid() from (select pg_sleep(20))%'").Scan(&pid)
	}
	if pid == 0 {
		t.Fatal("the sleeping query never showed in pg_stat_activity")
	}
	start := time.Now()
	if _, err := admin.Exec(ctx, "select pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if code := sqlstate(err); code != "57P01" && code != "08006" {
		if err == nil || !strings.Contains(err.Error(), "57P01") {
			t.Fatalf("want 57P01/08006, got %v", err)
		}
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("the client heard of the lost server after %v", waited)
	}
	var one int
	if err := h.ninja(t).QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("a new client after the failure: %d %v", one, err)
	}
}

// COPY FROM STDIN started with the extended protocol, as libpq's
// PQexecParams does: the server ignores the Sync that ended the request
// and answers the Sync the client sends after CopyDone. In transaction
// mode with one server connection, the lease must end there: a second
// client gets the connection and both get their own answers.
func TestTxnExtendedProtocolCopyIn(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "3s"))
	ctx := ctxT(t, 30*time.Second)
	table := fmt.Sprintf("ext_copy_%d", time.Now().UnixNano())
	if _, err := h.ninja(t).Exec(ctx, "create table "+table+" (id int); grant all on "+table+" to public"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = h.direct(t).Exec(context.Background(), "drop table if exists "+table) })

	a, b := loginRaw(t, rawConn(t, h), "trusty"), loginRaw(t, rawConn(t, h), "trusty")
	extendedCopyIn(t, a, table, "1\n2\n", &pgproto3.Sync{})

	for i, fe := range []*pgproto3.Frontend{b, a} {
		fe.Send(&pgproto3.Query{String: fmt.Sprintf("select count(*) + %d from %s", 10*i, table)})
		msgs := expectMessages(t, fe, "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")
		if got, want := string(msgs[1].(*pgproto3.DataRow).Values[0]), fmt.Sprint(2+10*i); got != want {
			t.Fatalf("client %d got %s, want %s", i, got, want)
		}
	}
}

// extendedCopyIn runs COPY table FROM STDIN with the extended protocol,
// its batch ended by end (nil: the client just pauses), and sends rows.
func extendedCopyIn(t *testing.T, fe *pgproto3.Frontend, table, rows string, end pgproto3.FrontendMessage) {
	t.Helper()
	fe.Send(&pgproto3.Parse{Query: "copy " + table + " from stdin"})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	if end != nil {
		fe.Send(end)
	}
	expectMessages(t, fe, "ParseComplete", "BindComplete", "CopyInResponse")
	fe.Send(&pgproto3.CopyData{Data: []byte(rows)})
	fe.Send(&pgproto3.CopyDone{})
	fe.Send(&pgproto3.Sync{})
	expectMessages(t, fe, "CommandComplete", "ReadyForQuery")
}

// expectMessages flushes fe and reads messages of the named types, in
// order; another type, or an ErrorResponse not named, fails the test.
func expectMessages(t *testing.T, fe *pgproto3.Frontend, types ...string) []pgproto3.BackendMessage {
	t.Helper()
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []pgproto3.BackendMessage
	for _, want := range types {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok && want != "ErrorResponse" {
			t.Fatalf("waiting for %s: error %s %s", want, e.Code, e.Message)
		}
		if name := strings.TrimPrefix(fmt.Sprintf("%T", msg), "*pgproto3."); name != want {
			t.Fatalf("got %s, want %s", name, want)
		}
		// The decoder reuses its messages; keep a copy of what the caller reads.
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			cp := *e
			msg = &cp
		}
		if dr, ok := msg.(*pgproto3.DataRow); ok {
			vals := make([][]byte, len(dr.Values))
			for i, v := range dr.Values {
				vals[i] = append([]byte(nil), v...)
			}
			msg = &pgproto3.DataRow{Values: vals}
		}
		got = append(got, msg)
	}
	return got
}

// An extended-protocol COPY whose batch reaches the server in parts (a
// paused session-mode client, a Flush in transaction mode) ends with the
// client's lone Sync, and the session goes on normally.
func TestCopyInBatchSentInParts(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		end          pgproto3.FrontendMessage
	}{
		{"session, paused", "", nil},
		{"transaction, flushed", fmt.Sprintf(txnMode, 1, "3s"), &pgproto3.Flush{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startProxy(t, tc.config)
			ctx := ctxT(t, 30*time.Second)
			table := fmt.Sprintf("parts_copy_%d", time.Now().UnixNano())
			if _, err := h.ninja(t).Exec(ctx, "create table "+table+" (id int); grant all on "+table+" to public"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = h.direct(t).Exec(context.Background(), "drop table if exists "+table) })

			fe := loginRaw(t, rawConn(t, h), "trusty")
			extendedCopyIn(t, fe, table, "1\n2\n3\n", tc.end)
			fe.Send(&pgproto3.Query{String: "select count(*) from " + table})
			msgs := expectMessages(t, fe, "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")
			if got := string(msgs[1].(*pgproto3.DataRow).Values[0]); got != "3" {
				t.Fatalf("copied %s rows, want 3", got)
			}
		})
	}
}

// A session setting that no longer applies on another server connection
// (here, a text search configuration dropped meanwhile) cannot be
// replayed there. The client's request still runs, as it would have on
// its own connection, with its other settings, but the client is warned
// with the server's SQLSTATE, and the connection, whose settings the
// proxy no longer knows, is not lent again.
func TestTxnFailedSettingReplayWarnsTheClient(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 5, "30s"))
	ctx := ctxT(t, 60*time.Second)
	admin := h.ninja(t)
	if _, err := admin.Exec(ctx, "drop text search configuration if exists pgninja_test_ts; create text search configuration pgninja_test_ts (copy = english)"); err != nil {
		t.Fatal(err)
	}
	var ns notices
	c := connectNoticed(t, h.dsn("ninja", "ninja", "ai_ninja"), &ns)
	if _, err := c.Exec(ctx, "set default_text_search_config = 'public.pgninja_test_ts'; set search_path = pgninja_sync, public"); err != nil {
		t.Fatal(err)
	}
	// A connection goes back to the pool just after its client has the
	// answer. Idle connections are lent newest first, so once it is back
	// the drop runs on the connection the setting was made on, and then
	// the holder's transaction does.
	waitFor(t, 5*time.Second, "the connection back in the pool", func() bool { return allIdle(h) })
	if _, err := admin.Exec(ctx, "drop text search configuration pgninja_test_ts"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the connection back in the pool", func() bool { return allIdle(h) })
	// Another client holds the connection the setting was made on, so the
	// next request goes to one that must be brought to it.
	holder, err := h.ninja(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	closedBefore := closedConns(h)
	// The setting that still applies is in effect: one failing does not
	// leave the others (here one sorted after it) unset.
	var path string
	if err := c.QueryRow(ctx, "select current_setting('search_path')").Scan(&path); err != nil || path != "pgninja_sync, public" {
		t.Fatalf("the request behind the failed replay: search_path %q, %v", path, err)
	}
	got := ns.take()
	// pgx prepares and then executes: two requests, each on a connection
	// of its own, each warned.
	if len(got) == 0 {
		t.Fatal("no warning that the session's setting could not be replayed")
	}
	for _, n := range got {
		if n.Severity != "WARNING" || n.Code != "22023" || !strings.Contains(n.Message, "pgninja_test_ts") {
			t.Fatalf("want WARNING 22023 naming the configuration, got %s %s %s", n.Severity, n.Code, n.Message)
		}
	}
	waitFor(t, 5*time.Second, "the connection closed, not lent again", func() bool { return closedConns(h) > closedBefore })

	// Warned once, the session goes on without the setting: later
	// requests, on whichever connection, neither warn again nor cost
	// connections, and keep the rest.
	ns.take()
	closedBefore = closedConns(h)
	for i := 0; i < 3; i++ {
		if err := c.QueryRow(ctx, "select current_setting('search_path')").Scan(&path); err != nil || path != "pgninja_sync, public" {
			t.Fatalf("a later request: search_path %q, %v", path, err)
		}
	}
	got = ns.take()
	if len(got) != 0 || closedConns(h) != closedBefore {
		t.Fatalf("later requests: %d more warnings, %d more connections closed", len(got), closedConns(h)-closedBefore)
	}
}

// tokyoFunc makes a function that sets the time zone where the parser
// cannot see it.
const tokyoFunc = "create or replace function pgninja_tokyo() returns text language sql as " +
	"$$ select set_config('TimeZone', 'Asia/Tokyo', false) $$"

// A setting one client commits stays its own: the next client lent the
// same server connection, with the same startup settings, finds the
// server's default, whether or not the first has left.
func TestTxnSettingsStayWithTheirClient(t *testing.T) {
	for _, tc := range []struct {
		name, set, setting, value string
	}{
		{"search_path", "set search_path = pgninja_elsewhere, public", "search_path", "pgninja_elsewhere, public"},
		{"statement_timeout", "set statement_timeout = '1234ms'", "statement_timeout", "1234ms"},
		{"in a transaction", "begin; set timezone = 'Asia/Tokyo'; commit", "timezone", "Asia/Tokyo"},
		{"application_name", "set application_name = 'leaky'", "application_name", "leaky"},
		// Changed where the parser cannot see, and reported by the server.
		{"timezone by a function", tokyoFunc + "; select pgninja_tokyo()", "timezone", "Asia/Tokyo"},
		{"by a function in a transaction", tokyoFunc + "; begin; select pgninja_tokyo(); commit", "timezone", "Asia/Tokyo"},
		{"by a function, rolled back", tokyoFunc + "; begin; select pgninja_tokyo(); rollback", "timezone", ""},
		{"datestyle by a function", "create or replace function pgninja_dmy() returns text language sql as " +
			"$$ select set_config('DateStyle', 'SQL, DMY', false) $$; select pgninja_dmy()", "datestyle", "SQL, DMY"},
	} {
		for _, leaves := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/leaves=%v", tc.name, leaves), func(t *testing.T) {
				h := startProxy(t, fmt.Sprintf(txnMode, 1, "10s"))
				ctx := ctxT(t, 30*time.Second)
				show := func(c *pgx.Conn) string {
					t.Helper()
					var v string
					if err := c.QueryRow(ctx, "select current_setting('"+tc.setting+"')").Scan(&v); err != nil {
						t.Fatal(err)
					}
					return v
				}
				b := h.ninja(t)
				def := show(b)
				a := h.ninja(t)
				if _, err := a.Exec(ctx, tc.set); err != nil {
					t.Fatal(err)
				}
				if leaves {
					if err := a.Close(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if got := show(b); got != def {
					t.Errorf("the other client's %s is %q, not its own %q", tc.setting, got, def)
				}
				if want := cmp.Or(tc.value, def); !leaves {
					if got := show(a); got != want {
						t.Errorf("the client's own %s is %q, want %q", tc.setting, got, want)
					}
				}
			})
		}
	}
}

// TestTxnRefusedDiscardAllKeepsSessionState: DISCARD ALL inside a
// transaction block fails, so the temp table and prepared statement it
// would have dropped are still the client's, on its server connection.
func TestTxnRefusedDiscardAllKeepsSessionState(t *testing.T) {
	for _, before := range []string{"begin", "begin; select 1"} {
		t.Run(before, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf(txnMode, 1, "300ms"))
			ctx := ctxT(t, 20*time.Second)
			simple := pgx.QueryExecModeSimpleProtocol
			pinned, other := h.ninja(t), h.ninja(t)
			if _, err := pinned.Exec(ctx, "create temp table kept_scratch (x int); prepare kept_q as select 7", simple); err != nil {
				t.Fatal(err)
			}
			if _, err := pinned.Exec(ctx, before, simple); err != nil {
				t.Fatal(err)
			}
			if _, err := pinned.Exec(ctx, "discard all", simple); sqlstate(err) != "25001" {
				t.Fatalf("discard all after %q: %v, want 25001", before, err)
			}
			if _, err := pinned.Exec(ctx, "rollback", simple); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Exec(ctx, "select 1", simple); sqlstate(err) != "53300" {
				t.Fatalf("another client: %v, want 53300 while the client stays pinned", err)
			}
			var n int
			if err := pinned.QueryRow(ctx, "execute kept_q", simple).Scan(&n); err != nil || n != 7 {
				t.Fatalf("execute kept_q = %d, %v; want 7", n, err)
			}
			if _, err := pinned.Exec(ctx, "insert into kept_scratch values (1)", simple); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A lone BEGIN is answered by the proxy and sent with the client's next
// request: until then the client holds no server connection. Everything
// the client sees stays as PostgreSQL answers it, failures included.
func TestTxnDeferredBegin(t *testing.T) {
	t.Run("takes no server connection", func(t *testing.T) {
		h := startProxy(t, fmt.Sprintf(txnMode, 1, "300ms"))
		ctx := ctxT(t, 20*time.Second)
		a, b := h.ninja(t), h.ninja(t)
		tx, err := a.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.QueryRow(ctx, "select 1").Scan(new(int)); err != nil {
			t.Fatalf("another client while the only server connection's client sits after BEGIN: %v", err)
		}
		if _, err := tx.Exec(ctx, "select 2"); err != nil {
			t.Fatal(err)
		}
		// Now the transaction holds the connection.
		if _, err := b.Exec(ctx, "select 3"); sqlstate(err) != "53300" {
			t.Fatalf("with the transaction open on the only connection: %v, want 53300", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.QueryRow(ctx, "select 4").Scan(new(int)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an empty transaction reaches no server", func(t *testing.T) {
		h := startProxy(t, fmt.Sprintf(txnMode, 1, "300ms"))
		ctx := ctxT(t, 20*time.Second)
		holder, a := h.ninja(t), h.ninja(t)
		tx := holdServer(t, ctx, holder)
		// The only server connection is taken: whatever needs a server
		// fails with 53300.
		for _, tc := range []struct{ begin, end, tag string }{
			{"begin", "commit", "COMMIT"},
			{"start transaction read only", "end", "COMMIT"},
			{"begin", "rollback", "ROLLBACK"},
			{"begin", "abort", "ROLLBACK"},
		} {
			for _, q := range []string{tc.begin, tc.end} {
				res, err := a.PgConn().Exec(ctx, q).ReadAll()
				if err != nil {
					t.Fatalf("%s; %s: %s: %v", tc.begin, tc.end, q, err)
				}
				if q == tc.end && res[0].CommandTag.String() != tc.tag {
					t.Errorf("%s: tag %q, want %q", q, res[0].CommandTag.String(), tc.tag)
				}
			}
			if st := a.PgConn().TxStatus(); st != 'I' {
				t.Errorf("after %s; %s: status %c, want I", tc.begin, tc.end, st)
			}
		}
		// AND CHAIN opens the next transaction: a server must see it.
		var err error
		for _, q := range []string{"begin", "commit and chain"} {
			_, err = a.PgConn().Exec(ctx, q).ReadAll()
		}
		if sqlstate(err) != "53300" {
			t.Errorf("commit and chain without a server connection: %v, want 53300", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a first statement refused fails the transaction", func(t *testing.T) {
		h := startProxy(t, fmt.Sprintf(txnMode, 1, "300ms"))
		ctx := ctxT(t, 20*time.Second)
		var ns notices
		holder, a := h.ninja(t), connectNoticed(t, h.dsn("ninja", "ninja", "ai_ninja"), &ns)
		tx := holdServer(t, ctx, holder)
		closedBefore := closedConns(h)
		exec := func(sql string) (string, error) {
			res, err := a.PgConn().Exec(ctx, sql).ReadAll()
			if err != nil {
				return "", err
			}
			return res[len(res)-1].CommandTag.String(), nil
		}
		if tag, err := exec("begin"); err != nil || tag != "BEGIN" {
			t.Fatalf("begin: %q %v", tag, err)
		}
		if _, err := exec("select 1"); sqlstate(err) != "53300" {
			t.Fatalf("no server connection to be had: %v, want 53300", err)
		}
		if a.PgConn().TxStatus() != 'E' {
			t.Fatalf("transaction status %c after the refusal, want E", a.PgConn().TxStatus())
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := exec("select 2"); sqlstate(err) != "25P02" {
			t.Fatalf("in the failed transaction: %v, want 25P02", err)
		}
		if tag, err := exec("commit"); err != nil || tag != "ROLLBACK" {
			t.Fatalf("commit of the failed transaction: %q %v, want ROLLBACK", tag, err)
		}
		if tag, err := exec("select 3"); err != nil || tag != "SELECT 1" || a.PgConn().TxStatus() != 'I' {
			t.Fatalf("after it: %q %v, status %c", tag, err, a.PgConn().TxStatus())
		}
		// The statement failing on purpose is nothing to warn of, nor a
		// reason to give up the server connection.
		if got := ns.take(); len(got) > 0 {
			t.Errorf("notices: %q", describeNotices(got))
		}
		if n := closedConns(h) - closedBefore; n > 0 {
			t.Errorf("%d server connections closed", n)
		}
	})
	t.Run("answers as PostgreSQL", func(t *testing.T) {
		answersAsPostgreSQL(t, 1, []step{
			{"a", "begin"}, {"b", "select 'b alone'"}, {"a", "select 1/0"}, {"a", "select 1"}, {"a", "commit"},
			{"a", "start transaction isolation level repeatable read"}, {"a", "show transaction_isolation"}, {"a", "commit"},
			{"a", "begin read only"}, {"a", "create table deferred_begin_ro (i int)"}, {"a", "rollback"},
			{"a", "begin"}, {"a", "set transaction isolation level serializable"}, {"a", "show transaction_isolation"}, {"a", "rollback"},
			{"a", "begin"}, {"a", "set local statement_timeout = '7s'"}, {"a", "show statement_timeout"}, {"a", "commit"},
			{"a", "show statement_timeout"},
			{"a", "begin"}, {"a", "ext select 5"}, {"a", "rollback"},
			{"a", "begin"}, {"a", "commit"}, {"a", "begin"}, {"a", "rollback"},
			// The command tag the proxy answers with is PostgreSQL's.
			{"a", "BEGIN;"}, {"a", "commit"}, {"a", "/* c */ begin work"}, {"a", "commit"},
			{"a", "-- c\n\tStart Transaction read only"}, {"a", "commit"},
			{"a", "begin"}, {"a", "quit"}, {"b", "select 'b after a left'"},
		})
	})
}

// gaugeValue reads a gauge from reg.
func gaugeValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Quiet transaction-mode clients wait in the parking lot, with no
// goroutine of their own; each goes on where it stopped when it speaks
// (also a client whose end closed meanwhile), and one thrown out while
// parked is finished at once.
func TestTxnIdleClientsWaitInTheParkingLot(t *testing.T) {
	h := startProxy(t, consoleUsers+"  max_size: 2\n")
	ctx := ctxT(t, 30*time.Second)
	const n = 12
	clients := make([]*pgx.Conn, n)
	for i := range clients {
		clients[i] = h.ninja(t)
		if _, err := clients[i].Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
	}
	parked := func() float64 { return gaugeValue(t, h.reg, "pgninja_clients_parked") }
	waitFor(t, 10*time.Second, "the idle clients to park", func() bool { return parked() == n })

	for round := range 2 {
		for i, c := range clients[:n-2] {
			var got int
			if err := c.QueryRow(ctx, "select $1::int + $2::int", i, round).Scan(&got); err != nil || got != i+round {
				t.Fatalf("round %d, client %d after parking: %d %v", round, i, got, err)
			}
		}
		waitFor(t, 10*time.Second, "the clients to park again", func() bool { return parked() == n })
	}

	admin := h.adminConsole(t)
	connected := func() float64 { return gaugeValue(t, h.reg, "pgninja_clients_connected") }
	before := connected()
	// One leaves while parked: its session ends with it.
	_ = clients[n-1].Close(ctx)
	// One is thrown out while parked.
	if _, err := admin.Exec(ctx, "KILL_CLIENT "+itoa(clients[n-2].PgConn().PID())); err != nil {
		t.Fatalf("KILL_CLIENT: %v", err)
	}
	waitFor(t, 10*time.Second, "the two sessions to end", func() bool { return connected() == before-2 })
	if _, err := clients[n-2].Exec(ctx, "select 1"); err == nil {
		t.Error("the killed client could still run a query")
	}
	if p := parked(); p != n-2 {
		t.Errorf("%v clients parked, want %d", p, n-2)
	}

	// Shutdown ends the parked clients at once.
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown with %d clients parked: %v after %v", n-2, err, time.Since(start))
	}
	if _, err := clients[0].Exec(ctx, "select 1"); sqlstate(err) != "57P01" {
		t.Errorf("a parked client after shutdown: %v, want 57P01", err)
	}
}

// holdServer begins a transaction on c that holds a server connection: a
// lone BEGIN takes none, its first statement does.
func holdServer(t *testing.T, ctx context.Context, c *pgx.Conn) pgx.Tx {
	t.Helper()
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	return tx
}
