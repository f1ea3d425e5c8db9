package proxy_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/jackc/pgx/v5"
)

// routedConfig lists a primary and replicas (name → address, weight) in
// transaction mode with routing on.
func routedConfig(t testing.TB, primary string, primaryWeight int, replicas map[string]string, weight int, extra string) string {
	t.Helper()
	hp := func(addr string) (string, string) {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		return h, p
	}
	h, p := hp(primary)
	y := fmt.Sprintf("backends:\n  - name: primary\n    host: %s\n    port: %s\n    role: primary\n    weight: %d\n", h, p, primaryWeight)
	for name, addr := range replicas {
		h, p := hp(addr)
		y += fmt.Sprintf("  - name: %s\n    host: %s\n    port: %s\n    role: replica\n    weight: %d\n", name, h, p, weight)
	}
	return y + "pool:\n  mode: transaction\n  max_size: 10\n" +
		"routing:\n  enabled: true\n  health_check_interval: 200ms\n  lsn_poll_interval: 50ms\n" +
		"  health_check_user: postgres\n  health_check_password: postgres\n" + extra
}

func portOf(t testing.TB, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// serverPort asks the server that runs the statement which port it
// listens on: proof of placement from the server side.
func serverPort(t testing.TB, c *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var port int
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&port); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return port
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRouterCaughtUp waits until the proxy's own view of the replica has
// it at or past every commit the proxy recorded, so where a plain read goes
// no longer depends on when the next replay-position poll runs (on a loaded
// machine a fixed sleep after the replica caught up was not always enough).
func waitRouterCaughtUp(t testing.TB, h *harness) {
	t.Helper()
	waitFor(t, 10*time.Second, "the proxy to see the replica caught up", func() bool {
		need := h.router.Tracker().Max()
		for _, b := range h.router.View() {
			if b.Role == "replica" {
				return b.Healthy && b.ReplayLSN >= need
			}
		}
		return false
	})
}

func TestRoutingReadsToReplicaWritesToPrimary(t *testing.T) {
	env := testbed.Require(t)
	h := startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, ""))
	c := h.ninja(t)
	ctx := ctxT(t, 30*time.Second)
	primary, replica := portOf(t, env.Primary), portOf(t, env.Replica)
	waitFor(t, 10*time.Second, "reads on the replica", func() bool {
		return serverPort(t, c, "select inet_server_port()") == replica
	})
	if _, err := c.Exec(ctx, "create table if not exists route_t(id serial primary key, port int)"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sql  string
		want int
	}{
		{"plain read", "select inet_server_port()", replica},
		{"write", "insert into route_t(port) values (inet_server_port()) returning port", primary},
		{"volatile function", "select inet_server_port() from (select random()) r", primary},
		{"locking read", "select inet_server_port() from route_t limit 1 for update", primary},
		{"hint primary", "/* pgninja:primary */ select inet_server_port()", primary},
		{"cte write", "with w as (insert into route_t(port) values (0) returning id) select inet_server_port() + 0 * (select count(*) from w)::int", primary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Eventual would be racy here: wait until the replica has the
			// client's writes so plain reads may go there.
			waitRouterCaughtUp(t, h)
			if got := serverPort(t, c, tt.sql); got != tt.want {
				t.Fatalf("ran on port %d, want %d", got, tt.want)
			}
		})
	}
	// A SQL EXECUTE runs where the statement it runs would.
	simple := pgx.QueryExecModeSimpleProtocol
	for _, sql := range []string{"prepare route_read as select inet_server_port()",
		"prepare route_write as insert into route_t(port) values (inet_server_port()) returning port",
		"prepare route_volatile as select inet_server_port() from (select random()) r"} {
		if _, err := c.Exec(ctx, sql, simple); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		sql  string
		want int
	}{{"execute route_read", replica}, {"execute route_write", primary}, {"execute route_volatile", primary}} {
		for _, mode := range []pgx.QueryExecMode{simple, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
			waitRouterCaughtUp(t, h)
			if got := serverPort(t, c, tc.sql, mode); got != tc.want {
				t.Fatalf("%s (%v): ran on port %d, want %d", tc.sql, mode, got, tc.want)
			}
		}
	}
	// Transactions: read-only ones go to the replica, others to the primary.
	waitRouterCaughtUp(t, h)
	for _, tc := range []struct {
		begin string
		want  int
	}{{"begin read only", replica}, {"begin", primary}} {
		tx, err := c.Begin(ctx)
		if tc.begin != "begin" {
			tx.Rollback(ctx)
			tx, err = c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		}
		if err != nil {
			t.Fatal(err)
		}
		var p1, p2 int
		_ = tx.QueryRow(ctx, "select inet_server_port()").Scan(&p1)
		_ = tx.QueryRow(ctx, "select inet_server_port()").Scan(&p2)
		_ = tx.Commit(ctx)
		if p1 != tc.want || p2 != tc.want {
			t.Fatalf("%s: statements ran on %d and %d, want %d", tc.begin, p1, p2, tc.want)
		}
	}
	// An unknown hint value is refused with 22023 and the session goes on.
	if _, err := c.Exec(ctx, "/* pgninja:sideways */ select 1"); sqlstate(err) != "22023" {
		t.Fatalf("unknown hint: %v", err)
	}
	if _, err := c.Exec(ctx, "set pgninja.route = 'primary'"); err != nil {
		t.Fatal(err)
	}
	if got := serverPort(t, c, "select inet_server_port()"); got != primary {
		t.Fatalf("session hint: ran on %d", got)
	}
}

