package parser

import (
	"strconv"
	"testing"
)

// The targets: a cached classification <= 1 µs, and pgbench -S
// statements with a fresh literal each time <= 5 µs on average.

func BenchmarkClassifyCached(b *testing.B) {
	c := NewClassifier(1000, nil)
	const sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"
	c.Classify(sql)
	b.ReportAllocs()
	for b.Loop() {
		c.Classify(sql)
	}
}

func BenchmarkClassifyPgbenchSelectFreshLiteral(b *testing.B) {
	c := NewClassifier(1000, nil)
	// Build the texts up front so the benchmark times classification, not
	// string formatting; a fresh literal per iteration as pgbench sends.
	const n = 1 << 16
	texts := make([]string, n)
	for i := range texts {
		texts[i] = "SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(100000+i*7919%9000000) + ";"
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Classify(texts[i&(n-1)])
		i++
	}
}

// BenchmarkClassifyShapedFreshLiteral is the same stream through one
// client's Shapes, as the proxy classifies it.
func BenchmarkClassifyShapedFreshLiteral(b *testing.B) {
	c := NewClassifier(1000, nil)
	const n = 1 << 16
	texts := make([][]byte, n)
	for i := range texts {
		texts[i] = []byte("SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(100000+i*7919%9000000) + ";")
	}
	var m Shapes
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.ClassifyShaped(texts[i&(n-1)], &m)
		i++
	}
}

func BenchmarkClassifyTPCBFreshLiterals(b *testing.B) {
	c := NewClassifier(1000, nil)
	const n = 1 << 12
	var texts []string
	for i := 0; i < n; i++ {
		a, t, br, d := strconv.Itoa(i*31+1), strconv.Itoa(i%10+1), strconv.Itoa(i%2+1), strconv.Itoa(i%5000-2500)
		texts = append(texts,
			"BEGIN;",
			"UPDATE pgbench_accounts SET abalance = abalance + "+d+" WHERE aid = "+a+";",
			"SELECT abalance FROM pgbench_accounts WHERE aid = "+a+";",
			"UPDATE pgbench_tellers SET tbalance = tbalance + "+d+" WHERE tid = "+t+";",
			"UPDATE pgbench_branches SET bbalance = bbalance + "+d+" WHERE bid = "+br+";",
			"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ("+t+", "+br+", "+a+", "+d+", CURRENT_TIMESTAMP);",
			"END;")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Classify(texts[i%len(texts)])
		i++
	}
}

func BenchmarkClassifyParallelFreshLiteral(b *testing.B) {
	c := NewClassifier(1000, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Classify("SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(i) + ";")
			i++
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	const sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendNormalized(buf[:0], sql)
	}
}

// BenchmarkAnalyzeUncached is the cost a cache miss pays (cgo parse,
// fingerprint, tree walk), for comparison.
func BenchmarkAnalyzeUncached(b *testing.B) {
	const sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"
	b.ReportAllocs()
	for b.Loop() {
		Analyze(sql, nil)
	}
}
