package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"
)

// cutMarker in a request makes an armed serverCutter cut the server
// connection it is written to.
const cutMarker = "pgninja_cut_here"

// serverCutter stands between the proxy and one real server (the replica
// or the primary, by port). Once armed, it closes the connection that a
// request naming cutMarker is written to, as the request goes out: to the
// proxy, the server went away while running it, before any of its answer
// came back.
//
// refusing makes new connections to it fail as a server that is shutting
// down refuses them. trickle hands the proxy its messages one read at a
// time, as a slow network may.
//
// With lastWords, a cut connection first hands the proxy those bytes, as
// a server that warns before it goes away does.
type serverCutter struct {
	port      int
	armed     atomic.Int32 // connections still to cut
	cuts      atomic.Int32
	refusing  atomic.Bool
	trickle   bool
	lastWords []byte
}

func (r *serverCutter) dial(ctx context.Context, t pool.Target) (*pool.Conn, error) {
	if t.Port == r.port && r.refusing.Load() {
		return nil, &pgconn.PgError{Severity: "FATAL", Code: "57P03", Message: "the database system is shutting down"}
	}
	c, err := pool.Dial(ctx, t)
	if err != nil || t.Port != r.port {
		return c, err
	}
	w := &cuttingWriter{r: r, conn: c.Conn}
	c.W = bufio.NewWriter(w)
	if r.trickle {
		c.R = bufio.NewReader(&trickleReader{src: c.R})
	}
	if r.lastWords != nil {
		c.R = bufio.NewReader(io.MultiReader(&untilCut{w: w, src: c.R}, &w.last))
	}
	return c, nil
}

// untilCut reads the server until its connection is cut, then ends, so
// that what follows it (the last words) is read next.
type untilCut struct {
	w   *cuttingWriter
	src io.Reader
}

func (u *untilCut) Read(p []byte) (int, error) {
	n, err := u.src.Read(p)
	if err != nil && u.w.cut.Load() {
		return n, io.EOF
	}
	return n, err
}

// trickleReader returns at most one message per Read.
type trickleReader struct {
	src     *bufio.Reader
	pending []byte
}

func (tr *trickleReader) Read(p []byte) (int, error) {
	if len(tr.pending) == 0 {
		hdr, err := tr.src.Peek(5)
		if err != nil {
			return 0, err
		}
		msg := make([]byte, 1+int(binary.BigEndian.Uint32(hdr[1:])))
		if _, err := io.ReadFull(tr.src, msg); err != nil {
			return 0, err
		}
		tr.pending = msg
	}
	n := copy(p, tr.pending)
	tr.pending = tr.pending[n:]
	return n, nil
}

