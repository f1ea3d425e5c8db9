package rawconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Conn is a net.Conn whose Read and Write use raw system calls. A
// wrapped connection (Wrap) keeps its deadlines and addresses; a socket
// that Listener accepted has no net.Conn and keeps its own (owned.go).
//
// A read that drained the socket (it left room in its buffer) is followed
// by a wait on the poller without the read that would only return
// EAGAIN: any data sent since has made the poller ready. That saves a
// system call each time the proxy waits for a peer, twice per
// transaction. It needs the socket's poller descriptor (pollwait.go);
// without it, reads probe first, as net.Conn's do.
type Conn struct {
	net.Conn
	rc syscall.RawConn
	// fd and pollCtx are the socket and its poller descriptor, pollCtx 0
	// when pollwait.go could not find them.
	fd, pollCtx uintptr

	// owned: a socket of owned.go's Listener, with no net.Conn (Conn is
	// nil and rc unused). life guards its descriptor against Close for
	// those who hold no lock Close waits for; gone is set under it once
	// the descriptor is about to close.
	owned        bool
	laddr, raddr net.Addr
	life         sync.RWMutex
	gone         bool

	// rmu serialises Read; rbuf carries Read's buffer to the read
	// function, so that nothing is allocated per call.
	rmu     sync.Mutex
	closing atomic.Bool
	closed  bool
	drained bool // the last read left room in its buffer
	rbuf    []byte

	// dmu guards the caller's read deadline; armed (nanoseconds after
	// born, 0 when off) is the safety deadline of deadline.go. It is
	// kept on the monotonic clock, which a read checks it against at
	// half the cost of the wall clock's time.Now.
	dmu    sync.Mutex
	userRD time.Time
	armed  atomic.Int64
	born   time.Time

	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
}

type result struct {
	n   int
	err error
}

// Wrap returns c with raw reads and writes when c is a socket the runtime
// polls (TCP or unix), and c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	if _, ok := c.(*Conn); ok {
		return c
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	w := &Conn{Conn: c, rc: rc, born: time.Now()}
	if ctx := pollCtxOf(c); ctx != 0 && rc.Control(func(fd uintptr) { w.fd = fd }) == nil {
		w.pollCtx = ctx
	}
	w.writeFn = w.writeAll
	return w
}

// Read reads what the socket has, waiting until it has something.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed {
		return 0, c.opError("read", net.ErrClosed)
	}
	if c.pollCtx != 0 {
		return c.readPolled(b)
	}
	return c.readProbing(b)
}

// readProbing reads through RawConn.Read, which probes the socket before
// each wait; c.rmu is held.
func (c *Conn) readProbing(b []byte) (int, error) {
	c.rbuf = b
	defer func() { c.rbuf = nil }()
	var r result
	err := c.rc.Read(func(fd uintptr) bool {
		var again bool
		r, again = c.readOnce(fd)
		return !again
	})
	if err != nil {
		if c.closing.Load() {
			return 0, c.opError("read", net.ErrClosed)
		}
		return 0, err
	}
	return r.n, r.err
}

// LocalAddr is the socket's local address.
func (c *Conn) LocalAddr() net.Addr {
	if c.owned {
		return c.laddr
	}
	return c.Conn.LocalAddr()
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr {
	if c.owned {
		return c.raddr
	}
	return c.Conn.RemoteAddr()
}

// raw is the socket's RawConn.
func (c *Conn) raw() syscall.RawConn {
	if c.owned {
		return ownedRaw{c}
	}
	return c.rc
}

// Idle runs f with the socket's descriptor, for a caller that waits for
// the socket elsewhere (the proxy's parking lot) and reads again once it
// is readable; that read probes first.
func (c *Conn) Idle(f func(fd int) error) error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed || c.closing.Load() {
		return c.opError("read", net.ErrClosed)
	}
	c.drained = false
	c.disarmSafety()
	if c.owned {
		return f(int(c.fd)) // Close waits for c.rmu before the descriptor goes
	}
	var err error
	if cerr := c.rc.Control(func(fd uintptr) { err = f(int(fd)) }); cerr != nil {
		return cerr
	}
	return err
}

