package proxy

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
)

// failedLoads counts the logged failures to read pg_proc, and the
// warnings among them.
type failedLoads struct{ n, warned atomic.Int32 }

func (f *failedLoads) Enabled(context.Context, slog.Level) bool { return true }
func (f *failedLoads) WithAttrs([]slog.Attr) slog.Handler       { return f }
func (f *failedLoads) WithGroup(string) slog.Handler            { return f }
func (f *failedLoads) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "cannot read function volatility") {
		f.n.Add(1)
		if r.Level == slog.LevelWarn {
			f.warned.Add(1)
		}
	}
	return nil
}

// TestClassifiersCloseStopsTrailingLoad: DDL within a second of the last
// pg_proc read schedules one more read for when the second is up; after
// shutdown (close) that read must not run. Without close it does: the
// refused connection to the test's dead port is logged.
func TestClassifiersCloseStopsTrailingLoad(t *testing.T) {
	for _, closed := range []bool{false, true} {
		var failed failedLoads
		cs := newClassifiers(slog.New(&failed))
		dc := &dbClassifier{
			c: parser.NewClassifier(10, parser.BuiltinVolatility),
			target: pool.Target{Host: "127.0.0.1", Port: 1, Database: "d", User: "u",
				SSLMode: "disable", ConnectTimeout: time.Second},
			loaded: time.Now(),
		}
		cs.byDB["d"] = dc
		cs.reload(dc) // within the second: a trailing load is armed
		dc.mu.Lock()
		armed := dc.trailing != nil
		dc.mu.Unlock()
		if !armed {
			t.Fatal("no trailing load armed for DDL within a second of the last")
		}
		if closed {
			cs.close()
		}
		time.Sleep(1500 * time.Millisecond)
		if ran := failed.n.Load() > 0; ran == closed {
			t.Errorf("closed %v: trailing load ran %v", closed, ran)
		}
		cs.close()
	}
}

// TestClassifiersReadTheCatalogAgain: a database's catalog is read again
// every interval (here against a dead port, so each read is a logged
// failure), and no more after close.
func TestClassifiersReadTheCatalogAgain(t *testing.T) {
	var failed failedLoads
	cs := newClassifiers(slog.New(&failed))
	cs.every = 100 * time.Millisecond
	cs.forDB(pool.Target{Host: "127.0.0.1", Port: 1, Database: "d", User: "u", SSLMode: "disable", ConnectTimeout: time.Second})
	waitFor(t, "three reads", func() bool { return failed.n.Load() >= 3 })
	cs.close()
	time.Sleep(50 * time.Millisecond) // a read under way ends
	n := failed.n.Load()
	time.Sleep(300 * time.Millisecond)
	if got := failed.n.Load(); got != n {
		t.Errorf("%d reads after close", got-n)
	}
	if w := failed.warned.Load(); w != 1 {
		t.Errorf("%d warnings for one run of %d failed reads, want 1", w, n)
	}
}

// TestClassifierKeptWhenCatalogUnchanged: a read of the catalog that
// finds what the classifier has leaves its cache alone; one that finds a
// change in volatility or relations swaps it; a failed relations read
// keeps the last relations.
func TestClassifierKeptWhenCatalogUnchanged(t *testing.T) {
	rels := func(rows ...[]string) *parser.Relations {
		r, err := parser.LoadRelations(context.Background(), func(context.Context, string) ([][]string, error) { return rows, nil })
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	vol := func(v parser.Volatility) map[string]parser.Volatility { return map[string]parser.Volatility{"f": v} }
	dc := &dbClassifier{c: parser.NewClassifier(10, parser.BuiltinVolatility)}
	for i, step := range []struct {
		vol     map[string]parser.Volatility
		rels    *parser.Relations
		changed bool
	}{
		{vol(parser.Stable), rels([]string{"view", "v", "t"}), true},
		{vol(parser.Stable), rels([]string{"view", "v", "t"}), false},
		{vol(parser.Stable), nil, false},
		{vol(parser.Volatile), nil, true},
		{vol(parser.Volatile), rels([]string{"view", "v", "t"}), false},
		{vol(parser.Volatile), rels([]string{"view", "v", "u"}), true},
	} {
		before := dc.c.Classify("select * from v")
		if got := dc.apply(step.vol, step.rels); got != step.changed {
			t.Fatalf("step %d: changed %v, want %v", i, got, step.changed)
		}
		if kept := dc.c.Classify("select * from v") == before; kept == step.changed {
			t.Fatalf("step %d: cached classification kept %v after changed %v", i, kept, step.changed)
		}
	}
}
