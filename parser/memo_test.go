package parser

import "testing"

// TestClassifyMemoFollowsVolatility: a memo answers without classifying
// again until the volatility source changes, and then gives the new verdict.
func TestClassifyMemoFollowsVolatility(t *testing.T) {
	const sql = "SELECT f(aid) FROM pgbench_accounts WHERE aid = $1"
	stable := func(name string) Volatility {
		if name == "f" {
			return Stable
		}
		return BuiltinVolatility(name)
	}
	c := NewClassifier(100, stable)
	var m Memo
	first := c.ClassifyMemo(sql, &m)
	if first.VolatileFunc {
		t.Fatal("f is stable, yet the read counts as volatile")
	}
	c.Purge() // a purge alone changes no verdict: the memo still answers
	if got := c.ClassifyMemo(sql, &m); got != first {
		t.Fatal("the memo classified again after a purge")
	}
	if n := testing.AllocsPerRun(100, func() { c.ClassifyMemo(sql, &m) }); n != 0 {
		t.Errorf("a memo hit allocates %v times", n)
	}
	c.SetVolatility(func(name string) Volatility {
		if name == "f" {
			return Volatile
		}
		return BuiltinVolatility(name)
	})
	if got := c.ClassifyMemo(sql, &m); !got.VolatileFunc {
		t.Fatal("after the reload the memo kept the old verdict: f is volatile now")
	}
}