func TestRoutingWeights(t *testing.T) {
	env := testbed.Require(t)
	h := startWith(t, env, routedConfig(t, env.Primary, 1, map[string]string{"replica": env.Replica}, 3, "  consistency: eventual\n"))
	c := h.ninja(t)
	replica := portOf(t, env.Replica)
	waitFor(t, 10*time.Second, "the replica in rotation", func() bool {
		return serverPort(t, c, "select inet_server_port()") == replica
	})
	const reads = 10000
	onReplica := 0
	for i := 0; i < reads; i++ {
		if serverPort(t, c, "select inet_server_port()") == replica {
			onReplica++
		}
	}
	share := float64(onReplica) / reads
	if share < 0.70 || share > 0.80 {
		t.Fatalf("replica took %.1f%% of reads, want 75%% ±5%%", share*100)
	}
	t.Logf("replica share %.2f%% of %d reads", share*100, reads)
}

// waitServesReads waits until a client without writes reads on the
// replica at port: proof that it is in rotation, without which a
// read-your-writes test proves nothing.
func waitServesReads(t testing.TB, h *harness, port int) {
	t.Helper()
	fresh := h.ninja(t)
	waitFor(t, 10*time.Second, "the replica in rotation", func() bool {
		return serverPort(t, fresh, "select inet_server_port()") == port
	})
}

// eachModeWithSlowReplica runs fn under the read_your_writes and table
// consistency modes, through a proxy whose only replica applies WAL 2 s
// late.
func eachModeWithSlowReplica(t *testing.T, fn func(t *testing.T, h *harness, slow *testbed.Replica, mode string)) {
	env := testbed.Require(t)
	slow := env.StartReplica(t, "recovery_min_apply_delay = '2s'")
	for _, mode := range []string{"read_your_writes", "table"} {
		t.Run(mode, func(t *testing.T) {
			fn(t, startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"slow": slow.Addr()}, 1, "  consistency: "+mode+"\n")), slow, mode)
		})
	}
}

