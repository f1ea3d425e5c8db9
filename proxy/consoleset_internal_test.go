package proxy

import (
	"slices"
	"testing"
)

func TestParseConsoleSet(t *testing.T) {
	for _, tt := range []struct {
		stmt, key, val string
		bad            bool
	}{
		{stmt: "pool.max_size = 30", key: "pool.max_size", val: "30"},
		{stmt: "Default_Pool_Size=30", key: "default_pool_size", val: "30"},
		{stmt: "pool.reset_query TO 'DISCARD  ALL'", key: "pool.reset_query", val: "DISCARD  ALL"},
		{stmt: "pool.reset_query = 'select ''a=b'''", key: "pool.reset_query", val: "select 'a=b'"},
		{stmt: "log_level to debug", key: "log_level", val: "debug"},
		{stmt: "pool.reset_query = ''", key: "pool.reset_query", val: ""},
		{stmt: "pool.max_size", bad: true},
		{stmt: "pool.max_size =", bad: true},
		{stmt: "= 3", bad: true},
		{stmt: "two words = 3", bad: true},
		{stmt: "pool.reset_query = 'DISCARD ALL", bad: true},
		{stmt: "pool.reset_query = '", bad: true},
		{stmt: "pool.reset_query = 'a'b'", bad: true},
	} {
		key, val, err := parseConsoleSet(tt.stmt)
		switch {
		case tt.bad && err == nil:
			t.Errorf("%q: %q = %q, want an error", tt.stmt, key, val)
		case !tt.bad && (err != nil || key != tt.key || val != tt.val):
			t.Errorf("%q: %q = %q (%v), want %q = %q", tt.stmt, key, val, err, tt.key, tt.val)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"SHOW POOLS; SHOW CLIENTS", []string{"SHOW POOLS", " SHOW CLIENTS"}},
		{"SHOW POOLS;", []string{"SHOW POOLS", ""}},
		{"", []string{""}},
		{"SET pool.reset_query = 'DISCARD ALL; SELECT 1'; SHOW CONFIG",
			[]string{"SET pool.reset_query = 'DISCARD ALL; SELECT 1'", " SHOW CONFIG"}},
		{"SET pool.reset_query = 'select ''a;b'''; SHOW LISTS",
			[]string{"SET pool.reset_query = 'select ''a;b'''", " SHOW LISTS"}},
		{`SET "pool.reset_query" = 1; SHOW LISTS`, []string{`SET "pool.reset_query" = 1`, " SHOW LISTS"}},
		{"SET pool.reset_query = 'unterminated; SHOW LISTS", []string{"SET pool.reset_query = 'unterminated; SHOW LISTS"}},
	} {
		if got := splitStatements(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %q, want %q", tt.q, got, tt.want)
		}
	}
}
