package proxy

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// TestCollectRun: the run takes the buffered extended-query messages up
// to the batch's Sync or Flush, and leaves to collect what it must see
// on its own: a message not all here, one of another kind, one too large,
// and one that takes the request past streamThreshold.
func TestCollectRun(t *testing.T) {
	parse := msg('P', "\x00select 1\x00\x00\x00")
	bind := msg('B', "\x00\x00\x00\x00\x00\x00\x00\x00")
	describe := msg('D', "P\x00")
	execute := msg('E', "\x00\x00\x00\x00\x00")
	sync := msg('S', "")
	flush := msg('H', "")
	big := msg('B', strings.Repeat("x", 100))
	tests := []struct {
		name     string
		held     int // bytes of request collected before
		max      int
		buffered []byte
		wantRun  []byte
		wantLast byte
	}{
		{"batch to its sync", 0, 1 << 20, cat(bind, describe, execute, sync), cat(bind, describe, execute, sync), 'S'},
		{"stops after the sync", 0, 1 << 20, cat(bind, sync, parse, sync), cat(bind, sync), 'S'},
		{"stops after a flush", 0, 1 << 20, cat(describe, flush, execute), cat(describe, flush), 'H'},
		{"partial message", 0, 1 << 20, cat(bind, execute[:6]), bind, 'B'},
		{"partial header", 0, 1 << 20, cat(bind, execute[:3]), bind, 'B'},
		{"a query is its own", 0, 1 << 20, cat(bind, msg('Q', "select 1\x00")), bind, 'B'},
		{"copy data is its own", 0, 1 << 20, cat(msg('d', "x")), nil, 'P'},
		{"terminate is its own", 0, 1 << 20, cat(execute, msg('X', "")), execute, 'E'},
		{"too large", 0, 50, cat(bind, big, sync), bind, 'B'},
		{"length below four", 0, 1 << 20, cat(bind, []byte{'E', 0, 0, 0, 2}, sync), bind, 'B'},
		{"past the stream threshold", streamThreshold - len(parse) - 30, 1 << 20,
			cat(bind, big, sync), bind, 'B'},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReaderSize(bytes.NewReader(tt.buffered), 4096)
			if _, err := r.Peek(len(tt.buffered)); err != nil {
				t.Fatal(err)
			}
			s := &Session{c: &clientConn{r: r, maxMsg: tt.max}, lastReq: 'P'}
			s.req = append(make([]byte, tt.held), parse...)
			last := s.collectRun()
			got := s.req[tt.held+len(parse):]
			if last != tt.wantLast || s.lastReq != tt.wantLast || !bytes.Equal(got, tt.wantRun) {
				t.Errorf("collectRun = %q, took %q; want %q, %q", last, got, tt.wantLast, tt.wantRun)
			}
			if want := len(tt.buffered) - len(tt.wantRun); r.Buffered() != want {
				t.Errorf("%d bytes left buffered, want %d", r.Buffered(), want)
			}
		})
	}
}
