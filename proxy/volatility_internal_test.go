package proxy

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestClassifiersCloseStopsTrailingLoad: DDL within a second of the last
// pg_proc read schedules one more read for when the second is up; after
// shutdown (close) that read must not run. Without close it does: the
// refused connection to the test's dead port is logged.
func TestClassifiersCloseStopsTrailingLoad(t *testing.T) {
	for _, closed := range []bool{false, true} {
		var out syncBuffer
		cs := newClassifiers(slog.New(slog.NewTextHandler(&out, nil)))
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
		ran := strings.Contains(out.String(), "cannot read function volatility")
		if ran == closed {
			t.Errorf("closed %v: trailing load ran %v; log:\n%s", closed, ran, out.String())
		}
		cs.close()
	}
}
