package proxy

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/jackc/pgx/v5/pgproto3"
)

func TestSignalDecoding(t *testing.T) {
	be32 := func(v ...uint32) (b []byte) {
		for _, x := range v {
			b = binary.BigEndian.AppendUint32(b, x)
		}
		return b
	}
	// A binary int4[] of 7 and 8: ndim, has-null, element type, length
	// and lower bound, then each element's size and value.
	int4s := be32(1, 0, int4OID, 2, 1, 4, 7, 4, 8)
	arrays := []struct {
		name   string
		b      []byte
		format int16
		want   []int64
		ok     bool
	}{
		{"text", []byte("{7, 8}"), 0, []int64{7, 8}, true},
		{"text, empty", []byte("{}"), 0, nil, true},
		{"text, beyond int4", []byte("{3000000000}"), 0, nil, false},
		{"text, NULL", []byte("{1,NULL}"), 0, nil, false},
		{"text, nested", []byte("{{1}}"), 0, nil, false},
		{"binary int4", int4s, 1, []int64{7, 8}, true},
		{"binary int2", append(be32(1, 0, int2OID, 1, 1, 2), 0, 9), 1, []int64{9}, true},
		{"binary int8", append(be32(1, 0, 20, 1, 1, 8), 0, 0, 0, 0, 0, 0, 0, 9), 1, nil, false},
		{"binary with NULL", be32(1, 1, int4OID, 1, 1, 0xffffffff), 1, nil, false},
		{"binary, two dimensions", be32(2, 0, int4OID, 1, 1, 1, 1, 4, 7), 1, nil, false},
		{"binary, trailing bytes", append(int4s, 0), 1, nil, false},
		{"binary, short", int4s[:len(int4s)-1], 1, nil, false},
		{"binary, empty", be32(0, 0, int4OID), 1, nil, true},
	}
	for _, tt := range arrays {
		got, ok := intArray(tt.b, tt.format)
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("intArray %s = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}

	values := []struct {
		b      []byte
		format int16
		oid    uint32
		want   int64
		ok     bool
	}{
		{[]byte(" 4194305 "), 0, int4OID, 4194305, true},
		{[]byte("2147483648"), 0, int4OID, 0, false},
		{[]byte("x"), 0, int4OID, 0, false},
		{be32(4194305), 1, int4OID, 4194305, true},
		{[]byte{0, 9}, 1, int2OID, 9, true},
		{[]byte{0, 9}, 1, int4OID, 0, false},
		{append(be32(0), be32(9)...), 1, int4OID, 0, false},
	}
	for _, tt := range values {
		if got, ok := intValue(tt.b, tt.format, tt.oid); got != tt.want || ok != tt.ok {
			t.Errorf("intValue(%q, %d, %d) = %d, %v; want %d, %v", tt.b, tt.format, tt.oid, got, ok, tt.want, tt.ok)
		}
	}

	types := append([]byte{0, 2}, be32(0, int2OID)...)
	for i, want := range []uint32{0, int2OID, 0} {
		if got := declaredType(types, i); got != want {
			t.Errorf("declaredType(%d) = %d, want %d", i, got, want)
		}
	}

	for text, want := range map[string]bool{
		"select pg_terminate_backend(1)": true, "SELECT Pg_Cancel_Backend($1)": true,
		"select pg_backend_pid()": true, "select 1": false, "select backend": false, "_backen": false,
		"x__BACKEND": true, "_backen_backend": true, "_b\xc1ckend": false,
	} {
		if mentionsBackend(text, strings.IndexByte) != want || mentionsBackend([]byte(text), bytes.IndexByte) != want {
			t.Errorf("mentionsBackend(%q) != %v", text, want)
		}
	}

	for v, want := range map[string]int{"15.18 (Debian 15.18-0+deb12u1)": 15, "16beta1": 16, "9.6.24": 9, "": 0} {
		if got := majorVersion(v); got != want {
			t.Errorf("majorVersion(%q) = %d, want %d", v, got, want)
		}
	}
}

// The look every request pays for a signal, on a pgbench query.
func BenchmarkMentionsBackend(b *testing.B) {
	req := []byte("Q\x00\x00\x00\x3aSELECT abalance FROM pgbench_accounts WHERE aid = 48213;\x00")
	for b.Loop() {
		if mentionsBackend(req, bytes.IndexByte) {
			b.Fatal("found")
		}
	}
}

func TestSignalBindFits(t *testing.T) {
	pid := []byte("4194305")
	tests := []struct {
		name  string
		sig   parser.Signal
		types []byte
		bind  pgproto3.Bind
		want  bool
	}{
		{"one parameter", parser.Signal{Param: 1}, nil, pgproto3.Bind{Parameters: [][]byte{pid}}, true},
		{"one too many", parser.Signal{Param: 1}, nil, pgproto3.Bind{Parameters: [][]byte{pid, pid}}, false},
		{"none for a constant", parser.Signal{PIDs: []int64{4194305}}, nil, pgproto3.Bind{}, true},
		{"declared but not bound", parser.Signal{PIDs: []int64{4194305}}, []byte{0, 1, 0, 0, 0, 23}, pgproto3.Bind{}, false},
		{"format per parameter", parser.Signal{Param: 2}, nil,
			pgproto3.Bind{ParameterFormatCodes: []int16{0, 1}, Parameters: [][]byte{pid, pid}}, true},
		{"formats miscounted", parser.Signal{Param: 2}, nil,
			pgproto3.Bind{ParameterFormatCodes: []int16{0, 1, 0}, Parameters: [][]byte{pid, pid}}, false},
		{"unknown format", parser.Signal{Param: 1}, nil, pgproto3.Bind{ParameterFormatCodes: []int16{2}, Parameters: [][]byte{pid}}, false},
		{"two result formats", parser.Signal{Param: 1}, nil, pgproto3.Bind{Parameters: [][]byte{pid}, ResultFormatCodes: []int16{1, 1}}, false},
	}
	for _, tt := range tests {
		r := &signalRequest{sig: &tt.sig, types: tt.types, bind: &tt.bind}
		if got := r.bindFits(); got != tt.want {
			t.Errorf("%s: bindFits = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The look every Bind of a prepared statement pays allocates nothing.
func TestMayNameSignalAllocatesNothing(t *testing.T) {
	s := &Session{l: &login{mode: config.PoolTransaction},
		stmts: map[string]*clientStmt{"P_0": newClientStmt("P_0", "select 1", nil, 0, 0)}}
	bind := wire.Append(nil, &pgproto3.Bind{PreparedStatement: "P_0", Parameters: [][]byte{[]byte("1")}})
	if allocs := testing.AllocsPerRun(100, func() { s.mayNameSignal(bind) }); allocs != 0 {
		t.Errorf("mayNameSignal allocated %v times per Bind", allocs)
	}
	s.stmts["P_1"] = newClientStmt("P_1", "select pg_cancel_backend($1)", nil, 0, 0)
	if !s.mayNameSignal(wire.Append(nil, &pgproto3.Bind{PreparedStatement: "P_1"})) || s.mayNameSignal(bind) {
		t.Error("mayNameSignal told the statements apart wrongly")
	}
}
