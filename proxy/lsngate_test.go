package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ai-ninja/pgninja/pool"
)

// lsnGate stands between the proxy and the real server and, once armed,
// holds back the answer to the proxy's WAL-position read until released:
// a test can then see what the client has been told meanwhile.
type lsnGate struct {
	armed    atomic.Bool
	once     sync.Once
	reached  chan struct{} // closed when an answer is held
	released chan struct{}
	release  func()
}

// newLSNGate returns a gate that opens for good when the test ends, if
// not before, so that the proxy can shut down. Call it before starting
// the proxy: cleanups run last first.
func newLSNGate(t testing.TB) *lsnGate {
	g := &lsnGate{reached: make(chan struct{}), released: make(chan struct{})}
	g.release = sync.OnceFunc(func() { close(g.released) })
	t.Cleanup(g.release)
	return g
}

// dial opens a real server connection whose reads pass through the gate.
func (g *lsnGate) dial(ctx context.Context, t pool.Target) (*pool.Conn, error) {
	c, err := pool.Dial(ctx, t)
	if err != nil {
		return nil, err
	}
	c.R = bufio.NewReader(&gatedReader{g: g, src: c.R})
	return c, nil
}

// gatedReader hands the server's messages on one at a time, and stops
// before the RowDescription of the proxy's WAL-position read while armed.
type gatedReader struct {
	g       *lsnGate
	src     io.Reader
	pending []byte
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if len(r.pending) == 0 {
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(r.src, hdr); err != nil {
			return 0, err
		}
		body := make([]byte, int(binary.BigEndian.Uint32(hdr[1:]))-4)
		if _, err := io.ReadFull(r.src, body); err != nil {
			return 0, err
		}
		if r.g.armed.Load() && hdr[0] == 'T' && bytes.Contains(body, []byte("pgninja_commit_lsn")) {
			r.g.once.Do(func() { close(r.g.reached) })
			<-r.g.released
		}
		r.pending = append(hdr, body...)
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}
