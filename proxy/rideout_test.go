package proxy_test

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
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
	// marker, when set, is looked for in what clients send; seen
	// reports whether it went through.
	marker []byte
	seen   atomic.Bool
	// frozen holds what passes either way, as a server that stops
	// answering without going away.
	frozen atomic.Bool
}

func newForwarder(t *testing.T, to string, marker string) *forwarder {
	f := &forwarder{t: t, to: to}
	if marker != "" {
		f.marker = []byte(marker)
	}
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
			go func() { _, _ = io.Copy(s, f.hold(f.watch(c))); s.Close() }()
			go func() { _, _ = io.Copy(c, f.hold(s)); c.Close() }()
		}
	}()
}

// watch returns what r reads, noting the marker as it passes.
func (f *forwarder) watch(r io.Reader) io.Reader {
	if f.marker == nil {
		return r
	}
	return readFunc(func(p []byte) (int, error) {
		n, err := r.Read(p)
		if bytes.Contains(p[:n], f.marker) {
			f.seen.Store(true)
		}
		return n, err
	})
}

// hold returns what r reads, once f is not frozen.
func (f *forwarder) hold(r io.Reader) io.Reader {
	return readFunc(func(p []byte) (int, error) {
		n, err := r.Read(p)
		for f.frozen.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		return n, err
	})
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

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
	fw := newForwarder(t, env.Primary, "")
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

// TestRoutingRideOutYieldsToAPromotedServer: a write waiting for the
// configured primary to come back goes to another server promoted
// meanwhile, at once, rather than wait out a primary that may never
// return, or write to it as well when it does (two timelines). The
// promoted server is a second path to the test bed's primary, configured
// as a replica and down until the old primary is.
func TestRoutingRideOutYieldsToAPromotedServer(t *testing.T) {
	env := testbed.Require(t)
	const marker = "rideout-promoted-marker"
	old := newForwarder(t, env.Primary, marker)
	promoted := newForwarder(t, env.Primary, marker)
	promoted.down()
	// The forwarders look for the marker in what passes: no TLS.
	h := startWith(t, env, routedConfig(t, old.addr, 0, map[string]string{"promoted": promoted.addr}, 1,
		"tls: {backend_sslmode: disable}\n"))
	ctx := ctxT(t, 30*time.Second)
	c := h.ninja(t)
	if _, err := c.Exec(ctx, "create table if not exists rideout_t (x int)"); err != nil {
		t.Fatal(err)
	}
	old.down()
	time.Sleep(time.Second) // the health checks find no primary

	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "insert into rideout_t select length('"+marker+"')")
		done <- err
	}()
	time.Sleep(500 * time.Millisecond) // the write waits for the old primary
	promoted.up()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write still waits for the old primary after another was promoted")
	}
	old.up()
	if old.seen.Load() || !promoted.seen.Load() {
		t.Fatalf("the write went to the old primary (%v) / the promoted server (%v); want only the promoted one",
			old.seen.Load(), promoted.seen.Load())
	}
}
