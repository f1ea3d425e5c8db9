package rawconn

import (
	"errors"
	"net"
	"os"
	"reflect"
	_ "unsafe" // for go:linkname
)

// The runtime's poller, used directly.
//
// A read that skips its probe must wait on the poller without first
// clearing its readiness flag, and internal/poll clears it at the start
// of every RawConn.Read. (The proxy once stayed inside one RawConn.Read
// in a coroutine per connection for that: two coroutine switches per
// read, and in lab runs 0.3 to 0.8 µs more of the proxy's CPU per
// transaction than waiting here.) So Read waits on the descriptor
// itself: the reading goroutine parks in the poller and is woken by it.
//
// runtime_pollWait is the runtime's, pushed to internal/poll by name;
// the linker lets others reach it too, as event-loop libraries do. Its
// descriptor is found through the net package's unexported fields by
// reflection, checked by name and type; where they differ (another Go
// release) Wrap finds none and reads probe first, as net.Conn's do.

//go:linkname runtimePollWait internal/poll.runtime_pollWait
func runtimePollWait(ctx uintptr, mode int) int

// The codes runtimePollWait returns (runtime/netpoll.go).
const (
	pollNoError        = 0
	pollErrClosing     = 1
	pollErrTimeout     = 2
	pollErrNotPollable = 3
)

// errPollerError is internal/poll's "not pollable": the poller saw an
// error on a socket whose read shows none.
var errPollerError = errors.New("not pollable")

// pollPath is where the poller descriptor sits in a *net.TCPConn and a
// *net.UnixConn: conn.fd (a *netFD), then pfd.pd.runtimeCtx.
var pollPath = findPollPath()

type fieldPath struct {
	toFD, toCtx []int // field indexes: conn to its *netFD, netFD to the descriptor
}

func findPollPath() map[reflect.Type]fieldPath {
	out := map[reflect.Type]fieldPath{}
	for _, t := range []reflect.Type{reflect.TypeFor[net.TCPConn](), reflect.TypeFor[net.UnixConn]()} {
		fd, ok := t.FieldByName("fd")
		if !ok || fd.Type.Kind() != reflect.Pointer || fd.Type.Elem().String() != "net.netFD" {
			continue
		}
		nfd := fd.Type.Elem()
		pfd, ok := nfd.FieldByName("pfd")
		if !ok || pfd.Type.String() != "poll.FD" {
			continue
		}
		pd, ok := pfd.Type.FieldByName("pd")
		if !ok || pd.Type.String() != "poll.pollDesc" {
			continue
		}
		ctx, ok := pd.Type.FieldByName("runtimeCtx")
		if !ok || ctx.Type.Kind() != reflect.Uintptr {
			continue
		}
		toCtx := append(append(append([]int{}, pfd.Index...), pd.Index...), ctx.Index...)
		out[reflect.PointerTo(t)] = fieldPath{toFD: fd.Index, toCtx: toCtx}
	}
	return out
}

// pollCtxOf is the poller descriptor of nc's socket, or 0.
func pollCtxOf(nc net.Conn) uintptr {
	v := reflect.ValueOf(nc)
	p, ok := pollPath[v.Type()]
	if !ok || v.IsNil() {
		return 0
	}
	fd := v.Elem().FieldByIndex(p.toFD)
	if fd.IsNil() {
		return 0
	}
	return uintptr(fd.Elem().FieldByIndex(p.toCtx).Uint())
}

// readPolled is Read for a connection whose poller descriptor is known;
// c.rmu is held. After a read that drained the socket it waits without a
// probe, under the safety deadline of deadline.go.
func (c *Conn) readPolled(b []byte) (int, error) {
	c.rbuf = b
	defer func() { c.rbuf = nil }()
	probe := !c.drained
	if !probe {
		c.armSafety()
	}
	for {
		if probe {
			r, again := c.readOnce(c.fd)
			if !again {
				c.drained = r.err == nil && r.n < len(b)
				if r.err != nil && c.closing.Load() {
					return 0, c.opError("read", net.ErrClosed)
				}
				return r.n, r.err
			}
		}
		c.drained = false
		switch code := runtimePollWait(c.pollCtx, 'r'); {
		case code == pollNoError:
			probe = true
		case c.closing.Load() || code == pollErrClosing:
			return 0, c.opError("read", net.ErrClosed)
		case code == pollErrTimeout:
			err := c.opError("read", os.ErrDeadlineExceeded)
			if !c.safetyExpired(err) {
				return 0, err
			}
			probe = true
		case code == pollErrNotPollable && !probe:
			// An error event: the probe reads what it is.
			probe = true
		default:
			// An error event that a read does not show.
			return 0, c.opError("read", errPollerError)
		}
	}
}
