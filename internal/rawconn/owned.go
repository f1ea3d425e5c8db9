package rawconn

import (
	"encoding/binary"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Sockets owned outright.
//
// A socket made by the net package costs, at accept and close, system
// calls that go through the runtime's blocking-syscall path (accept4,
// the setsockopt calls for TCP_NODELAY and keepalive, close). Each wakes
// the runtime's monitor thread (sysmon) from its idle sleep, and while it
// is awake it may hand the scheduler to another thread: under
// connect-per-transaction load (pgbench -C) that was a tenth of the
// proxy's CPU per connection. A Listener accepts with a raw accept4, its
// sockets inherit TCP_NODELAY and keepalive from the listening socket,
// and the Conn it returns registers with the runtime's poller, waits on
// it and closes its socket itself, with raw system calls only.

//go:linkname runtimePollOpen internal/poll.runtime_pollOpen
func runtimePollOpen(fd uintptr) (uintptr, int)

//go:linkname runtimePollClose internal/poll.runtime_pollClose
func runtimePollClose(ctx uintptr)

//go:linkname runtimePollUnblock internal/poll.runtime_pollUnblock
func runtimePollUnblock(ctx uintptr)

//go:linkname runtimePollSetDeadline internal/poll.runtime_pollSetDeadline
func runtimePollSetDeadline(ctx uintptr, d int64, mode int)

// Listener is a TCP listener whose Accept returns sockets this package
// owns (see above). It accepts on a duplicate of the listening socket's
// descriptor, registered with the poller as its own: a net.Listener's
// RawConn does not wait.
type Listener struct {
	net.Listener
	fd, pollCtx uintptr
	laddr       *net.TCPAddr // the accepted sockets' local address, nil when the listener's IP is unspecified

	amu     sync.Mutex // serialises Accept; Close waits for it
	closing atomic.Bool
	closed  bool
}

// Listen returns ln accepting owned sockets when ln is a TCP listener on
// which the options to inherit could be set, and ln itself otherwise.
// Keepalive is the system's timings, as PgBouncer's default.
func Listen(ln net.Listener) net.Listener {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return ln
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return ln
	}
	dup := -1
	if err := rc.Control(func(fd uintptr) {
		if syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1) != nil ||
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1) != nil {
			return
		}
		// The duplicate shares the socket and its non-blocking mode.
		if r, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0); e == 0 {
			dup = int(r)
		}
	}); err != nil || dup < 0 {
		return ln
	}
	ctx, errno := runtimePollOpen(uintptr(dup))
	if errno != 0 {
		closeFD(uintptr(dup))
		return ln
	}
	l := &Listener{Listener: ln, fd: uintptr(dup), pollCtx: ctx}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		l.laddr = a
	}
	return l
}

// Accept waits for the next client and returns its socket as a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	l.amu.Lock()
	defer l.amu.Unlock()
	var sa syscall.RawSockaddrAny
	for {
		if l.closed {
			return nil, l.opError(net.ErrClosed)
		}
		n := uint32(syscall.SizeofSockaddrAny)
		r, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, l.fd, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)),
			syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		switch e {
		case 0:
			return l.own(int(r), &sa)
		case syscall.EINTR, syscall.ECONNABORTED:
			// ECONNABORTED: a client gone before it was accepted; the
			// next one, as net's Accept does.
			continue
		case syscall.EAGAIN:
		default:
			return nil, l.opError(os.NewSyscallError("accept4", e))
		}
		switch code := runtimePollWait(l.pollCtx, 'r'); {
		case code == pollNoError:
		case l.closing.Load() || code == pollErrClosing:
			return nil, l.opError(net.ErrClosed)
		default:
			return nil, l.opError(errPollerError)
		}
	}
}

// own registers an accepted socket with the poller.
func (l *Listener) own(fd int, sa *syscall.RawSockaddrAny) (net.Conn, error) {
	laddr := l.laddr
	if laddr == nil {
		var lsa syscall.RawSockaddrAny
		n := uint32(syscall.SizeofSockaddrAny)
		_, _, e := syscall.RawSyscall(syscall.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&lsa)), uintptr(unsafe.Pointer(&n)))
		if e == 0 {
			laddr = tcpAddrOf(&lsa)
		} else {
			laddr = &net.TCPAddr{}
		}
	}
	ctx, errno := runtimePollOpen(uintptr(fd))
	if errno != 0 {
		closeFD(uintptr(fd))
		return nil, l.opError(os.NewSyscallError("epoll_ctl", syscall.Errno(errno)))
	}
	c := &Conn{fd: uintptr(fd), pollCtx: ctx, owned: true, laddr: laddr, raddr: tcpAddrOf(sa), born: time.Now()}
	c.writeFn = c.writeAll
	return c, nil
}

