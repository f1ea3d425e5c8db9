package proxy

import (
	"encoding/binary"
	"testing"
)

// msg frames one server message.
func msg(typ byte, body string) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
	return append(b, body...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestRunEnd: a run takes the complete plain messages behind the first
// body and stops at anything the relay must look at, at a message not
// all buffered, and at a length no server sends.
func TestRunEnd(t *testing.T) {
	body := "\x00\x01" // the first message's body, already past its header
	row := msg('D', "\x00\x01\x00\x00\x00\x011")
	tests := []struct {
		name      string
		buf       []byte
		countRows bool
		wantEnd   int
		wantLast  byte
		wantRows  uint64
	}{
		{"body alone", []byte(body), true, 2, 0, 0},
		{"rows then ready", cat([]byte(body), row, row, msg('C', "SELECT 2\x00"), msg('Z', "I")),
			true, 2 + 2*len(row) + 14, 'C', 2},
		{"rows not counted", cat([]byte(body), msg('C', "SELECT 2\x00")), false, 2 + 14, 'C', 0},
		{"two completions", cat([]byte(body), msg('C', "INSERT 0 3\x00"), msg('C', "UPDATE 4\x00")),
			true, 2 + 16 + 14, 'C', 7},
		{"extended answer", cat([]byte(body), msg('2', ""), msg('T', "xx"), msg('n', ""), msg('s', ""), msg('I', "")),
			true, 2 + 5 + 7 + 5 + 5 + 5, 'I', 0},
		{"copy out", cat([]byte(body), msg('d', "a\n"), msg('c', ""), msg('C', "COPY 1\x00")),
			true, 2 + 7 + 5 + 12, 'C', 1},
		{"stops at an error", cat([]byte(body), row, msg('E', "SERROR\x00\x00"), row), true, 2 + len(row), 'D', 0},
		{"stops at a notice", cat([]byte(body), msg('N', "x\x00"), row), true, 2, 0, 0},
		{"stops at a parameter", cat([]byte(body), msg('S', "a\x00b\x00"), row), true, 2, 0, 0},
		{"stops at copy in", cat([]byte(body), msg('G', "\x00\x00\x00")), true, 2, 0, 0},
		{"partial header", cat([]byte(body), row, []byte{'D', 0, 0}), true, 2 + len(row), 'D', 0},
		{"partial body", cat([]byte(body), row, row[:len(row)-1]), true, 2 + len(row), 'D', 0},
		{"length below four", cat([]byte(body), []byte{'D', 0, 0, 0, 3}, row), true, 2, 0, 0},
		{"length past the buffer", cat([]byte(body), []byte{'D', 0x7f, 0xff, 0xff, 0xff}), true, 2, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := relayRun{on: true, countRows: tt.countRows}
			end := r.runEnd(tt.buf, len(body))
			if end != tt.wantEnd || r.last != tt.wantLast || r.rows != tt.wantRows {
				t.Errorf("runEnd = %d, last %q, rows %d; want %d, %q, %d",
					end, r.last, r.rows, tt.wantEnd, tt.wantLast, tt.wantRows)
			}
		})
	}
}
