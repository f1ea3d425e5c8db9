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