// disarmOnce takes one cut from those armed, if any are left.
func (r *serverCutter) disarmOnce() bool {
	for {
		n := r.armed.Load()
		if n <= 0 {
			return false
		}
		if r.armed.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

type cuttingWriter struct {
	r    *serverCutter
	conn net.Conn
	cut  atomic.Bool
	last bytes.Buffer // filled before cut is set
}

func (w *cuttingWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(cutMarker)) && w.r.disarmOnce() {
		w.r.cuts.Add(1)
		w.last.Write(w.r.lastWords)
		w.cut.Store(true)
		_ = w.conn.Close()
		return len(p), nil
	}
	return w.conn.Write(p)
}

func TestReplicaLostMidReadRerunsOnPrimary(t *testing.T) {
	env := testbed.Require(t)
	primary, replica := portOf(t, env.Primary), portOf(t, env.Replica)
	cut := &serverCutter{port: replica}
	h := startWithDial(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, ""), cut.dial)
	ctx := ctxT(t, 60*time.Second)

	portQuery := "select inet_server_port() as " + cutMarker
	tests := []struct {
		name string
		// run sends the read that the replica drops, with whatever the
		// client did before it on the same connection.
		run func(c *pgx.Conn) (int, error)
		// rerun: the request comes back from the primary; else the client
		// gets a connection error and its connection ends. onPrimary:
		// the cut request is the one that reads the port (pgx prepares a
		// named statement in a request of its own).
		rerun, onPrimary bool
	}{
		{"simple protocol", func(c *pgx.Conn) (int, error) {
			var port int
			err := c.QueryRow(ctx, portQuery, pgx.QueryExecModeSimpleProtocol).Scan(&port)
			return port, err
		}, true, true},
		{"named statement prepared", func(c *pgx.Conn) (int, error) {
			var port int
			err := c.QueryRow(ctx, portQuery+", $1::int as named", 1).Scan(&port, new(int))
			return port, err
		}, true, false},
		{"unnamed statement", func(c *pgx.Conn) (int, error) {
			var port int
			err := c.QueryRow(ctx, portQuery+", $1::int as unnamed", pgx.QueryExecModeExec, 1).Scan(&port, new(int))
			return port, err
		}, true, true},
		{"inside a read-only transaction", func(c *pgx.Conn) (int, error) {
			if _, err := c.Exec(ctx, "begin read only"); err != nil {
				return 0, err
			}
			var port int
			err := c.QueryRow(ctx, portQuery, pgx.QueryExecModeSimpleProtocol).Scan(&port)
			return port, err
		}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.ninja(t)
			waitFor(t, 10*time.Second, "reads on the replica", func() bool {
				return serverPort(t, c, "select inet_server_port()") == replica
			})
			before := cut.cuts.Load()
			rerouted := counterValue(t, h.reg, "pgninja_reads_rerouted_total")
			cut.armed.Store(1)
			port, err := tt.run(c)
			cut.armed.Store(0)
			if cut.cuts.Load() != before+1 {
				t.Fatalf("the replica connection was not cut (cuts %d → %d)", before, cut.cuts.Load())
			}
			if !tt.rerun {
				if err == nil || sqlstate(err) != "08006" {
					t.Fatalf("want a 08006 connection error inside a transaction, got port %d, err %v", port, err)
				}
				if got := counterValue(t, h.reg, "pgninja_reads_rerouted_total"); got != rerouted {
					t.Fatalf("a read inside a transaction was rerouted (%v → %v)", rerouted, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("read lost with its replica connection: %v", err)
			}
			if tt.onPrimary && port != primary {
				t.Fatalf("rerun read ran on port %d, want the primary's %d", port, primary)
			}
			if got := counterValue(t, h.reg, "pgninja_reads_rerouted_total"); got != rerouted+1 {
				t.Fatalf("pgninja_reads_rerouted_total %v → %v, want one more", rerouted, got)
			}
			// The client's connection and statements carry on, and the
			// replica stays in rotation: one lost connection is not a
			// failed server.
			waitFor(t, 10*time.Second, "reads back on the replica", func() bool {
				return serverPort(t, c, "select inet_server_port()") == replica
			})
			if _, err := tt.run(c); err != nil {
				t.Fatalf("the same read again: %v", err)
			}
		})
	}
}

// Without routing, a read whose primary connection dies before answering
// runs again on a new one; a request that may have done something does
// not.
func TestPrimaryLostMidRequestRerunsOnlyReads(t *testing.T) {
	h, cut, primary := startCuttingPrimary(t, nil)
	ctx := ctxT(t, 60*time.Second)
	tests := []struct {
		name, sql string
		rerun     bool
	}{
		// current_setting is known stable before pg_proc is read.
		{"a read", "select current_setting('port')::int as " + cutMarker, true},
		{"a volatile call", "select current_setting('port')::int as " + cutMarker + " from (select random()) r", false},
		{"a read inside a transaction block", "begin; select current_setting('port')::int as " + cutMarker + "; commit", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.ninja(t)
			rerun := counterValue(t, h.reg, "pgninja_reads_rerouted_total")
			cut.armed.Store(1)
			var port int
			err := c.QueryRow(ctx, tt.sql, pgx.QueryExecModeSimpleProtocol).Scan(&port)
			cut.armed.Store(0)
			got := counterValue(t, h.reg, "pgninja_reads_rerouted_total")
			if !tt.rerun {
				if sqlstate(err) != "08006" || got != rerun {
					t.Fatalf("want 08006 and no rerun, got port %d, err %v, reruns %v → %v", port, err, rerun, got)
				}
				return
			}
			if err != nil || port != primary || got != rerun+1 {
				t.Fatalf("want the read run again, got port %d, err %v, reruns %v → %v", port, err, rerun, got)
			}
		})
	}
}

