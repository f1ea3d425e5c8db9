//go:build !linux

package rawconn

import "net"

// PeerPID is 0 where the kernel's peer credentials are not read.
func PeerPID(net.Conn) int32 { return 0 }

// PeerUID is not known where the kernel's peer credentials are not read.
func PeerUID(net.Conn) (uint32, bool) { return 0, false }
