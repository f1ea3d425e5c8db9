package main

import (
	"fmt"
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// end is one socket of a relayed pair. pend holds what its peer sent that
// it could not take yet; while it does, the peer is not read.
type end struct {
	fd, peer int
	pend     []byte
}

type loop struct {
	ep   int
	ends map[int]*end
	buf  []byte
	back syscall.SockaddrInet4
}

// pollTimeoutMS bounds each wait, though a signal (the runtime preempts
// this goroutine like any other) ends a wait early too.
const pollTimeoutMS = 100

func serveEpoll(listen, backend string, ready func(string)) error {
	l := &loop{ends: map[int]*end{}, buf: make([]byte, 64<<10)}
	return runLoop(listen, backend, ready, func(ep int, back *syscall.SockaddrInet4) { l.ep, l.back = ep, *back },
		l.accept, l.event)
}

func (l *loop) event(ev syscall.EpollEvent) {
	fd := int(ev.Fd)
	en := l.ends[fd]
	switch {
	case en == nil:
	case ev.Events&syscall.EPOLLOUT != 0 && len(en.pend) > 0:
		l.flush(en)
	default:
		l.forward(en)
	}
}

// runLoop serves on one locked thread: it opens the listening socket and
// the epoll set (setup learns the set and the backend's address), then
// hands each ready listening socket to accept and every other event to
// event. The loop never parks: its thread is its own, and the waits,
// reads and writes are raw system calls, so the scheduler never hands its
// P to another thread (only accepting and connecting go through the
// syscall package's blocking path).
func runLoop(listen, backend string, ready func(string), setup func(ep int, back *syscall.SockaddrInet4),
	accept func(lfd int), event func(syscall.EpollEvent)) error {
	runtime.LockOSThread()
	lfd, ep, back, err := openLoop(listen, backend, ready)
	if err != nil {
		return err
	}
	setup(ep, back)
	evs := make([]syscall.EpollEvent, 128)
	for {
		got, err := waitEvents(ep, evs)
		if err != nil {
			return err
		}
		for _, ev := range got {
			if int(ev.Fd) == lfd {
				accept(lfd)
			} else {
				event(ev)
			}
		}
	}
}

// openLoop opens the listening socket and the epoll set watching it, and
// tells ready the address it listens on.
func openLoop(listen, backend string, ready func(string)) (lfd, ep int, back *syscall.SockaddrInet4, err error) {
	la, err := inet4(listen)
	if err != nil {
		return 0, 0, nil, err
	}
	if back, err = inet4(backend); err != nil {
		return 0, 0, nil, err
	}
	lfd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, nil, err
	}
	_ = syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(lfd, la); err != nil {
		return 0, 0, nil, fmt.Errorf("pump: bind %s: %w", listen, err)
	}
	if err := syscall.Listen(lfd, 1024); err != nil {
		return 0, 0, nil, err
	}
	if ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return 0, 0, nil, err
	}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, lfd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return 0, 0, nil, err
	}
	if ready != nil {
		sa, err := syscall.Getsockname(lfd)
		if err != nil {
			return 0, 0, nil, err
		}
		a := sa.(*syscall.SockaddrInet4)
		ready(fmt.Sprintf("%s:%d", net.IP(a.Addr[:]), a.Port))
	}
	return lfd, ep, back, nil
}

// connectBackend opens the server connection for the client cfd, or
// closes cfd. The connect blocks the loop for one round trip; the bench
// connects its clients once, before it measures.
func connectBackend(cfd int, back *syscall.SockaddrInet4) (int, error) {
	sfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err == nil {
		if err = syscall.Connect(sfd, back); err == nil {
			err = syscall.SetNonblock(sfd, true)
		}
		if err != nil {
			_ = syscall.Close(sfd)
		}
	}
	if err != nil {
		_ = syscall.Close(cfd)
		return 0, err
	}
	for _, fd := range []int{cfd, sfd} {
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	}
	return sfd, nil
}

