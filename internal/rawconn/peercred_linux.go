package rawconn

import (
	"net"
	"syscall"
)

// PeerPID is the process at the other end of a unix socket, as the
// kernel tells it (SO_PEERCRED), also under TLS and this package's Conn;
// 0 for a TCP connection or when the kernel does not say.
func PeerPID(nc net.Conn) int32 {
	cred, ok := peerCred(nc)
	if !ok {
		return 0
	}
	return cred.Pid
}

// PeerUID is the user the process at the other end of a unix socket runs
// as, for peer authentication; ok is false for a TCP connection or when
// the kernel does not say.
func PeerUID(nc net.Conn) (uid uint32, ok bool) {
	cred, ok := peerCred(nc)
	return cred.Uid, ok
}

func peerCred(nc net.Conn) (cred syscall.Ucred, ok bool) {
	if _, unix := nc.LocalAddr().(*net.UnixAddr); !unix {
		return cred, false
	}
	rc, found := rawOf(nc)
	if !found {
		return cred, false
	}
	_ = rc.Control(func(fd uintptr) {
		if c, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			cred, ok = *c, true
		}
	})
	return cred, ok
}