// A read is run again at most three times: a server that has just gone
// down may leave more dead connections than the pool's check catches, but
// a read that keeps failing must fail.
func TestReadRunAgainAtMostThreeTimes(t *testing.T) {
	h, cut, primary := startCuttingPrimary(t, nil)
	ctx := ctxT(t, 30*time.Second)
	for _, tt := range []struct {
		cuts    int32
		succeed bool
	}{{3, true}, {4, false}} {
		t.Run(fmt.Sprintf("%d cuts", tt.cuts), func(t *testing.T) {
			c := h.ninja(t)
			cut.armed.Store(tt.cuts)
			var port int
			err := c.QueryRow(ctx, "select current_setting('port')::int as "+cutMarker, pgx.QueryExecModeSimpleProtocol).Scan(&port)
			cut.armed.Store(0)
			if tt.succeed && (err != nil || port != primary) {
				t.Fatalf("after %d lost connections: port %d, err %v", tt.cuts, port, err)
			}
			if !tt.succeed && sqlstate(err) != "08006" {
				t.Fatalf("after %d lost connections: want 08006, got port %d, err %v", tt.cuts, port, err)
			}
		})
	}
}

// An immediate shutdown warns each client (a NoticeResponse, 57P01) and
// then drops the connection; the warning must not push out what the proxy
// holds of the answer, or the read could not run again.
func TestPrimaryWarnsGoingAwayMidReadRerunsIt(t *testing.T) {
	warning, err := (&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: "57P01",
		Message: "terminating connection due to immediate shutdown command"}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The request's opening answer, as the server flushes it with the
	// warning: ParseComplete, BindComplete, then the warning.
	lastWords := append([]byte{'1', 0, 0, 0, 4, '2', 0, 0, 0, 4}, warning...)
	h, cut, primary := startCuttingPrimary(t, lastWords)
	ctx := ctxT(t, 30*time.Second)
	c := h.ninja(t)
	rerun := counterValue(t, h.reg, "pgninja_reads_rerouted_total")
	cut.armed.Store(1)
	var port int
	err = c.QueryRow(ctx, "select current_setting('port')::int as "+cutMarker+", $1::int", pgx.QueryExecModeExec, 1).Scan(&port, new(int))
	cut.armed.Store(0)
	if cut.cuts.Load() != 1 {
		t.Fatal("the connection was not cut")
	}
	if got := counterValue(t, h.reg, "pgninja_reads_rerouted_total"); err != nil || port != primary || got != rerun+1 {
		t.Fatalf("want the read run again, got port %d, err %v, reruns %v → %v", port, err, rerun, got)
	}
}

// A fast shutdown and pg_terminate_backend both end a backend with FATAL
// 57P01, after the RowDescription of a query already running. Only the
// shutdown re-runs the read: the proxy asks the server for a new
// connection, which a server shutting down refuses. The replica's
// messages trickle in one by one, so the RowDescription is alone in its
// read, and is held back from the client until more comes.
func TestReplicaTerminatedMidReadRerunsOnlyWhenShuttingDown(t *testing.T) {
	env := testbed.Require(t)
	primary, replica := portOf(t, env.Primary), portOf(t, env.Replica)
	ctx := ctxT(t, 60*time.Second)
	// A read that takes a while: pg_sleep is volatile, and a volatile
	// call is never run twice, so the test wraps it in a stable function
	// (made before the proxy starts, so that it reads it as stable).
	dsn := func(addr string) string {
		return fmt.Sprintf("postgres://%s:%s@%s/ai_ninja?sslmode=disable", env.SuperUser, env.SuperPass, addr)
	}
	owner, err := pgx.Connect(ctx, dsn(env.Primary))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Close(context.Background()) })
	if _, err := owner.Exec(ctx, "create or replace function pgninja_test_slow_read(float8) returns int language sql stable as 'select 1 from pg_sleep($1)'"); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, dsn(env.Replica))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	waitFor(t, 10*time.Second, "the function on the replica", func() bool {
		return admin.QueryRow(ctx, "select 1 from pg_proc where proname = 'pgninja_test_slow_read'").Scan(new(int)) == nil
	})
	cut := &serverCutter{port: replica, trickle: true}
	h := startWithDial(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, ""), cut.dial)

	for _, shuttingDown := range []bool{true, false} {
		t.Run(fmt.Sprintf("shutting down %v", shuttingDown), func(t *testing.T) {
			c := h.ninja(t)
			waitFor(t, 10*time.Second, "reads on the replica", func() bool {
				return serverPort(t, c, "select inet_server_port()") == replica
			})
			tag := fmt.Sprintf("pgninja_terminate_%v", shuttingDown)
			rerouted := counterValue(t, h.reg, "pgninja_reads_rerouted_total")
			type result struct {
				port int
				err  error
			}
			done := make(chan result, 1)
			go func() {
				var r result
				r.err = c.QueryRow(ctx, "select inet_server_port() as "+tag+" from pgninja_test_slow_read(2)",
					pgx.QueryExecModeSimpleProtocol).Scan(&r.port)
				done <- r
			}()
			var pid int
			waitFor(t, 10*time.Second, "the read running on the replica", func() bool {
				err := admin.QueryRow(ctx, "select pid from pg_stat_activity where query like '%'||$1||' from pgninja_test_slow_read%' and pid <> pg_backend_pid()", tag).Scan(&pid)
				return err == nil
			})
			cut.refusing.Store(shuttingDown)
			defer cut.refusing.Store(false)
			if _, err := admin.Exec(ctx, "select pg_terminate_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
			r := <-done
			got := counterValue(t, h.reg, "pgninja_reads_rerouted_total")
			if !shuttingDown {
				if sqlstate(r.err) != "57P01" || got != rerouted {
					t.Fatalf("a terminated read: want the server's FATAL 57P01 and no rerun, got port %d, err %v, reruns %v → %v", r.port, r.err, rerouted, got)
				}
				return
			}
			if r.err != nil || r.port != primary || got != rerouted+1 {
				t.Fatalf("a read on a replica shutting down: want it re-run on the primary (%d), got port %d, err %v, reruns %v → %v", primary, r.port, r.err, rerouted, got)
			}
		})
	}
}