func TestReadYourWritesWithApplyDelay(t *testing.T) {
	eachModeWithSlowReplica(t, func(t *testing.T, h *harness, slow *testbed.Replica, mode string) {
		ctx := ctxT(t, 120*time.Second)
		writer := h.ninja(t)
		table := "ryw_" + mode
		if _, err := writer.Exec(ctx, fmt.Sprintf("drop table if exists %[1]s_child; drop table if exists %[1]s cascade; create table %[1]s(id int primary key)", table)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond) // the DDL reaches the replica
		waitServesReads(t, h, slow.Port)
		other := h.ninja(t)
		const n = 1000
		for i := 0; i < n; i++ {
			if _, err := writer.Exec(ctx, fmt.Sprintf("insert into %s values ($1)", table), i); err != nil {
				t.Fatal(err)
			}
			var seen bool
			if err := writer.QueryRow(ctx, fmt.Sprintf("select exists(select 1 from %s where id = $1)", table), i).Scan(&seen); err != nil || !seen {
				t.Fatalf("write %d not visible to its own client: %v", i, err)
			}
			if mode == "table" && i%5 == 0 {
				if err := other.QueryRow(ctx, fmt.Sprintf("select exists(select 1 from %s where id = $1)", table), i).Scan(&seen); err != nil || !seen {
					t.Fatalf("table mode: write %d not visible to another client: %v", i, err)
				}
			}
		}
		// Writes whose text does not name the table: a function, a
		// procedure, and a SQL EXECUTE of a prepared INSERT.
		simple := pgx.QueryExecModeSimpleProtocol
		for _, sql := range []string{
			fmt.Sprintf("create or replace function %[1]s_add(v int) returns void language sql as 'insert into %[1]s values (v)'", table),
			fmt.Sprintf("create or replace procedure %[1]s_proc(v int) language sql as 'insert into %[1]s values (v)'", table),
			fmt.Sprintf("prepare %[1]s_ins(int) as insert into %[1]s values ($1)", table),
		} {
			if _, err := writer.Exec(ctx, sql, simple); err != nil {
				t.Fatal(err)
			}
		}
		// Until the replica has the new function, every read waits for it.
		time.Sleep(2500 * time.Millisecond)
		waitServesReads(t, h, slow.Port)
		for i := n; i < n+60; i++ {
			write := []string{"select %s_add($1)", "call %s_proc($1)", "execute %s_ins(%d)"}[i%3]
			var err error
			if i%3 == 2 {
				_, err = writer.Exec(ctx, fmt.Sprintf(write, table, i), simple)
			} else {
				_, err = writer.Exec(ctx, fmt.Sprintf(write, table), i)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []*pgx.Conn{writer, other} {
				if c == other && mode != "table" {
					continue
				}
				var seen bool
				if err := c.QueryRow(ctx, fmt.Sprintf("select exists(select 1 from %s where id = $1)", table), i).Scan(&seen); err != nil || !seen {
					t.Fatalf("%q: write %d not visible (writer: %v): %v", write, i, c == writer, err)
				}
			}
		}
		if mode == "table" {
			tableModeSeesThroughCatalog(t, h, slow, writer, other, table)
		}
	})
}

// tableModeSeesThroughCatalog: under table consistency another client's
// read of a view waits for writes to the view's table, and its read of a
// table that a foreign key's ON DELETE CASCADE empties waits for the
// DELETE of the parent, though neither read names the table written.
func tableModeSeesThroughCatalog(t *testing.T, h *harness, slow *testbed.Replica, writer, other *pgx.Conn, table string) {
	ctx := ctxT(t, 60*time.Second)
	for _, sql := range []string{
		fmt.Sprintf("create view %[1]s_v as select * from %[1]s", table),
		fmt.Sprintf("create table %[1]s_child (id int references %[1]s (id) on delete cascade)", table),
		fmt.Sprintf("insert into %[1]s_child select id from %[1]s", table),
	} {
		if _, err := writer.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2500 * time.Millisecond)
	waitServesReads(t, h, slow.Port)
	exists := func(sql string, id int) bool {
		t.Helper()
		var seen bool
		if err := other.QueryRow(ctx, sql, id).Scan(&seen); err != nil {
			t.Fatal(err)
		}
		return seen
	}
	for i := 0; i < 20; i++ {
		id := 2000 + i
		if _, err := writer.Exec(ctx, fmt.Sprintf("insert into %s values ($1)", table), id); err != nil {
			t.Fatal(err)
		}
		if !exists(fmt.Sprintf("select exists(select 1 from %s_v where id = $1)", table), id) {
			t.Fatalf("insert %d not visible through the view", id)
		}
		if _, err := writer.Exec(ctx, fmt.Sprintf("delete from %s where id = $1", table), i); err != nil {
			t.Fatal(err)
		}
		if exists(fmt.Sprintf("select exists(select 1 from %s_child where id = $1)", table), i) {
			t.Fatalf("the cascade of delete %d not visible", i)
		}
	}
}

// A schema change made through the proxy is seen by every client, in
// read_your_writes mode too: a table one client has just created (a
// migration, "pgbench -i") is there for the next client's read, though
// the only replica applies WAL 2 s late. Once the replica has the change,
// reads go back to it.
func TestSchemaChangeSeenByEveryClient(t *testing.T) {
	eachModeWithSlowReplica(t, func(t *testing.T, h *harness, slow *testbed.Replica, mode string) {
		ctx := ctxT(t, 60*time.Second)
		waitServesReads(t, h, slow.Port)
		// A name never used before: the replica must not find it from an
		// earlier run.
		table := fmt.Sprintf("schema_seen_%s_%d", mode, time.Now().UnixNano())
		writer := h.ninja(t)
		if _, err := writer.Exec(ctx, fmt.Sprintf("create table %[1]s(id int); insert into %[1]s values (1)", table)); err != nil {
			t.Fatal(err)
		}
		defer writer.Exec(context.Background(), "drop table "+table)
		// Nothing in the read but the schema change may keep it off the
		// replica.
		for i := 0; i < 3; i++ {
			var id int
			if err := h.ninja(t).QueryRow(ctx, "select id from "+table).Scan(&id); err != nil || id != 1 {
				t.Fatalf("another client's read right after the table was created: id=%d, %v", id, err)
			}
		}
		waitServesReads(t, h, slow.Port)
	})
}

func TestReplicaStoppedMidLoad(t *testing.T) {
	env := testbed.Require(t)
	rep := env.StartReplica(t)
	h := startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"r": rep.Addr()}, 1, "  consistency: eventual\n"))
	probe := h.ninja(t)
	waitFor(t, 10*time.Second, "the replica in rotation", func() bool {
		return serverPort(t, probe, "select inet_server_port()") == rep.Port
	})
	// Load: readers that reconnect when their connection is lost.
	var stop atomic.Bool
	var okReads, failed atomic.Int64
	var progress [4]atomic.Int64 // reads done by each reader
	var errMu sync.Mutex
	var errs []string
	fail := func(err error) {
		failed.Add(1)
		errMu.Lock()
		errs = append(errs, err.Error())
		errMu.Unlock()
	}
	var wg sync.WaitGroup
	for i := range progress {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				c, err := pgx.Connect(context.Background(), h.dsn("ninja", "ninja", "ai_ninja"))
				if err != nil {
					fail(err)
					continue
				}
				for !stop.Load() {
					var x int
					if err := c.QueryRow(context.Background(), "select 1").Scan(&x); err != nil {
						fail(err)
						break
					}
					okReads.Add(1)
					progress[i].Add(1)
				}
				c.Close(context.Background())
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := rep.Stop(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	// Within the health-check interval (plus slack) reads are on the primary.
	primary := portOf(t, env.Primary)
	fresh := h.ninja(t)
	waitFor(t, 3*time.Second, "reads on the primary", func() bool {
		return serverPort(t, fresh, "select inet_server_port()") == primary
	})
	t.Logf("reads moved to the primary %v after the stop", time.Since(stoppedAt).Round(10*time.Millisecond))
	before := failed.Load()
	var done [len(progress)]int64
	for i := range progress {
		done[i] = progress[i].Load()
	}
	time.Sleep(time.Second)
	if f := failed.Load() - before; f > 0 {
		t.Fatalf("%d reads failed after reads had moved to the primary", f)
	}
	// A read sent to the replica as it went down must not wait for it
	// to come back: it goes to the primary.
	for i := range progress {
		if progress[i].Load() == done[i] {
			t.Fatalf("reader %d made no progress in the second after reads moved to the primary", i)
		}
	}
	if err := rep.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "reads back on the replica", func() bool {
		return serverPort(t, fresh, "select inet_server_port()") == rep.Port
	})
	stop.Store(true)
	wg.Wait()
	// Only requests in flight at the stop may have failed. A fast
	// shutdown first refuses new connections and then terminates the
	// running ones, so a reader may lose the read it had in flight and one
	// it sent in that window: at most two per reader, and none once reads
	// had moved (checked above).
	if f := failed.Load(); f > 8 {
		t.Fatalf("%d reads failed; only those in flight at the stop may: %q", f, errs)
	}
	t.Logf("%d reads, %d failed at the stop", okReads.Load(), failed.Load())
}

