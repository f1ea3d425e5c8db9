package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// Parking: a transaction-mode client that holds no server connection and
// stays quiet gives its read buffer back and waits on the bare socket, so
// that thousands of idle clients cost little (see Session.readHeader).
//
// Which clients are quiet is found by the once-a-second sweep rather than
// by a read deadline on every wait: arming and clearing a deadline around
// each request cost two updates of the runtime's timers per transaction,
// a tenth of the proxy's user time in a routing profile. The sweep asks
// a client that has sat in the same wait since the sweep before (one to
// two seconds) to park, by setting a past read deadline that wakes its
// read; a busy client pays three atomic operations per request.

// The states of parkWait.state.
const (
	notWaiting  int32 = iota
	waitingIdle       // the session goroutine waits for a request, holding no server connection
	askedToPark       // the sweep has set, or is setting, a past read deadline
)

// parkWait is the handshake between the session goroutine, which waits
// for the client's next request, and the sweep, which may interrupt that
// wait. mu orders the sweep's deadline before the session's clearing it.
type parkWait struct {
	mu    sync.Mutex
	state atomic.Int32
	// waits counts waits; seen is the count at the sweep before (the
	// sweep's alone), so that a wait is told from the next one.
	waits atomic.Uint32
	seen  uint32
}

// parkDeadline is the past read deadline that wakes a client's wait.
var parkDeadline = time.Unix(1, 0)

// begin marks the start of a wait the sweep may interrupt.
func (p *parkWait) begin() {
	p.waits.Add(1)
	p.state.Store(waitingIdle)
}

// end marks the end of the wait; asked means the sweep asked the client
// to park, and the read deadline it set has been cleared again. A read
// that timed out then found the client quiet.
func (p *parkWait) end(c *clientConn) (asked bool) {
	if p.state.CompareAndSwap(waitingIdle, notWaiting) {
		return false
	}
	p.mu.Lock()
	_ = c.Conn.SetReadDeadline(time.Time{})
	p.state.Store(notWaiting)
	p.mu.Unlock()
	return true
}

// sweep asks the client to park if it has waited in the same wait since
// the previous sweep. Only the sweep calls it.
func (p *parkWait) sweep(c *clientConn) {
	n := p.waits.Load()
	if p.state.Load() != waitingIdle || n != p.seen {
		p.seen = n
		return
	}
	p.mu.Lock()
	if p.state.CompareAndSwap(waitingIdle, askedToPark) {
		_ = c.Conn.SetReadDeadline(parkDeadline)
	}
	p.mu.Unlock()
}
