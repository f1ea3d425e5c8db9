package rawconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// ownedPairs makes pair return a socket accepted by this package's
// Listener instead (see TestOwnedSockets).
var ownedPairs bool

// pair returns both ends of a loopback TCP connection, the dialled end
// wrapped, or with ownedPairs the accepted end owned.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ownedPairs {
		return ownedPair(t, Listen(ln))
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	w, ok := Wrap(d).(*Conn)
	if !ok {
		t.Fatal("a TCP connection was not wrapped")
	}
	t.Cleanup(func() { w.Close(); peer.Close() })
	return w, peer
}

func TestWrapLeavesOthersAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("a pipe has no socket; Wrap must return it as it is")
	}
	c, _ := pair(t)
	if Wrap(c) != net.Conn(c) {
		t.Fatal("wrapping twice")
	}
}

func TestReadWrite(t *testing.T) {
	tests := []struct {
		name    string
		size    int // bytes the peer sends at once
		bufSize int // size of each Read's buffer
	}{
		{"small message, large buffer", 5, 8192},
		{"message fills the buffer exactly", 64, 64},
		{"message larger than the buffer", 100_000, 1000},
		{"one byte at a time", 10, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := pair(t)
			want := bytes.Repeat([]byte("pgninja!"), tc.size/8+1)[:tc.size]
			go peer.Write(want)
			got := make([]byte, 0, tc.size)
			buf := make([]byte, tc.bufSize)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for len(got) < tc.size {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("after %d bytes: %v", len(got), err)
				}
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("read bytes differ from those sent")
			}
			// And back: a write larger than the socket buffers has to
			// wait for the peer to read.
			big := bytes.Repeat([]byte{7}, 4<<20)
			done := make(chan error, 1)
			go func() { _, err := c.Write(big); done <- err }()
			back, err := io.ReadAll(io.LimitReader(peer, int64(len(big))))
			if err != nil || !bytes.Equal(back, big) {
				t.Fatalf("peer read %d bytes, %v", len(back), err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A reader that waited after draining the socket must see what arrives
// later, however it is timed: this is the read Read skips.
func TestPingPongNeverStalls(t *testing.T) {
	c, peer := pair(t)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := peer.Read(buf)
			if err != nil {
				return
			}
			if _, err := peer.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 8192)
	for i := 0; i < 20000; i++ {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if n != 1 || buf[0] != byte(i) {
			t.Fatalf("round %d: got %v", i, buf[:n])
		}
	}
}

func TestEndOfStream(t *testing.T) {
	c, peer := pair(t)
	peer.Write([]byte("bye"))
	peer.Close()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the end: %v, want io.EOF", err)
	}
}

// Data and the peer's FIN that arrive before one read make the poller
// ready once; the read that follows the data must still see the end.
func TestEndOfStreamAfterDataInOneWakeUp(t *testing.T) {
	for i := 0; i < 20; i++ {
		c, peer := pair(t)
		buf := make([]byte, 64)
		peer.Write([]byte("x")) // the next read waits on the poller first
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		peer.Write([]byte("last words"))
		peer.Close()
		time.Sleep(5 * time.Millisecond) // both arrive before the next read
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "last words" {
			t.Fatalf("got %q, %v; want the data, then io.EOF well before the deadline", got, err)
		}
	}
}

func TestDeadlineThenMore(t *testing.T) {
	c, peer := pair(t)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("want a timeout, got %v", err)
	}
	// The connection stays usable once the deadline is lifted.
	_ = c.SetReadDeadline(time.Time{})
	peer.Write([]byte("late"))
	buf := make([]byte, 10)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

func TestCloseWakesReader(t *testing.T) {
	names := []string{"waiting on the poller", "probing"}
	if ownedPairs {
		names = names[:1] // an owned socket always has its descriptor
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			c, _ := pair(t)
			if name == "probing" {
				c.pollCtx = 0
			}
			errc := make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 10))
				errc <- err
			}()
			time.Sleep(20 * time.Millisecond) // let the reader wait
			closed := make(chan error, 1)
			go func() { closed <- c.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return while a read waited")
			}
			if err := <-errc; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("the waiting read got %v, want net.ErrClosed (not a timeout)", err)
			}
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after close: %v", err)
			}
		})
	}
}

// Close between reads releases the descriptor, so the peer sees the
// connection end.
func TestCloseBetweenReads(t *testing.T) {
	c, peer := pair(t)
	peer.Write([]byte("x"))
	if _, err := c.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung between reads")
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read %v, want io.EOF: the socket was not closed", err)
	}
}