func TestPromotionWritesNeverHitRecovery(t *testing.T) {
	env := testbed.Require(t)
	rep, other := env.StartReplica(t), env.StartReplica(t)
	// Retarget to a replica before its promotion: while every server is
	// in recovery, writes are refused, never sent.
	h := startWith(t, env, fmt.Sprintf(
		"backends:\n  - name: newprimary\n    host: 127.0.0.1\n    port: %d\n    role: primary\n"+
			"  - name: other\n    host: 127.0.0.1\n    port: %d\n    role: replica\n    weight: 1\n"+
			"pool:\n  mode: transaction\n  max_size: 5\n"+
			"routing:\n  enabled: true\n  health_check_interval: 200ms\n  lsn_poll_interval: 50ms\n"+
			"  health_check_user: postgres\n  health_check_password: postgres\n",
		rep.Port, other.Port))
	// Logging in needs no server in a particular role.
	c := h.connect(t, "postgres", "postgres", "postgres")
	ctx := ctxT(t, 60*time.Second)
	time.Sleep(500 * time.Millisecond) // a health round
	if _, err := c.Exec(ctx, "create temp table if not exists x(i int)"); sqlstate(err) != "57P03" {
		t.Fatalf("a write with the primary in recovery: %v (want 57P03, never sent there)", err)
	}
	if err := rep.Promote(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "writes on the promoted server", func() bool {
		var port int
		err := c.QueryRow(ctx, "select inet_server_port() from (select txid_current()) x").Scan(&port)
		return err == nil && port == rep.Port
	})
}

