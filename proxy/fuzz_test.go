package proxy_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5/pgproto3"
)

func msgs(ms ...pgproto3.FrontendMessage) []byte {
	var b []byte
	for _, m := range ms {
		b, _ = m.Encode(b)
	}
	return b
}

// FuzzClientMessages sends arbitrary bytes after a real login. Whatever
// arrives, the proxy must answer with well-formed backend messages, end
// the connection cleanly once the client stops sending, keep serving
// other clients, and keep no server connection lent for the client once
// it has gone. The seed corpus runs in every `go test`.
func FuzzClientMessages(f *testing.F) { fuzzClientMessages(f, "session") }

// FuzzClientMessagesTransaction is FuzzClientMessages in transaction
// mode, where each request leases afresh.
func FuzzClientMessagesTransaction(f *testing.F) { fuzzClientMessages(f, "transaction") }

// FuzzClientMessagesRouting is FuzzClientMessages with routing on: reads
// go to the replica, writes and the WAL positions behind them to the
// primary.
func FuzzClientMessagesRouting(f *testing.F) { fuzzClientMessages(f, "routing") }

func fuzzClientMessages(f *testing.F, mode string) {
	f.Add(msgs(&pgproto3.Query{String: "select 1"}))
	f.Add(msgs(&pgproto3.Parse{Query: "select $1::int"}, &pgproto3.Bind{Parameters: [][]byte{[]byte("7")}},
		&pgproto3.Execute{}, &pgproto3.Sync{}))
	f.Add(msgs(&pgproto3.Parse{Name: "s", Query: "select 1"}, &pgproto3.Flush{}))
	f.Add(msgs(&pgproto3.Bind{PreparedStatement: "missing"}, &pgproto3.Execute{}, &pgproto3.Sync{}))
	f.Add(msgs(&pgproto3.CopyData{Data: []byte("stray")}, &pgproto3.CopyDone{}, &pgproto3.Query{String: "select 2"}))
	f.Add(msgs(&pgproto3.Query{String: "copy (select 1) to stdout"}))
	f.Add(msgs(&pgproto3.Query{String: "create temp table f(x int); copy f from stdin"}, &pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}))
	f.Add([]byte{'Q', 0, 0, 0, 9, 's', 'e', 'l'})
	f.Add([]byte{'Q', 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{'Z', 0, 0, 0, 4})
	f.Add(msgs(&pgproto3.Query{String: "select pg_sleep(0.01)"}, &pgproto3.Terminate{}, &pgproto3.Query{String: "select 3"}))

	// With query_stats on, every request is also classified for the
	// statistics, in session mode from statements the proxy otherwise
	// leaves alone.
	const stats = "query_stats: {enabled: true}\n"
	var h *harness
	if mode == "routing" {
		env := testbed.Require(f)
		h = startWith(f, env, routedConfig(f, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, stats))
	} else {
		h = startProxy(f, "pool:\n  mode: "+mode+"\n"+stats)
	}
	bystander := h.ninja(f)
	// In session mode the bystander holds a server connection for good.
	kept := 0
	if mode == "session" {
		kept = 1
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, fe := rawLogin(t, h, 15*time.Second)
		defer c.Close()
		if _, err := c.Write(in); err != nil {
			return // the proxy may already have closed on a violation
		}
		_ = c.(*net.TCPConn).CloseWrite()
		for {
			_, err := fe.Receive()
			if err == nil {
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("proxy neither answered nor closed after the client stopped sending")
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				t.Fatalf("malformed backend stream: %v", err)
			}
			break
		}
		var one int
		if err := bystander.QueryRow(ctxT(t, 5*time.Second), "select 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("bystander broken: %v", err)
		}
		// The client is gone, so only the bystander's server connection
		// may stay lent: one kept lent for a client that left leaks, and
		// enough of them starve the pool.
		c.Close()
		waitFor(t, 5*time.Second, "the gone client's server connection back or closed", func() bool {
			lent := 0
			h.pools.Each(func(_ pool.Key, p *pool.Pool) {
				st := p.Stats()
				lent += st.Total - st.Idle - st.Opening - st.Testing
			})
			return lent <= kept
		})
	})
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// rawLogin logs trusty in to h over a bare socket, for tests that send
// what no driver would, and returns once the proxy is ready for a query;
// the socket's deadline is timeout away.
func rawLogin(t testing.TB, h *harness, timeout time.Duration) (net.Conn, *pgproto3.Frontend) {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "trusty", "database": "ai_ninja"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	receiveUntil[*pgproto3.ReadyForQuery](t, fe, "login")
	return c, fe
}

// receiveUntil reads backend messages until one of type T arrives.
func receiveUntil[T pgproto3.BackendMessage](t testing.TB, fe *pgproto3.Frontend, what string) T {
	t.Helper()
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if m, ok := msg.(T); ok {
			return m
		}
	}
}