func TestPending(t *testing.T) {
	c, peer := pair(t)
	if c.Pending() {
		t.Fatal("nothing sent, yet pending")
	}
	if c.owned {
		if p, ok := Pending(c); !ok || p {
			t.Fatalf("owned socket: pending=%v ok=%v", p, ok)
		}
	} else if p, ok := Pending(c.Conn); !ok || p {
		t.Fatalf("unwrapped socket: pending=%v ok=%v", p, ok)
	}
	peer.Write([]byte("!"))
	waitFor(t, c.Pending)
	// Peeking consumed nothing.
	buf := make([]byte, 4)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "!" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	if c.Pending() {
		t.Fatal("pending after the byte was read")
	}
	peer.Close()
	waitFor(t, c.Pending) // end of stream counts
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := Pending(a); ok {
		t.Fatal("a pipe has no socket to peek at")
	}
}

func TestPeerClosed(t *testing.T) {
	closed := func(nc net.Conn) func() bool {
		return func() bool {
			cl, ok := PeerClosed(nc)
			if !ok {
				t.Fatal("no socket found")
			}
			return cl
		}
	}
	c, peer := pair(t)
	if closed(c)() {
		t.Fatal("closed while the peer is there")
	}
	peer.Write([]byte("!"))
	waitFor(t, c.Pending)
	peer.Close()
	time.Sleep(20 * time.Millisecond)
	if closed(c)() {
		t.Fatal("closed with a byte still unread")
	}
	buf := make([]byte, 4)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "!" {
		t.Fatalf("got %q, %v; peeking must consume nothing", buf[:n], err)
	}
	waitFor(t, closed(c))
	if !c.owned {
		waitFor(t, closed(c.Conn)) // the socket under the wrapper
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := PeerClosed(a); ok {
		t.Fatal("a pipe has no socket to peek at")
	}
}

func TestIdle(t *testing.T) {
	c, peer := pair(t)
	peer.Write([]byte("a"))
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil { // drains the socket
		t.Fatal(err)
	}
	var got int
	if err := c.Idle(func(fd int) error { got = fd; return nil }); err != nil || got <= 0 {
		t.Fatalf("Idle: fd %d, %v", got, err)
	}
	if c.drained {
		t.Fatal("after Idle the next read would not probe")
	}
	refused := errors.New("refused")
	if err := c.Idle(func(int) error { return refused }); err != refused {
		t.Fatalf("Idle passed on %v, want the function's error", err)
	}
	peer.Write([]byte("b"))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "b" {
		t.Fatalf("Read after Idle: %q, %v", buf[:n], err)
	}
	c.Close()
	if err := c.Idle(func(int) error { t.Error("called on a closed connection"); return nil }); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Idle after Close: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 5s")
}

// Another goroutine moving the read deadline on must not undo the wake-up
// Close gives a waiting Read.
func TestCloseWinsOverLaterDeadline(t *testing.T) {
	c, _ := pair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	for i := 0; i < 100; i++ {
		_ = c.SetReadDeadline(time.Now().Add(time.Hour))
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

// TestReadsWaitOnThePoller: Wrap finds the poller descriptor of TCP and
// unix sockets, so their reads (and every test above) may skip the
// probe; with this Go release's net package it must.
func TestReadsWaitOnThePoller(t *testing.T) {
	c, peer := pair(t)
	if c.pollCtx == 0 || c.fd == 0 {
		t.Fatalf("TCP: no poller descriptor found (fd %d, descriptor %#x)", c.fd, c.pollCtx)
	}
	dir := t.TempDir()
	ln, err := net.Listen("unix", dir+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if s, err := ln.Accept(); err == nil {
			s.Write([]byte("hi"))
			s.Close()
		}
	}()
	d, err := net.Dial("unix", dir+"/s")
	if err != nil {
		t.Fatal(err)
	}
	u := Wrap(d).(*Conn)
	defer u.Close()
	if u.pollCtx == 0 {
		t.Fatal("unix: no poller descriptor found")
	}
	_ = u.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(u); err != nil || string(got) != "hi" {
		t.Fatalf("unix read: %q, %v", got, err)
	}
	// A connection the descriptor was not found for probes first.
	c.pollCtx = 0
	go peer.Write([]byte("still"))
	buf := make([]byte, 16)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "still" {
		t.Fatalf("probing read: %q, %v", buf[:n], err)
	}
}

func ownedPair(t *testing.T, ln net.Listener) (*Conn, net.Conn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-accepted
	c, ok := a.(*Conn)
	if !ok || !c.owned {
		t.Fatalf("Listen's Accept gave %T, want an owned *Conn", a)
	}
	t.Cleanup(func() { c.Close(); d.Close() })
	return c, d
}

// TestOwnedSockets runs the tests above on sockets Listen accepted, and
// checks what is particular to them: the addresses, the options they
// inherit from the listening socket, deadlines on writes, a second
// Close, and Control after Close.
func TestOwnedSockets(t *testing.T) {
	for name, test := range map[string]func(*testing.T){
		"ReadWrite": TestReadWrite, "PingPongNeverStalls": TestPingPongNeverStalls,
		"EndOfStream": TestEndOfStream, "EndOfStreamAfterDataInOneWakeUp": TestEndOfStreamAfterDataInOneWakeUp,
		"DeadlineThenMore": TestDeadlineThenMore, "CloseWakesReader": TestCloseWakesReader,
		"CloseBetweenReads": TestCloseBetweenReads, "Pending": TestPending, "PeerClosed": TestPeerClosed,
		"Idle": TestIdle, "CloseWinsOverLaterDeadline": TestCloseWinsOverLaterDeadline,
	} {
		t.Run(name, func(t *testing.T) {
			ownedPairs = true
			defer func() { ownedPairs = false }()
			test(t)
		})
	}

	ownedPairs = true
	c, peer := pair(t)
	ownedPairs = false
	if c.LocalAddr().String() != peer.RemoteAddr().String() || c.RemoteAddr().String() != peer.LocalAddr().String() {
		t.Errorf("addresses: local %v remote %v, the peer's %v and %v", c.LocalAddr(), c.RemoteAddr(), peer.RemoteAddr(), peer.LocalAddr())
	}
	if _, ok := c.RemoteAddr().(*net.TCPAddr); !ok {
		t.Errorf("RemoteAddr is %T, want *net.TCPAddr", c.RemoteAddr())
	}
	var nodelay, keepalive int
	if err := c.raw().Control(func(fd uintptr) {
		nodelay, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
		keepalive, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if nodelay == 0 || keepalive == 0 {
		t.Errorf("TCP_NODELAY %d, SO_KEEPALIVE %d: not inherited from the listening socket", nodelay, keepalive)
	}

	// A write that cannot go out (the peer reads nothing) ends at its
	// deadline.
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	big := make([]byte, 64<<20)
	if n, err := c.Write(big); !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n == len(big) {
		t.Fatalf("write past the socket buffers: %d bytes, %v; want some, then the deadline", n, err)
	}
	// Close wakes a write waiting for room.
	_ = c.SetWriteDeadline(time.Time{})
	closeWakes(t, "write", func() error { _, err := c.Write(big); return err }, c.Close)
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if err := c.raw().Control(func(uintptr) { t.Error("Control ran after Close") }); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Control after Close: %v", err)
	}
	if err := c.SetReadDeadline(time.Now()); err != nil {
		t.Errorf("SetReadDeadline after Close: %v (net.Conn's is ignored too)", err)
	}
}

// closeWakes runs wait on a goroutine, lets it block, then runs close,
// and checks that wait ends with net.ErrClosed soon after.
func closeWakes(t *testing.T, what string, wait, close func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- wait() }()
	time.Sleep(20 * time.Millisecond)
	if err := close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("the waiting %s got %v, want net.ErrClosed", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Close did not wake a waiting %s", what)
	}
}

// TestListenLeavesOthersAlone: a unix listener keeps net's sockets.
func TestListenLeavesOthersAlone(t *testing.T) {
	ln, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if Listen(ln) != ln {
		t.Fatal("a unix listener was replaced")
	}
}

// TestListenerCloseWakesAccept: Close ends a waiting Accept with
// net.ErrClosed, and the port is free again afterwards.
func TestListenerCloseWakesAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(ln)
	if _, ok := l.(*Listener); !ok {
		t.Fatalf("Listen gave %T", l)
	}
	closeWakes(t, "Accept", func() error { _, err := l.Accept(); return err }, l.Close)
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	// Both descriptors are gone: the address can be listened on again.
	again, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("listening again on %v: %v", ln.Addr(), err)
	}
	again.Close()
}

// TestOwnedWriteAfterClose: a write after Close fails and reaches no
// socket, not even one that took the closed descriptor's number.
func TestOwnedWriteAfterClose(t *testing.T) {
	ownedPairs = true
	c, _ := pair(t)
	ownedPairs = false
	fd := c.fd
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The lowest free number: most likely the one just closed.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	d, err := net.Dial("tcp", other.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n, err := c.Write([]byte("stray")); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close (descriptor %d): %d bytes, %v; want 0, net.ErrClosed", fd, n, err)
	}
}

func TestTCPAddrOf(t *testing.T) {
	var v4, v6, v6zone, unix syscall.RawSockaddrAny
	p4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&v4))
	p4.Family, p4.Addr = syscall.AF_INET, [4]byte{10, 1, 2, 3}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&p4.Port))[:], 6432)
	p6 := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&v6))
	p6.Family = syscall.AF_INET6
	copy(p6.Addr[:], net.ParseIP("2001:db8::7"))
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&p6.Port))[:], 65535)
	pz := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&v6zone))
	pz.Family, pz.Scope_id = syscall.AF_INET6, 3
	copy(pz.Addr[:], net.ParseIP("fe80::1"))
	unix.Addr.Family = syscall.AF_UNIX
	for _, tt := range []struct {
		sa   *syscall.RawSockaddrAny
		want string
	}{
		{&v4, "10.1.2.3:6432"},
		{&v6, "[2001:db8::7]:65535"},
		{&v6zone, "[fe80::1%3]:0"},
		{&unix, ":0"},
	} {
		if got := tcpAddrOf(tt.sa).String(); got != tt.want {
			t.Errorf("tcpAddrOf: %s, want %s", got, tt.want)
		}
	}
}