// COPY FROM STDIN with routing on: nothing may follow the statement
// while the server reads COPY data (a query there aborts the connection),
// so the WAL position of its commit is read once the COPY is done. The
// writer sees its rows at once, and in table mode so does another
// client, even with the only replica 2 s behind.
func TestRoutedCopyFromStdinReadsItsOwnRows(t *testing.T) {
	eachModeWithSlowReplica(t, func(t *testing.T, h *harness, slow *testbed.Replica, mode string) {
		ctx := ctxT(t, 60*time.Second)
		c, other := h.ninja(t), h.ninja(t)
		table := fmt.Sprintf("routed_copy_%d", time.Now().UnixNano())
		if _, err := c.Exec(ctx, "create table "+table+" (id int)"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = h.direct(t).Exec(context.Background(), "drop table if exists "+table) })
		time.Sleep(2500 * time.Millisecond) // the table reaches the replica
		waitServesReads(t, h, slow.Port)
		for round := 1; round <= 3; round++ {
			var in strings.Builder
			for i := 0; i < 100; i++ {
				fmt.Fprintf(&in, "%d\n", i)
			}
			tag, err := c.PgConn().CopyFrom(ctx, strings.NewReader(in.String()), "copy "+table+" from stdin")
			if err != nil || tag.RowsAffected() != 100 {
				t.Fatalf("round %d: copy: %v %v", round, tag, err)
			}
			readers := []*pgx.Conn{c}
			if mode == "table" {
				readers = append(readers, other)
			}
			for i, r := range readers {
				var n int
				if err := r.QueryRow(ctx, "select count(*) from "+table).Scan(&n); err != nil || n != 100*round {
					t.Fatalf("round %d: client %d reads %d rows (%v), want %d", round, i, n, err, 100*round)
				}
			}
		}
	})
}

