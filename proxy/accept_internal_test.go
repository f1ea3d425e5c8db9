package proxy

import (
	"errors"
	"net"
	"os"
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