// Close closes the listener: the net one, and the duplicate once a
// waiting Accept has left.
func (l *Listener) Close() error {
	if !l.closing.CompareAndSwap(false, true) {
		return l.opError(net.ErrClosed)
	}
	err := l.Listener.Close()
	runtimePollUnblock(l.pollCtx)
	l.amu.Lock()
	l.closed = true
	l.amu.Unlock()
	runtimePollClose(l.pollCtx)
	if cerr := closeFD(l.fd); err == nil {
		err = cerr
	}
	return err
}

func (l *Listener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: err}
}

// tcpAddrOf reads an IPv4 or IPv6 socket address.
func tcpAddrOf(sa *syscall.RawSockaddrAny) *net.TCPAddr {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return &net.TCPAddr{IP: net.IPv4(p.Addr[0], p.Addr[1], p.Addr[2], p.Addr[3]), Port: int(port)}
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		a := &net.TCPAddr{IP: append(net.IP(nil), p.Addr[:]...), Port: int(port)}
		if p.Scope_id != 0 {
			a.Zone = strconv.Itoa(int(p.Scope_id)) // the interface's index: naming it would ask the kernel
		}
		return a
	}
	return &net.TCPAddr{}
}

func closeFD(fd uintptr) error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0); e != 0 {
		return os.NewSyscallError("close", e)
	}
	return nil
}

// closeOwned closes an owned socket: the poller wakes every Read and
// Write waiting on it, and once they have left (and no Control runs),
// the descriptor leaves the poller and is closed.
func (c *Conn) closeOwned() error {
	if !c.closing.CompareAndSwap(false, true) {
		return c.opError("close", net.ErrClosed)
	}
	runtimePollUnblock(c.pollCtx)
	c.rmu.Lock()
	c.closed = true
	c.rmu.Unlock()
	c.wmu.Lock() // a Write woken above has left once this is taken
	c.wmu.Unlock()
	c.life.Lock()
	c.gone = true
	c.life.Unlock()
	runtimePollClose(c.pollCtx)
	return closeFD(c.fd)
}

// writeOwned is Write for an owned socket; c.wmu is held and c.wbuf set.
func (c *Conn) writeOwned() error {
	for !c.writeAll(c.fd) {
		switch code := runtimePollWait(c.pollCtx, 'w'); {
		case code == pollNoError:
		case c.closing.Load() || code == pollErrClosing:
			return c.opError("write", net.ErrClosed)
		case code == pollErrTimeout:
			return c.opError("write", os.ErrDeadlineExceeded)
		default:
			return c.opError("write", errPollerError)
		}
	}
	if c.werr != 0 {
		return c.opError("write", os.NewSyscallError("write", c.werr))
	}
	return nil
}

// setPollDeadline sets an owned socket's deadline for mode ('r', 'w' or
// both, 'r'+'w'), as internal/poll does.
func (c *Conn) setPollDeadline(t time.Time, mode int) error {
	var d int64
	if !t.IsZero() {
		if d = int64(time.Until(t)); d == 0 {
			d = -1 // now: past, not "no deadline"
		}
	}
	c.life.RLock()
	defer c.life.RUnlock()
	if c.gone {
		return c.opError("set deadline", net.ErrClosed)
	}
	runtimePollSetDeadline(c.pollCtx, d, mode)
	return nil
}

// ownedRaw is an owned socket's syscall.RawConn, for Control only.
type ownedRaw struct{ c *Conn }

func (r ownedRaw) Control(f func(fd uintptr)) error {
	r.c.life.RLock()
	defer r.c.life.RUnlock()
	if r.c.gone {
		return r.c.opError("control", net.ErrClosed)
	}
	f(r.c.fd)
	return nil
}

func (r ownedRaw) Read(func(fd uintptr) bool) error  { return syscall.EOPNOTSUPP }
func (r ownedRaw) Write(func(fd uintptr) bool) error { return syscall.EOPNOTSUPP }