// Settings in the startup packet act on routing as a SET at the start of
// the session would: pgninja.route pins the session, and RESET returns to
// it; default_transaction_read_only sends transactions to the replica.
func TestRoutingFollowsStartupSettings(t *testing.T) {
	h, ctx, primary, replica := routedEventual(t, 30*time.Second)
	connect := func(params map[string]string) (*pgx.Conn, error) { return h.connectWith(t, ctx, params) }
	txnPort := func(c *pgx.Conn) int {
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		var p int
		if err := tx.QueryRow(ctx, "select inet_server_port()").Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exec := func(c *pgx.Conn, sql string) {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	pinned, err := connect(map[string]string{"options": "-c pgninja.route=primary"})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		sql  string
		want int
	}{
		{"", primary},
		{"reset pgninja.route", primary},
		{"set pgninja.route = 'auto'", replica},
		{"reset all", primary},
	} {
		if step.sql != "" {
			exec(pinned, step.sql)
		}
		if got := serverPort(t, pinned, "select inet_server_port()"); got != step.want {
			t.Fatalf("startup pgninja.route=primary, then %q: read ran on %d, want %d", step.sql, got, step.want)
		}
	}

	readOnly, err := connect(map[string]string{"default_transaction_read_only": "on"})
	if err != nil {
		t.Fatal(err)
	}
	if got := txnPort(readOnly); got != replica {
		t.Fatalf("startup default_transaction_read_only=on: transaction ran on %d, want the replica", got)
	}
	if got := txnPort(h.ninja(t)); got != primary {
		t.Fatalf("without it a transaction ran on %d, want the primary", got)
	}

	if _, err := connect(map[string]string{"pgninja.route": "sideways"}); sqlstate(err) != "22023" {
		t.Fatalf("unknown startup route: %v, want 22023", err)
	}
}

// A client learns of its commit only once the proxy knows the commit's
// WAL position: under table consistency a read it sends next, on any
// connection, must not be routed without that position.
func TestCommitPositionKnownBeforeTheClientHearsOfIt(t *testing.T) {
	env := testbed.Require(t)
	gate := newLSNGate(t)
	h := startWithDial(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, "  consistency: table\n"), gate.dial)
	ctx := ctxT(t, 30*time.Second)
	c := h.ninja(t)
	if _, err := c.Exec(ctx, "create table if not exists gate_t(id int)"); err != nil {
		t.Fatal(err)
	}
	gate.armed.Store(true)
	done := make(chan error, 1)
	go func() {
		// One simple query: with the extended protocol pgx would first
		// prepare it in a request of its own.
		_, err := c.Exec(ctx, "insert into gate_t values (1)", pgx.QueryExecModeSimpleProtocol)
		done <- err
	}()
	select {
	case <-gate.reached:
	case err := <-done:
		t.Fatalf("the insert finished (%v) with no WAL-position read behind it", err)
	case <-ctx.Done():
		t.Fatal("no WAL-position read")
	}
	select {
	case err := <-done:
		t.Fatalf("the client had its answer (%v) while the commit's WAL position was still unread", err)
	case <-time.After(300 * time.Millisecond):
	}
	gate.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A server connection lost after a commit was answered, with only the
// WAL-position read behind it due, costs the client nothing: it hears of
// its commit (an error would have it believe the commit lost and run it
// again), and its next requests run on another connection, reads on the
// primary while the commit's position is unknown.
func TestConnectionLostBehindACommitKeepsTheCommit(t *testing.T) {
	for _, fatal := range []bool{false, true} {
		t.Run(fmt.Sprintf("fatal=%v", fatal), func(t *testing.T) { connectionLostBehindACommit(t, fatal) })
	}
}

// connectionLostBehindACommit loses the server connection at the
// WAL-position read, after a FATAL error from the server or without a
// word.
func connectionLostBehindACommit(t *testing.T, fatal bool) {
	env := testbed.Require(t)
	gate := newLSNGate(t)
	gate.cut.Store(true)
	gate.fatal.Store(fatal)
	h := startWithDial(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, "  consistency: table\n"), gate.dial)
	ctx := ctxT(t, 30*time.Second)
	var ns notices
	c := connectNoticed(t, h.dsn("ninja", "ninja", "ai_ninja"), &ns)
	table := fmt.Sprintf("cut_t_%d", time.Now().UnixNano())
	if _, err := c.Exec(ctx, "create table "+table+"(id int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = h.direct(t).Exec(context.Background(), "drop table if exists ninja."+table+", public."+table)
	})
	gate.armed.Store(true)
	if _, err := c.Exec(ctx, "insert into "+table+" values (1)", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("a committed insert whose server connection was lost behind it: %v", err)
	}
	select {
	case <-gate.reached:
	default:
		t.Fatal("no WAL-position read was cut")
	}
	gate.armed.Store(false)
	var n, port int
	if err := c.QueryRow(ctx, "select count(*), inet_server_port() from "+table).Scan(&n, &port); err != nil {
		t.Fatal(err)
	}
	if n != 1 || port != portOf(t, env.Primary) {
		t.Fatalf("the next read found %d rows on port %d; want the committed row, on the primary", n, port)
	}
	if got := ns.take(); len(got) > 0 {
		t.Fatalf("the client was warned of what did not concern it: %q", describeNotices(got))
	}
}

