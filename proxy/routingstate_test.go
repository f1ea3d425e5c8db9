package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// routedWithProbe starts a proxy that routes reads to the test bed's
// replica, once the replica serves them, with a table to write to.
func routedWithProbe(t *testing.T) (h *harness, ctx context.Context, primary, replica int) {
	env := testbed.Require(t)
	h = startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, "  consistency: eventual\n"))
	ctx = ctxT(t, 60*time.Second)
	primary, replica = portOf(t, env.Primary), portOf(t, env.Replica)
	waitServesReads(t, h, replica)
	if _, err := h.ninja(t).Exec(ctx, "create table if not exists routing_pin_probe (a int)"); err != nil {
		t.Fatal(err)
	}
	return h, ctx, primary, replica
}

// Session state a client asks for in a read-only transaction, which runs
// on a replica, must not keep it there when the server refused it: a
// CREATE TEMP TABLE or LISTEN fails on a hot standby, and a client pinned
// to the replica for it had every later write refused with 25006.
func TestRoutingRefusedSessionStateLeavesNoPin(t *testing.T) {
	h, ctx, primary, replica := routedWithProbe(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		for _, refused := range []string{"create temp table pin_me (a int)", "listen pin_me"} {
			t.Run(fmt.Sprintf("%s/%s", mode, refused), func(t *testing.T) {
				c := h.ninja(t)
				exec := func(sql string) error { _, err := c.Exec(ctx, sql, mode); return err }
				if err := exec("begin read only"); err != nil {
					t.Fatal(err)
				}
				if got := serverPort(t, c, "select inet_server_port()", mode); got != replica {
					t.Fatalf("the read-only transaction ran on %d, want the replica", got)
				}
				if err := exec(refused); err == nil {
					t.Fatalf("%s succeeded on a replica", refused)
				}
				if err := exec("rollback"); err != nil {
					t.Fatal(err)
				}
				if err := exec("insert into routing_pin_probe values (1)"); err != nil {
					t.Fatalf("a write after the refused %q: %v", refused, err)
				}
				if got := serverPort(t, c, "select inet_server_port()", mode); got != replica {
					t.Fatalf("a read after it ran on %d, want the replica", got)
				}
			})
		}
	}
	// Session state the server made does pin: the temp table is there.
	c := h.ninja(t)
	if _, err := c.Exec(ctx, "create temp table kept (a int)"); err != nil {
		t.Fatal(err)
	}
	if got := serverPort(t, c, "select inet_server_port() from (select count(*) from kept) k"); got != primary {
		t.Fatalf("a read of the temp table ran on %d, want the primary", got)
	}
	// The proxy prepares a SQL statement again where its EXECUTE runs,
	// so PREPARE keeps no client off the replicas.
	c = h.ninja(t)
	for _, sql := range []string{"prepare q as select 1", "execute q"} {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if got := serverPort(t, c, "select inet_server_port()"); got != replica {
		t.Fatalf("a read after PREPARE ran on %d, want the replica", got)
	}
	// A statement only Parse'd and described has made no state.
	c = h.ninja(t)
	if _, err := c.Prepare(ctx, "lock", "select pg_advisory_lock($1)"); err != nil {
		t.Fatal(err)
	}
	if got := serverPort(t, c, "select inet_server_port()"); got != replica {
		t.Fatalf("a read after preparing an advisory lock ran on %d, want the replica", got)
	}
}

// A client pinned in a read-only transaction, which runs on a replica, is
// let go when the state that pinned it ends: it writes on the primary
// again. A pin on the primary ends the same way, and the client's reads
// go back to the replicas.
func TestRoutingPinEndsWithItsState(t *testing.T) {
	h, ctx, primary, replica := routedWithProbe(t)
	for _, tc := range []struct {
		name, pin, release string
		pinnedOn           int
	}{
		{"WITH HOLD cursor closed by name", "begin read only; declare held cursor with hold for select 1; commit", "close held", replica},
		{"WITH HOLD cursors closed at once", "begin read only; declare held cursor with hold for select 1; commit", "close all", replica},
		// A read-only transaction that takes an advisory lock as it
		// opens runs on the primary (a replica's lock excludes no one).
		{"advisory lock", "begin read only; select pg_advisory_lock(99); commit", "select pg_advisory_unlock_all()", primary},
		{"LISTEN", "listen routing_pin", "unlisten *", primary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.ninja(t)
			exec := func(sql string) {
				t.Helper()
				if _, err := c.Exec(ctx, sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			exec(tc.pin)
			if got := serverPort(t, c, "select inet_server_port()"); got != tc.pinnedOn {
				t.Fatalf("a read of the pinned client ran on %d, want %d", got, tc.pinnedOn)
			}
			if tc.pinnedOn == replica {
				// Refused as the replica would, saying why.
				_, err := c.Exec(ctx, "insert into routing_pin_probe values (2)")
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != "25006" || !strings.Contains(pe.Message, "pinned to replica") {
					t.Fatalf("a write while pinned to the replica: %v, want pgninja's 25006", err)
				}
			}
			exec(tc.release)
			exec("insert into routing_pin_probe values (2)")
			if got := serverPort(t, c, "select inet_server_port()"); got != replica {
				t.Fatalf("a read after %q ran on %d, want the replica", tc.release, got)
			}
		})
	}
}

// asyncpg prepares with Parse, Describe and Flush, and leaves the batch
// open until its next message: for copy_records_to_table, a simple query
// COPY FROM STDIN. The prepared read held a replica, where the COPY
// failed; a Query ends the batch, so the write goes to the primary, and
// the client sees one ReadyForQuery, the query's.
func TestRoutingQueryEndsAnOpenPreparedRead(t *testing.T) {
	h, _, _, _ := routedWithProbe(t)
	fe := loginRaw(t, rawConn(t, h), "trusty")
	for i, write := range []string{"insert into routing_pin_probe values (3)", "copy routing_pin_probe from stdin"} {
		name := []string{"open1", "open2"}[i]
		fe.Send(&pgproto3.Parse{Name: name, Query: "select inet_server_port()"})
		fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: name})
		fe.Send(&pgproto3.Flush{})
		expectMessages(t, fe, "ParseComplete", "ParameterDescription", "RowDescription")
		fe.Send(&pgproto3.Query{String: write})
		if i == 0 {
			expectMessages(t, fe, "CommandComplete", "ReadyForQuery")
		} else {
			expectMessages(t, fe, "CopyInResponse")
			fe.Send(&pgproto3.CopyData{Data: []byte("4\n")})
			fe.Send(&pgproto3.CopyDone{})
			expectMessages(t, fe, "CommandComplete", "ReadyForQuery")
		}
		// The statement prepared on the replica is still the client's.
		fe.Send(&pgproto3.Bind{PreparedStatement: name})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Sync{})
		expectMessages(t, fe, "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery")
	}
}

