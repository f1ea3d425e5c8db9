package parser

import (
	"strings"
	"testing"
)

// normalizeCases are TestNormalize's cases, and seeds of FuzzNormalizeRuns.
var normalizeCases = []struct{ in, want string }{
	{"SELECT abalance FROM pgbench_accounts WHERE aid = 48213;", "SELECT abalance FROM pgbench_accounts WHERE aid = $1"},
	{"  select\n\t1 ,  2  ;; ", "select $1 , $2"},
	{"SELECT 'it''s', E'a\\'b', e'\\\\'", "SELECT $1, $2, $3"},
	{"SELECT B'1010', X'1F', N'nat', U&'d\\0061t\\+000061'", "SELECT $1, $2, $3, $4"},
	{"SELECT $$a;b$$, $tag$ x $$ y $tag$, $1, $22", "SELECT $1, $2, $3, $4"},
	{"SELECT 1.5, .5, 1e10, 1.5E-3, 0x1F, 0o17, 0b101, 1_000_000", "SELECT $1, $2, $3, $4, $5, $6, $7, $8"},
	{"SELECT -1, 2-3", "SELECT -$1, $2-$3"},
	{"SELECT 1..2", "SELECT $1.$2"}, // like the lexer: 1, ".", .2
	{`SELECT "col 1", "a""b", "42" FROM "My Table"`, `SELECT "col 1", "a""b", "42" FROM "My Table"`},
	{`SELECT U&"d\0061t"`, `SELECT U&"d\0061t"`},
	{"SELECT 1 -- trailing comment\n", "SELECT $1"},
	{"SELECT /* a /* nested */ comment */ 1", "SELECT $1"},
	{"SELECT a/*c*/FROM t", "SELECT a FROM t"},
	{"SELECT t1.c2, a$b, x$1 FROM t1", "SELECT t1.c2, a$b, x$1 FROM t1"},
	{"SELECT '--not a comment', '/* nor this */'", "SELECT $1, $2"},
	{"SELECT 'a'\n'b'", "SELECT $1 $2"},
	{"/* pgninja:replica */ SELECT 1", "SELECT $1"},
	{"SET search_path TO a, b", "SET search_path TO a, b"},
	{"SELECT 'unterminated", "SELECT $1"},
	{"SELECT E'\\'; DELETE FROM t; --'", "SELECT $1"},
	{"SELECT 'a\\'; DELETE FROM t; --'", "SELECT $1; DELETE FROM t"},
	{"SELECT ümlaut FROM täble", "SELECT ümlaut FROM täble"},
	{"", ""},
	{";", ""},
	{"SELECT x FROM t WHERE a = 'b' AND c -- d\n= 2", "SELECT x FROM t WHERE a = $1 AND c = $2"},
	{"SELECT e'x', u&'y', u&x, e FROM t ", "SELECT $1, $2, u&x, e FROM t"},
	{"SELECT a.5, a .5, 1 ;", "SELECT a $1, a $2, $3"},
	{"SELECT a -/**/- b - -c", "SELECT a - - b - -c"},
	{" \tSELECT  a , b\t;", "SELECT a , b"},
}

func TestNormalize(t *testing.T) {
	for _, tc := range normalizeCases {
		t.Run(tc.in, func(t *testing.T) {
			got := Normalize(tc.in)
			if got != tc.want {
				t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again := Normalize(got); again != got {
				t.Errorf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}

func TestNormalizeComplete(t *testing.T) {
	cases := []struct {
		in       string
		complete bool
	}{
		{"SELECT 'a'", true},
		{"SELECT 'a", false},
		{`SELECT "a`, false},
		{"SELECT E'a\\'", false},
		{"SELECT $$a$", false},
		{"SELECT /* a", false},
		{"SELECT /* /* */", false},
		{"SELECT 1 -- no newline needed", true},
	}
	for _, tc := range cases {
		if _, got := appendNormalized(nil, tc.in); got != tc.complete {
			t.Errorf("complete(%q) = %v, want %v", tc.in, got, tc.complete)
		}
	}
}

func TestNormalizeNoAllocWithBuffer(t *testing.T) {
	const sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendNormalized(buf[:0], sql) }); n != 0 {
		t.Errorf("AppendNormalized allocates %v times, want 0", n)
	}
}

// TestByteClasses checks the lookup table against PostgreSQL's scan.l,
// byte by byte: space [ \t\n\r\f\v], ident_start [A-Za-z\200-\377_],
// ident_cont [A-Za-z\200-\377_0-9\$], digit [0-9].
func TestByteClasses(t *testing.T) {
	for c := range 256 {
		b := byte(c)
		letter := b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= 0x80 || b == '_'
		digit := b >= '0' && b <= '9'
		for _, tc := range []struct {
			class     string
			got, want bool
		}{
			{"space", isSpace(b), strings.IndexByte(" \t\n\r\f\v", b) >= 0},
			{"digit", isDigit(b), digit},
			{"ident_start", isIdentStart(b), letter},
			{"ident_cont", isIdentCont(b), letter || digit || b == '$'},
		} {
			if tc.got != tc.want {
				t.Errorf("byte %#02x: %s %v, want %v", c, tc.class, tc.got, tc.want)
			}
		}
	}
}
