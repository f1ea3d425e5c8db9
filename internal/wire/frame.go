package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"iter"

	"github.com/ai-ninja/pgninja/internal/pgerr"
)

// HeaderLen is the size of a message's type byte and length word.
const HeaderLen = 5

// ReadHeader consumes the next message header and returns its type and the
// length of its body. A length below 4 or a body above max is a protocol
// violation; the body is left unread.
func ReadHeader(r *bufio.Reader, max int) (typ byte, bodyLen int, err error) {
	h, err := r.Peek(HeaderLen)
	if err != nil {
		return 0, 0, err
	}
	typ = h[0]
	n := binary.BigEndian.Uint32(h[1:5])
	if n < 4 || int64(n)-4 > int64(max) {
		// The wire's Int32 is signed: a client that sent -5 reads -5 back.
		return typ, 0, pgerr.Fatal(pgerr.ProtocolViolation,
			"invalid message length %d for message type %q (limit %d)", int32(n), typ, max)
	}
	_, _ = r.Discard(HeaderLen)
	return typ, int(n) - 4, nil
}

// Body returns the next n bytes. When they fit in r's buffer the returned
// slice aliases it and is valid only until the next read; otherwise they
// are read into scratch (grown as needed). Either way the bytes are consumed.
func Body(r *bufio.Reader, n int, scratch *[]byte) ([]byte, error) {
	if n <= r.Size() {
		b, err := r.Peek(n)
		if err != nil {
			return nil, unexpected(err)
		}
		_, _ = r.Discard(n)
		return b, nil
	}
	if cap(*scratch) < n {
		*scratch = make([]byte, n)
	}
	b := (*scratch)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, unexpected(err)
	}
	return b, nil
}

// CopyBody moves n body bytes from r to w without an intermediate copy.
func CopyBody(w *bufio.Writer, r *bufio.Reader, n int) error {
	for n > 0 {
		avail := r.Buffered()
		if avail == 0 {
			if _, err := r.Peek(1); err != nil {
				return unexpected(err)
			}
			avail = r.Buffered()
		}
		if avail > n {
			avail = n
		}
		b, _ := r.Peek(avail)
		if _, err := w.Write(b); err != nil {
			return err
		}
		_, _ = r.Discard(avail)
		n -= avail
	}
	return nil
}

// SkipBody discards n body bytes.
func SkipBody(r *bufio.Reader, n int) error {
	_, err := r.Discard(n)
	return unexpected(err)
}

// WriteHeader writes a message header for a body of n bytes. It builds
// the header in w's own buffer: a local array handed to Write would
// escape to the heap, one allocation per forwarded message.
func WriteHeader(w *bufio.Writer, typ byte, n int) error {
	if w.Available() < HeaderLen {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	h := append(w.AvailableBuffer(), typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(h[1:], uint32(n+4))
	_, err := w.Write(h)
	return err
}

// Bodies yields the type and body of each whole message in buf, a run of
// messages the proxy assembled itself (so every length is known good).
func Bodies(buf []byte) iter.Seq2[byte, []byte] {
	return func(yield func(byte, []byte) bool) {
		for len(buf) >= HeaderLen {
			n := int(binary.BigEndian.Uint32(buf[1:HeaderLen])) + 1
			if !yield(buf[0], buf[HeaderLen:n]) {
				return
			}
			buf = buf[n:]
		}
	}
}

// AppendHeader appends a message header for a body of n bytes to dst.
func AppendHeader(dst []byte, typ byte, n int) []byte {
	return append(dst, typ, byte((n+4)>>24), byte((n+4)>>16), byte((n+4)>>8), byte(n+4))
}

// Encoder is any pgproto3 message.
type Encoder interface {
	Encode(dst []byte) ([]byte, error)
}

// Append encodes msg onto dst.
func Append(dst []byte, msg Encoder) []byte {
	out, err := msg.Encode(dst)
	if err != nil {
		// pgproto3 only fails on values that overflow the protocol's
		// length fields, which pgninja never builds.
		panic(fmt.Sprintf("wire: encode %T: %v", msg, err))
	}
	return out
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
