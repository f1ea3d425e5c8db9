package proxy

import (
	"bufio"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
)

// TestQueryStatsKeepsItsBound: a full table drops its least called
// tenth, never the busy entries; times and counts add up per key.
func TestQueryStatsKeepsItsBound(t *testing.T) {
	q := newQueryStats()
	cls := func(fp uint64) *parser.Classification {
		return &parser.Classification{Fingerprint: fp, Normalized: "select $" + strings.Repeat("1", int(fp%5))}
	}
	const limit = 20
	// Entries 1..limit, entry i called i times.
	for i := uint64(1); i <= limit; i++ {
		for range i {
			q.record("db", "u", cls(i), time.Millisecond, 1, false, false, limit)
		}
	}
	// Entry 5 gets a slow, failed call of 3 ms.
	q.record("db", "u", cls(5), 3*time.Millisecond, 0, true, true, limit)
	if got := len(q.rows()); got != limit {
		t.Fatalf("%d entries before the table is full, want %d", got, limit)
	}
	// A new statement: the least called tenth (and one for it) goes.
	q.record("db", "u", cls(99), time.Millisecond, 1, false, false, limit)
	kept := map[uint64]queryEntry{}
	for _, r := range q.rows() {
		kept[r.key.fp] = r.queryEntry
	}
	if len(kept) > limit-limit/10 || kept[99].calls != 1 {
		t.Errorf("after eviction %d entries (new one %+v), want at most %d with the new one", len(kept), kept[99], limit-limit/10)
	}
	for _, fp := range []uint64{1, 2, 3} {
		if _, ok := kept[fp]; ok {
			t.Errorf("entry %d (called %d times) survived eviction", fp, fp)
		}
	}
	if e := kept[limit]; e.calls != limit {
		t.Errorf("the busiest entry: %+v, want %d calls", e, limit)
	}
	if e := kept[5]; e.calls != 6 || e.rows != 5 || e.errors != 1 || e.slow != 1 || e.totalUS != 8000 || e.minUS != 1000 || e.maxUS != 3000 {
		t.Errorf("entry 5: %+v, want 6 calls, 5 rows, 1 error, 1 slow, 8000 µs in all, 1000 to 3000", e)
	}
	// The same shape from another user is an entry of its own.
	q.record("db", "other", cls(5), time.Millisecond, 1, false, false, 100)
	if rows := q.rows(); rows[0].key.fp != limit {
		t.Errorf("rows not in order of total time: first %+v", rows[0])
	}
}

func TestCapText(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
	}{
		{"short", "select 1"},
		{"long", strings.Repeat("x", maxQueryText+10)},
		{"long, a character across the cut", strings.Repeat("x", maxQueryText-1) + "é" + "tail"},
	} {
		got := capText(tt.in)
		if !utf8.ValidString(got) || len(got) > maxQueryText+len("…") || (len(tt.in) <= maxQueryText && got != tt.in) {
			t.Errorf("%s: capText gave %d bytes, valid UTF-8 %v", tt.name, len(got), utf8.ValidString(got))
		}
	}
}

func TestCommandRows(t *testing.T) {
	for _, tt := range []struct {
		tag  string
		want uint64
	}{
		{"SELECT 5", 5},
		{"INSERT 0 7", 7},
		{"UPDATE 3", 3},
		{"COPY 1000000", 1000000},
		{"BEGIN", 0},
		{"CREATE TABLE", 0},
		{"", 0},
	} {
		body := tt.tag + "\x00"
		c := &pool.Conn{R: bufio.NewReader(strings.NewReader(body))}
		if got := commandRows(c, len(body)); got != tt.want {
			t.Errorf("commandRows(%q) = %d, want %d", tt.tag, got, tt.want)
		}
		if c.R.Buffered() != len(body) {
			t.Errorf("commandRows(%q) consumed the tag", tt.tag)
		}
	}
}