// startCuttingPrimary serves a transaction-mode proxy of the primary
// alone, whose connections a serverCutter (with lastWords) can cut.
func startCuttingPrimary(t *testing.T, lastWords []byte) (*harness, *serverCutter, int) {
	t.Helper()
	env := testbed.Require(t)
	primary := portOf(t, env.Primary)
	cut := &serverCutter{port: primary, lastWords: lastWords}
	cfg := fmt.Sprintf("backends:\n  - name: primary\n    host: 127.0.0.1\n    port: %d\n", primary) + fmt.Sprintf(txnMode, 5, "30s")
	return startWithDial(t, env, cfg, cut.dial), cut, primary
}

// counterValue reads a counter (summed over its labels) from reg.
func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A server that stays down holds a client for pool.restart_wait, not for
// the acquire timeout; after that, requests are refused at once, on a
// connection that stays usable, and served again once the server is back.
func TestServerDownPastRestartWaitRefusesAtOnce(t *testing.T) {
	env := testbed.Require(t)
	primary := portOf(t, env.Primary)
	cut := &serverCutter{port: primary}
	cfg := fmt.Sprintf("backends:\n  - name: primary\n    host: 127.0.0.1\n    port: %d\n", primary) +
		fmt.Sprintf(txnMode, 5, "60s") + "  restart_wait: 1s\n  max_lifetime: 1ms\n"
	h := startWithDial(t, env, cfg, cut.dial)
	ctx := ctxT(t, 60*time.Second)
	c := h.ninja(t)
	if _, err := c.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	// Only new connections are refused; with max_lifetime 1ms no pooled
	// one is lent again, as after a restart. (On a fast machine the first
	// connection can be dialled, used and lent again within that 1ms.)
	time.Sleep(5 * time.Millisecond)
	cut.refusing.Store(true)

	start := time.Now()
	_, err := c.Exec(ctx, "select 1")
	waited := time.Since(start)
	if sqlstate(err) != "57P03" {
		t.Fatalf("server down: want 57P03, got %v", err)
	}
	if waited < 500*time.Millisecond {
		t.Fatalf("refused after %v: a restarting server is waited for, up to restart_wait (1s)", waited)
	}
	if waited > 30*time.Second {
		t.Fatalf("waited %v for a down server with restart_wait 1s (acquire_timeout 60s)", waited)
	}
	_, err = c.Exec(ctx, "select 1")
	if sqlstate(err) != "57P03" || !strings.Contains(err.Error(), "has refused connections") {
		t.Fatalf("still down: want the lasting refusal, got %v", err)
	}
	cut.refusing.Store(false)
	waitFor(t, 5*time.Second, "the server back", func() bool {
		_, err := c.Exec(ctx, "select 1")
		return err == nil
	})
}