// After a WAL segment switch the primary's insert position is past the
// new segment's page header, where a replica that has replayed everything
// reports the segment start. A client whose last request may have written
// there must still get its reads on the replica, though nobody writes
// again.
func TestReadsReturnToReplicaAfterCommitOnPageBoundary(t *testing.T) {
	env := testbed.Require(t)
	h := startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, "  consistency: read_your_writes\n"))
	c := h.connect(t, env.SuperUser, env.SuperPass, "ai_ninja")
	replica := portOf(t, env.Replica)
	waitFor(t, 10*time.Second, "reads on the replica", func() bool {
		return serverPort(t, c, "select inet_server_port()") == replica
	})
	ctx := ctxT(t, 30*time.Second)
	// pg_switch_wal is volatile: a possible write, whose position is read.
	if _, err := c.Exec(ctx, "select pg_switch_wal()"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "reads back on the replica after the switch", func() bool {
		return serverPort(t, c, "select inet_server_port()") == replica
	})
}

// A commit whose WAL-position read fails keeps the client's reads on the
// primary until its next known commit. Under table consistency another
// client's read of the table written waits on the primary too, until the
// health checker has read the primary's position after the commit and a
// replica has replayed it: here the replica's replay is paused, so a read
// there would miss the row. The read fails because EXECUTE on the
// position function is revoked in this database alone.
func TestCommitWhosePositionReadFailsKeepsReadsOnPrimary(t *testing.T) {
	env := testbed.Require(t)
	rep := env.StartReplica(t)
	db := env.CreateDB(t, "lsnfail")
	ctx := ctxT(t, 60*time.Second)
	su := env.Connect(t, env.SuperDSN(db))
	if _, err := su.Exec(ctx, "create table w(i int); alter table w owner to ninja"); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"r": rep.Addr()}, 1, "  consistency: table\n"))
	var ns notices
	c := connectNoticed(t, h.dsn("ninja", "ninja", db), &ns)
	other := h.connect(t, "ninja", "ninja", db)
	for _, conn := range []*pgx.Conn{c, other} {
		waitFor(t, 15*time.Second, "reads on the replica", func() bool {
			return serverPort(t, conn, "select inet_server_port() + 0 * (select count(*) from w)::int") == rep.Port
		})
	}
	if _, err := su.Exec(ctx, "revoke execute on function pg_catalog.pg_current_wal_insert_lsn() from public"); err != nil {
		t.Fatal(err)
	}
	repSU := env.Connect(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", env.SuperUser, env.SuperPass, rep.Addr(), db))
	if _, err := repSU.Exec(ctx, "select pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if _, err := repSU.Exec(context.Background(), "select pg_wal_replay_resume()"); err != nil {
				t.Error(err)
			}
		}
	}
	defer resume()
	ns.take()
	if _, err := c.Exec(ctx, "insert into w values (1)"); err != nil {
		t.Fatal(err)
	}
	got := describeNotices(ns.take())
	if len(got) != 1 || !strings.HasPrefix(got[0], "WARNING 42501 ") {
		t.Fatalf("want one WARNING 42501 about the position read, got %q", got)
	}
	primary := portOf(t, env.Primary)
	for i := 0; i < 20; i++ {
		if p := serverPort(t, c, "select inet_server_port()"); p != primary {
			t.Fatalf("read %d after a commit of unknown position ran on port %d, not the primary's %d", i, p, primary)
		}
		var n, port int
		if err := other.QueryRow(ctx, "select count(*), inet_server_port() from w").Scan(&n, &port); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("read %d of another client found %d rows on port %d: the committed row is missing", i, n, port)
		}
		time.Sleep(50 * time.Millisecond) // across several health checks
	}
	resume()
	waitFor(t, 15*time.Second, "the other client's reads back on the replica", func() bool {
		return serverPort(t, other, "select inet_server_port() + 0 * (select count(*) from w)::int") == rep.Port
	})
}

