package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

const (
	magic        = "PGNJSEAL"
	version      = 1
	headerSize   = 8 + 1 + 4 + 8 + 32 + 4
	finalBit     = 1 << 31
	tagSize      = 16
	maxChunkSize = 64 << 20
	// DefaultChunkSize trades per-chunk overhead (20 bytes, one seal)
	// against the memory held per stream.
	DefaultChunkSize = 1 << 20
)

// ErrWrongKey means the file was sealed with another key.
type ErrWrongKey struct{ FileKeyID, KeyID string }

func (e *ErrWrongKey) Error() string {
	return fmt.Sprintf("wrong backup key: the file was sealed with key %s, the configured key is %s", e.FileKeyID, e.KeyID)
}

// ErrTruncated means the stream ended before its final chunk.
var ErrTruncated = errors.New("truncated: the stream ends before its final chunk")

// ErrAuth means a chunk failed authentication: the bytes were changed.
type ErrAuth struct{ Chunk uint64 }

func (e *ErrAuth) Error() string {
	return fmt.Sprintf("chunk %d failed AES-GCM authentication (tampered or corrupt)", e.Chunk)
}

// ErrFormat is a malformed header or chunk frame.
type ErrFormat struct{ Msg string }

func (e *ErrFormat) Error() string { return "not a valid sealed stream: " + e.Msg }

type header [headerSize]byte

func (h *header) keyID() []byte       { return h[13:21] }
func (h *header) salt() []byte        { return h[21:53] }
func (h *header) noncePrefix() []byte { return h[53:57] }
func (h *header) chunkSize() int      { return int(binary.BigEndian.Uint32(h[9:13])) }

func newAEAD(k *Key, h *header) (cipher.AEAD, error) {
	block, err := aes.NewCipher(k.derive(h.salt(), "pgninja sealed stream v1"))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// chunkMeta builds the nonce and additional data for chunk n.
func chunkMeta(h *header, n uint64, final bool, nonce, ad []byte) {
	copy(nonce, h.noncePrefix())
	binary.BigEndian.PutUint64(nonce[4:], n)
	copy(ad, h[:])
	binary.BigEndian.PutUint64(ad[headerSize:], n)
	ad[headerSize+8] = 0
	if final {
		ad[headerSize+8] = 1
	}
}

// Writer seals what is written to it into w. Close writes the final chunk;
// without it a reader reports the stream as truncated.
type Writer struct {
	w     io.Writer
	h     header
	aead  cipher.AEAD
	buf   []byte // plaintext of the chunk being filled
	out   []byte // frame + sealed chunk
	n     uint64
	nonce [12]byte
	ad    [headerSize + 9]byte
	err   error
}

// NewWriter writes the header to w and returns a Writer sealing chunks of
// chunkSize bytes (DefaultChunkSize when 0).
func NewWriter(w io.Writer, k *Key, chunkSize int) (*Writer, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize < 1 || chunkSize > maxChunkSize {
		return nil, fmt.Errorf("chunk size must be in 1..%d", maxChunkSize)
	}
	sw := &Writer{w: w, buf: make([]byte, 0, chunkSize), out: make([]byte, 4, 4+chunkSize+tagSize)}
	copy(sw.h[:8], magic)
	sw.h[8] = version
	binary.BigEndian.PutUint32(sw.h[9:13], uint32(chunkSize))
	copy(sw.h.keyID(), k.id[:])
	if _, err := rand.Read(sw.h[21:57]); err != nil { // salt and nonce prefix
		return nil, err
	}
	aead, err := newAEAD(k, &sw.h)
	if err != nil {
		return nil, err
	}
	sw.aead = aead
	if _, err := w.Write(sw.h[:]); err != nil {
		return nil, err
	}
	return sw, nil
}

func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		n := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
		written += n
		if len(w.buf) == cap(w.buf) {
			if err := w.seal(false); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (w *Writer) seal(final bool) error {
	chunkMeta(&w.h, w.n, final, w.nonce[:], w.ad[:])
	w.out = w.aead.Seal(w.out[:4], w.nonce[:], w.buf, w.ad[:])
	frame := uint32(len(w.out) - 4)
	if final {
		frame |= finalBit
	}
	binary.BigEndian.PutUint32(w.out[:4], frame)
	if _, err := w.w.Write(w.out); err != nil {
		w.err = err
		return err
	}
	w.n++
	w.buf = w.buf[:0]
	return nil
}

// Close seals the final chunk (possibly empty). It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.seal(true); err != nil {
		return err
	}
	w.err = errors.New("sealed: write after Close")
	return nil
}

// Reader opens a sealed stream. Read returns an error, never unauthenticated
// plaintext: each chunk is only handed out once its tag has been checked.
type Reader struct {
	r     io.Reader
	h     header
	aead  cipher.AEAD
	buf   []byte // sealed chunk
	plain []byte // unread plaintext of the current chunk
	n     uint64
	nonce [12]byte
	ad    [headerSize + 9]byte
	done  bool
	err   error
}

// KeyID reads just the header of r and returns the id of the key that
// sealed it.
func KeyID(r io.Reader) (string, error) {
	var h header
	if err := readHeader(r, &h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.keyID()), nil
}

func readHeader(r io.Reader, h *header) error {
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &ErrFormat{"shorter than its header"}
		}
		return err
	}
	if string(h[:8]) != magic {
		return &ErrFormat{"bad magic"}
	}
	if h[8] != version {
		return &ErrFormat{fmt.Sprintf("unknown version %d", h[8])}
	}
	if cs := h.chunkSize(); cs < 1 || cs > maxChunkSize {
		return &ErrFormat{fmt.Sprintf("chunk size %d out of range", cs)}
	}
	return nil
}

// NewReader reads and checks the header; a file sealed with another key
// gives *ErrWrongKey before any data is read.
func NewReader(r io.Reader, k *Key) (*Reader, error) {
	sr := &Reader{r: r}
	if err := readHeader(r, &sr.h); err != nil {
		return nil, err
	}
	if string(sr.h.keyID()) != string(k.id[:]) {
		return nil, &ErrWrongKey{FileKeyID: hex.EncodeToString(sr.h.keyID()), KeyID: k.ID()}
	}
	aead, err := newAEAD(k, &sr.h)
	if err != nil {
		return nil, err
	}
	sr.aead = aead
	sr.buf = make([]byte, 0, sr.h.chunkSize()+tagSize)
	return sr, nil
}

func (r *Reader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		r.err = r.next()
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

func (r *Reader) next() error {
	var frame [4]byte
	if _, err := io.ReadFull(r.r, frame[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrTruncated
		}
		return err
	}
	f := binary.BigEndian.Uint32(frame[:])
	final := f&finalBit != 0
	size := int(f &^ finalBit)
	if size < tagSize || size > cap(r.buf) {
		return &ErrFormat{fmt.Sprintf("chunk %d has impossible length %d", r.n, size)}
	}
	r.buf = r.buf[:size]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrTruncated
		}
		return err
	}
	chunkMeta(&r.h, r.n, final, r.nonce[:], r.ad[:])
	plain, err := r.aead.Open(r.buf[:0], r.nonce[:], r.buf, r.ad[:])
	if err != nil {
		return &ErrAuth{Chunk: r.n}
	}
	r.n++
	r.plain = plain
	if final {
		r.done = true
		var one [1]byte
		if n, _ := io.ReadFull(r.r, one[:]); n > 0 {
			return &ErrFormat{"data after the final chunk"}
		}
	}
	return nil
}
