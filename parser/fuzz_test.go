package parser

import (
	"slices"
	"strings"
	"testing"
)

// The seed corpus lives in testdata/fuzz/Fuzz*/ and runs with plain
// `go test`; `go test -fuzz FuzzClassify ./parser` explores further.

func FuzzNormalize(f *testing.F) {
	f.Add("SELECT 1")
	f.Fuzz(func(t *testing.T, sql string) {
		norm, complete := appendNormalized(nil, sql)
		out := string(norm)
		if again := Normalize(out); again != out {
			t.Fatalf("not idempotent:\n in  %q\n out %q\n again %q", sql, out, again)
		}
		if strings.HasPrefix(out, " ") || strings.HasSuffix(out, " ") || strings.HasSuffix(out, ";") {
			t.Fatalf("untrimmed output %q", out)
		}
		if strings.Contains(out, "  ") && !strings.ContainsAny(out, `"`) {
			t.Fatalf("uncollapsed whitespace in %q", out)
		}
		if _, c2 := appendNormalized(nil, out); complete && !c2 {
			t.Fatalf("complete input %q normalized to incomplete %q", sql, out)
		}
	})
}

// FuzzNormalizeRuns: copying verbatim runs changes nothing the token loop
// alone would produce, completeness included.
func FuzzNormalizeRuns(f *testing.F) {
	for _, tc := range normalizeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		fast, fastComplete := appendNormalizedRuns(nil, sql, true)
		slow, slowComplete := appendNormalizedRuns(nil, sql, false)
		if string(fast) != string(slow) || fastComplete != slowComplete {
			t.Fatalf("%q: runs give %q (complete %v), tokens %q (complete %v)", sql, fast, fastComplete, slow, slowComplete)
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;")
	f.Fuzz(func(t *testing.T, sql string) {
		if len(sql) > 2000 {
			return // the parser is not what is being fuzzed
		}
		direct := Analyze(sql, nil)
		if direct == nil {
			t.Fatal("nil classification")
		}
		// A signal is one read statement calling its function.
		if sig, ok := ParseSignal(sql); ok && (direct.Kind != Read || direct.MultiStatement || sig == nil ||
			!slices.ContainsFunc(direct.Functions, func(f string) bool { return strings.HasSuffix(f, "_backend") })) {
			t.Fatalf("ParseSignal(%q) = %+v, but it classifies as %v calling %v", sql, sig, direct.Kind, direct.Functions)
		}
		if direct.ParseError != nil && direct.Kind != Unknown {
			t.Fatalf("parse error %v but kind %v", direct.ParseError, direct.Kind)
		}
		for _, k := range direct.StatementKinds {
			if Stronger(direct.Kind, k) != direct.Kind {
				t.Fatalf("kind %v weaker than statement kind %v", direct.Kind, k)
			}
		}

		// The cache must answer exactly what a direct parse answers.
		c := NewClassifier(16, nil)
		sameShape(t, "first", c.Classify(sql), direct)
		sameShape(t, "cached", c.Classify(sql), direct)

		// A literal variant with the same normalized text, classified first,
		// must not change the answer for sql: this is what makes the
		// normalized text a safe cache key.
		variant := bumpDigits(sql)
		if Normalize(variant) == Normalize(sql) && direct.ParseError == nil &&
			Analyze(variant, nil).ParseError == nil {
			c2 := NewClassifier(16, nil)
			c2.Classify(variant)
			sameShape(t, "after variant", c2.Classify(sql), direct)
		}

		// Normalized text, where it still parses, is the same statement.
		if direct.ParseError == nil {
			n := Analyze(Normalize(sql), nil)
			if n.ParseError == nil && n.Kind != direct.Kind {
				t.Fatalf("kind %v, normalized %q has kind %v", direct.Kind, Normalize(sql), n.Kind)
			}
		}
	})
}

// bumpDigits changes every digit, so numeric literals differ but the
// statement's shape does not (identifiers with digits change too, which only
// makes the normalized texts differ).
func bumpDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '0' + (r-'0'+1)%10
		}
		return r
	}, s)
}

func sameShape(t *testing.T, what string, got, want *Classification) {
	t.Helper()
	diff := func(field string, ok bool, g, w any) {
		if !ok {
			t.Fatalf("%s: %s = %v, want %v", what, field, g, w)
		}
	}
	diff("Kind", got.Kind == want.Kind, got.Kind, want.Kind)
	diff("StatementKinds", slices.Equal(got.StatementKinds, want.StatementKinds), got.StatementKinds, want.StatementKinds)
	diff("ReadTables", slices.Equal(got.ReadTables, want.ReadTables), got.ReadTables, want.ReadTables)
	diff("WriteTables", slices.Equal(got.WriteTables, want.WriteTables), got.WriteTables, want.WriteTables)
	diff("Functions", slices.Equal(got.Functions, want.Functions), got.Functions, want.Functions)
	diff("VolatileFunc", got.VolatileFunc == want.VolatileFunc, got.VolatileFunc, want.VolatileFunc)
	diff("Locking", got.Locking == want.Locking, got.Locking, want.Locking)
	diff("SelectInto", got.SelectInto == want.SelectInto, got.SelectInto, want.SelectInto)
	diff("ModifyingCTE", got.ModifyingCTE == want.ModifyingCTE, got.ModifyingCTE, want.ModifyingCTE)
	diff("ExplainAnalyzeWrite", got.ExplainAnalyzeWrite == want.ExplainAnalyzeWrite, got.ExplainAnalyzeWrite, want.ExplainAnalyzeWrite)
	diff("TxnReadOnly", got.TxnReadOnly == want.TxnReadOnly, got.TxnReadOnly, want.TxnReadOnly)
	diff("Pins", got.Pins == want.Pins, got.Pins, want.Pins)
	diff("Hint", got.Hint == want.Hint, got.Hint, want.Hint)
	diff("SessionRoute", got.SessionRoute == want.SessionRoute, got.SessionRoute, want.SessionRoute)
	diff("HintErr", (got.HintErr == nil) == (want.HintErr == nil), got.HintErr, want.HintErr)
	diff("ParseError", (got.ParseError == nil) == (want.ParseError == nil), got.ParseError, want.ParseError)
	diff("SetParams", len(got.SetParams) == len(want.SetParams), got.SetParams, want.SetParams)
	for i := range got.SetParams {
		g, w := got.SetParams[i], want.SetParams[i]
		diff("SetParam", g.Name == w.Name && g.Value == w.Value && slices.Equal(g.Values, w.Values) && g.Stmt == w.Stmt, g, w)
	}
}
