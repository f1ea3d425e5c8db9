package pool

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/ai-ninja/pgninja/internal/rawconn"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Server-side buffers are larger than client-side ones: there are few
// server connections and they carry every result set.
const serverBufSize = 32 << 10

// Conn is one hijacked server connection. Between Acquire and Release it
// belongs to exactly one session, which reads and writes R and W directly.
type Conn struct {
	net.Conn
	R *bufio.Reader
	W *bufio.Writer

	// PID and Secret are the server's BackendKeyData, for cancel requests.
	PID    uint32
	Secret []byte
	// Addr is host:port of the server, where cancel requests go.
	Addr string
	// Params are the ParameterStatus values the server reported at startup.
	Params map[string]string
	// TxStatus is the status from the last ReadyForQuery seen.
	TxStatus byte

	// State belongs to the session layer: what session state (parameters,
	// prepared statements) this server connection carries. The pool only
	// clears it on reset: with its Reset method when it has one (so that
	// it can be reused), else by dropping it.
	State any

	pool *Pool
	// leased is true while a caller holds the connection.
	leased    atomic.Bool
	created   time.Time
	idleSince time.Time
	// gen is the pool's target generation it was opened for.
	gen     uint64
	broken  bool
	scratch []byte
}

// lend marks the connection as handed out; lending one already out would
// give it to two clients at once.
func (c *Conn) lend() {
	if !c.leased.CompareAndSwap(false, true) {
		panic("pool: connection lent twice")
	}
}

// quiet reports whether an idle connection has nothing to read. A server
// that shut down or terminated the backend has sent a FATAL error and
// closed; lending that connection would fail a request that was never in
// flight, or hand the client a stale error. The check peeks at the socket
// without waiting.
func (c *Conn) quiet() bool {
	if c.R.Buffered() > 0 {
		return false
	}
	pending, ok := rawconn.Pending(c.Conn)
	return !ok || !pending
}

// dueCheck reports whether an idle connection has sat longer than after,
// so that lending it runs a check first.
func (c *Conn) dueCheck(now time.Time, after time.Duration) bool {
	return now.Sub(c.idleSince) > after
}

// MarkBroken records that the connection must not be reused: its protocol
// state is unknown or its socket failed.
func (c *Conn) MarkBroken() { c.broken = true }

// Broken reports whether MarkBroken was called.
func (c *Conn) Broken() bool { return c.broken }

// Pool returns the pool the connection belongs to.
func (c *Conn) Pool() *Pool { return c.pool }

func newConn(hj *pgconn.HijackedConn, addr string) *Conn {
	now := time.Now()
	params := make(map[string]string, len(hj.ParameterStatuses))
	for k, v := range hj.ParameterStatuses {
		params[k] = v
	}
	nc := rawconn.Wrap(hj.Conn)
	return &Conn{
		Conn:      nc,
		R:         bufio.NewReaderSize(nc, serverBufSize),
		W:         bufio.NewWriterSize(nc, serverBufSize),
		PID:       hj.PID,
		Secret:    hj.SecretKey,
		Addr:      addr,
		Params:    params,
		TxStatus:  hj.TxStatus,
		created:   now,
		idleSince: now,
	}
}

// Exec runs sql with the simple protocol and waits for ReadyForQuery. It is
// for the proxy's own housekeeping (reset, liveness), never for client
// traffic, and returns the first server error.
// Every session's reset runs through it, so it allocates nothing.
func (c *Conn) Exec(ctx context.Context, sql string) error {
	var failed [1]error
	if err := c.execInto(ctx, []string{sql}, failed[:]); err != nil {
		return err
	}
	return failed[0]
}

// ExecEach runs each statement as a simple query of its own, all sent in
// one write, so that one failing does not stop the rest, and returns each
// one's first server error (nil when it succeeded). err is a failure of
// the connection itself, which is then broken.
func (c *Conn) ExecEach(ctx context.Context, stmts []string) (failed []error, err error) {
	failed = make([]error, len(stmts))
	if err := c.execInto(ctx, stmts, failed); err != nil {
		return nil, err
	}
	return failed, nil
}

// execInto is ExecEach with failed given, one slot per statement.
func (c *Conn) execInto(ctx context.Context, stmts []string, failed []error) error {
	if c.deadline(ctx) {
		defer c.SetDeadline(time.Time{})
	}
	buf := c.scratch[:0]
	for _, sql := range stmts {
		buf = wire.Append(buf, &pgproto3.Query{String: sql})
	}
	if err := c.send(buf); err != nil {
		return err
	}
	for i := range stmts {
		var err error
		if failed[i], err = c.untilReady(nil); err != nil {
			c.broken = true
			return err
		}
	}
	return nil
}

// deadline applies ctx's deadline, if it has one, to the socket and
// reports whether it did (the caller then lifts it).
func (c *Conn) deadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	if ok {
		_ = c.SetDeadline(dl)
	}
	return ok
}

// send writes and flushes buf; a failure breaks the connection.
func (c *Conn) send(buf []byte) error {
	_, err := c.W.Write(buf)
	if err == nil {
		err = c.W.Flush()
	}
	if err != nil {
		c.broken = true
	}
	return err
}

// untilReady reads one request's answer up to its ReadyForQuery and
// returns the first server error in it. Other messages are handed to
// other, when given, and skipped.
func (c *Conn) untilReady(other func(typ byte, body []byte)) (firstErr, err error) {
	for {
		typ, n, err := wire.ReadHeader(c.R, 1<<30)
		if err != nil {
			return nil, err
		}
		body, err := wire.Body(c.R, n, &c.scratch)
		if err != nil {
			return nil, err
		}
		switch typ {
		default:
			if other != nil {
				other(typ, body)
			}
		case 'E':
			if firstErr == nil {
				var er pgproto3.ErrorResponse
				if err := er.Decode(body); err != nil {
					return nil, err
				}
				firstErr = pgconn.ErrorResponseToPgError(&er)
			}
		case 'Z':
			if len(body) != 1 {
				return nil, fmt.Errorf("malformed ReadyForQuery")
			}
			c.TxStatus = body[0]
			return firstErr, nil
		}
	}
}

// Describe sends parse (a Parse message), a Describe of the statement it
// makes (the unnamed one, whose name parse must give) and a Sync, and
// returns the statement's RowDescription or NoData: its type and a copy
// of its body. srvErr is the server's refusal of the Parse; err is a
// failure of the connection itself, which is then broken.
func (c *Conn) Describe(ctx context.Context, parse []byte) (typ byte, desc []byte, srvErr, err error) {
	if c.deadline(ctx) {
		defer c.SetDeadline(time.Time{})
	}
	buf := append(c.scratch[:0], parse...)
	buf = wire.Append(buf, &pgproto3.Describe{ObjectType: 'S'})
	buf = wire.Append(buf, &pgproto3.Sync{})
	if err := c.send(buf); err != nil {
		return 0, nil, nil, err
	}
	srvErr, err = c.untilReady(func(t byte, body []byte) {
		if t == 'T' || t == 'n' {
			typ, desc = t, append([]byte(nil), body...)
		}
	})
	if err != nil {
		c.broken = true
		return 0, nil, nil, err
	}
	return typ, desc, srvErr, nil
}
