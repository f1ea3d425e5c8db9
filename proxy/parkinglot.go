package proxy

import (
	"errors"
	"os"
	"sync"
	"syscall"

	"github.com/ai-ninja/pgninja/internal/rawconn"
)

// parkingLot holds idle clients without a goroutine each.
//
// A parked client (see park.go) used to keep its session goroutine blocked
// in a one-byte read: its stack, about 8 KB after the garbage collector
// shrank it, was more than half of what an idle client cost. A client
// parked here has its socket in an epoll set of the lot's own and no
// goroutine at all; when the socket becomes readable (data, or the
// client's end closing) the lot hands the session to a worker, which goes
// on with the session's loop where it stopped.
//
// The lot's epoll descriptor is itself waited on through the runtime's
// poller, so the lot needs no thread of its own.
type parkingLot struct {
	ep     *os.File
	rc     syscall.RawConn // ep's, through which it is polled and controlled
	resume func(*Session)

	mu     sync.Mutex
	next   uint64
	parked map[uint64]*Session // by token (Session.parkToken)
	closed bool
}

// errParked unwinds a session goroutine whose client the lot now holds.
var errParked = errors.New("pgninja: client parked")

func newParkingLot(resume func(*Session)) (*parkingLot, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that os.NewFile gives it to the runtime's poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	ep := os.NewFile(uintptr(fd), "pgninja-parking-lot")
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, err
	}
	l := &parkingLot{ep: ep, rc: rc, resume: resume, parked: map[uint64]*Session{}}
	go l.run()
	return l, nil
}

// park puts s, whose client's socket is fd, in the lot: resume is called
// with it once, when fd becomes readable or wake is called for s. Nothing
// of the session's may be touched by its goroutine after park returns
// without error: the resumption may already run.
func (l *parkingLot) park(s *Session, fd int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return os.ErrClosed
	}
	l.next++
	token := l.next
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT}
	putToken(&ev, token)
	var err error
	if cerr := l.control(func(ep uintptr) {
		err = syscall.EpollCtl(int(ep), syscall.EPOLL_CTL_ADD, fd, &ev)
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.parked[token] = s
	s.parkToken = token
	return nil
}

// wake takes s out of the lot and resumes it, as if its client had sent
// something: for a session about to be thrown out, called while its
// socket is still open. It reports whether s was parked.
func (l *parkingLot) wake(s *Session) bool {
	l.mu.Lock()
	token := s.parkToken
	l.mu.Unlock()
	if token == 0 {
		return false
	}
	return l.resumeToken(token)
}

// resumeToken resumes the session parked under token, unless it was
// resumed already.
func (l *parkingLot) resumeToken(token uint64) bool {
	l.mu.Lock()
	s, ok := l.parked[token]
	if ok {
		delete(l.parked, token)
		s.parkToken = 0
		// Through the socket, not by the number it was parked under: a
		// socket closed since has left the set by itself, and its number
		// may be another parked client's now.
		_ = rawconn.Control(s.c.Conn, func(fd uintptr) {
			_ = l.control(func(ep uintptr) {
				_ = syscall.EpollCtl(int(ep), syscall.EPOLL_CTL_DEL, int(fd), nil)
			})
		})
	}
	l.mu.Unlock()
	if ok {
		l.resume(s)
	}
	return ok
}

// control runs f with the epoll descriptor, unless the lot is closed.
func (l *parkingLot) control(f func(ep uintptr)) error { return l.rc.Control(f) }

// run resumes the clients whose sockets became readable, until close.
func (l *parkingLot) run() {
	events := make([]syscall.EpollEvent, 128)
	var ready []uint64
	for {
		ready = ready[:0]
		err := l.rc.Read(func(ep uintptr) bool {
			n, err := syscall.EpollWait(int(ep), events, 0)
			if err != nil || n <= 0 {
				return false // nothing yet (EINTR included): wait on the poller
			}
			for _, ev := range events[:n] {
				ready = append(ready, getToken(&ev))
			}
			return true
		})
		if err != nil {
			return // closed
		}
		for _, token := range ready {
			l.resumeToken(token)
		}
	}
}

// close ends the lot. Clients still parked are not resumed: the caller
// closes them first (see Server.Shutdown).
func (l *parkingLot) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	_ = l.ep.Close()
}

// len is the number of parked clients.
func (l *parkingLot) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.parked)
}

// putToken and getToken keep a token in the event's 64 bits of user data,
// which syscall.EpollEvent spells as Fd and Pad.
func putToken(ev *syscall.EpollEvent, token uint64) {
	ev.Fd = int32(uint32(token))
	ev.Pad = int32(uint32(token >> 32))
}

func getToken(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// releaseAfter is how many clients must have parked since the last
// release before the memory they left behind is given back at once.
const releaseAfter = 1000

// releaseGate decides, once a sweep, when to give the system back the
// memory of clients that went quiet: their goroutines' stacks and read
// buffers are freed when they park, but the runtime returns freed memory
// only after its next collection, which for an idle proxy is its forced
// one, up to two minutes on. After a storm of connections (the number
// parked has grown by releaseAfter since the last release, and stood
// still for a sweep) it is worth a collection now. Only the sweep uses it.
type releaseGate struct {
	base, last int
}

func (g *releaseGate) observe(parked int) (release bool) {
	grew := parked - g.last
	g.last = parked
	if parked < g.base {
		g.base = parked
	}
	if parked-g.base >= releaseAfter && grew < releaseAfter/10 {
		g.base = parked
		return true
	}
	return false
}
