package proxy

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/jackc/pgx/v5/pgproto3"
)

// clientBufSize is the size of the pooled client buffers.
const clientBufSize = 8 << 10

// Idle clients must cost little, so client buffers live in pools: a
// writer is taken for each burst of output and given back once flushed,
// and a reader is given back while the client sits idle (see
// Session.readHeader).
var (
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, clientBufSize) }}
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, clientBufSize) }}
)

// clientConn is the client's socket with its buffered reader (owned by the
// session goroutine) and writer (shared with the relay, hence wmu).
type clientConn struct {
	net.Conn
	r       *bufio.Reader // nil while parked
	park    parkWait
	src     parkedSource
	out     countingWriter
	wmu     sync.Mutex
	w       *bufio.Writer // nil when nothing is pending
	maxMsg  int
	scratch []byte
	enc     []byte
}

func newClientConn(c net.Conn, maxMsg int) *clientConn {
	cc := &clientConn{Conn: c, maxMsg: maxMsg}
	cc.src.conn = c
	cc.out.w = c
	cc.r = readerPool.Get().(*bufio.Reader)
	cc.r.Reset(&cc.src)
	return cc
}

// parkedSource feeds a reader the byte that woke a parked client, then the
// socket, counting what it reads once count is set (at login).
type parkedSource struct {
	conn  net.Conn
	first byte
	has   bool
	count *atomic.Uint64
}

func (p *parkedSource) Read(b []byte) (int, error) {
	if p.has && len(b) > 0 {
		b[0], p.has = p.first, false
		if p.count != nil {
			p.count.Add(1)
		}
		return 1, nil
	}
	n, err := p.conn.Read(b)
	if p.count != nil && n > 0 {
		p.count.Add(uint64(n))
	}
	return n, err
}

// parkReader gives the read buffer back; only when nothing is buffered.
func (c *clientConn) parkReader() {
	if c.r == nil || c.r.Buffered() > 0 {
		return
	}
	c.r.Reset(nil)
	readerPool.Put(c.r)
	c.r = nil
}

// unparkReader takes a read buffer again, for a client the parking lot
// resumed: its socket has something to read.
func (c *clientConn) unparkReader() {
	c.src.has = false
	c.r = readerPool.Get().(*bufio.Reader)
	c.r.Reset(&c.src)
}

// release gives the read buffer back for good, with whatever it still
// holds, once the session that read from it has ended.
func (c *clientConn) release() {
	if c.r == nil {
		return
	}
	c.r.Reset(nil)
	readerPool.Put(c.r)
	c.r = nil
}

// waitUnpark blocks until the client sends a byte, then takes a reader.
func (c *clientConn) waitUnpark() error {
	var one [1]byte
	if _, err := c.Conn.Read(one[:]); err != nil {
		return err
	}
	c.src.first, c.src.has = one[0], true
	c.r = readerPool.Get().(*bufio.Reader)
	c.r.Reset(&c.src)
	return nil
}

// writer returns the output buffer, taking one from the pool. wmu is held.
func (c *clientConn) writer() *bufio.Writer {
	if c.w == nil {
		c.w = writerPool.Get().(*bufio.Writer)
		c.w.Reset(&c.out)
	}
	return c.w
}

// flush writes out and gives the buffer back. wmu is held.
func (c *clientConn) flush() error {
	if c.w == nil {
		return nil
	}
	err := c.w.Flush()
	if err == nil {
		c.w.Reset(nil)
		writerPool.Put(c.w)
		c.w = nil
	}
	return err
}

// discardPending drops output not yet flushed: the part of an answer held
// back from a request that is being re-run elsewhere.
func (c *clientConn) discardPending() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.w != nil {
		c.w.Reset(nil)
		writerPool.Put(c.w)
		c.w = nil
	}
}

// Send writes one message and flushes; it implements auth.Conn.
func (c *clientConn) Send(msg wire.Encoder) error {
	return c.SendAll(msg)
}

// SendRaw writes encoded messages and flushes.
func (c *clientConn) SendRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.writer().Write(b); err != nil {
		return err
	}
	return c.flush()
}

// SendAll writes messages in one flush.
func (c *clientConn) SendAll(msgs ...wire.Encoder) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.enc = c.enc[:0]
	for _, m := range msgs {
		c.enc = wire.Append(c.enc, m)
	}
	if _, err := c.writer().Write(c.enc); err != nil {
		return err
	}
	if cap(c.enc) > 64<<10 {
		c.enc = nil
	}
	return c.flush()
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
