package proxy

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAcceptRetry: a shortage of descriptors or kernel memory, or a
// timeout, is waited out with a growing pause; anything else ends the
// listener.
func TestAcceptRetry(t *testing.T) {
	acceptErr := func(e error) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", e)}
	}
	for _, tt := range []struct {
		name  string
		err   error
		last  time.Duration
		wait  time.Duration
		retry bool
	}{
		{"out of descriptors, first", acceptErr(syscall.EMFILE), 0, 5 * time.Millisecond, true},
		{"out of descriptors, again", acceptErr(syscall.EMFILE), 5 * time.Millisecond, 10 * time.Millisecond, true},
		{"system out of descriptors", acceptErr(syscall.ENFILE), 400 * time.Millisecond, 800 * time.Millisecond, true},
		{"capped at a second", acceptErr(syscall.ENOBUFS), 800 * time.Millisecond, time.Second, true},
		{"kernel memory", acceptErr(syscall.ENOMEM), time.Second, time.Second, true},
		{"timeout", &net.OpError{Op: "accept", Err: os.ErrDeadlineExceeded}, 0, 5 * time.Millisecond, true},
		{"a broken listener", acceptErr(syscall.EBADF), 0, 0, false},
		{"anything else", errors.New("boom"), 5 * time.Millisecond, 0, false},
	} {
		wait, retry := acceptRetry(tt.err, tt.last)
		if wait != tt.wait || retry != tt.retry {
			t.Errorf("%s: acceptRetry = %v, %v; want %v, %v", tt.name, wait, retry, tt.wait, tt.retry)
		}
	}
}

// flakyListener fails its first Accepts with an error, then hands out
// conns, then reports itself closed.
type flakyListener struct {
	net.Listener
	fails []error
	conns []net.Conn
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if len(l.fails) > 0 {
		err := l.fails[0]
		l.fails = l.fails[1:]
		return nil, err
	}
	if len(l.conns) > 0 {
		c := l.conns[0]
		l.conns = l.conns[1:]
		return c, nil
	}
	return nil, &net.OpError{Op: "accept", Err: net.ErrClosed}
}

// TestAcceptOutlivesADescriptorShortage: the accept loop waits out
// EMFILE and goes on to serve the next client; another error ends it.
func TestAcceptOutlivesADescriptorShortage(t *testing.T) {
	var logged bytes.Buffer
	served := make(chan net.Conn, 1)
	s := &Server{log: slog.New(slog.NewTextHandler(&logged, nil))}
	s.handlers = newWorkers(1, func(nc net.Conn) { served <- nc; s.wg.Done() })
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	start := time.Now()
	if err := s.accept(&flakyListener{fails: []error{emfile, emfile}, conns: []net.Conn{a}}); err != nil {
		t.Fatalf("accept ended with %v, want nil once the listener closed", err)
	}
	if took := time.Since(start); took < 15*time.Millisecond {
		t.Errorf("two shortages waited %v, want at least 5 + 10 ms", took)
	}
	select {
	case nc := <-served:
		if nc != a {
			t.Error("another connection was served")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client after the shortage was not served")
	}
	if n := strings.Count(logged.String(), "too many open files"); n != 2 {
		t.Errorf("%d warnings of the shortage, want 2:\n%s", n, logged.String())
	}
	broken := &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EBADF)}
	if err := s.accept(&flakyListener{fails: []error{broken}}); !errors.Is(err, syscall.EBADF) {
		t.Errorf("a broken listener: accept returned %v, want EBADF", err)
	}
}
