package sealed

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func testKey(t *testing.T, b byte) *Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{b}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func seal(t *testing.T, k *Key, plain []byte, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, k, chunk)
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes exercise chunk boundaries inside one Write.
	for p := plain; len(p) > 0; {
		n := min(len(p), 7)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func open(k *Key, sealed []byte) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(sealed), k)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	const chunk = 64
	for _, size := range []int{0, 1, chunk - 1, chunk, chunk + 1, 3*chunk + chunk/2, 10 * chunk} {
		plain := make([]byte, size)
		rand.Read(plain)
		got, err := open(k, seal(t, k, plain, chunk))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("size %d: plaintext differs", size)
		}
	}
}

func TestSameInputSealsDifferently(t *testing.T) {
	k := testKey(t, 1)
	a, b := seal(t, k, []byte("same"), 0), seal(t, k, []byte("same"), 0)
	if bytes.Equal(a, b) {
		t.Fatal("two files with one key must differ (fresh salt and nonce prefix)")
	}
}

func TestDetectsDamage(t *testing.T) {
	k := testKey(t, 1)
	const chunk = 32
	plain := bytes.Repeat([]byte("0123456789"), 10) // 100 bytes: chunks 32,32,32,4(final)
	good := seal(t, k, plain, chunk)
	frame := 4 + chunk + tagSize
	firstChunk := headerSize
	lastChunk := headerSize + 3*frame

	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	swap := func() []byte {
		b := bytes.Clone(good)
		c0 := bytes.Clone(b[firstChunk : firstChunk+frame])
		copy(b[firstChunk:], b[firstChunk+frame:firstChunk+2*frame])
		copy(b[firstChunk+frame:], c0)
		return b
	}
	earlyFinal := func() []byte {
		// Mark chunk 0 final and drop the rest: the flag is authenticated.
		b := bytes.Clone(good[:firstChunk+frame])
		b[firstChunk] |= 0x80
		return b
	}
	tests := []struct {
		name  string
		data  []byte
		check func(error) bool
	}{
		{"header salt byte", flip(30), isAuth},
		{"ciphertext byte", flip(firstChunk + 10), isAuth},
		{"tag byte", flip(firstChunk + frame - 1), isAuth},
		{"last chunk byte", flip(lastChunk + 5), isAuth},
		{"frame length", flip(firstChunk + 3), func(err error) bool { return isFormat(err) || isAuth(err) || errors.Is(err, ErrTruncated) }},
		{"chunks swapped", swap(), isAuth},
		{"final flag on early chunk", earlyFinal(), isAuth},
		{"final chunk dropped", good[:lastChunk], func(err error) bool { return errors.Is(err, ErrTruncated) }},
		{"cut mid chunk", good[:firstChunk+frame/2], func(err error) bool { return errors.Is(err, ErrTruncated) }},
		{"cut in header", good[:10], isFormat},
		{"trailing bytes", append(bytes.Clone(good), 0), isFormat},
		{"bad magic", flip(0), isFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := open(k, tt.data)
			if err == nil || !tt.check(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func isAuth(err error) bool   { var e *ErrAuth; return errors.As(err, &e) }
func isFormat(err error) bool { var e *ErrFormat; return errors.As(err, &e) }

func TestWrongKeyNamed(t *testing.T) {
	data := seal(t, testKey(t, 1), []byte("secret"), 0)
	_, err := open(testKey(t, 2), data)
	var wk *ErrWrongKey
	if !errors.As(err, &wk) || wk.FileKeyID != testKey(t, 1).ID() {
		t.Fatalf("got %v", err)
	}
	id, err := KeyID(bytes.NewReader(data))
	if err != nil || id != testKey(t, 1).ID() {
		t.Fatalf("KeyID: %q %v", id, err)
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 32)
	want := testKey(t, 0xab).ID()
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"hex", hex.EncodeToString(raw), true},
		{"hex with newline", hex.EncodeToString(raw) + "\n", true},
		{"base64", base64.StdEncoding.EncodeToString(raw), true},
		{"raw url base64", base64.RawURLEncoding.EncodeToString(raw), true},
		{"short", hex.EncodeToString(raw[:16]), false},
		{"junk", "correct horse battery staple", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err %v", err)
			}
			if tt.ok && k.ID() != want {
				t.Fatalf("id %s", k.ID())
			}
		})
	}
}

func TestMAC(t *testing.T) {
	k := testKey(t, 3)
	m := k.MAC([]byte("manifest"))
	if !k.CheckMAC([]byte("manifest"), m) || k.CheckMAC([]byte("manifesT"), m) || testKey(t, 4).CheckMAC([]byte("manifest"), m) {
		t.Fatal("MAC check wrong")
	}
}

func TestLoadKeyMessages(t *testing.T) {
	if _, err := LoadKey("", ""); err == nil || !strings.Contains(err.Error(), EnvKey) {
		t.Fatalf("got %v", err)
	}
	if _, err := LoadKey("zz", ""); err == nil || !strings.Contains(err.Error(), EnvKey) {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkWriter(b *testing.B) {
	k, _ := NewKey(make([]byte, 32))
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	w, _ := NewWriter(io.Discard, k, 0)
	for i := 0; i < b.N; i++ {
		w.Write(buf)
	}
	w.Close()
}
