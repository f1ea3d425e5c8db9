package proxy

import (
	"bytes"
	"log/slog"
	"strings"
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

// logStats writes a line per database with traffic in the period, even
// one whose rates round to 0, and none for a quiet one.
func TestLogStatsLinePerBusyDatabase(t *testing.T) {
	var out bytes.Buffer
	srv := &Server{stats: newServerStats(), log: slog.New(slog.NewTextHandler(&out, nil))}
	at := time.Unix(1000, 0)
	srv.stats.prev, srv.stats.prevAt = map[string]dbTotals{"busy": {xacts: 10}, "quiet": {xacts: 5}, "slow": {xacts: 1}}, at
	srv.stats.last, srv.stats.lastAt = map[string]dbTotals{
		"busy": {xacts: 70, queries: 60, xactUS: 600}, "quiet": {xacts: 5}, "slow": {xacts: 2, queries: 1, xactUS: 40},
	}, at.Add(time.Minute)
	srv.logStats()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "msg=stats database=busy xacts_per_s=1 queries_per_s=1") ||
		!strings.Contains(lines[0], "xact_us=10") ||
		!strings.Contains(lines[1], "msg=stats database=slow xacts_per_s=0 queries_per_s=0") || !strings.Contains(lines[1], "xact_us=40") {
		t.Fatalf("log:\n%s", out.String())
	}
}
