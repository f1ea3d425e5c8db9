package proxy

import (
	"errors"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/rawconn"
)

// clientPair is a clientConn over a real socket, as the proxy has, and
// the socket's other end.
func clientPair(t *testing.T) (*clientConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newClientConn(rawconn.Wrap(nc), 1<<20)
	t.Cleanup(func() { _ = c.Conn.Close(); _ = peer.Close(); c.release() })
	return c, peer
}

// readOne reads a byte the way a session waits for a request.
func readOne(c *clientConn) (byte, error) {
	var b [1]byte
	_, err := c.r.Read(b[:])
	return b[0], err
}

// TestParkWait: the sweep interrupts only a wait that has lasted from one
// sweep to the next; the interrupted read times out, and once the wait has
// ended no deadline is left for the reads after it.
func TestParkWait(t *testing.T) {
	c, peer := clientPair(t)

	// A wait that ends before a second sweep is not interrupted.
	c.park.begin()
	c.park.sweep(c)
	_, _ = peer.Write([]byte("a"))
	if b, err := readOne(c); err != nil || b != 'a' {
		t.Fatalf("read %q, %v", b, err)
	}
	if c.park.end(c) {
		t.Fatal("a wait the sweep saw only once was interrupted")
	}

	// The next wait is a new one: the first sweep after it only notes it.
	c.park.begin()
	c.park.sweep(c)
	if c.park.state.Load() != waitingIdle {
		t.Fatal("a new wait was interrupted at its first sweep")
	}
	done := make(chan error, 1)
	go func() {
		_, err := readOne(c)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.park.sweep(c)
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the interrupted read: %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second sweep did not interrupt the wait")
	}
	if !c.park.end(c) {
		t.Fatal("end did not report the sweep's request to park")
	}

	// No deadline is left behind: a read waits until data comes.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = peer.Write([]byte("b"))
	}()
	if b, err := readOne(c); err != nil || b != 'b' {
		t.Fatalf("a read after the wait: %q, %v", b, err)
	}
}

// TestParkWaitAskedAsDataCame: a sweep that asks just as the request
// arrives leaves no deadline behind for the reads of that request.
func TestParkWaitAskedAsDataCame(t *testing.T) {
	c, peer := clientPair(t)
	c.park.begin()
	_, _ = peer.Write([]byte("a"))
	if _, err := readOne(c); err != nil {
		t.Fatal(err)
	}
	c.park.sweep(c)
	c.park.sweep(c) // the read is done, but end has not run yet
	if !c.park.end(c) {
		t.Fatal("end did not report the sweep's request")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = peer.Write([]byte("b"))
	}()
	if b, err := readOne(c); err != nil || b != 'b' {
		t.Fatalf("the request's next read: %q, %v", b, err)
	}
}

func TestReleaseGate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		parked []int // one per sweep
		want   []int // sweeps (0-based) that release
	}{
		{"a few clients", []int{10, 50, 50, 50}, nil},
		{"a storm, then quiet", []int{0, 600, 1500, 1500, 1500}, []int{3}},
		{"still growing", []int{0, 1200, 2400, 3600, 3650}, []int{4}},
		{"a steady climb releases when it slows", []int{300, 600, 900, 1200, 1250, 1300}, []int{4}},
		{"clients leave and a new storm comes", []int{0, 1500, 1500, 200, 200, 1300, 1300}, []int{2, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g releaseGate
			var got []int
			for i, n := range tc.parked {
				if g.observe(n) {
					got = append(got, i)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("released at sweeps %v, want %v", got, tc.want)
			}
		})
	}
}
