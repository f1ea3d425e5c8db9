package main

import (
	"iter"
	"syscall"
)

// edgeTriggered is EPOLLET, which package syscall types as a negative int.
const edgeTriggered = 1 << 31

// wait is what a relay coroutine hands the loop when its socket is not
// ready: the descriptor and whether it waits to write (else to read).
type wait struct {
	fd    int
	write bool
}

// coroLoop runs blocking-style relay code as coroutines on one locked
// thread: each direction of a pair is a coroutine that reads and writes
// with raw system calls and, when a socket is not ready, yields to the
// loop, which resumes it when epoll says the socket is.
type coroLoop struct {
	ep      int
	back    syscall.SockaddrInet4
	readers map[int]func() (wait, bool) // by the descriptor each waits on
	writers map[int]func() (wait, bool)
}

func serveCoro(listen, backend string, ready func(string)) error {
	l := &coroLoop{readers: map[int]func() (wait, bool){}, writers: map[int]func() (wait, bool){}}
	return runLoop(listen, backend, ready, func(ep int, back *syscall.SockaddrInet4) { l.ep, l.back = ep, *back },
		l.accept, l.event)
}

// event resumes the coroutines waiting on the socket for what it is
// ready to do.
func (l *coroLoop) event(ev syscall.EpollEvent) {
	fd := int(ev.Fd)
	if ev.Events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
		if next := l.writers[fd]; next != nil {
			delete(l.writers, fd)
			l.resume(next)
		}
	}
	if ev.Events&(syscall.EPOLLIN|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
		if next := l.readers[fd]; next != nil {
			delete(l.readers, fd)
			l.resume(next)
		}
	}
}

// resume runs a coroutine until it waits again, and files it under what
// it waits for; a coroutine that ends has closed its pair.
func (l *coroLoop) resume(next func() (wait, bool)) {
	w, ok := next()
	if !ok {
		return
	}
	if w.write {
		l.writers[w.fd] = next
	} else {
		l.readers[w.fd] = next
	}
}

func (l *coroLoop) accept(lfd int) {
	for {
		cfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		sfd, err := connectBackend(cfd, &l.back)
		if err != nil {
			continue
		}
		for _, fd := range []int{cfd, sfd} {
			// Edge-triggered: a coroutine waits only after a call said
			// EAGAIN, so no readiness is missed, and a socket nobody waits
			// on does not wake the loop again and again.
			_ = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd,
				&syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | edgeTriggered, Fd: int32(fd)})
		}
		// The first direction to end closes both sockets and stops the
		// other, which is waiting in the loop's maps.
		var stops [2]func()
		closed := false
		closePair := func(self int) {
			if closed {
				return
			}
			closed = true
			for _, fd := range []int{cfd, sfd} {
				delete(l.readers, fd)
				delete(l.writers, fd)
				_ = syscall.Close(fd)
			}
			if other := stops[1-self]; other != nil {
				other()
			}
		}
		n0, s0 := iter.Pull(copyCoro(cfd, sfd, func() { closePair(0) }))
		n1, s1 := iter.Pull(copyCoro(sfd, cfd, func() { closePair(1) }))
		stops = [2]func(){s0, s1}
		l.resume(n0)
		l.resume(n1)
	}
}

// copyCoro is plain blocking-style copying from src to dst; only its
// waits differ from io.Copy's.
func copyCoro(src, dst int, closePair func()) iter.Seq[wait] {
	return func(yield func(wait) bool) {
		defer closePair()
		buf := make([]byte, 16<<10)
		for {
			n, e := rawRW(syscall.SYS_READ, src, buf)
			if e == syscall.EAGAIN {
				if !yield(wait{fd: src}) {
					return
				}
				continue
			}
			if e == syscall.EINTR {
				continue
			}
			if e != 0 || n == 0 {
				return
			}
			for b := buf[:n]; len(b) > 0; {
				w, e := rawWriteAll(dst, b)
				b = b[w:]
				if e == syscall.EAGAIN {
					if !yield(wait{fd: dst, write: true}) {
						return
					}
					continue
				}
				if e != 0 {
					return
				}
			}
		}
	}
}
