package proxy_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
)

// forwarder stands between pgninja and a server on a port of its own, so
// that a test can take the server away from everything that connects to
// it, health checks included, and bring it back on the same address.
type forwarder struct {
	t      *testing.T
	to     string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	closed bool
}

func newForwarder(t *testing.T, to string) *forwarder {
	f := &forwarder{t: t, to: to}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(func() {
		f.down()
		f.mu.Lock()
		f.closed = true
		f.mu.Unlock()
	})
	return f
}

func (f *forwarder) serve(ln net.Listener) {
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", f.to)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, s)
			f.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
}

// down closes the listener and every connection through it, as a server
// that stops does.
func (f *forwarder) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// up listens on the same address again.
func (f *forwarder) up() {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Error(err)
		return
	}
	f.serve(ln)
}

// TestRoutingRidesOutARestartingPrimary: with routing on, a write sent
// while the primary is down waits for it to come back, as it does without
// routing, rather than fail with 57P03 once the health checks miss it.
func TestRoutingRidesOutARestartingPrimary(t *testing.T) {
	env := testbed.Require(t)
	fw := newForwarder(t, env.Primary)
	h := startWith(t, env, routedConfig(t, fw.addr, 0, map[string]string{"replica": env.Replica}, 1, ""))
	ctx := ctxT(t, 30*time.Second)
	c := h.ninja(t)
	if _, err := c.Exec(ctx, "create table if not exists rideout_t (x int)"); err != nil {
		t.Fatal(err)
	}

	fw.down()
	// Long enough for the health checks (every 200 ms) to mark it down.
	time.Sleep(time.Second)
	back := time.AfterFunc(2*time.Second, fw.up)
	defer back.Stop()
	start := time.Now()
	if _, err := c.Exec(ctx, "insert into rideout_t values (1)"); err != nil {
		t.Fatalf("a write while the primary restarts: %v, want it to wait for the primary", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("the write ran after %v, before the primary was back", waited)
	}
}