func (l *loop) watch(op, fd int, events uint32) error {
	return syscall.EpollCtl(l.ep, op, fd, &syscall.EpollEvent{Events: events, Fd: int32(fd)})
}

func (l *loop) accept(lfd int) {
	for {
		cfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: all taken
		}
		sfd, err := connectBackend(cfd, &l.back)
		if err != nil {
			continue
		}
		l.ends[cfd] = &end{fd: cfd, peer: sfd}
		l.ends[sfd] = &end{fd: sfd, peer: cfd}
		if l.watch(syscall.EPOLL_CTL_ADD, cfd, syscall.EPOLLIN) != nil || l.watch(syscall.EPOLL_CTL_ADD, sfd, syscall.EPOLLIN) != nil {
			l.closePair(l.ends[cfd])
		}
	}
}

// forward reads what en has and writes it to its peer; what the peer
// cannot take waits in the peer's pend, and en is not read until it has.
func (l *loop) forward(en *end) {
	peer := l.ends[en.peer]
	if len(peer.pend) > 0 {
		return // an event of the same batch as the write that filled it
	}
	n, e := rawRW(syscall.SYS_READ, en.fd, l.buf)
	if e == syscall.EAGAIN || e == syscall.EINTR {
		return
	}
	if e != 0 || n == 0 {
		l.closePair(en)
		return
	}
	w, e := rawWriteAll(peer.fd, l.buf[:n])
	if e != 0 && e != syscall.EAGAIN {
		l.closePair(en)
		return
	}
	if w < n {
		peer.pend = append(peer.pend[:0], l.buf[w:n]...)
		if l.watch(syscall.EPOLL_CTL_MOD, en.fd, 0) != nil || l.watch(syscall.EPOLL_CTL_MOD, peer.fd, syscall.EPOLLIN|syscall.EPOLLOUT) != nil {
			l.closePair(en)
		}
	}
}

// flush writes en's pending bytes; once they are out, its peer is read
// again.
func (l *loop) flush(en *end) {
	w, e := rawWriteAll(en.fd, en.pend)
	if e != 0 && e != syscall.EAGAIN {
		l.closePair(en)
		return
	}
	en.pend = en.pend[:copy(en.pend, en.pend[w:])]
	if len(en.pend) > 0 {
		return
	}
	if l.watch(syscall.EPOLL_CTL_MOD, en.fd, syscall.EPOLLIN) != nil || l.watch(syscall.EPOLL_CTL_MOD, en.peer, syscall.EPOLLIN) != nil {
		l.closePair(en)
	}
}

func (l *loop) closePair(en *end) {
	for _, fd := range []int{en.fd, en.peer} {
		delete(l.ends, fd)
		_ = syscall.Close(fd) // also drops it from the epoll set
	}
}

// waitEvents waits for events with a raw epoll_wait, which the scheduler
// never sees, so it cannot hand this thread's P to another meanwhile.
// A wait a signal ended, or that timed out, returns no events.
func waitEvents(ep int, evs []syscall.EpollEvent) ([]syscall.EpollEvent, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(ep), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), pollTimeoutMS, 0, 0)
	switch e {
	case 0:
		return evs[:r], nil
	case syscall.EINTR:
		return nil, nil
	}
	return nil, fmt.Errorf("pump: epoll_wait: %w", e)
}

func rawRW(trap uintptr, fd int, b []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(r), e
}

// rawWriteAll writes until b is out or the socket is full (EAGAIN).
func rawWriteAll(fd int, b []byte) (int, syscall.Errno) {
	done := 0
	for done < len(b) {
		n, e := rawRW(syscall.SYS_WRITE, fd, b[done:])
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return done, e
		}
		done += n
	}
	return done, 0
}

func inet4(addr string) (*syscall.SockaddrInet4, error) {
	a, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, err
	}
	sa := &syscall.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	return sa, nil
}
