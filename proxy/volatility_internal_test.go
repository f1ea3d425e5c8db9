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

// failedLoads counts the logged failures to read pg_proc.
type failedLoads struct{ n atomic.Int32 }

func (f *failedLoads) Enabled(context.Context, slog.Level) bool { return true }
func (f *failedLoads) WithAttrs([]slog.Attr) slog.Handler       { return f }
func (f *failedLoads) WithGroup(string) slog.Handler            { return f }
func (f *failedLoads) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "cannot read function volatility") {
		f.n.Add(1)
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
}
