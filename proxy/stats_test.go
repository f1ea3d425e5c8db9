package proxy

import (
	"testing"
	"time"
)

func TestStatsAverages(t *testing.T) {
	srv := &Server{stats: newServerStats()}
	if got := srv.averages("db"); got != [7]uint64{} {
		t.Fatalf("averages before two samples: %v", got)
	}
	at := time.Unix(1000, 0)
	srv.stats.prev, srv.stats.prevAt = map[string]dbTotals{"db": {xacts: 10, queries: 20}}, at
	srv.stats.last, srv.stats.lastAt = map[string]dbTotals{"db": {
		xacts: 40, queries: 80, received: 3000, sent: 6000,
		xactUS: 60000, queryUS: 120000, assigned: 30, waitUS: 1500,
	}}, at.Add(10*time.Second)
	// 30 transactions and 60 queries in 10 s; the times are what the
	// period added, per transaction, query and assignment.
	want := [7]uint64{3, 6, 300, 600, 2000, 2000, 50}
	if got := srv.averages("db"); got != want {
		t.Errorf("averages = %v, want %v", got, want)
	}
	if got := srv.averages("other"); got != [7]uint64{} {
		t.Errorf("averages of a database with no traffic: %v", got)
	}
}