// readOnce reads into c.rbuf; again means the socket had nothing.
func (c *Conn) readOnce(fd uintptr) (r result, again bool) {
	b := c.rbuf
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			if n == 0 {
				return result{err: io.EOF}, false
			}
			return result{n: int(n)}, false
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return result{}, true
		}
		return result{err: c.opError("read", os.NewSyscallError("read", e))}, false
	}
}

func (c *Conn) writeAll(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		p := c.wbuf[c.wn:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			c.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// Write writes all of b, waiting while the socket's buffer is full.
func (c *Conn) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = b, 0, 0
	if c.owned {
		if c.closing.Load() {
			// The descriptor is closed or about to be, and its number
			// may already be another socket's: no write may reach it.
			// (Close waits for c.wmu only after setting closing.)
			c.wbuf = nil
			return 0, c.opError("write", net.ErrClosed)
		}
		err := c.writeOwned()
		c.wbuf = nil
		return c.wn, err
	}
	err := c.rc.Write(c.writeFn)
	n, e := c.wn, c.werr
	c.wbuf = nil
	if err != nil {
		return n, err
	}
	if e != 0 {
		return n, c.opError("write", os.NewSyscallError("write", e))
	}
	return n, nil
}

// Close closes the socket. A Read waiting on the poller descriptor holds
// no reference to the socket, so it is woken and waited for first: the
// descriptor may not be closed, and its number reused, under it.
func (c *Conn) Close() error {
	if c.owned {
		return c.closeOwned()
	}
	// A past deadline wakes a Read that waits; seeing closing, it reports
	// the close rather than a timeout.
	c.closing.Store(true)
	c.wakeForClose()
	c.rmu.Lock()
	c.closed = true
	c.rmu.Unlock()
	return c.Conn.Close()
}

// Pending reports whether the socket has bytes to read (or its peer
// closed it), without consuming them or waiting.
func (c *Conn) Pending() bool { return peek(c.raw()) }

// Pending is Conn.Pending for any socket, also under TLS (where pending
// bytes are a record the peer sent); ok is false when nc has no socket to
// look at.
func Pending(nc net.Conn) (pending, ok bool) {
	rc, ok := rawOf(nc)
	if !ok {
		return false, false
	}
	return peek(rc), true
}

// PeerClosed reports whether nc's peer has closed or reset the
// connection with nothing left unread before that, without consuming
// anything or waiting; ok is false when nc has no socket to look at.
// Bytes still unread count as open: a client that sent more before
// leaving is found when they are read.
func PeerClosed(nc net.Conn) (closed, ok bool) {
	rc, ok := rawOf(nc)
	if !ok {
		return false, false
	}
	n, e, err := peekOne(rc)
	return err != nil || (e == 0 && n == 0) || (e != 0 && e != syscall.EAGAIN), true
}

// Control runs f with the descriptor of nc's socket (through TLS and this
// package's Conn), which cannot be closed while f runs. It fails without
// running f once the socket is closed, when its number may already be
// another socket's, or when nc has no socket.
func Control(nc net.Conn, f func(fd uintptr)) error {
	rc, ok := rawOf(nc)
	if !ok {
		return errNoSocket
	}
	return rc.Control(f)
}

var errNoSocket = errors.New("rawconn: no socket under the connection")

// rawOf finds the socket under nc, through TLS and this package's Conn.
func rawOf(nc net.Conn) (syscall.RawConn, bool) {
	for {
		switch c := nc.(type) {
		case *Conn:
			return c.raw(), true
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		case syscall.Conn:
			rc, err := c.SyscallConn()
			return rc, err == nil
		default:
			return nil, false
		}
	}
}

// peekOne looks at the next byte without consuming it or waiting: n is 0
// at the end of the stream, e is EAGAIN when nothing has arrived.
func peekOne(rc syscall.RawConn) (n uintptr, e syscall.Errno, err error) {
	err = rc.Control(func(fd uintptr) {
		var one [1]byte
		for {
			n, _, e = syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&one[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			if e != syscall.EINTR {
				return
			}
		}
	})
	return n, e, err
}

// peek: data, end of stream and a socket error all mean the connection
// is not idle and clean.
func peek(rc syscall.RawConn) bool {
	_, e, err := peekOne(rc)
	return e != syscall.EAGAIN || err != nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
