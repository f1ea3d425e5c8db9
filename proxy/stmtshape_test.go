package proxy

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func TestResultShape(t *testing.T) {
	desc := func(fields ...pgproto3.FieldDescription) []byte {
		b, err := (&pgproto3.RowDescription{Fields: fields}).Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b[5:]
	}
	col := func(name string, table uint32, attnum uint16, typ uint32, mod int32) pgproto3.FieldDescription {
		return pgproto3.FieldDescription{Name: []byte(name), TableOID: table, TableAttributeNumber: attnum,
			DataTypeOID: typ, DataTypeSize: 4, TypeModifier: mod}
	}
	was, ok := resultShape('T', desc(col("id", 100, 1, 23, -1), col("f1", 100, 2, 23, -1)))
	if !ok {
		t.Fatal("a well-formed RowDescription was refused")
	}
	for _, tc := range []struct {
		name string
		typ  byte
		body []byte
		same bool
	}{
		{"the same columns of a table made anew", 'T', desc(col("id", 200, 1, 23, -1), col("f1", 200, 3, 23, -1)), true},
		{"a column dropped", 'T', desc(col("id", 100, 1, 23, -1)), false},
		{"a column's type changed", 'T', desc(col("id", 100, 1, 23, -1), col("f1", 100, 2, 25, -1)), false},
		{"a column's modifier changed", 'T', desc(col("id", 100, 1, 23, -1), col("f1", 100, 2, 23, 8)), false},
		{"a column renamed", 'T', desc(col("id", 100, 1, 23, -1), col("f9", 100, 2, 23, -1)), false},
		{"no rows any more", 'n', nil, false},
	} {
		now, ok := resultShape(tc.typ, tc.body)
		if !ok || (now == was) != tc.same {
			t.Errorf("%s: ok %v, same %v, want same %v", tc.name, ok, now == was, tc.same)
		}
	}
	for _, bad := range [][]byte{nil, {0}, {0, 1, 'x'}, {0, 1, 'x', 0, 1, 2}} {
		if _, ok := resultShape('T', bad); ok {
			t.Errorf("malformed %v accepted", bad)
		}
	}
}
