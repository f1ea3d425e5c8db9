package rawconn

import (
	"net"
	"syscall"
)

// PeerPID is the process at the other end of a unix socket, as the
// kernel tells it (SO_PEERCRED), also under TLS and this package's Conn;
// 0 for a TCP connection or when the kernel does not say.
func PeerPID(nc net.Conn) int32 {
	if _, ok := nc.LocalAddr().(*net.UnixAddr); !ok {
		return 0
	}
	rc, ok := rawOf(nc)
	if !ok {
		return 0
	}
	var pid int32
	_ = rc.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			pid = cred.Pid
		}
	})
	return pid
}
