package parser

import (
	"reflect"
	"testing"
)

func TestParseSignal(t *testing.T) {
	tests := []struct {
		sql  string
		want *Signal
	}{
		{"select pg_terminate_backend(12345678)", &Signal{Terminate: true, Column: "pg_terminate_backend", PIDs: []int64{12345678}}},
		{"SELECT PG_CANCEL_BACKEND($1)", &Signal{Column: "pg_cancel_backend", Param: 1}},
		{"select pg_catalog.pg_terminate_backend($2::int4, 500) as killed", &Signal{Terminate: true, Column: "killed", Param: 2}},
		{"select pg_terminate_backend(n) from unnest($1::int[]) n", &Signal{Terminate: true, Column: "pg_terminate_backend", Param: 1, Array: true}},
		{"select pg_terminate_backend(t.pid) from unnest($1::int2[]) as t(pid)", &Signal{Terminate: true, Column: "pg_terminate_backend", Param: 1, Array: true}},
		{"select pg_cancel_backend(pid) from unnest(array[7, 8]) t(pid)", &Signal{Column: "pg_cancel_backend", PIDs: []int64{7, 8}, Array: true}},
		{"select pg_terminate_backend(-5)", &Signal{Terminate: true, Column: "pg_terminate_backend", PIDs: []int64{-5}}},

		// Anything else is the server's to answer.
		{"select pg_terminate_backend(pg_backend_pid())", nil},
		{"select pg_terminate_backend(pid) from pg_stat_activity where usename = 'x'", nil},
		{"select pg_terminate_backend(1), 2", nil},
		{"select pg_terminate_backend(1); select 1", nil},
		{"select pg_terminate_backend('1')", nil},
		{"select pg_terminate_backend(1::text)", nil},
		{"select pg_terminate_backend($1::int8)", nil}, // no such function
		{"select pg_terminate_backend(n) from unnest($1::bigint[]) n", nil},
		{"select pg_terminate_backend(3000000000)", nil},
		{"select myschema.pg_terminate_backend(1)", nil},
		{"select pg_terminate_backend(1) where false", nil},
		{"select pg_terminate_backend(1) limit 0", nil},
		{"select pg_terminate_backend(1) for update", nil},
		{"select pg_cancel_backend(1, 2)", nil},
		{"select pg_terminate_backend(n) from unnest($1::int[]) n, t", nil},
		{"select pg_terminate_backend(m) from unnest($1::int[]) n", nil},
		{"select pg_terminate_backend(n) from unnest($1::int[]) with ordinality n", nil},
		{"select pg_terminate_backend(n) from unnest($1::text[]) n", nil},
		{"select pg_terminate_backend(n) from generate_series(1, 3) n", nil},
		{"select count(*) from t", nil},
		{"select pg_terminate_backend(", nil},
	}
	for _, tt := range tests {
		got, ok := ParseSignal(tt.sql)
		if ok != (tt.want != nil) || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSignal(%q) = %+v, %v; want %+v", tt.sql, got, ok, tt.want)
		}
	}
}