// SERIALIZABLE transactions run on the primary: a hot standby refuses
// them, read-only ones included, and refuses every statement of a client
// whose default_transaction_isolation is serializable.
func TestRoutingSerializableStaysOnPrimary(t *testing.T) {
	h, ctx, primary, replica := routedEventual(t, 60*time.Second)
	for _, tc := range []struct {
		name  string
		steps []string
		want  int
	}{
		{"BEGIN SERIALIZABLE READ ONLY", []string{"begin isolation level serializable read only"}, primary},
		{"under default_transaction_read_only", []string{"set default_transaction_read_only = on", "begin isolation level serializable"}, primary},
		{"default_transaction_isolation", []string{"set default_transaction_isolation = 'serializable'"}, primary},
		{"SESSION CHARACTERISTICS", []string{"set session characteristics as transaction isolation level serializable"}, primary},
		{"another level", []string{"set default_transaction_isolation = 'serializable'", "begin isolation level repeatable read read only"}, replica},
		{"RESET", []string{"set default_transaction_isolation = 'serializable'", "reset default_transaction_isolation"}, replica},
		// A lone BEGIN is held back until the transaction's first
		// statement, which then places it.
		{"SET TRANSACTION after BEGIN READ ONLY", []string{"begin read only", "set transaction isolation level serializable"}, primary},
		{"SET TRANSACTION after BEGIN under default_transaction_read_only", []string{"set default_transaction_read_only = on", "begin", "set transaction isolation level serializable"}, primary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.ninja(t)
			for _, sql := range tc.steps {
				if _, err := c.Exec(ctx, sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			if got := serverPort(t, c, "select inet_server_port()"); got != tc.want {
				t.Fatalf("a read ran on %d, want %d", got, tc.want)
			}
		})
	}
}

// A replica that stops answering without going away holds the reads in
// flight on it. Once the health checks take it out of rotation, those
// reads run again on the primary, and the client gets its answer.
func TestRoutingReadOnAHungReplicaRunsOnThePrimary(t *testing.T) {
	env := testbed.Require(t)
	fw := newForwarder(t, env.Replica, "")
	// The health checks give up on a server after the pool's connect
	// timeout (at most 3s).
	cfg := routedConfig(t, env.Primary, 0, map[string]string{"replica": fw.addr}, 1, "  consistency: eventual\n")
	h := startWith(t, env, strings.Replace(cfg, "pool:\n", "pool:\n  connect_timeout: 1s\n", 1))
	ctx := ctxT(t, 60*time.Second)
	primary, replica := portOf(t, env.Primary), portOf(t, env.Replica)
	waitServesReads(t, h, replica)
	c := h.ninja(t)
	if got := serverPort(t, c, "select inet_server_port()"); got != replica {
		t.Fatalf("a read ran on %d, want the replica", got)
	}
	fw.frozen.Store(true)
	defer fw.frozen.Store(false)
	start := time.Now()
	var port int
	if err := c.QueryRow(ctx, "select inet_server_port() + 0").Scan(&port); err != nil {
		t.Fatalf("a read on the hung replica: %v", err)
	}
	if port != primary {
		t.Fatalf("the read ran on %d, want the primary", port)
	}
	t.Logf("answered after %v", time.Since(start))
}

// An advisory lock taken on a replica excludes no one who takes it on the
// primary. A read-only transaction that takes one as it opens runs on the
// primary, where the lock means what it says; one that is already on a
// replica, or a client pinned there, is refused with 25006.
func TestRoutingAdvisoryLocksNeverOnAReplica(t *testing.T) {
	h, ctx, primary, replica := routedEventual(t, 60*time.Second)

	holder := h.ninja(t)
	if _, err := holder.Exec(ctx, "select pg_advisory_lock(4242)"); err != nil {
		t.Fatal(err)
	}
	exec := func(t *testing.T, c *pgx.Conn, sql string, args ...any) error {
		t.Helper()
		_, err := c.Exec(ctx, sql, args...)
		return err
	}
	refused := func(t *testing.T, c *pgx.Conn, sql string, args ...any) {
		t.Helper()
		if err := exec(t, c, sql, args...); sqlstate(err) != "25006" {
			t.Fatalf("%s: got %v, want SQLSTATE 25006", sql, err)
		}
	}

	t.Run("taken as the transaction opens", func(t *testing.T) {
		c := h.ninja(t)
		rs, err := c.PgConn().Exec(ctx, "begin read only; select pg_try_advisory_xact_lock(4242)::text, inet_server_port()::text").ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		got, port := string(rs[1].Rows[0][0]), string(rs[1].Rows[0][1])
		if got != "false" || port != strconv.Itoa(primary) {
			t.Fatalf("the lock held by another client: granted %s on port %s, want false on the primary (%d)", got, port, primary)
		}
		if err := exec(t, c, "commit"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("first after a lone BEGIN READ ONLY", func(t *testing.T) {
		c := h.ninja(t)
		if err := exec(t, c, "begin read only"); err != nil {
			t.Fatal(err)
		}
		var got bool
		var port int
		if err := c.QueryRow(ctx, "select pg_try_advisory_xact_lock(4242), inet_server_port()").Scan(&got, &port); err != nil {
			t.Fatal(err)
		}
		if got || port != primary {
			t.Fatalf("the lock held by another client: granted %v on port %d, want false on the primary (%d)", got, port, primary)
		}
		if got := serverPort(t, c, "select inet_server_port()"); got != primary {
			t.Fatalf("the rest of the transaction runs on %d, want the primary", got)
		}
		if err := exec(t, c, "commit"); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name string
		lock func(t *testing.T, c *pgx.Conn)
	}{
		{"simple protocol", func(t *testing.T, c *pgx.Conn) {
			if _, err := c.PgConn().Exec(ctx, "select pg_advisory_xact_lock(4243)").ReadAll(); sqlstate(err) != "25006" {
				t.Fatalf("got %v, want SQLSTATE 25006", err)
			}
		}},
		{"extended protocol", func(t *testing.T, c *pgx.Conn) { refused(t, c, "select pg_advisory_xact_lock($1)", 4243) }},
		{"session lock", func(t *testing.T, c *pgx.Conn) { refused(t, c, "select pg_try_advisory_lock_shared($1)", 4243) }},
	} {
		t.Run("later in a read-only transaction, "+tc.name, func(t *testing.T) {
			c := h.ninja(t)
			if err := exec(t, c, "begin read only"); err != nil {
				t.Fatal(err)
			}
			if got := serverPort(t, c, "select inet_server_port()"); got != replica {
				t.Fatalf("the read-only transaction runs on %d, want the replica", got)
			}
			tc.lock(t, c)
			// The transaction failed, as on any error.
			if err := exec(t, c, "select 1"); sqlstate(err) != "25P02" {
				t.Fatalf("after the refusal: got %v, want SQLSTATE 25P02", err)
			}
			if err := exec(t, c, "rollback"); err != nil {
				t.Fatal(err)
			}
			if err := exec(t, c, "select pg_advisory_lock(4243)"); err != nil {
				t.Fatalf("outside the transaction: %v", err)
			}
			if err := exec(t, c, "select pg_advisory_unlock(4243)"); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("pinned to a replica", func(t *testing.T) {
		c := h.ninja(t)
		for _, sql := range []string{"begin read only", "declare held cursor with hold for select 1", "commit"} {
			if err := exec(t, c, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		refused(t, c, "select pg_advisory_lock(4244)")
		if err := exec(t, c, "close held"); err != nil {
			t.Fatal(err)
		}
		if err := exec(t, c, "select pg_advisory_lock(4244)"); err != nil {
			t.Fatalf("once unpinned: %v", err)
		}
		if got := serverPort(t, c, "select inet_server_port() from pg_locks where locktype = 'advisory' and objid = 4244 and pid = pg_backend_pid()"); got != primary {
			t.Fatalf("the lock is held on %d, want the primary", got)
		}
	})
}

// A BEGIN a hot standby refuses is never held back (see deferbegin.go):
// sent to a replica by the session's route, it fails there on its own, as
// it would through any proxy, and no statement runs behind it outside
// the transaction the client asked for.
func TestRoutingBeginAReplicaRefusesIsNotHeldBack(t *testing.T) {
	h, ctx, _, _ := routedEventual(t, 60*time.Second)
	for _, tc := range []struct{ begin, code string }{
		{"begin isolation level serializable", "0A000"},
		{"start transaction read write", "0A000"},
	} {
		t.Run(tc.begin, func(t *testing.T) {
			c := h.ninja(t)
			if _, err := c.Exec(ctx, "set pgninja.route = 'replica'"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, tc.begin); sqlstate(err) != tc.code {
				t.Fatalf("%s on the replica: %v, want SQLSTATE %s", tc.begin, err, tc.code)
			}
			if _, err := c.Exec(ctx, "select 1"); err != nil || c.PgConn().TxStatus() != 'I' {
				t.Fatalf("after it: %v, status %c", err, c.PgConn().TxStatus())
			}
		})
	}
}

// routedEventual starts a proxy that routes reads to the test bed's
// replica with eventual consistency, once the replica serves them.
func routedEventual(t *testing.T, d time.Duration) (h *harness, ctx context.Context, primary, replica int) {
	t.Helper()
	env := testbed.Require(t)
	h = startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, "  consistency: eventual\n"))
	ctx = ctxT(t, d)
	primary, replica = portOf(t, env.Primary), portOf(t, env.Replica)
	waitServesReads(t, h, replica)
	return h, ctx, primary, replica
}
