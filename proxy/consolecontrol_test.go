package proxy_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/proxy"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// adminConsole logs in to the console as an admin_users member.
func (h *harness) adminConsole(t *testing.T) *pgx.Conn {
	t.Helper()
	c, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConsoleKill: KILL ends the database's clients at once, cancels the
// query one of them was running on its server, leaves other databases'
// clients alone, and holds new requests until RESUME.
func TestConsoleKill(t *testing.T) {
	h := startProxy(t, consoleUsers+"databases: {ai_ninja: {}, other: {dbname: ai_ninja}}\n")
	ctx := ctxT(t, 60*time.Second)
	busy, idle := h.ninja(t), h.ninja(t)
	bystander := h.connect(t, "ninja", "ninja", "other")
	admin := h.adminConsole(t)
	wantSQLStates(t, ctx, admin, [][2]string{
		{"KILL nosuchdb", "3D000"},
		{"KILL a b", "42601"},
	})
	if stats, err := h.console(t, "trusty", "", "pgninja"); err != nil {
		t.Fatal(err)
	} else if _, err := stats.Exec(ctx, "KILL ai_ninja"); sqlstate(err) != "42501" {
		t.Errorf("KILL by a stats user: %v, want 42501", err)
	}

	slept := make(chan error, 1)
	go func() { _, err := busy.Exec(ctx, "select pg_sleep(60) /* killed */"); slept <- err }()
	direct := h.direct(t)
	running := func() (n int) {
		t.Helper()
		err := direct.QueryRow(ctx, `select count(*) from pg_stat_activity
			where state = 'active' and query like '%pg_sleep(60) /* killed */%' and pid <> pg_backend_pid()`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, 10*time.Second, "the query to run", func() bool { return running() == 1 })

	if _, err := admin.Exec(ctx, "KILL ai_ninja"); err != nil {
		t.Fatalf("KILL: %v", err)
	}
	select {
	case err := <-slept:
		if sqlstate(err) != "57P01" {
			t.Errorf("the killed query: %v, want 57P01", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the query of a killed client still runs for it")
	}
	waitFor(t, 10*time.Second, "the killed query to stop on its server", func() bool { return running() == 0 })
	if _, err := idle.Exec(ctx, "select 1"); err == nil {
		t.Error("an idle client of the killed database could still run a query")
	}
	if _, err := bystander.Exec(ctx, "select 1"); err != nil {
		t.Errorf("a client of another database: %v", err)
	}

	// The database stays paused: a new client logs in, and its request
	// waits for RESUME.
	late := h.ninja(t)
	answered := execHeld(t, ctx, late, "select 1", "after KILL, before RESUME")
	if _, err := admin.Exec(ctx, "RESUME ai_ninja"); err != nil {
		t.Fatalf("RESUME: %v", err)
	}
	if err := <-answered; err != nil {
		t.Errorf("the held request after RESUME: %v", err)
	}
}

// TestConsoleKillClient ends one client by the pid SHOW CLIENTS gives it.
func TestConsoleKillClient(t *testing.T) {
	h := startProxy(t, consoleUsers)
	ctx := ctxT(t, 30*time.Second)
	victim, other := h.ninja(t), h.ninja(t)
	admin := h.adminConsole(t)
	pid := victim.PgConn().PID()
	if _, err := admin.Exec(ctx, "KILL_CLIENT "+itoa(pid)); err != nil {
		t.Fatalf("KILL_CLIENT: %v", err)
	}
	if _, err := victim.Exec(ctx, "select 1"); err == nil {
		t.Error("the killed client could still run a query")
	}
	if _, err := other.Exec(ctx, "select 1"); err != nil {
		t.Errorf("another client: %v", err)
	}
	if rows := rowsWhere(consoleRows(t, admin, "SHOW CLIENTS"), "pid", itoa(pid)); len(rows) != 0 {
		t.Errorf("the killed client is still listed: %v", rows)
	}
	wantSQLStates(t, ctx, admin, [][2]string{
		{"KILL_CLIENT " + itoa(pid), "42704"},
		{"KILL_CLIENT x", "22023"},
		{"KILL_CLIENT", "42601"},
	})
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// TestConsoleDisableEnable: DISABLE refuses new logins with PostgreSQL's
// SQLSTATE for a database that takes no connections; clients already in
// go on; ENABLE lets new ones in again. The database is one "*" serves,
// so SHOW DATABASES lists it only while it is disabled.
func TestConsoleDisableEnable(t *testing.T) {
	h := startProxy(t, consoleUsers)
	ctx := ctxT(t, 30*time.Second)
	inside := h.ninja(t)
	admin := h.adminConsole(t)
	wantSQLStates(t, ctx, admin, [][2]string{
		{"DISABLE", "42601"},
		{"ENABLE", "42601"},
		{"DISABLE a b", "42601"},
	})
	if _, err := admin.Exec(ctx, "DISABLE ai_ninja"); err != nil {
		t.Fatalf("DISABLE: %v", err)
	}
	if _, err := pgx.Connect(ctx, h.dsn("ninja", "ninja", "ai_ninja")); sqlstate(err) != "55000" {
		t.Errorf("login to a disabled database: %v, want 55000", err)
	}
	if _, err := pgx.Connect(ctx, h.dsn("ninja", "wrong", "ai_ninja")); sqlstate(err) != "28P01" {
		t.Errorf("wrong password to a disabled database: %v, want 28P01 (the password is checked first)", err)
	}
	if _, err := inside.Exec(ctx, "select 1"); err != nil {
		t.Errorf("a client logged in before DISABLE: %v", err)
	}
	if rows := rowsWhere(consoleRows(t, admin, "SHOW DATABASES"), "name", "ai_ninja"); len(rows) != 1 || rows[0]["disabled"] != "true" {
		t.Errorf("SHOW DATABASES after DISABLE: %v, want disabled true", rows)
	}
	if _, err := admin.Exec(ctx, "ENABLE ai_ninja"); err != nil {
		t.Fatalf("ENABLE: %v", err)
	}
	h.ninja(t) // fails the test if the login is refused
	if rows := rowsWhere(consoleRows(t, admin, "SHOW DATABASES"), "name", "ai_ninja"); len(rows) != 0 {
		t.Errorf("SHOW DATABASES after ENABLE: %v, want only the configured names", rows)
	}
}

// TestConsoleWaitClose: WAIT_CLOSE returns at once with nothing retired,
// and after RECONNECT only once the connection a transaction holds is
// back and closed.
func TestConsoleWaitClose(t *testing.T) {
	h := startProxy(t, consoleUsers)
	ctx := ctxT(t, 30*time.Second)
	inTxn := h.ninja(t)
	admin := h.adminConsole(t)
	if _, err := admin.Exec(ctx, "WAIT_CLOSE"); err != nil {
		t.Fatalf("WAIT_CLOSE with nothing retired: %v", err)
	}
	if _, err := inTxn.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	if _, err := inTxn.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "RECONNECT"); err != nil {
		t.Fatal(err)
	}
	// A cancel (psql's Ctrl-C) ends the wait.
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = admin.PgConn().CancelRequest(ctx)
	}()
	if _, err := admin.Exec(ctx, "WAIT_CLOSE"); sqlstate(err) != "57014" {
		t.Errorf("cancelled WAIT_CLOSE: %v, want 57014", err)
	}
	waited := execHeld(t, ctx, admin, "WAIT_CLOSE ai_ninja", "while a retired connection was lent")
	if _, err := inTxn.Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("WAIT_CLOSE: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WAIT_CLOSE still waits after the retired connection came back")
	}
}

// TestConsoleShutdown: SHUTDOWN answers, then stops the proxy as SIGTERM
// does: the listener closes and idle clients are ended with 57P01. A
// proxy that cannot be stopped from its console says so.
func TestConsoleShutdown(t *testing.T) {
	env := testbed.Require(t)
	ctx := ctxT(t, 30*time.Second)
	plain := startWith(t, env, backendsOf(t, env)+consoleUsers)
	if _, err := plain.adminConsole(t).Exec(ctx, "SHUTDOWN"); sqlstate(err) != "0A000" {
		t.Errorf("SHUTDOWN without a way to stop: %v, want 0A000", err)
	}

	h := startServer(t, env, backendsOf(t, env)+consoleUsers, nil, serverHooks{shutdown: func(srv *proxy.Server) {
		go func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}})
	idle := h.ninja(t)
	admin := h.adminConsole(t)
	if _, err := admin.Exec(ctx, "SUSPEND"); sqlstate(err) != "0A000" {
		t.Errorf("SUSPEND: %v, want 0A000", err)
	}
	if _, err := admin.Exec(ctx, "SHUTDOWN"); err != nil {
		t.Fatalf("SHUTDOWN: %v", err)
	}
	waitFor(t, 10*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", h.addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	// The listener closes before the sessions are drained: a query that
	// slips in between is still answered, and the client is ended after.
	waitFor(t, 10*time.Second, "the idle client to be ended", func() bool {
		_, err := idle.Exec(ctx, "select 1")
		return err != nil
	})
}

// TestConsolePauseKeepsMinSizeClosed: while a PAUSE lasts the pools'
// upkeep opens no connections towards pool.min_size (the server may be
// restarting); after RESUME it does again.
func TestConsolePauseKeepsMinSizeClosed(t *testing.T) {
	h := startProxy(t, consoleUsers+"  min_size: 2\n")
	ctx := ctxT(t, 30*time.Second)
	h.ninja(t) // the pool exists from its login on
	admin := h.adminConsole(t)
	servers := func() int { return len(rowsWhere(consoleRows(t, admin, "SHOW SERVERS"), "database", "ai_ninja")) }
	waitFor(t, 10*time.Second, "min_size connections", func() bool { return servers() == 2 })
	for _, tc := range []struct{ pause, resume string }{
		{"PAUSE", "RESUME"},
		{"KILL ai_ninja", "RESUME ai_ninja"},
	} {
		if _, err := admin.Exec(ctx, tc.pause); err != nil {
			t.Fatalf("%s: %v", tc.pause, err)
		}
		// The upkeep runs every 100 ms in tests.
		time.Sleep(500 * time.Millisecond)
		if n := servers(); n != 0 {
			t.Errorf("%s: %d server connections open while paused, want 0", tc.pause, n)
		}
		if _, err := admin.Exec(ctx, tc.resume); err != nil {
			t.Fatalf("%s: %v", tc.resume, err)
		}
		waitFor(t, 10*time.Second, "min_size connections after RESUME", func() bool { return servers() == 2 })
	}
}

// stuckClient logs in a client that sends a query with a large answer and
// reads none of it, and waits until its relay is stuck writing to it:
// the server then blocks writing to the proxy, which stopped reading.
func stuckClient(t *testing.T, h *harness, ctx context.Context) {
	t.Helper()
	fe := loginRaw(t, rawConn(t, h), "trusty")
	fe.Send(&pgproto3.Query{String: "select repeat('x', 100000) from generate_series(1, 2000)"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	direct := h.direct(t)
	waitFor(t, 10*time.Second, "the relay to be stuck", func() bool {
		var n int
		err := direct.QueryRow(ctx, `select count(*) from pg_stat_activity
			where wait_event = 'ClientWrite' and query like 'select repeat(%'`).Scan(&n)
		return err == nil && n == 1
	})
}

// TestConsoleKillClientThatReadsNothing: a stuck client is ended all the
// same, although its relay holds the lock on writing to it.
func TestConsoleKillClientThatReadsNothing(t *testing.T) {
	h := startProxy(t, consoleUsers)
	ctx := ctxT(t, 30*time.Second)
	stuckClient(t, h, ctx)
	admin := h.adminConsole(t)
	var pid string
	waitFor(t, 10*time.Second, "the client in SHOW CLIENTS", func() bool {
		for _, r := range rowsWhere(consoleRows(t, admin, "SHOW CLIENTS"), "user", "trusty") {
			if r["pool_mode"] != "console" && r["state"] == "active" {
				pid = r["pid"]
			}
		}
		return pid != ""
	})
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := admin.Exec(kctx, "KILL_CLIENT "+pid); err != nil {
		t.Fatalf("KILL_CLIENT of a client that reads nothing: %v", err)
	}
	waitFor(t, 10*time.Second, "the client to be gone", func() bool {
		return len(rowsWhere(consoleRows(t, admin, "SHOW CLIENTS"), "pid", pid)) == 0
	})
}

// TestShutdownEndsAClientThatReadsNothing: past shutdown_timeout a stuck
// client is thrown out like the rest, and shutdown ends.
func TestShutdownEndsAClientThatReadsNothing(t *testing.T) {
	h := startProxy(t, consoleUsers)
	ctx := ctxT(t, 30*time.Second)
	stuckClient(t, h, ctx)
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		done <- h.srv.Shutdown(sctx)
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("shutdown: %v, want its timeout reached", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown still waits for a client that reads nothing")
	}
}
