package router

import (
	"testing"

	"github.com/ai-ninja/pgninja/parser"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkRouteReplicaRead is the per-query routing cost on the pgbench -S
// path: policy, LSN check, replica pick and the metric.
func BenchmarkRouteReplicaRead(b *testing.B) {
	backends := mustBackends(b, primary(0), replica("r1", 3, "0/5000000"), replica("r2", 1, "0/5000000"))
	m, err := NewMetrics(prometheus.NewRegistry(), backends)
	if err != nil {
		b.Fatal(err)
	}
	r := New(Config{}, backends, WithMetrics(m))
	c := parser.Analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 1", nil)
	s := &SessionState{LastCommitLSN: 0x4000000}
	b.ReportAllocs()
	for b.Loop() {
		r.Route(c, s)
	}
}

func BenchmarkRouteTableConsistency(b *testing.B) {
	backends := mustBackends(b, primary(0), replica("r1", 1, "0/5000000"))
	tracker := NewLSNTracker()
	tracker.NoteWrite([]string{"pgbench_accounts", "pgbench_history"}, 0x4000000)
	r := New(Config{Consistency: TableConsistency}, backends, WithTracker(tracker))
	c := parser.Analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 1", nil)
	s := &SessionState{}
	b.ReportAllocs()
	for b.Loop() {
		r.Route(c, s)
	}
}

// BenchmarkClassifyAndRoute is the whole per-statement cost with a fresh
// literal each time.
func BenchmarkClassifyAndRoute(b *testing.B) {
	backends := mustBackends(b, primary(0), replica("r1", 1, "0/5000000"))
	r := New(Config{}, backends)
	cl := parser.NewClassifier(1000, nil)
	texts := make([]string, 1024)
	for i := range texts {
		texts[i] = "SELECT abalance FROM pgbench_accounts WHERE aid = " + string(rune('1'+i%9)) + "0" + string(rune('0'+i%10)) + ";"
	}
	s := &SessionState{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Route(cl.Classify(texts[i%len(texts)]), s)
		i++
	}
}

// BenchmarkRouteOneReplica is BenchmarkRouteReplicaRead with a single
// replica taking the reads, the common deployment (and make bench's).
func BenchmarkRouteOneReplica(b *testing.B) {
	backends := mustBackends(b, primary(0), replica("r1", 1, "0/5000000"))
	r := New(Config{}, backends)
	c := parser.Analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 1", nil)
	s := &SessionState{LastCommitLSN: 0x4000000}
	b.ReportAllocs()
	for b.Loop() {
		r.Route(c, s)
	}
}
