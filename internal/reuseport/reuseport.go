package reuseport

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenConfig returns lc that, with share, marks its sockets
// SO_REUSEPORT before they bind.
func ListenConfig(lc net.ListenConfig, share bool) net.ListenConfig {
	if !share {
		return lc
	}
	lc.Control = func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}
	return lc
}

// Listen is net.Listen over TCP, shared when share is set.
func Listen(addr string, share bool) (net.Listener, error) {
	lc := ListenConfig(net.ListenConfig{}, share)
	return lc.Listen(context.Background(), "tcp", addr)
}
