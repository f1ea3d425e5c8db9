package rawconn

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// accepted returns the server end of a connection to a new listener on
// network, dialled from this process.
func accepted(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPeerPID(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	self := int32(os.Getpid())
	if runtime.GOOS != "linux" {
		self = 0 // peer credentials are read on linux only
	}
	for _, tt := range []struct {
		name string
		conn func(t *testing.T) net.Conn
		want int32
	}{
		{"tcp", func(t *testing.T) net.Conn { return accepted(t, "tcp", "127.0.0.1:0") }, 0},
		{"unix", func(t *testing.T) net.Conn { return accepted(t, "unix", sock+"1") }, self},
		{"unix, raw reads", func(t *testing.T) net.Conn { return Wrap(accepted(t, "unix", sock+"2")) }, self},
		{"unix, raw reads under TLS", func(t *testing.T) net.Conn {
			return tls.Server(Wrap(accepted(t, "unix", sock+"3")), &tls.Config{})
		}, self},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.conn(t)
			if got := PeerPID(c); got != tt.want {
				t.Errorf("PeerPID = %d, want %d", got, tt.want)
			}
			uid, ok := PeerUID(c)
			if wantOK := tt.want != 0; ok != wantOK || (ok && uid != uint32(os.Getuid())) {
				t.Errorf("PeerUID = %d, %v; want %d, %v", uid, ok, os.Getuid(), wantOK)
			}
		})
	}
}
