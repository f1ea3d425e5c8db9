package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/jackc/pgx/v5/pgproto3"
)

func TestFramingAcrossReads(t *testing.T) {
	var stream []byte
	stream = Append(stream, &pgproto3.Query{String: "select 1"})
	big := bytes.Repeat([]byte("x"), 10000)
	stream = Append(stream, &pgproto3.CopyData{Data: big})
	stream = Append(stream, &pgproto3.Sync{})

	// One byte per Read: a message must never be taken for a TCP read.
	r := bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(stream)), 16)
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	var scratch []byte
	for _, want := range []struct {
		typ byte
		n   int
	}{{'Q', 9}, {'d', 10000}, {'S', 0}} {
		typ, n, err := ReadHeader(r, 1<<20)
		if err != nil || typ != want.typ || n != want.n {
			t.Fatalf("header: %c %d %v, want %c %d", typ, n, err, want.typ, want.n)
		}
		if typ == 'd' {
			if err := CopyBody(w, r, n); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := Body(r, n, &scratch); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	if !bytes.Equal(out.Bytes(), big) {
		t.Fatal("copied body differs")
	}
	if _, _, err := ReadHeader(r, 1<<20); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestReadHeaderRejectsBadLengths(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		says string // the length as the message reports it
	}{
		{"2GB", []byte{'Q', 0x7f, 0xff, 0xff, 0xff}, "length 2147483647 "},
		{"below 4", []byte{'Q', 0, 0, 0, 3}, "length 3 "},
		{"negative", []byte{'Q', 0xff, 0xff, 0xff, 0xfb}, "length -5 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadHeader(bufio.NewReader(bytes.NewReader(tt.in)), 1<<20)
			var pe *pgerr.Error
			if !errors.As(err, &pe) || pe.Code != pgerr.ProtocolViolation {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(pe.Message, tt.says) {
				t.Fatalf("message %q does not say %q", pe.Message, tt.says)
			}
		})
	}
}

func TestBodyTruncated(t *testing.T) {
	r := bufio.NewReaderSize(bytes.NewReader([]byte("abc")), 16)
	var s []byte
	if _, err := Body(r, 10, &s); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v", err)
	}
	r = bufio.NewReaderSize(bytes.NewReader([]byte("abc")), 16)
	if _, err := Body(r, 100, &s); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("big: got %v", err)
	}
}

func TestBodies(t *testing.T) {
	var buf []byte
	buf = Append(buf, &pgproto3.Parse{Query: "select 1"})
	buf = Append(buf, &pgproto3.Sync{})
	buf = Append(buf, &pgproto3.Query{String: "select 2"})
	type msg struct {
		typ  byte
		body string
	}
	var got []msg
	for typ, body := range Bodies(buf) {
		got = append(got, msg{typ, string(body)})
	}
	want := []msg{{'P', "\x00select 1\x00\x00\x00"}, {'S', ""}, {'Q', "select 2\x00"}}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d: got %q, want %q", i, got[i], want[i])
		}
	}
	// Stopping early stops.
	n := 0
	for range Bodies(buf) {
		n++
		break
	}
	if n != 1 {
		t.Fatalf("range went on after break: %d", n)
	}
}

// TestWriteHeader: the header is framed right whether or not it fits in
// what is left of the buffer, and writing it allocates nothing (it runs
// once per forwarded message).
func TestWriteHeader(t *testing.T) {
	for _, room := range []int{64, 3} {
		var out bytes.Buffer
		w := bufio.NewWriterSize(&out, 64)
		_, _ = w.Write(make([]byte, 64-room))
		if err := WriteHeader(w, 'D', 10); err != nil {
			t.Fatal(err)
		}
		_ = w.Flush()
		got := out.Bytes()[64-room:]
		if want := []byte{'D', 0, 0, 0, 14}; !bytes.Equal(got, want) {
			t.Fatalf("room %d: header %v, want %v", room, got, want)
		}
	}
	w := bufio.NewWriterSize(io.Discard, 4096)
	if n := testing.AllocsPerRun(100, func() { _ = WriteHeader(w, 'D', 10) }); n != 0 {
		t.Fatalf("WriteHeader allocates %v times", n)
	}
}
