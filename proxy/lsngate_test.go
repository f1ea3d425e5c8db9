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
	"github.com/jackc/pgx/v5/pgproto3"
)

// lsnGate stands between the proxy and the real server and, once armed,
// holds back the answer to the proxy's WAL-position read until released:
// a test can then see what the client has been told meanwhile.
type lsnGate struct {
	armed atomic.Bool
	// cut: an armed gate loses the server connection there instead, as
	// when the server stops between a commit and the read behind it
	// (after a FATAL error, as a fast shutdown sends, with fatal).
	cut      atomic.Bool
	fatal    atomic.Bool
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
	cut     bool
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if len(r.pending) == 0 && r.cut {
		return 0, io.ErrUnexpectedEOF
	}
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
			if r.g.cut.Load() {
				r.cut = true
				if !r.g.fatal.Load() {
					return 0, io.ErrUnexpectedEOF
				}
				hdr, body = nil, adminShutdown
			} else {
				<-r.g.released
			}
		}
		r.pending = append(append(r.pending, hdr...), body...)
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// adminShutdown is the FATAL error a server's fast shutdown sends.
var adminShutdown, _ = (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01",
	Message: "terminating connection due to administrator command"}).Encode(nil)
