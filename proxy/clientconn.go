package proxy

import (
	"bufio"
	"net"
	"sync"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Client buffers are small: an idle client must cost little, and large
// messages are streamed through rather than held.
const clientBufSize = 8 << 10

// clientConn is the client's socket with its buffered reader (owned by the
// session goroutine) and writer (shared with the relay, hence wmu).
type clientConn struct {
	net.Conn
	r       *bufio.Reader
	wmu     sync.Mutex
	w       *bufio.Writer
	maxMsg  int
	scratch []byte
	enc     []byte
}

func newClientConn(c net.Conn, maxMsg int) *clientConn {
	return &clientConn{
		Conn:   c,
		r:      bufio.NewReaderSize(c, clientBufSize),
		w:      bufio.NewWriterSize(c, clientBufSize),
		maxMsg: maxMsg,
	}
}

// Send writes one message and flushes; it implements auth.Conn.
func (c *clientConn) Send(msg wire.Encoder) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.enc = wire.Append(c.enc[:0], msg)
	if _, err := c.w.Write(c.enc); err != nil {
		return err
	}
	return c.w.Flush()
}

// SendAll writes messages in one flush.
func (c *clientConn) SendAll(msgs ...wire.Encoder) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.enc = c.enc[:0]
	for _, m := range msgs {
		c.enc = wire.Append(c.enc, m)
	}
	if _, err := c.w.Write(c.enc); err != nil {
		return err
	}
	return c.w.Flush()
}

// Receive reads one whole message; it implements auth.Conn. The body is
// valid until the next read.
func (c *clientConn) Receive() (byte, []byte, error) {
	typ, n, err := wire.ReadHeader(c.r, c.maxMsg)
	if err != nil {
		return 0, nil, err
	}
	body, err := wire.Body(c.r, n, &c.scratch)
	return typ, body, err
}

// sendError writes err as an ErrorResponse, followed by ReadyForQuery when
// status is non-zero.
func (c *clientConn) sendError(err error, status byte) error {
	if status == 0 {
		return c.Send(pgerr.Response(err))
	}
	return c.SendAll(pgerr.Response(err), &pgproto3.ReadyForQuery{TxStatus: status})
}
