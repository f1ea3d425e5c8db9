package parser

import (
	"slices"
	"strings"
	"testing"
)

func TestShapesMatch(t *testing.T) {
	const sel = "SELECT abalance FROM pgbench_accounts WHERE aid = 1;"
	cases := []struct {
		name, first, next string
		hit               bool
	}{
		{"new literal", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;", true},
		{"same text", sel, sel, true},
		{"no semicolon", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = 7", true},
		{"trailing semicolons and space", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = 7 ;\n ;", true},
		{"string for number", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = '7';", true},
		{"parameter for number", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = $1", true},
		{"decimal and exponent", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = 1.5e3;", true},
		{"quoted quote", "SELECT * FROM t WHERE s = 'a'", "SELECT * FROM t WHERE s = 'it''s'", true},
		{"two literals", "UPDATE t SET a = a + 5 WHERE id = 3;", "UPDATE t SET a = a + -12 WHERE id = 99;", false},
		{"two literals, same signs", "UPDATE t SET a = a + 5 WHERE id = 3;", "UPDATE t SET a = a + 12 WHERE id = 99;", true},
		{"quoted identifier", `SELECT "a$1" FROM t WHERE x = 1`, `SELECT "a$1" FROM t WHERE x = 2`, true},

		// Each of these normalizes to another text, or Normalize must
		// decide: the shape must not claim them.
		{"other table", sel, "SELECT abalance FROM pgbench_branches WHERE aid = 1;", false},
		{"extra space", sel, "SELECT abalance FROM pgbench_accounts WHERE aid =  1;", false},
		{"comment after", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = 1; -- x", false},
		{"leading hint", sel, "/* pgninja:primary */ SELECT abalance FROM pgbench_accounts WHERE aid = 1;", false},
		{"literal glued to a word", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = 1abc;", false},
		{"escape string", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = E'1';", false},
		{"dollar quote", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = $$1$$;", false},
		{"leading dot", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = .5;", false},
		{"unterminated string", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = '1", false},
		{"second statement", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = 1; DROP TABLE t", false},
		{"missing literal", sel, "SELECT abalance FROM pgbench_accounts WHERE aid = ;", false},
		{"prefix only", sel, "SELECT abalance FROM pgbench_accounts", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClassifier(100, nil)
			var m Shapes
			c.ClassifyShaped([]byte(tc.first), &m)
			if m.last[0] == nil {
				t.Fatalf("%q left no shape", tc.first)
			}
			if hit := m.last[0].matches(tc.next); hit != tc.hit {
				t.Fatalf("matches(%q) = %v, want %v (shape %q)", tc.next, hit, tc.hit, m.last[0].cl.Normalized)
			}
			if tc.hit && Normalize(tc.next) != m.last[0].cl.Normalized {
				t.Fatalf("%q matched, but normalizes to %q, not %q", tc.next, Normalize(tc.next), m.last[0].cl.Normalized)
			}
			got := c.ClassifyShaped([]byte(tc.next), &m)
			sameShape(t, "shaped", got, Analyze(tc.next, nil))
		})
	}
}

// Texts that must not become shapes: what they classify as depends on
// more than their normalized text.
func TestShapesRefused(t *testing.T) {
	for _, sql := range []string{
		"/* pgninja:replica */ SELECT 1", // the hint is not in the text
		"SET search_path = a",            // depends on the literal
		"SELECT FROM WHERE 1",            // parse error
		"SELECT 'abc",                    // unterminated
	} {
		c := NewClassifier(100, nil)
		var m Shapes
		c.ClassifyShaped([]byte(sql), &m)
		if sh := m.last[0]; sh != nil {
			t.Errorf("%q became shape %q", sql, sh.cl.Normalized)
		}
	}
}

// A placeholder next to a byte that could join a literal in its place, or
// change how it is read, makes the text no shape.
func TestShapeCuts(t *testing.T) {
	cases := []struct {
		tmpl string
		cuts []int32 // nil: refused
	}{
		{"SELECT a FROM t WHERE b = $1", []int32{26, 28}},
		{"SELECT a FROM t WHERE b IN ($1,$2)", []int32{28, 30, 31, 33}},
		{`SELECT "$1", a$1 FROM t`, []int32{}}, // a quoted identifier, an identifier
		{"SELECT $1::int", []int32{7, 9}},
		{"SELECT x.$1", nil}, // x.5
		{"SELECT U&$1", nil}, // U&'..'
		{"SELECT E $1", []int32{9, 11}},
		{"SELECT E$1", []int32{}}, // an identifier
		{`SELECT "a"$1`, nil},     // a quote before
		{"SELECT $1.x", nil},      // 5.x
		{"SELECT $1e", nil},       // 5e
		{"SELECT $1'x'", nil},     // '..''..'
		{"SELECT $2", nil},        // out of order
		{"SELECT 1", nil},         // not normalized
		{"SELECT  $1", nil},       // not normalized
		{" SELECT $1", nil},
		{"SELECT $1 ", nil},
	}
	for _, tc := range cases {
		cuts, ok := shapeCuts(tc.tmpl)
		if ok != (tc.cuts != nil) || ok && !slices.Equal(cuts, tc.cuts) && len(cuts)+len(tc.cuts) > 0 {
			t.Errorf("shapeCuts(%q) = %v, %v; want %v", tc.tmpl, cuts, ok, tc.cuts)
		}
	}
}

func TestShapesRecentFirst(t *testing.T) {
	c := NewClassifier(100, nil)
	var m Shapes
	stmts := []string{"SELECT a FROM t WHERE id = 1", "UPDATE t SET a = 2 WHERE id = 1", "DELETE FROM t WHERE id = 1",
		"INSERT INTO t VALUES (1)", "SELECT b FROM u WHERE id = 1"}
	for _, s := range stmts {
		c.ClassifyShaped([]byte(s), &m)
	}
	// Five shapes in four slots: the first is gone, the last is first.
	want := []string{"SELECT b FROM u WHERE id = $1", "INSERT INTO t VALUES ($1)", "DELETE FROM t WHERE id = $1", "UPDATE t SET a = $1 WHERE id = $2"}
	for i, w := range want {
		if got := m.last[i].cl.Normalized; got != w {
			t.Fatalf("slot %d holds %q, want %q", i, got, w)
		}
	}
	// A match moves its shape to the front and keeps the rest in order.
	before := m.last[2]
	if got := c.ClassifyShaped([]byte("DELETE FROM t WHERE id = 77"), &m); got != before.cl || m.last[0] != before {
		t.Fatalf("the DELETE did not match its shape")
	}
	if m.last[1].cl.Normalized != want[0] || m.last[2].cl.Normalized != want[1] || m.last[3].cl.Normalized != want[3] {
		t.Fatalf("order after a match: %q %q %q", m.last[1].cl.Normalized, m.last[2].cl.Normalized, m.last[3].cl.Normalized)
	}
}

// A text whose shape is known but which does not match it (its literal
// is an E'..') brings that shape forward rather than making it again.
func TestShapesNotRemadeForUnmatchedText(t *testing.T) {
	c := NewClassifier(100, nil)
	var m Shapes
	c.ClassifyShaped([]byte("SELECT a FROM t WHERE s = 'x'"), &m)
	first := m.last[0]
	c.ClassifyShaped([]byte("SELECT b FROM u WHERE id = 1"), &m)
	if got := c.ClassifyShaped([]byte("SELECT a FROM t WHERE s = E'y'"), &m); got != first.cl {
		t.Fatalf("the E'..' text classified apart from its shape")
	}
	if m.last[0] != first || m.last[1] == nil || m.last[2] != nil {
		t.Fatalf("slots after the E'..' text: %v %v %v", m.last[0] == first, m.last[1] != nil, m.last[2] != nil)
	}
}

// A reload of function volatility changes what a shape classifies as; the
// shapes computed before it must not answer after it.
func TestShapesFollowVolatility(t *testing.T) {
	c := NewClassifier(100, nil)
	var m Shapes
	const q = "SELECT myfunc(1)"
	if cl := c.ClassifyShaped([]byte(q), &m); !cl.VolatileFunc {
		t.Fatalf("an unknown function must count as volatile")
	}
	c.SetVolatility(func(name string) Volatility {
		if name == "myfunc" {
			return Immutable
		}
		return BuiltinVolatility(name)
	})
	if cl := c.ClassifyShaped([]byte("SELECT myfunc(2)"), &m); cl.VolatileFunc {
		t.Fatalf("the shape from before the reload answered after it")
	}
}

// FuzzShapeMatch: a text a shape matches normalizes to the shape's text,
// so the shape's classification is the one the shared cache would give.
// The second text is tried as it is and as the shape with its
// placeholders replaced by the pieces of lits (split at '|').
func FuzzShapeMatch(f *testing.F) {
	f.Add("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;", "SELECT 1", "7|'x'")
	f.Add("UPDATE t SET a = a + 5 WHERE id = 3", "", "1e5|0x1f")
	f.Add(`SELECT "q""$1" FROM t WHERE a = 'b' AND c = $1`, "", "''''|$2")
	// Each of these would match a text that normalizes otherwise but for
	// a rule of shapeCuts: U&'x', a.5, 5.a, 5e1x.
	f.Add("SELECT U&5", "", "'x'")
	f.Add("SELECT a.$1", "", "5")
	f.Add("SELECT $1.a", "", "5")
	f.Add("SELECT $1e1x", "", "5")
	f.Fuzz(func(t *testing.T, first, next, lits string) {
		if len(first) > 2000 || len(next) > 2000 || len(lits) > 2000 {
			return
		}
		norm, complete := appendNormalized(nil, first)
		if !complete {
			return
		}
		tmpl := string(norm)
		cuts, ok := shapeCuts(tmpl)
		if !ok {
			return
		}
		sh := &shape{cl: &Classification{Normalized: tmpl}, cuts: cuts}
		check := func(s string) {
			if !sh.matches(s) {
				return
			}
			if got, complete := appendNormalized(nil, s); string(got) != tmpl || !complete {
				t.Fatalf("shape %q matched %q, which normalizes to %q (complete %v)", tmpl, s, got, complete)
			}
			if h, err := leadingHint(s); h != HintNone || err != nil {
				t.Fatalf("shape %q matched %q, which has hint %v (%v)", tmpl, s, h, err)
			}
		}
		check(next)
		pieces := strings.Split(lits, "|")
		var b strings.Builder
		at := 0
		for k := 0; k < len(cuts); k += 2 {
			b.WriteString(tmpl[at:cuts[k]])
			b.WriteString(pieces[(k/2)%len(pieces)])
			at = int(cuts[k+1])
		}
		b.WriteString(tmpl[at:])
		b.WriteString(next) // a tail: semicolons and spaces, or anything
		check(b.String())
	})
}