// TestReloadReweighsBackends: a reload that changes only weights moves
// the share of reads at once, and the health checks that follow keep it;
// a replica's weight 0 drains it.
func TestReloadReweighsBackends(t *testing.T) {
	env := testbed.Require(t)
	routed := func(primaryWeight, replicaWeight int, replica string) string {
		return routedConfig(t, env.Primary, primaryWeight, map[string]string{"replica": replica}, replicaWeight,
			"  consistency: eventual\n")
	}
	h := startWith(t, env, routed(0, 1, env.Replica))
	c := h.ninja(t)
	primary, replica := portOf(t, env.Primary), portOf(t, env.Replica)
	waitFor(t, 10*time.Second, "the replica in rotation", func() bool {
		return serverPort(t, c, "select inet_server_port()") == replica
	})
	reload := func(backends string) error {
		t.Helper()
		cfg, err := config.Parse([]byte("users:\n  - {name: ninja, password: ninja}\n"+backends), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return h.srv.Reload(cfg)
	}
	onPrimary := func() int {
		n := 0
		for i := 0; i < 200; i++ {
			if serverPort(t, c, "select inet_server_port()") == primary {
				n++
			}
		}
		return n
	}
	if err := reload(routed(9, 1, env.Replica)); err != nil {
		t.Fatalf("reload with new weights: %v", err)
	}
	if n := onPrimary(); n < 170 || n > 190 {
		t.Fatalf("after the reload the primary (weight 9 of 10) ran %d of 200 reads, want about 180", n)
	}
	time.Sleep(time.Second) // several health checks (every 200 ms)
	if n := onPrimary(); n < 170 || n > 190 {
		t.Errorf("after the health checks that followed, the primary ran %d of 200 reads, want about 180", n)
	}
	if err := reload(routed(1, 0, env.Replica)); err != nil {
		t.Fatalf("reload draining the replica: %v", err)
	}
	if n := onPrimary(); n != 200 {
		t.Errorf("with the replica's weight 0 the primary ran %d of 200 reads, want all", n)
	}
}

// TestPreparedStatementRoutesAfterVolatilityChange: a prepared statement's
// classification is kept between its executions, but not past a change of
// a function's volatility, which moves its reads off the replica.
func TestPreparedStatementRoutesAfterVolatilityChange(t *testing.T) {
	env := testbed.Require(t)
	h := startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, "  consistency: eventual\n"))
	ctx := ctxT(t, 60*time.Second)
	primary, replica := portOf(t, env.Primary), portOf(t, env.Replica)
	fn := fmt.Sprintf("pgninja_port_%d", time.Now().UnixNano())
	owner := h.ninja(t)
	define := func(volatility string) {
		t.Helper()
		sql := fmt.Sprintf("create or replace function %s() returns int language sql %s as 'select inet_server_port()'", fn, volatility)
		if _, err := owner.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	define("stable")
	defer owner.Exec(context.Background(), "drop function "+fn)
	// pgx prepares the statement once and binds it for every query.
	c := h.ninja(t)
	sql := "select " + fn + "()"
	waitFor(t, 10*time.Second, "the stable function's reads on the replica", func() bool {
		return serverPort(t, c, sql) == replica
	})
	define("volatile")
	waitFor(t, 10*time.Second, "the same statement on the primary once its function is volatile", func() bool {
		return serverPort(t, c, sql) == primary
	})
	for range 5 {
		if got := serverPort(t, c, sql); got != primary {
			t.Fatalf("the volatile function's read ran on %d again, want the primary (%d)", got, primary)
		}
	}
}
