package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/rawconn"
)

// parkIn parks a session over c in lot, as Session.parkInLot does.
func parkIn(t *testing.T, lot *parkingLot, c *clientConn) *Session {
	t.Helper()
	s := &Session{c: c}
	if err := c.Conn.(*rawconn.Conn).Idle(func(fd int) error { return lot.park(s, fd) }); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParkingLotResumesOnce(t *testing.T) {
	resumed := make(chan *Session, 16)
	lot, err := newParkingLot(func(s *Session) { resumed <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer lot.close()
	expect := func(what string, want *Session) {
		t.Helper()
		select {
		case s := <-resumed:
			if s != want {
				t.Fatalf("%s: another session resumed", what)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: not resumed", what)
		}
	}
	none := func(what string) {
		t.Helper()
		select {
		case <-resumed:
			t.Fatalf("%s: resumed again", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, tc := range []struct {
		name string
		poke func(s *Session, peer net.Conn)
	}{
		{"data", func(_ *Session, peer net.Conn) { _, _ = peer.Write([]byte("Q")) }},
		{"the client's end closing", func(_ *Session, peer net.Conn) { _ = peer.Close() }},
		{"wake", func(s *Session, _ net.Conn) {
			if !lot.wake(s) {
				t.Error("wake found nothing parked")
			}
		}},
		{"data and wake at once", func(s *Session, peer net.Conn) {
			go func() { _, _ = peer.Write([]byte("Q")) }()
			lot.wake(s)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := clientPair(t)
			s := parkIn(t, lot, c)
			if lot.len() != 1 {
				t.Fatalf("%d parked, want 1", lot.len())
			}
			tc.poke(s, peer)
			expect(tc.name, s)
			_, _ = peer.Write([]byte("more"))
			none(tc.name)
			if lot.wake(s) {
				t.Error("a resumed session was woken again")
			}
			if lot.len() != 0 {
				t.Errorf("%d still parked", lot.len())
			}
		})
	}
}

// TestParkingLotForgetsAClosedSocket: a parked client whose socket was
// closed (its registration gone with it) is resumed without touching the
// socket that took its descriptor's number, even when that one is parked
// too; it still wakes on its data.
func TestParkingLotForgetsAClosedSocket(t *testing.T) {
	resumed := make(chan *Session, 4)
	lot, err := newParkingLot(func(s *Session) { resumed <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer lot.close()
	fdOf := func(c *clientConn) (fd uintptr) {
		_ = rawconn.Control(c.Conn, func(d uintptr) { fd = d })
		return fd
	}
	a, _ := clientPair(t)
	sa := parkIn(t, lot, a)
	fdA := fdOf(a)

	// B's socket is accepted right after A's closes, so that it takes
	// the lowest free number: A's.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peerB, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peerB.Close()
	if err := a.Conn.Close(); err != nil {
		t.Fatal(err)
	}
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b := newClientConn(rawconn.Wrap(nc), 1<<20)
	t.Cleanup(func() { _ = b.Conn.Close(); b.release() })
	sb := parkIn(t, lot, b)
	if fdB := fdOf(b); fdB != fdA {
		t.Logf("B's socket has descriptor %d, A's had %d: the numbers did not meet this time", fdB, fdA)
	}

	if !lot.wake(sa) {
		t.Fatal("A was not parked")
	}
	if s := <-resumed; s != sa {
		t.Fatal("wake resumed another session")
	}
	if _, err := peerB.Write([]byte("Q")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-resumed:
		if s != sb {
			t.Fatal("another session resumed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B's data did not resume it: waking A took B's socket out of the lot")
	}
}
